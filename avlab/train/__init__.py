"""Training: Lightning tasks and data modules over the feature store, `fit`, end-to-end fine-tuning.

The only package that imports Lightning. `fit(store, system, **options)` trains a registered
system (`avlab.models`) on cached features, or with ``end_to_end=True`` on decoded frames with
the backbone unfrozen; `finetune_backbone` does the latter and saves a backbone checkpoint
that `cache_features(weights=...)` freezes and caches (FINDINGS.md's two-stage pipeline).

Pieces, each usable alone: `StoreFrames` / `DecodedFrames` (one raw frame at a time),
`natural_item` / `mix_item` / `collate` (the batch contract), `NaturalFrames` / `MixFrames`
(datasets with per-epoch draws), `AVDataModule`, `AVSegmentationTask`, the losses, and
`plot_loss_curve`.

Example:
    >>> from avlab.train import fit, finetune_backbone
    >>> callable(fit) and callable(finetune_backbone)
    True
"""

from __future__ import annotations

from avlab.train.curves import plot_loss_curve
from avlab.train.datamodule import AVDataModule, choose_num_stft_frames
from avlab.train.datasets import MixFrames, NaturalFrames
from avlab.train.finetune import FinetuneRecord, FinetuneResult, finetune_backbone, finetune_once
from avlab.train.fit import FitResult, fit
from avlab.train.frames import DecodedFrames, FrameTable, StoreFrames, store_info
from avlab.train.items import StftWindow, collate, mix_item, mixture_logmel, natural_item
from avlab.train.losses import (
    best_permutation,
    category_loss,
    mask_loss,
    separation_loss,
    warped_targets,
)
from avlab.train.masktrack import MaskTrackFitResult, MaskTrackPairs, fit_masktrack, masktrack_loss
from avlab.train.task import AVSegmentationTask
from avlab.train.vis_data import (
    FramePairs,
    IdentityTable,
    OrderedFrames,
    VISDataModule,
    ytvis_ground_truth,
)
from avlab.train.vis_task import VISTask

__all__ = [
    # one-call training
    "FitResult",
    "fit",
    "FinetuneRecord",
    "FinetuneResult",
    "finetune_backbone",
    "finetune_once",
    "MaskTrackFitResult",
    "fit_masktrack",
    # Lightning pieces
    "AVDataModule",
    "AVSegmentationTask",
    "VISDataModule",
    "VISTask",
    "choose_num_stft_frames",
    # data
    "DecodedFrames",
    "FrameTable",
    "MixFrames",
    "NaturalFrames",
    "StftWindow",
    "StoreFrames",
    "collate",
    "mix_item",
    "mixture_logmel",
    "natural_item",
    "store_info",
    "FramePairs",
    "IdentityTable",
    "OrderedFrames",
    "ytvis_ground_truth",
    "MaskTrackPairs",
    # losses
    "best_permutation",
    "category_loss",
    "mask_loss",
    "masktrack_loss",
    "separation_loss",
    "warped_targets",
    # reports
    "plot_loss_curve",
]
