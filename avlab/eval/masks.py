"""Binary mask overlap: per-sample IoU and accuracy at an IoU threshold (AViS-Net's metric).

Predictions are logits (any float dtype: foreground where sigmoid(x) > 0.5, computed as
AVSBench does) or binary masks (bool or integer: foreground where nonzero). Ground truth is
binary (foreground where nonzero). Written here because torchmetrics' binary Jaccard index
pools pixels over the batch and has no per-sample empty-mask convention.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from avlab.eval._arrays import is_floating, to_numpy, to_tensor

__all__ = ["accuracy_at_iou", "binarize", "mask_iou"]


def binarize(pred: Any) -> np.ndarray:
    """Foreground of a prediction: sigmoid(logits) > 0.5 for floats, nonzero otherwise.

    Args:
        pred: Logits or a binary mask, numpy or torch.

    Returns:
        A bool array of the same shape.

    Example:
        >>> binarize(np.array([-1.0, 0.0, 2.0])).tolist()
        [False, False, True]
    """
    if is_floating(pred):
        return (torch.sigmoid(to_tensor(pred)) > 0.5).numpy()
    return to_numpy(pred) != 0


def mask_iou(pred: Any, gt: Any) -> np.ndarray:
    """Intersection over union of each predicted mask with its ground truth.

    Two empty masks have IoU 1 (nothing to find, nothing found; AVSBench's choice); an empty
    mask against a non-empty one has IoU 0.

    Args:
        pred: Logits or binary masks.
        gt: Binary ground-truth masks.

    Returns:
        IoU per sample, float64 in [0, 1].

    Shape:
        pred: (N, H, W), or any (..., H, W).
        gt: same as `pred`.
        Returns: (N,), or the leading shape of `pred`.

    Example:
        >>> pred = np.array([[[1, 1], [0, 0]], [[0, 0], [0, 0]]], np.uint8)
        >>> gt = np.array([[[1, 0], [0, 0]], [[0, 0], [0, 0]]], np.uint8)
        >>> mask_iou(pred, gt).tolist()
        [0.5, 1.0]
    """
    inter, union = _overlap(pred, gt)
    with np.errstate(invalid="ignore"):
        return np.where(union == 0, 1.0, inter / union)


def accuracy_at_iou(
    pred: Any,
    gt: Any,
    *,
    threshold: float = 0.75,
    empty: Literal["one", "skip", "zero"] = "one",
) -> float:
    """Fraction of samples whose mask IoU is at least `threshold` (AViS-Net: 0.75).

    Args:
        pred: Logits or binary masks.
        gt: Binary ground-truth masks.
        threshold: IoU a sample needs to count as correct.
        empty: A sample whose prediction and ground truth are both empty scores IoU 1
            (``"one"``, AVSBench's choice), is left out (``"skip"``), or scores 0 (``"zero"``).

    Returns:
        The fraction in [0, 1]; NaN when every sample was skipped.

    Shape:
        pred: (N, H, W).
        gt: (N, H, W).

    Example:
        >>> pred = np.zeros((2, 4, 4), bool)
        >>> gt = np.zeros((2, 4, 4), bool)
        >>> pred[0, :2] = gt[0, :3] = True  # IoU 8 / 12
        >>> accuracy_at_iou(pred, gt, threshold=0.5), accuracy_at_iou(pred, gt, empty="skip")
        (1.0, 0.0)
    """
    if empty not in ("one", "skip", "zero"):
        raise ValueError(f"empty must be 'one', 'skip' or 'zero', not {empty!r}")
    inter, union = _overlap(pred, gt)
    both_empty = union == 0
    with np.errstate(invalid="ignore"):
        iou = np.where(both_empty, 1.0 if empty == "one" else 0.0, inter / union)
    if empty == "skip":
        iou = iou[~both_empty]
    return float(np.mean(iou >= threshold)) if iou.size else float("nan")


def _overlap(pred: Any, gt: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample intersection and union pixel counts."""
    p, g = binarize(pred), to_numpy(gt) != 0
    if p.shape != g.shape or p.ndim < 2:
        raise ValueError(f"pred and gt must have the same (..., H, W) shape, not {p.shape} and {g.shape}")
    inter = np.sum(p & g, axis=(-2, -1))
    union = np.sum(p | g, axis=(-2, -1))
    return inter, union
