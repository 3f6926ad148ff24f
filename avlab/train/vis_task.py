"""The Lightning task of video instance segmentation: AFCV, CrossVIS and CondInst-VIS.

``VISTask(system_name, system_kwargs, categories=...)`` trains on frame pairs
(`avlab.train.vis_data.FramePairs`) and validates by tracking every validation video and
scoring the tracks with the YouTube-VIS evaluation (`avlab.eval.ytvis_evaluate`).

Loss per frame of each pair (SPEC section 9): FCOS's focal classification, GIoU box and
centerness losses, CondInst's Dice mask loss over the positives (capped), the identity focal
loss of the instance embeddings, and with a sounding head the BCE of each positive's sounding
score against its instance's sounding flag; plus, for systems with ``crossover``, CrossVIS's
crossover loss between the two frames. Boxes are the ground-truth masks' bounding boxes.

Each validation writes the tracks as ``ytvis_results.json`` (the YouTube-VIS server's format) in
the run's folder. Validation figures: ``val/ap``, ``val/ap50``, ``val/ap75``, ``val/ar1``, ``val/ar10`` over
all instances, and with a sounding head the same on sounding instances only
(``val/ap_sounding``, ...): the ground truth keeps an instance's masks on the frames where it
sounds, and each track keeps its masks on the frames where its sounding score is >= 0.5.

Example:
    >>> task = VISTask("condinst_vis", {"channels": (8, 16, 32), "num_classes": 2, "width": 8, "num_convs": 1,
    ...                "num_groups": 4, "mask_branch_channels": 8, "embedding_dim": 8}, categories=["a", "b"])
    >>> type(task.system).__name__
    'CondInstVIS'
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from avlab.eval import write_ytvis_results, ytvis_evaluate
from avlab.heads import (
    CrossoverFrame,
    FCOSTargets,
    crossover_loss,
    fcos_losses,
    fcos_targets,
    gather_locations,
    identity_loss,
    mask_losses,
    sample_positives,
)
from avlab.models import AFCV, Tracker, create_system, list_systems
from avlab.models.masktrack import boxes_from_masks
from avlab.train.resume import step_seed
from avlab.train.task import BackboneTask
from avlab.train.vis_data import category_labels

__all__ = ["VISTask"]

_FIGURES = (("ap", "AP"), ("ap50", "AP50"), ("ap75", "AP75"), ("ar1", "AR1"), ("ar10", "AR10"))


class VISTask(BackboneTask):
    """Trains a video instance segmentation system on frame pairs; validates by tracking.

    Args:
        system: Registry name ("afcv", "crossvis", "condinst_vis").
        system_kwargs: Its constructor arguments (channels, num_classes, num_identities, ...).
        categories: The store's category names (YouTube-VIS category ids are their indices).
        lr: Learning rate (AdamW).
        weight_decay: AdamW weight decay.
        crossover_weight: Weight of the crossover loss (systems with ``crossover``).
        identity_weight: Weight of the embedding's identity loss.
        sounding_weight: Weight of the sounding-score BCE (systems with a sounding head).
        max_positives: Cap on positives per batch (CondInst: 500).
        backbone: Visual bundle to train end to end (None: batches carry features).
        backbone_layers: Its levels.
        backbone_lr: Learning rate of the backbone (default lr / 10).
        score_threshold: Detection threshold at validation.
        max_detections: Detections kept per frame at validation.
        match_threshold: The tracker's threshold on cosine + IoU.
        seed: Seed of the positive subsets and crossover draws.
    """

    def __init__(
        self,
        system: str,
        system_kwargs: Mapping[str, Any] | None = None,
        *,
        categories: Sequence[str],
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        crossover_weight: float = 1.0,
        identity_weight: float = 1.0,
        sounding_weight: float = 1.0,
        max_positives: int = 500,
        backbone: str | None = None,
        backbone_layers: Sequence[str] = ("c3", "c4", "c5"),
        backbone_lr: float | None = None,
        score_threshold: float = 0.05,
        max_detections: int = 20,
        match_threshold: float = 0.4,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        built = create_system(system, **dict(system_kwargs or {}))
        if not isinstance(built, AFCV):
            raise ValueError(f"{system!r} is not a video instance segmentation system; those are "
                             f"{', '.join(list_systems('vis'))}")
        self.system: AFCV = built
        self._build_backbone(backbone, backbone_layers)
        self.generator = torch.Generator().manual_seed(seed)
        self.ground_truth: dict[str, Any] | None = None  # set by the data module (or by hand)
        self.ground_truth_sounding: dict[str, Any] | None = None
        self._videos: dict[int, _Video] = {}  # validation: a tracker per video

    # Forward and losses.

    def forward(self, batch: Mapping[str, torch.Tensor]) -> dict[str, Any]:
        """The system's outputs (features computed first when end to end)."""
        return dict(self.system(self._features(batch)))

    def _frame_targets(self, batch: Mapping[str, torch.Tensor], out: Mapping[str, Any]) -> dict[str, Any]:
        masks = batch["instance_mask"] == 1  # (B, I, H, W)
        labels = batch["instance_label"]  # (B, I)
        keep = [((labels[b] >= 0) & masks[b].flatten(1).any(1)).nonzero().squeeze(1) for b in range(len(masks))]
        gt_masks = [masks[b, k].float() for b, k in enumerate(keep)]  # (n_b, H, W)
        boxes = [boxes_from_masks(masks[b, k]) for b, k in enumerate(keep)]
        system = self.system
        targets = fcos_targets(system.locations(out), system.strides, boxes,
                               [labels[b, k] for b, k in enumerate(keep)], size_ranges=system.size_ranges)
        return {"keep": keep, "gt_masks": gt_masks, "targets": targets}

    def _positive_rows(self, targets: FCOSTargets) -> torch.Tensor:
        return sample_positives(targets.positive, max_positives=self.hparams["max_positives"],
                                generator=self.generator).to(targets.labels.device)

    def _per_instance(self, values: torch.Tensor, keep: list[torch.Tensor], targets: FCOSTargets,
                      rows: torch.Tensor) -> torch.Tensor:
        """(B, I) per-instance values read for positive rows via their matched box."""
        # Box j of image b is instance keep[b][j] on the store's instance axis.
        positions = torch.full((len(keep), max((len(k) for k in keep), default=0)), -1, dtype=torch.long,
                               device=values.device)  # (B, max boxes)
        for b, k in enumerate(keep):
            positions[b, : len(k)] = k
        image = targets.image_index[rows]
        return values[image, positions[image, targets.gt_index[rows]]]

    def frame_losses(self, batch: Mapping[str, torch.Tensor], out: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Losses of one frame batch: "cls", "box", "ctr", "mask", "identity", "sounding"."""
        gt = self._frame_targets(batch, out)
        targets: FCOSTargets = gt["targets"]
        losses = fcos_losses(out["detector"], targets)
        losses.update(mask_losses(self.system.mask_head, out["mask_features"], out["detector"].params, targets,
                                  gt["gt_masks"], max_positives=self.hparams["max_positives"],
                                  generator=self.generator))
        rows = self._positive_rows(targets)
        where = (targets.image_index[rows], targets.levels[rows], targets.indices[rows])
        if self.system.identity is not None:
            identity = self._per_instance(batch["instance_identity"], gt["keep"], targets, rows)
            embeddings = gather_locations(out["embeddings"], *where)  # (P, D)
            losses["identity"] = identity_loss(self.system.identity(embeddings), identity)
        if "sounding_logits" in out:
            flags = self._per_instance(batch["sounding"].long(), gt["keep"], targets, rows)
            logits = gather_locations(out["sounding_logits"], *where)[:, 0]  # (P,)
            known = flags >= 0
            losses["sounding"] = (F.binary_cross_entropy_with_logits(logits[known], flags[known].float())
                                  if bool(known.any()) else logits.sum() * 0)
        return losses, gt

    def training_step(self, batch: Mapping[str, Mapping[str, torch.Tensor]], batch_idx: int) -> torch.Tensor:
        frames = [self._features(batch["first"]), self._features(batch["second"])]
        outs = [self.system(frame) for frame in frames]
        parts = [self.frame_losses(frame, out) for frame, out in zip(frames, outs, strict=True)]
        weights = {"identity": self.hparams["identity_weight"], "sounding": self.hparams["sounding_weight"]}
        names = sorted(set(parts[0][0]))
        losses = {name: (parts[0][0][name] + parts[1][0][name]) / 2 for name in names}
        total = sum(weights.get(name, 1.0) * value for name, value in losses.items())
        if self.system.crossover:
            # Object ids: positions on the store's instance axis, shared by the two frames of a video.
            crossing = [CrossoverFrame(out["mask_features"], out["detector"].params, gt["targets"], gt["keep"],
                                       gt["gt_masks"])
                        for out, (_, gt) in zip(outs, parts, strict=True)]
            losses["crossover"] = crossover_loss(self.system.mask_head, *crossing,
                                                 max_positives=self.hparams["max_positives"], generator=self.generator)
            total = total + self.hparams["crossover_weight"] * losses["crossover"]
        size = int(frames[0]["logmel"].shape[0])
        synced = self.trainer.world_size > 1
        self.log("train/loss", total, on_step=True, on_epoch=True, prog_bar=True, batch_size=size, sync_dist=synced)
        for name, value in losses.items():
            self.log(f"train/{name}_loss", value, on_step=False, on_epoch=True, batch_size=size, sync_dist=synced)
        return total  # type: ignore[return-value]

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        for name in ("ground_truth", "ground_truth_sounding"):
            if getattr(datamodule, name, None) is not None:
                setattr(self, name, getattr(datamodule, name))

    def on_train_epoch_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "set_epoch"):
            datamodule.set_epoch(self.current_epoch)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # The step's draws depend on where it is in training alone, so a resumed run repeats them.
        self.generator.manual_seed(step_seed(self.hparams["seed"], self.current_epoch, batch_idx))

    # Validation: track each video, score with the YouTube-VIS evaluation.

    def on_validation_epoch_start(self) -> None:
        self._videos = {}

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        frame = self._features(batch)
        size = (int(batch["instance_mask"].shape[-2]), int(batch["instance_mask"].shape[-1]))
        found = self.system.predict(frame, image_size=size, score_threshold=self.hparams["score_threshold"],
                                    max_detections=self.hparams["max_detections"])
        for b, detections in enumerate(found):
            self.observe(int(batch["video"][b]), int(batch["frame"][b]), detections)

    def observe(self, video: int, frame: int, detections: Mapping[str, torch.Tensor]) -> None:
        """Track one frame's detections (frames of a video in order; `OrderedFrames` reads them so).

        Masks are kept as RLE by the tracker, so validation holds no full-size masks.

        Args:
            video: The video's position in the store.
            frame: The frame's index in the video.
            detections: One frame of `AFCV.predict`: boxes, scores, labels, masks, embeddings,
                sounding.
        """
        if video not in self._videos:
            self._videos[video] = _Video(Tracker(match_threshold=self.hparams["match_threshold"]))
        state = self._videos[video]
        d = {k: v.detach().cpu() for k, v in detections.items()}
        ids = state.tracker.update(frame, d["boxes"], d["scores"], d["labels"], d["masks"], d["embeddings"])
        for track, level in zip(ids.tolist(), d["sounding"].tolist(), strict=True):
            state.heard.setdefault(track, {})[frame] = level
        state.num_frames = max(state.num_frames, frame + 1)

    def track(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """YouTube-VIS results of the observed videos: (all tracks, tracks on their sounding frames)."""
        _, offset = category_labels(self.hparams["categories"])
        category_ids = [k + offset for k in range(self.system.detector.num_classes)]
        results, sounding_results = [], []
        for video, state in sorted(self._videos.items()):
            tracks = state.tracker.results(video + 1, state.num_frames, category_ids)
            results.extend(tracks)
            for k, result in enumerate(tracks):  # results come in track-creation order: k is the id
                kept = copy.deepcopy(result)
                kept["segmentations"] = [s if state.heard[k].get(t, 0.0) >= 0.5 else None
                                         for t, s in enumerate(result["segmentations"])]
                if any(s is not None for s in kept["segmentations"]):
                    sounding_results.append(kept)
        return results, sounding_results

    def on_validation_epoch_end(self) -> None:
        if self.ground_truth is None or not self._videos:
            return
        results, sounding = self.track()
        log_dir = getattr(self.logger, "log_dir", None)
        if log_dir is not None and self.trainer.is_global_zero:
            # The tracks as the YouTube-VIS server takes them, checked against the ground truth.
            write_ytvis_results(Path(log_dir) / "ytvis_results.json", results, self.ground_truth)
        figures = _score(self.ground_truth, results)
        if getattr(self.system, "sounding", False) and self.ground_truth_sounding is not None:
            figures.update({f"{k}_sounding": v for k, v in _score(self.ground_truth_sounding, sounding).items()})
        for name, value in figures.items():
            self.log(f"val/{name}", value, prog_bar=name == "ap")


@dataclass
class _Video:
    """One validation video's tracker, each track's sounding score per frame, and its length."""

    tracker: Tracker
    heard: dict[int, dict[int, float]] = field(default_factory=dict)
    num_frames: int = 0


def _score(ground_truth: Mapping[str, Any], results: list[dict[str, Any]]) -> dict[str, float]:
    """AP/AR figures; 0 without results; none without ground truth (the API's -1 is left out)."""
    if not ground_truth.get("annotations"):
        return {}
    if not results:
        return {name: 0.0 for name, _ in _FIGURES}
    stats = ytvis_evaluate(ground_truth, results)
    return {name: float(stats[key]) for name, key in _FIGURES if np.isfinite(stats[key]) and stats[key] >= 0}
