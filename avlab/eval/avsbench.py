"""AVSBench mIoU and F-score (S4 / MS3), and the semantic AVSS per-class mIoU and F-score.

`AVSBenchMeter` in ``"legacy"`` mode reproduces AVSBench's own utility
(``avs_scripts/avs_s4/utils/utility.py``: ``mask_iou`` and ``Eval_Fmeasure``, averaged over
batches by its ``AverageMeter``) in the same float32 torch arithmetic, so its figures depend on
the batch size as the published ones do. ``"dataset"`` mode accumulates per frame over the
whole set instead and does not depend on batching. `AVSSMeter` reproduces the per-class
histograms of ``avs_scripts/avss/utils/compute_color_metrics.py``. Written here because no
library implements these protocols (torchmetrics' Jaccard and F-beta pool pixels and have no
empty-frame rules).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from avlab.eval._arrays import is_floating, to_numpy, to_tensor

__all__ = ["AVSBenchMeter", "AVSSMeter", "F_BETA2"]

#: beta^2 of AVSBench's F-score (precision weighted more than recall).
F_BETA2 = 0.3
# AVSBench's 255 thresholds on sigmoid probabilities, float32 as it builds them (the last is 1.0).
_THRESHOLDS = torch.linspace(0, 1 - 1e-10, 255)
_IOU_EPS = 1e-7  # AVSBench adds it to the union in legacy mode


class AVSBenchMeter:
    """AVSBench mIoU and F-score of binary audio-visual segmentation, accumulated over batches.

    Per frame: the prediction is sigmoid(logits) > 0.5; IoU is intersection / union, except
    that a frame with empty ground truth scores its correctly empty pixels / (H W). The F-score
    (beta^2 = 0.3) is computed at AVSBench's 255 thresholds on sigmoid(logits),
    ``torch.linspace(0, 1 - 1e-10, 255)`` in float32 (whose last value rounds to 1.0), counting
    a pixel at a threshold when its probability is at or above it; frames with empty ground
    truth are skipped.

    - ``mode="legacy"``: as AVSBench. Per batch, mIoU is the mean IoU of its frames (with
      AVSBench's 1e-7 added to each union) and F is the maximum over thresholds of the mean F
      of its frames (0 for a batch whose frames all have empty ground truth); the results are
      the means over batches, so they depend on how the frames were batched.
    - ``mode="dataset"``: mIoU is the mean IoU over all frames, and F the maximum over
      thresholds of the mean F over all frames with an object (NaN if none has); independent
      of batching.

    Args:
        mode: ``"legacy"`` or ``"dataset"``.

    Example:
        >>> logits = torch.full((2, 4, 4), -5.0)
        >>> logits[0, :2] = 5.0
        >>> gt = torch.zeros(2, 4, 4)
        >>> gt[0, :2, :2] = 1.0
        >>> meter = AVSBenchMeter(mode="dataset")
        >>> meter.update(logits, gt)
        >>> {name: round(value, 4) for name, value in meter.compute().items()}
        {'miou': 0.75, 'fscore': 0.5652}
    """

    def __init__(self, *, mode: Literal["legacy", "dataset"] = "legacy") -> None:
        if mode not in ("legacy", "dataset"):
            raise ValueError(f"mode must be 'legacy' or 'dataset', not {mode!r}")
        self.mode = mode
        self.reset()

    def reset(self) -> None:
        """Forget every batch seen."""
        self._iou_sum = 0.0
        self._f_sum = 0.0
        self._count = 0  # batches (legacy) or frames (dataset)
        self._f_curve = np.zeros(len(_THRESHOLDS))  # dataset mode: sum of per-frame F curves
        self._f_frames = 0

    def update(self, logits: Any, gt: Any) -> None:
        """Add a batch of frames.

        Args:
            logits: Predicted logits (float), numpy or torch.
            gt: Binary ground-truth masks (foreground where nonzero).

        Raises:
            TypeError: The logits are not floating point.
            ValueError: The shapes differ or are not (N, H, W).

        Shape:
            logits: (N, H, W).
            gt: (N, H, W).
        """
        if not is_floating(logits):
            raise TypeError("AVSBenchMeter needs float logits: the F-score thresholds their sigmoid")
        scores = to_tensor(logits)
        target = (to_tensor(gt) != 0).float()  # AVSBench's masks are float32 0/1
        if scores.ndim != 3 or scores.shape != target.shape:
            raise ValueError(f"logits and gt must have the same (N, H, W) shape, not {tuple(scores.shape)} and {tuple(target.shape)}")
        if len(scores) == 0:
            return
        if self.mode == "legacy":
            self._iou_sum += _legacy_batch_iou(scores, target)
            self._f_sum += _legacy_batch_fscore(scores, target)
            self._count += 1
            return
        foreground = torch.sigmoid(scores) > 0.5
        gt_mask = target.bool()
        inter = (foreground & gt_mask).sum(dim=(1, 2)).double()
        union = (foreground | gt_mask).sum(dim=(1, 2)).double()
        correct_empty = (~foreground).sum(dim=(1, 2)).double() / (scores.shape[1] * scores.shape[2])
        no_object = gt_mask.sum(dim=(1, 2)) == 0
        iou = torch.where(no_object, correct_empty, inter / union.clamp(min=1))
        self._iou_sum += float(iou.sum())
        self._count += len(iou)
        for frame_scores, frame_gt in zip(torch.sigmoid(scores)[~no_object], gt_mask[~no_object], strict=True):
            true_positives, predicted = _threshold_counts(frame_scores, frame_gt)
            self._f_curve += _fscore(true_positives, predicted, int(frame_gt.sum()))
            self._f_frames += 1

    def compute(self) -> dict[str, float]:
        """mIoU and F-score so far.

        Returns:
            ``miou`` and ``fscore``.

        Raises:
            ValueError: No frame was added.
        """
        if self._count == 0:
            raise ValueError("AVSBenchMeter.compute() before any update()")
        if self.mode == "legacy":
            return {"miou": self._iou_sum / self._count, "fscore": self._f_sum / self._count}
        fscore = float(np.max(self._f_curve / self._f_frames)) if self._f_frames else float("nan")
        return {"miou": self._iou_sum / self._count, "fscore": fscore}


class AVSSMeter:
    """AVSS (semantic AVSBench) per-class mIoU and F-score, from per-frame class histograms.

    As AVSBench's ``_batch_miou_fscore``: per frame and class, intersection, predicted and
    labelled areas; a class present in a frame (in the prediction or the ground truth) adds
    that frame's IoU and F (beta^2 = 0.3; 0 where precision or recall is undefined) to its sums
    and counts the frame. A class's IoU and F are its sums over its count. Reported: the mean
    over all `num_classes` classes with never-present classes counting 0 (``miou``,
    ``fscore``, AVSBench's headline figures) and the mean over present classes
    (``miou_present``, ``fscore_present``, what AVSBench prints per batch). Class 0 is the
    background and is included, as in AVSBench.

    Args:
        num_classes: Classes, background included (AVSS: 71).

    Example:
        >>> gt = np.array([[[0, 1], [1, 1]]])
        >>> pred = np.array([[[0, 1], [0, 1]]])
        >>> meter = AVSSMeter(num_classes=3)
        >>> meter.update(pred, gt)
        >>> scores = meter.compute()
        >>> round(scores["miou"], 4), round(scores["miou_present"], 4)
        (0.3889, 0.5833)
    """

    def __init__(self, num_classes: int = 71) -> None:
        self.num_classes = num_classes
        self.reset()

    def reset(self) -> None:
        """Forget every frame seen."""
        self._iou_sum = np.zeros(self.num_classes)
        self._f_sum = np.zeros(self.num_classes)
        self._present = np.zeros(self.num_classes, dtype=np.int64)

    def update(self, pred: Any, gt: Any) -> None:
        """Add a batch of frames.

        Args:
            pred: Class logits (float, argmax over C) or class labels (integer).
            gt: Class labels in [0, num_classes).

        Raises:
            ValueError: The shapes do not match, or a label is outside [0, num_classes).

        Shape:
            pred: (N, C, H, W) logits or (N, H, W) labels.
            gt: (N, H, W).
        """
        labels = to_numpy(gt).astype(np.int64)
        predicted = np.argmax(to_numpy(pred), axis=1) if is_floating(pred) else to_numpy(pred).astype(np.int64)
        if predicted.shape != labels.shape or labels.ndim != 3:
            raise ValueError(f"pred must be (N, C, H, W) logits or (N, H, W) labels matching gt (N, H, W); got {to_numpy(pred).shape} and {labels.shape}")
        for name, values in (("gt", labels), ("pred", predicted)):
            if values.size and (values.min() < 0 or values.max() >= self.num_classes):
                raise ValueError(f"{name} has labels outside [0, {self.num_classes})")
        c = self.num_classes
        offsets = np.arange(len(labels))[:, None, None] * c  # one histogram per frame
        size = len(labels) * c
        inter = np.bincount((offsets + labels)[predicted == labels], minlength=size).reshape(-1, c)
        area_pred = np.bincount((offsets + predicted).ravel(), minlength=size).reshape(-1, c)
        area_gt = np.bincount((offsets + labels).ravel(), minlength=size).reshape(-1, c)
        union = area_pred + area_gt - inter  # (N, C)
        present = union > 0
        denominator = np.where(present, union, 1)
        self._iou_sum += np.sum(inter / denominator, axis=0)
        self._f_sum += np.sum(_fscore(inter, area_pred, area_gt), axis=0)
        self._present += present.sum(axis=0)

    def compute(self) -> dict[str, Any]:
        """The figures so far.

        Returns:
            ``miou``, ``fscore`` (means over all classes, absent ones counting 0),
            ``miou_present``, ``fscore_present`` (means over present classes; NaN if none),
            ``per_class_iou``, ``per_class_fscore`` ((num_classes,) arrays, NaN where absent).
        """
        present = self._present > 0
        count = np.where(present, self._present, 1)
        iou = np.where(present, self._iou_sum / count, np.nan)
        fscore = np.where(present, self._f_sum / count, np.nan)
        num_present = int(present.sum())
        return {
            "miou": float(np.nansum(iou) / self.num_classes),
            "fscore": float(np.nansum(fscore) / self.num_classes),
            "miou_present": float(np.nansum(iou) / num_present) if num_present else float("nan"),
            "fscore_present": float(np.nansum(fscore) / num_present) if num_present else float("nan"),
            "per_class_iou": iou,
            "per_class_fscore": fscore,
        }


def _legacy_batch_iou(logits: torch.Tensor, target: torch.Tensor) -> float:
    """AVSBench's ``mask_iou``: the mean over the batch's frames, in its arithmetic."""
    num_frames, num_pixels = logits.shape[0], logits.shape[-1] * logits.shape[-2]
    no_obj_flag = target.sum(2).sum(1) == 0
    pred = (torch.sigmoid(logits) > 0.5).int()
    inter = (pred * target).sum(2).sum(1)
    union = torch.max(pred, target).sum(2).sum(1)
    inter_no_obj = ((1 - target) * (1 - pred)).sum(2).sum(1)
    inter[no_obj_flag] = inter_no_obj[no_obj_flag]
    union[no_obj_flag] = num_pixels
    return float(torch.sum(inter / (union + _IOU_EPS)) / num_frames)


def _legacy_batch_fscore(logits: torch.Tensor, target: torch.Tensor) -> float:
    """AVSBench's ``Eval_Fmeasure``: the max over thresholds of the batch's mean F curve."""
    probabilities = torch.sigmoid(logits)
    avg_f, img_num = 0.0, 0
    score = torch.zeros(len(_THRESHOLDS))
    for frame_probabilities, frame_target in zip(probabilities, target, strict=True):
        if torch.mean(frame_target) == 0.0:
            continue
        true_positives, predicted = _threshold_counts(frame_probabilities, frame_target.bool())
        tp = torch.from_numpy(true_positives).float()
        prec = tp / (torch.from_numpy(predicted).float() + 1e-20)
        recall = tp / (frame_target.sum() + 1e-20)
        f_score = (1 + F_BETA2) * prec * recall / (F_BETA2 * prec + recall)
        f_score[f_score != f_score] = 0  # NaN where precision and recall are both 0
        avg_f += f_score
        img_num += 1
        score = avg_f / img_num
    return float(score.max())


def _threshold_counts(probabilities: torch.Tensor, gt: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """True positives and predicted positives at each of `_THRESHOLDS` (pixel >= threshold).

    Exact integer counts, as AVSBench's 255 comparisons make, from one sort of the pixels
    instead of 255 passes over them.

    Shape:
        probabilities: (H, W).
        gt: (H, W) bool.
        Returns: two (255,) int64 arrays.
    """
    thresholds = _THRESHOLDS.to(probabilities.dtype)
    # rank = number of thresholds at or below the pixel: it counts at thresholds 0 .. rank - 1,
    # so the count at threshold i is the number of pixels minus those of rank <= i.
    rank = torch.searchsorted(thresholds, probabilities.reshape(-1).contiguous(), right=True).numpy()
    in_gt = rank[gt.reshape(-1).numpy()]
    bins = len(thresholds) + 1
    predicted = len(rank) - np.cumsum(np.bincount(rank, minlength=bins))[:-1]
    true_positives = len(in_gt) - np.cumsum(np.bincount(in_gt, minlength=bins))[:-1]
    return true_positives, predicted


def _fscore(true_positives: np.ndarray, predicted: Any, actual: Any) -> np.ndarray:
    """AVSBench's F: (1 + b2) P R / (b2 P + R), 0 where it is undefined (no tp), as its NaN-to-0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = true_positives / predicted
        recall = true_positives / actual
        fscore = (1 + F_BETA2) * precision * recall / (F_BETA2 * precision + recall)
    return np.where(np.isnan(fscore), 0.0, fscore)
