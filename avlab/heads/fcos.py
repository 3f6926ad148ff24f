"""The FCOS detector of AFCV (CondInst's detector): per-location classes, boxes, centerness.

On P3-P5 (equal channels, strides 8, 16, 32 by default) a shared classification tower and a
shared box tower (3x3 conv + GroupNorm + ReLU each) feed five per-location predictions:
class logits, four box distances (left, top, right, bottom, in pixels), a centerness logit, the
CondInst controller's dynamic-filter parameters, and the box-tower features themselves (for
other per-location heads). `fcos_targets` assigns locations to ground-truth boxes as FCOS does,
`fcos_losses` gives the three detection losses and `fcos_decode` the per-image detections.

Row order. Every per-location table here (targets, `flatten_per_location`) is image-major:
image 0's rows first; within an image the levels finest first; within a level the locations
row-major (y, then x), as ``x.flatten(2)`` orders a (B, C, h, w) map. A location is also named by
(image, level, index within the level), which `gather_locations` reads back from any
per-level maps.

Example:
    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> head = FCOSHead(8, num_classes=3, num_groups=4)
    >>> feats = [torch.randn(2, 8, 8, 8), torch.randn(2, 8, 4, 4), torch.randn(2, 8, 2, 2)]
    >>> out = head(feats)
    >>> [tuple(x.shape) for x in out.logits], tuple(out.params[0].shape)
    ([(2, 3, 8, 8), (2, 3, 4, 4), (2, 3, 2, 2)], (2, 169, 8, 8))
    >>> locations = fcos_locations([(8, 8), (4, 4), (2, 2)], (8, 16, 32))
    >>> targets = fcos_targets(locations, (8, 16, 32), [torch.tensor([[8.0, 8.0, 40.0, 40.0]]),
    ...                        torch.zeros(0, 4)], [torch.tensor([2]), torch.zeros(0, dtype=torch.long)])
    >>> int(targets.positive.sum()), sorted(fcos_losses(out, targets))
    (4, ['box', 'cls', 'ctr'])
    >>> dets = fcos_decode(out, locations, image_size=(64, 64), score_threshold=0.0, max_detections=5)
    >>> tuple(dets[0].boxes.shape), tuple(dets[0].params.shape)
    ((5, 4), (5, 169))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import (
    batched_nms,
    clip_boxes_to_image,
    generalized_box_iou_loss,
    sigmoid_focal_loss,
)

from avlab.heads._registry import register_head

__all__ = [
    "Detections",
    "FCOSHead",
    "FCOSOutput",
    "FCOSTargets",
    "centerness_targets",
    "fcos_decode",
    "fcos_locations",
    "fcos_losses",
    "fcos_targets",
    "flatten_per_location",
    "gather_locations",
]


def fcos_locations(
    sizes: Sequence[tuple[int, int]],
    strides: Sequence[int],
    *,
    device: torch.device | str | None = None,
) -> list[torch.Tensor]:
    """Image coordinates (x, y) of every location of every level.

    Location (i, j) of a level of stride s sits at pixel ``(s // 2 + s j, s // 2 + s i)``.

    Args:
        sizes: (h, w) of each level, finest first.
        strides: Stride of each level in pixels.
        device: Where to put the coordinates.

    Shape:
        output: one (h * w, 2) float tensor per level, rows in ``flatten(2)`` order, columns x, y.

    Example:
        >>> fcos_locations([(2, 3)], [8])[0].tolist()
        [[4.0, 4.0], [12.0, 4.0], [20.0, 4.0], [4.0, 12.0], [12.0, 12.0], [20.0, 12.0]]
    """
    if len(sizes) != len(strides):
        raise ValueError(f"{len(sizes)} level sizes but {len(strides)} strides")
    out = []
    for (h, w), s in zip(sizes, strides, strict=True):
        ys = torch.arange(h, dtype=torch.float32, device=device) * s + s // 2
        xs = torch.arange(w, dtype=torch.float32, device=device) * s + s // 2
        y, x = torch.meshgrid(ys, xs, indexing="ij")  # (h, w) each
        out.append(torch.stack([x.reshape(-1), y.reshape(-1)], dim=1))
    return out


def flatten_per_location(per_level: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-level maps as one per-location table, in the module's row order (image-major).

    Shape:
        per_level: (B, C, h_l, w_l) per level.
        output: (B * sum_l h_l w_l, C).

    Example:
        >>> maps = [torch.arange(4.0).view(1, 1, 2, 2), torch.tensor([[[[9.0]]]])]
        >>> flatten_per_location(maps).squeeze(1).tolist()
        [0.0, 1.0, 2.0, 3.0, 9.0]
    """
    flat = torch.cat([x.flatten(2) for x in per_level], dim=2)  # (B, C, N)
    return flat.transpose(1, 2).reshape(-1, flat.shape[1])


def gather_locations(
    per_level: Sequence[torch.Tensor],
    image_index: torch.Tensor,
    levels: torch.Tensor,
    indices: torch.Tensor,
) -> torch.Tensor:
    """Read per-level maps at locations named by (image, level, index within the level).

    What the detections of `fcos_decode` and the positives of `fcos_targets` carry, so any
    per-location head (controller, embedding, sounding score) is read at the same place.

    Shape:
        per_level: (B, C, h_l, w_l) per level.
        image_index, levels, indices: (P,) integer.
        output: (P, C).

    Example:
        >>> maps = [torch.arange(8.0).view(2, 1, 2, 2), torch.tensor([[[[9.0]]], [[[7.0]]]])]
        >>> gather_locations(maps, torch.tensor([1, 0, 1]), torch.tensor([0, 0, 1]), torch.tensor([3, 1, 0])).tolist()
        [[7.0], [1.0], [7.0]]
    """
    flat = torch.cat([x.flatten(2) for x in per_level], dim=2)  # (B, C, N)
    sizes = torch.tensor([x.shape[2] * x.shape[3] for x in per_level], device=flat.device)
    offsets = torch.cumsum(sizes, 0) - sizes  # (L,) first row of each level
    rows = offsets[levels] + indices  # (P,)
    return flat[image_index, :, rows]  # advanced indices around a slice: (P, C)


def _norm_layer(kind: str | None, channels: int, num_groups: int) -> nn.Module:
    """GroupNorm ("GN"), BatchNorm ("BN") or nothing (None / "none")."""
    if kind is None or kind == "none":
        return nn.Identity()
    if kind == "GN":
        if channels % num_groups:
            raise ValueError(f"num_groups={num_groups} does not divide {channels} channels")
        return nn.GroupNorm(num_groups, channels)
    if kind == "BN":
        return nn.BatchNorm2d(channels)
    raise ValueError(f"unknown norm {kind!r}; use 'GN', 'BN' or None")


class FCOSOutput(NamedTuple):
    """Per-level outputs of `FCOSHead`, finest level first.

    Attributes:
        logits: Class logits, (B, K, h, w) per level.
        boxes: Distances (left, top, right, bottom) in pixels, >= 0, (B, 4, h, w) per level.
        centerness: Centerness logits, (B, 1, h, w) per level.
        params: Controller output (dynamic mask filters), (B, num_params, h, w) per level.
        features: Box-tower features, (B, C, h, w) per level.
    """

    logits: list[torch.Tensor]
    boxes: list[torch.Tensor]
    centerness: list[torch.Tensor]
    params: list[torch.Tensor]
    features: list[torch.Tensor]


@register_head("fcos", family="detection")
class FCOSHead(nn.Module):
    """FCOS heads shared across levels, with the CondInst controller on the box tower.

    Towers of `num_convs` (3x3 conv, norm, ReLU); on the classification tower a 3x3 conv to
    `num_classes` logits (bias ``-log((1 - prior_prob) / prior_prob)``); on the box tower a 3x3
    conv to 4 distances, a 3x3 conv to the centerness logit and the controller, a 3x3 conv to
    `num_params`. Distances are ``act(scale_l * conv) * stride_l`` in pixels, with `act` ReLU
    (CondInst's normalised regression) or exp (FCOS), and `scale_l` learned per level (1 at
    first) unless ``learn_scales=False``.

    Args:
        in_channels: Channels of every input level (the FPN's width).
        num_classes: K, the number of object classes (sigmoid, no background class).
        num_convs: Convolutions per tower.
        num_params: Controller outputs per location: `dynamic_parameter_count` of the mask
            head (169 for CondInst's).
        prior_prob: Initial foreground probability of the class logits.
        norm: "GN" (FCOS), "BN" or None.
        num_groups: GroupNorm groups; must divide `in_channels`.
        strides: Stride of each input level; their count is the number of levels.
        box_activation: "relu" or "exp".
        learn_scales: Learn a scale per level before the activation.

    Shape:
        features: sequence of (B, in_channels, h_l, w_l), one per stride, finest first.
        output: `FCOSOutput` of per-level lists.

    Example:
        >>> head = FCOSHead(8, 2, num_convs=1, num_groups=2, strides=(8, 16))
        >>> out = head([torch.randn(1, 8, 4, 4), torch.randn(1, 8, 2, 2)])
        >>> [tuple(x.shape) for x in out.boxes], bool((out.boxes[1] >= 0).all())
        ([(1, 4, 4, 4), (1, 4, 2, 2)], True)
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        num_convs: int = 4,
        num_params: int = 169,
        prior_prob: float = 0.01,
        norm: str | None = "GN",
        num_groups: int = 32,
        strides: Sequence[int] = (8, 16, 32),
        box_activation: str = "relu",
        learn_scales: bool = True,
    ) -> None:
        super().__init__()
        if box_activation not in ("relu", "exp"):
            raise ValueError(f"box_activation must be 'relu' or 'exp', got {box_activation!r}")
        self.in_channels = int(in_channels)
        self.num_classes = int(num_classes)
        self.num_params = int(num_params)
        self.strides = tuple(int(s) for s in strides)
        self.box_activation = box_activation

        def tower() -> nn.Sequential:
            layers: list[nn.Module] = []
            for _ in range(num_convs):
                layers += [
                    nn.Conv2d(in_channels, in_channels, 3, padding=1),
                    _norm_layer(norm, in_channels, num_groups),
                    nn.ReLU(),
                ]
            return nn.Sequential(*layers)

        self.cls_tower = tower()
        self.box_tower = tower()
        self.cls_logits = nn.Conv2d(in_channels, num_classes, 3, padding=1)
        self.box_pred = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.ctr_pred = nn.Conv2d(in_channels, 1, 3, padding=1)
        self.controller = nn.Conv2d(in_channels, num_params, 3, padding=1)
        scales = torch.ones(len(self.strides))  # (L,)
        if learn_scales:
            self.scales = nn.Parameter(scales)
        else:
            self.register_buffer("scales", scales)
        prior_bias = -math.log((1 - prior_prob) / prior_prob)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, std=0.01)
                if module.bias is not None:
                    nn.init.constant_(module.bias, prior_bias if module is self.cls_logits else 0.0)

    def forward(self, features: Sequence[torch.Tensor]) -> FCOSOutput:
        """Per-level predictions; shapes in the class docstring."""
        if len(features) != len(self.strides):
            raise ValueError(f"expected {len(self.strides)} feature levels, got {len(features)}")
        out = FCOSOutput([], [], [], [], [])
        for level, (x, stride) in enumerate(zip(features, self.strides, strict=True)):
            if x.ndim != 4 or x.shape[1] != self.in_channels:
                raise ValueError(
                    f"level {level}: expected (B, {self.in_channels}, h, w), got {tuple(x.shape)}"
                )
            cls_feat = self.cls_tower(x)  # (B, C, h, w)
            box_feat = self.box_tower(x)  # (B, C, h, w)
            reg = self.scales[level] * self.box_pred(box_feat)  # (B, 4, h, w)
            reg = F.relu(reg) if self.box_activation == "relu" else torch.exp(reg)
            out.logits.append(self.cls_logits(cls_feat))
            out.boxes.append(reg * stride)
            out.centerness.append(self.ctr_pred(box_feat))
            out.params.append(self.controller(box_feat))
            out.features.append(box_feat)
        return out

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, num_classes={self.num_classes}, "
            f"num_params={self.num_params}, strides={self.strides}"
        )


class FCOSTargets(NamedTuple):
    """FCOS assignment of every location of every image, in the module's row order.

    Attributes:
        labels: Class in [0, K) of a positive location, -1 for background; (M,) long.
        ltrb: Distances (left, top, right, bottom) in pixels from the location to its box's
            sides; zeros for background; (M, 4).
        gt_index: Index of the matched box within its image's boxes, -1 for background; (M,).
        image_index: Image of the row; (M,) long.
        levels: Pyramid level of the row (0 = finest); (M,) long.
        indices: Flat index of the location within its level (``y * w + x``); (M,) long.
        locations: (x, y) image coordinates of the location; (M, 2).
    """

    labels: torch.Tensor
    ltrb: torch.Tensor
    gt_index: torch.Tensor
    image_index: torch.Tensor
    levels: torch.Tensor
    indices: torch.Tensor
    locations: torch.Tensor

    @property
    def positive(self) -> torch.Tensor:
        """(M,) bool: the rows assigned to a box."""
        return self.labels >= 0


def fcos_targets(
    locations: Sequence[torch.Tensor],
    strides: Sequence[int],
    gt_boxes: Sequence[torch.Tensor],
    gt_labels: Sequence[torch.Tensor],
    *,
    size_ranges: Sequence[tuple[float, float]] = ((0, 64), (64, 128), (128, math.inf)),
    center_sampling_radius: float = 1.5,
) -> FCOSTargets:
    """Assign each location of each image to at most one ground-truth box (FCOS).

    A location is a candidate for a box when (1) it lies strictly inside the box, and, with
    centre sampling, strictly inside the box's centre region ``centre +- radius * stride``
    (clipped to the box); (2) its largest distance ``m = max(l, t, r, b)`` to the box's sides
    lies in its level's range, ``lo < m <= hi``. Among its candidate boxes the smallest area
    wins (the first such box on a tie).

    Args:
        locations: `fcos_locations` of the levels, (N_l, 2) each.
        strides: Stride of each level.
        gt_boxes: Per image, boxes (x0, y0, x1, y1) in pixels.
        gt_labels: Per image, class of each box, in [0, K).
        size_ranges: (lo, hi) of each level, in pixels (FCOS's for P3-P5 by default; pass
            smaller ones for small images).
        center_sampling_radius: Centre-region radius in strides; 0 turns centre sampling off.

    Shape:
        gt_boxes: (n_i, 4) per image.
        gt_labels: (n_i,) per image.
        output: `FCOSTargets` of M = B * sum_l N_l rows, image-major, then level, then index.

    Example:
        >>> locs = fcos_locations([(2, 2), (1, 1)], (8, 16))
        >>> t = fcos_targets(locs, (8, 16), [torch.tensor([[0.0, 0.0, 10.0, 10.0]])], [torch.tensor([1])],
        ...                  size_ranges=((0, 8), (8, 64)))
        >>> t.labels.tolist(), t.levels.tolist(), t.ltrb[0].tolist()
        ([1, -1, -1, -1, -1], [0, 0, 0, 0, 1], [4.0, 4.0, 6.0, 6.0])
    """
    if not (len(locations) == len(strides) == len(size_ranges)):
        raise ValueError(
            f"{len(locations)} location levels, {len(strides)} strides and "
            f"{len(size_ranges)} size ranges: give one of each per level"
        )
    if len(gt_boxes) != len(gt_labels):
        raise ValueError(f"{len(gt_boxes)} images of boxes but {len(gt_labels)} of labels")
    locs = torch.cat(list(locations))  # (N, 2)
    device = locs.device
    levels = torch.cat(
        [torch.full((len(x),), i, dtype=torch.long, device=device) for i, x in enumerate(locations)]
    )  # (N,)
    indices = torch.cat([torch.arange(len(x), device=device) for x in locations])  # (N,)
    stride = torch.tensor([float(s) for s in strides], device=device)[levels]  # (N,)
    ranges = torch.tensor([[float(lo), float(hi)] for lo, hi in size_ranges], device=device)
    lo, hi = ranges[levels].unbind(1)  # (N,) each
    x, y = locs[:, 0:1], locs[:, 1:2]  # (N, 1)

    labels, ltrbs, gt_index = [], [], []
    for boxes, classes in zip(gt_boxes, gt_labels, strict=True):
        if boxes.ndim != 2 or boxes.shape[1] != 4 or classes.shape != boxes.shape[:1]:
            raise ValueError(
                f"expected boxes (n, 4) and labels (n,), got {tuple(boxes.shape)} and "
                f"{tuple(classes.shape)}"
            )
        if len(boxes) == 0:
            labels.append(torch.full_like(levels, -1))
            gt_index.append(torch.full_like(levels, -1))
            ltrbs.append(locs.new_zeros(len(locs), 4))
            continue
        boxes = boxes.to(device=device, dtype=locs.dtype)
        x0, y0, x1, y1 = boxes.unbind(1)  # (n,) each
        ltrb = torch.stack([x - x0, y - y0, x1 - x, y1 - y], dim=2)  # (N, n, 4)
        if center_sampling_radius > 0:
            r = stride[:, None] * center_sampling_radius  # (N, 1)
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            inner = torch.stack(
                [
                    x - torch.maximum(cx - r, x0),
                    y - torch.maximum(cy - r, y0),
                    torch.minimum(cx + r, x1) - x,
                    torch.minimum(cy + r, y1) - y,
                ],
                dim=2,
            )  # (N, n, 4)
            inside = inner.amin(2) > 0
        else:
            inside = ltrb.amin(2) > 0  # (N, n)
        reach = ltrb.amax(2)  # (N, n)
        in_range = (reach > lo[:, None]) & (reach <= hi[:, None])
        area = (x1 - x0) * (y1 - y0)  # (n,)
        cost = torch.where(inside & in_range, area[None], torch.full_like(reach, math.inf))
        best_cost, best = cost.min(1)  # (N,) each; the first minimum on ties
        pos = torch.isfinite(best_cost)  # (N,)
        classes = classes.to(device=device, dtype=torch.long)
        labels.append(torch.where(pos, classes[best], -1))
        gt_index.append(torch.where(pos, best, -1))
        picked = ltrb[torch.arange(len(locs), device=device), best]  # (N, 4)
        ltrbs.append(torch.where(pos[:, None], picked, 0.0))

    num_images = len(gt_boxes)
    return FCOSTargets(
        labels=torch.cat(labels) if labels else levels.new_zeros(0),
        ltrb=torch.cat(ltrbs) if ltrbs else locs.new_zeros(0, 4),
        gt_index=torch.cat(gt_index) if gt_index else levels.new_zeros(0),
        image_index=torch.arange(num_images, device=device).repeat_interleave(len(locs)),
        levels=levels.repeat(num_images),
        indices=indices.repeat(num_images),
        locations=locs.repeat(num_images, 1),
    )


def centerness_targets(ltrb: torch.Tensor) -> torch.Tensor:
    """FCOS centerness ``sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b))``.

    Shape:
        ltrb: (M, 4) positive distances.
        output: (M,) in [0, 1].

    Example:
        >>> centerness_targets(torch.tensor([[2.0, 3.0, 8.0, 3.0]])).tolist()
        [0.5]
    """
    lr, tb = ltrb[:, 0::2], ltrb[:, 1::2]  # (M, 2) each
    ratio = (lr.amin(1) / lr.amax(1)) * (tb.amin(1) / tb.amax(1))
    return torch.sqrt(ratio)


def _iou_from_ltrb(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of two boxes around the same point, each given by its distances; (M, 4) -> (M,)."""
    inter_w = torch.minimum(pred[:, 0], target[:, 0]) + torch.minimum(pred[:, 2], target[:, 2])
    inter_h = torch.minimum(pred[:, 1], target[:, 1]) + torch.minimum(pred[:, 3], target[:, 3])
    inter = inter_w * inter_h
    area_p = (pred[:, 0] + pred[:, 2]) * (pred[:, 1] + pred[:, 3])
    area_t = (target[:, 0] + target[:, 2]) * (target[:, 1] + target[:, 3])
    return inter / (area_p + area_t - inter).clamp_min(1e-7)


