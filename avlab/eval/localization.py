"""Sound-source localisation: consensus IoU (cIoU), its AP50, mean and AUC (Flickr-SoundNet, VGG-SS).

cIoU = sum(pred * gt) / (sum(gt) + sum(pred * [gt == 0])) for the binarised prediction `pred`
and the ground-truth map `gt`. Flickr-SoundNet maps are annotator consensus, the sum of the
annotators' boxes / 2 clipped to 1 (values 0, 0.5, 1); VGG-SS maps are the union of boxes
(0 or 1). Both reference implementations (LVS, Chen et al. 2021; EZ-VSL, Mo and Morgado 2022)
use a Flickr map as it is, as pixel weights: it is not binarised, and neither is it here.

What differs between the two protocols (``protocol=``):

- Binarisation: both min-max normalise the heatmap and take the value at index H W / 2 of its
  sorted pixels as the threshold. LVS keeps the pixels strictly above it (plus those at the
  maximum, a side effect of its in-place thresholding that matters only when more than half
  the map ties at its maximum); EZ-VSL keeps the pixels at or above it, so one more pixel when
  there are no ties, and all tied ones when there are.
- Headline: LVS reports AP50 (the fraction of samples with cIoU >= 0.5) and calls it "cIoU";
  EZ-VSL reports AP50 and the mean cIoU (which it calls "cIoU").
- Upsampling of a low-resolution heatmap to the map's size: LVS uses OpenCV's bilinear
  ``cv2.resize`` (half-pixel centres, as ``align_corners=False``), EZ-VSL bilinear with
  ``align_corners=True``.

Both compute AUC by the trapezoidal rule over the thresholds 0, 0.05, ..., 1 of the fraction
of samples with cIoU >= threshold. Written here: no library implements this protocol.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch.nn.functional as F

from avlab.eval._arrays import to_numpy, to_tensor

__all__ = ["localization_scores"]

Protocol = Literal["lvs", "ezvsl"]
_AUC_THRESHOLDS = np.arange(21) * 0.05  # 0.05 * i, as both references compute them


def localization_scores(heatmaps: Any, gt_maps: Any, *, protocol: Protocol = "lvs") -> dict[str, float]:
    """cIoU AP50, mean cIoU and AUC of localisation heatmaps against ground-truth maps.

    Args:
        heatmaps: Predicted heatmaps (any real scale; higher means more likely the source).
            Heatmaps smaller than the maps are upsampled bilinearly as the protocol does.
        gt_maps: Ground-truth maps in [0, 1]: Flickr consensus maps or VGG-SS binary maps.
            None may be all zero.
        protocol: ``"lvs"`` or ``"ezvsl"`` (see the module docstring for what differs).

    Returns:
        ``ciou_ap50`` (fraction of samples with cIoU >= 0.5), ``ciou_mean`` and ``auc``.

    Raises:
        ValueError: Shapes do not match, a map is outside [0, 1] or all zero.

    Shape:
        heatmaps: (N, h, w).
        gt_maps: (N, H, W).

    Example:
        >>> heatmaps = np.zeros((1, 4, 4))
        >>> heatmaps[0, :2] = [[4, 3, 2, 1], [8, 7, 6, 5]]  # the top half is hot
        >>> gt = np.zeros((1, 4, 4))
        >>> gt[0, :2] = 1.0
        >>> {k: round(v, 3) for k, v in localization_scores(heatmaps, gt, protocol="ezvsl").items()}
        {'ciou_ap50': 1.0, 'ciou_mean': 1.0, 'auc': 1.0}
        >>> {k: round(v, 3) for k, v in localization_scores(heatmaps, gt, protocol="lvs").items()}
        {'ciou_ap50': 1.0, 'ciou_mean': 0.875, 'auc': 0.875}
    """
    if protocol not in ("lvs", "ezvsl"):
        raise ValueError(f"protocol must be 'lvs' or 'ezvsl', not {protocol!r}")
    gt = to_numpy(gt_maps).astype(np.float64)
    maps = to_numpy(heatmaps)
    if gt.ndim != 3 or maps.ndim != 3 or len(gt) != len(maps) or len(gt) == 0:
        raise ValueError(f"expected heatmaps (N, h, w) and gt_maps (N, H, W), not {maps.shape} and {gt.shape}")
    if np.any(gt < 0) or np.any(gt > 1):
        raise ValueError("gt_maps must lie in [0, 1] (Flickr consensus or VGG-SS binary maps)")
    empty = np.flatnonzero(gt.reshape(len(gt), -1).max(axis=1) == 0)
    if empty.size:
        raise ValueError(f"gt_maps {empty.tolist()} are all zero: cIoU is undefined")
    if maps.shape[1:] != gt.shape[1:]:
        maps = _upsample(maps, gt.shape[1:], align_corners=protocol == "ezvsl")
    pred = np.stack([_binarize(heatmap, protocol) for heatmap in maps]).astype(np.float64)

    axes = (1, 2)
    ciou = np.sum(pred * gt, axis=axes) / (np.sum(gt, axis=axes) + np.sum(pred * (gt == 0), axis=axes))
    success = np.mean(ciou[None] >= _AUC_THRESHOLDS[:, None], axis=1)  # (21,)
    auc = np.sum(np.diff(_AUC_THRESHOLDS) * (success[1:] + success[:-1]) / 2)  # trapezoidal rule
    return {"ciou_ap50": float(np.mean(ciou >= 0.5)), "ciou_mean": float(np.mean(ciou)), "auc": float(auc)}


def _binarize(heatmap: np.ndarray, protocol: Protocol) -> np.ndarray:
    """The predicted region of one (H, W) heatmap, in the reference's own arithmetic."""
    if protocol == "ezvsl":
        pred = _normalize(heatmap)
        threshold = np.sort(pred.ravel())[pred.size // 2]
        return pred >= threshold
    # LVS: pred = 1 - normalize(-h); pred[pred > t] = 1; pred[pred < 1] = 0; region = pred >= 0.5.
    pred = 1 - _normalize(-heatmap)
    threshold = np.sort(pred.ravel())[pred.size // 2]
    return (pred > threshold) | (pred >= 1)


def _normalize(value: np.ndarray) -> np.ndarray:
    """Min-max normalisation as both references write it: a constant map is left as it is."""
    low, high = value.min(), value.max()
    return (value - low) / (high - low) if high != low else value


def _upsample(maps: np.ndarray, size: tuple[int, ...], *, align_corners: bool) -> np.ndarray:
    """Bilinear resize of (N, h, w) maps to (N, H, W), computed in their own float dtype."""
    tensor = to_tensor(maps)
    if not tensor.is_floating_point():
        tensor = tensor.double()
    resized = F.interpolate(tensor[:, None], size=tuple(size), mode="bilinear", align_corners=align_corners)
    return resized[:, 0].numpy()
