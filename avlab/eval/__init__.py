"""Metrics: separation (BSS Eval, SI-SDR, Sound of Pixels), masks, AVSBench, localisation, YouTube-VIS.

Each figure follows the protocol of the paper or benchmark that defined it, with the
reference implementation named in its docstring; where papers disagree both modes are offered.

Example:
    >>> import numpy as np
    >>> from avlab.eval import mask_iou
    >>> mask_iou(np.ones((1, 2, 2), bool), np.eye(2, dtype=bool)[None]).tolist()
    [0.5]
"""

from __future__ import annotations

from avlab.eval.avsbench import AVSBenchMeter, AVSSMeter
from avlab.eval.evaluate import evaluate
from avlab.eval.localization import localization_scores
from avlab.eval.masks import accuracy_at_iou, mask_iou
from avlab.eval.separation import SeparationMeter, bss_eval, si_sdr
from avlab.eval.ytvis import write_ytvis_results, ytvis_evaluate

__all__ = [
    # separation
    "SeparationMeter",
    "bss_eval",
    "si_sdr",
    # masks and AVSBench
    "AVSBenchMeter",
    "AVSSMeter",
    "accuracy_at_iou",
    "mask_iou",
    # sound-source localisation
    "localization_scores",
    # over a feature store
    "evaluate",
    # video instance segmentation
    "write_ytvis_results",
    "ytvis_evaluate",
]