def fcos_losses(
    output: FCOSOutput,
    targets: FCOSTargets,
    *,
    focal_alpha: float = 0.25,
    focal_gamma: float = 2.0,
    box_loss: str = "giou",
) -> dict[str, torch.Tensor]:
    """The three FCOS losses.

    - "cls": sigmoid focal loss (`torchvision.ops.sigmoid_focal_loss`) over every location and
      class, summed, divided by max(1, number of positives).
    - "box": at positives, GIoU loss (``box_loss="giou"``, torchvision) or ``1 - IoU``
      (``"iou"``) between predicted and target boxes, weighted by the centerness target:
      ``sum(w * loss) / sum(w)``.
    - "ctr": binary cross-entropy with logits of the centerness against its target, mean over
      positives.

    With no positive, "box" and "ctr" are zeros that keep the graph.

    Args:
        output: `FCOSHead` output.
        targets: `fcos_targets` of the same images and levels.
        focal_alpha: Focal-loss alpha.
        focal_gamma: Focal-loss gamma.
        box_loss: "giou" or "iou".

    Returns:
        {"cls", "box", "ctr"}: scalar tensors.

    Example:
        >>> out = FCOSOutput([torch.zeros(1, 2, 1, 1)], [torch.full((1, 4, 1, 1), 2.0)],
        ...                  [torch.zeros(1, 1, 1, 1)], [torch.zeros(1, 1, 1, 1)], [])
        >>> t = FCOSTargets(torch.tensor([0]), torch.tensor([[2.0, 2.0, 2.0, 2.0]]), torch.tensor([0]),
        ...                 torch.tensor([0]), torch.tensor([0]), torch.tensor([0]), torch.zeros(1, 2))
        >>> {k: round(float(v), 4) for k, v in fcos_losses(out, t).items()}
        {'cls': 0.1733, 'box': 0.0, 'ctr': 0.6931}
    """
    if box_loss not in ("giou", "iou"):
        raise ValueError(f"box_loss must be 'giou' or 'iou', got {box_loss!r}")
    logits = flatten_per_location(output.logits)  # (M, K)
    if logits.shape[0] != targets.labels.shape[0]:
        raise ValueError(
            f"outputs have {logits.shape[0]} locations, targets {targets.labels.shape[0]}: "
            "build the targets from the same images and level sizes"
        )
    pos = targets.positive  # (M,)
    num_pos = max(int(pos.sum()), 1)
    onehot = torch.zeros_like(logits)
    onehot[pos, targets.labels[pos]] = 1.0
    cls = (
        sigmoid_focal_loss(logits, onehot, alpha=focal_alpha, gamma=focal_gamma, reduction="sum")
        / num_pos
    )

    pred = flatten_per_location(output.boxes)[pos]  # (P, 4)
    ctr_logits = flatten_per_location(output.centerness)[pos, 0]  # (P,)
    if pred.shape[0] == 0:
        zero = pred.sum() + ctr_logits.sum()
        return {"cls": cls, "box": zero, "ctr": zero}
    target = targets.ltrb[pos]  # (P, 4)
    weight = centerness_targets(target)  # (P,)
    if box_loss == "giou":
        sign = pred.new_tensor([-1.0, -1.0, 1.0, 1.0])  # boxes around the location, at 0
        per_box = generalized_box_iou_loss(pred * sign, target * sign, reduction="none")
    else:
        per_box = 1.0 - _iou_from_ltrb(pred, target)
    box = (per_box * weight).sum() / weight.sum().clamp_min(1e-6)
    ctr = F.binary_cross_entropy_with_logits(ctr_logits, weight, reduction="mean")
    return {"cls": cls, "box": box, "ctr": ctr}


class Detections(NamedTuple):
    """One image's detections, best first.

    Attributes:
        boxes: (D, 4) xyxy in pixels, clipped to the image.
        scores: (D,) ``sqrt(sigmoid(cls) * sigmoid(ctr))``.
        labels: (D,) class in [0, K).
        levels: (D,) pyramid level of the detecting location.
        indices: (D,) flat index of the location within its level.
        locations: (D, 2) (x, y) of the location in pixels.
        params: (D, num_params) controller output at the location (the dynamic mask filters).
    """

    boxes: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor
    levels: torch.Tensor
    indices: torch.Tensor
    locations: torch.Tensor
    params: torch.Tensor


def fcos_decode(
    output: FCOSOutput,
    locations: Sequence[torch.Tensor],
    *,
    image_size: tuple[int, int],
    score_threshold: float = 0.05,
    pre_nms_top_k: int = 1000,
    nms_threshold: float = 0.6,
    max_detections: int = 100,
) -> list[Detections]:
    """Detections per image (inference; call under ``torch.no_grad()``).

    Candidates are the (location, class) pairs with ``sigmoid(cls) > score_threshold`` (FCOS
    thresholds the class probability alone); each is scored ``sqrt(sigmoid(cls) *
    sigmoid(ctr))`` (CondInst's score); the `pre_nms_top_k` best per level are kept, boxes are
    ``location -+ distances`` clipped to the image, class-wise NMS
    (`torchvision.ops.batched_nms`) at `nms_threshold` runs, and the `max_detections` best
    remain. A location may give detections of several classes, which share its parameters.

    Args:
        output: `FCOSHead` output.
        locations: `fcos_locations` of the same levels.
        image_size: (H, W) of the input image, for clipping.
        score_threshold: Class-probability threshold for candidates.
        pre_nms_top_k: Candidates kept per level before NMS.
        nms_threshold: IoU above which NMS suppresses a box of the same class.
        max_detections: Detections kept per image.

    Returns:
        One `Detections` per image.

    Example:
        >>> out = FCOSOutput([torch.tensor([[[[4.0, -9.0]]]])], [torch.full((1, 4, 1, 2), 3.0)],
        ...                  [torch.full((1, 1, 1, 2), 4.0)], [torch.zeros(1, 2, 1, 2)], [])
        >>> det = fcos_decode(out, fcos_locations([(1, 2)], [8]), image_size=(8, 16))[0]
        >>> det.boxes.tolist(), det.indices.tolist(), round(float(det.scores[0]), 4)
        ([[1.0, 1.0, 7.0, 7.0]], [0], 0.982)
    """
    batch = output.logits[0].shape[0]
    results = []
    for b in range(batch):
        boxes, scores, labels, levels, indices, locs, params = [], [], [], [], [], [], []
        for level, loc in enumerate(locations):
            cls = torch.sigmoid(output.logits[level][b].flatten(1).T)  # (N_l, K)
            ctr = torch.sigmoid(output.centerness[level][b].flatten(1).T)  # (N_l, 1)
            where, label = torch.nonzero(cls > score_threshold, as_tuple=True)  # (n,) each
            score = torch.sqrt(cls[where, label] * ctr[where, 0])
            if score.numel() > pre_nms_top_k:
                score, top = score.topk(pre_nms_top_k)
                where, label = where[top], label[top]
            ltrb = output.boxes[level][b].flatten(1).T[where]  # (n, 4)
            xy = loc[where]  # (n, 2)
            boxes.append(torch.cat([xy - ltrb[:, :2], xy + ltrb[:, 2:]], dim=1))
            scores.append(score)
            labels.append(label)
            levels.append(torch.full_like(where, level))
            indices.append(where)
            locs.append(xy)
            params.append(output.params[level][b].flatten(1).T[where])
        all_boxes = clip_boxes_to_image(torch.cat(boxes), image_size)
        all_scores, all_labels = torch.cat(scores), torch.cat(labels)
        keep = batched_nms(all_boxes, all_scores, all_labels, nms_threshold)[:max_detections]
        results.append(
            Detections(
                boxes=all_boxes[keep],
                scores=all_scores[keep],
                labels=all_labels[keep],
                levels=torch.cat(levels)[keep],
                indices=torch.cat(indices)[keep],
                locations=torch.cat(locs)[keep],
                params=torch.cat(params)[keep],
            )
        )
    return results
