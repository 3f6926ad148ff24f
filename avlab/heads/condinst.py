"""CondInst's masks for AFCV: mask branch, dynamic mask head, Dice and crossover losses.

CondInst (Tian et al. 2020) predicts, at every detecting location, the parameters of a tiny
fully convolutional network (three 1x1 convolutions, 8 channels) that runs on a shared
8-channel mask feature map plus two channels of coordinates relative to the location, giving
that instance's mask. CrossVIS (Yang et al. 2021) adds crossover learning: the filters of an
instance in frame t must also segment the same object in frame t + d when they run on that
frame's mask features at the object's location there.

- `MaskBranch`: P3-P5 -> mask features (B, 8, h, w) at stride 8.
- `DynamicMaskHead`: mask features + per-instance parameters -> mask logits at stride 4, all
  instances at once as one grouped convolution. It has no weights of its own.
- `mask_losses` (Dice on the positives of `fcos_targets`) and `crossover_loss` (CrossVIS) are
  the losses a training task calls.

Example:
    >>> import torch
    >>> from avlab.heads.fcos import FCOSHead, fcos_locations, fcos_targets
    >>> torch.manual_seed(0) and None
    >>> feats = [torch.randn(2, 8, 8, 8), torch.randn(2, 8, 4, 4), torch.randn(2, 8, 2, 2)]
    >>> fcos, branch, dynamic = FCOSHead(8, 2, num_groups=4), MaskBranch(8, channels=8), DynamicMaskHead()
    >>> out, mask_features = fcos(feats), branch(feats)
    >>> tuple(mask_features.shape)
    (2, 8, 8, 8)
    >>> masks = [torch.zeros(1, 64, 64, dtype=torch.bool), torch.zeros(1, 64, 64, dtype=torch.bool)]
    >>> masks[0][0, 10:40, 8:30] = masks[1][0, 30:60, 20:50] = True
    >>> boxes = [torch.tensor([[8.0, 10.0, 30.0, 40.0]]), torch.tensor([[20.0, 30.0, 50.0, 60.0]])]
    >>> locations = fcos_locations([f.shape[-2:] for f in feats], (8, 16, 32))
    >>> targets = fcos_targets(locations, (8, 16, 32), boxes, [torch.tensor([0]), torch.tensor([1])])
    >>> loss = mask_losses(dynamic, mask_features, out.params, targets, masks)["mask"]
    >>> 0.0 < loss.item() < 1.0
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from avlab.heads._registry import register_head
from avlab.heads.fcos import FCOSTargets, _norm_layer, fcos_locations, gather_locations

__all__ = [
    "CrossoverFrame",
    "DynamicMaskHead",
    "MaskBranch",
    "aligned_bilinear",
    "crossover_loss",
    "dice_loss",
    "dynamic_parameter_count",
    "mask_losses",
    "relative_coordinates",
    "sample_masks",
    "sample_positives",
    "split_dynamic_parameters",
]


def aligned_bilinear(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Upsample by an integer factor keeping the pixel grids aligned (CondInst).

    The map is padded by one replicated pixel at the right and bottom, resized bilinearly with
    ``align_corners=True`` to ``factor * h + 1`` by ``factor * w + 1``, padded by ``factor // 2``
    replicated pixels at the top and left, and cropped to ``factor * h`` by ``factor * w``.
    With factor 2, output pixel ``2 i + 1`` is input pixel ``i`` and output pixel ``2 i`` the
    mean of input pixels ``i - 1`` and ``i`` (the first repeats input pixel 0).

    Args:
        x: Maps to upsample.
        factor: Integer factor >= 1.

    Shape:
        x: (B, C, h, w).
        output: (B, C, factor * h, factor * w).

    Example:
        >>> aligned_bilinear(torch.tensor([[[[0.0, 2.0]]]]), 2).tolist()
        [[[[0.0, 0.0, 1.0, 2.0], [0.0, 0.0, 1.0, 2.0]]]]
    """
    if x.ndim != 4:
        raise ValueError(f"expected (B, C, h, w), got {tuple(x.shape)}")
    if factor < 1 or int(factor) != factor:
        raise ValueError(f"factor must be an integer >= 1, got {factor}")
    if factor == 1:
        return x
    h, w = x.shape[-2:]
    x = F.pad(x, (0, 1, 0, 1), mode="replicate")  # (B, C, h + 1, w + 1)
    x = F.interpolate(x, size=(factor * h + 1, factor * w + 1), mode="bilinear", align_corners=True)
    x = F.pad(x, (factor // 2, 0, factor // 2, 0), mode="replicate")
    return x[:, :, : factor * h, : factor * w]


def _fit(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Crop (B, C, h, w) to `size` at the bottom/right, or pad it there by replication."""
    h, w = size
    x = x[:, :, :h, :w]
    pad_h, pad_w = h - x.shape[2], w - x.shape[3]
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    return x


@register_head("condinst_mask_branch")
class MaskBranch(nn.Module):
    """CondInst's mask branch: P3-P5 -> `channels` each, summed at P3, conv tower, 1x1 out.

    Each level goes through a 3x3 conv to `channels` (norm, ReLU); the coarser ones are
    upsampled to P3 with `aligned_bilinear` by their stride ratio (then cropped or padded by
    replication to P3's size, for odd image sizes) and summed; `num_convs` 3x3 convs (norm,
    ReLU) and a 1x1 conv to `out_channels` follow.

    Args:
        in_channels: Channels of every input level.
        channels: Width of the branch (CondInst's 128).
        out_channels: Mask-feature channels (CondInst's 8).
        num_convs: 3x3 convs after the sum.
        norm: "BN" (CondInst), "GN" or None.
        num_groups: GroupNorm groups, for ``norm="GN"``.
        strides: Stride of each input level, finest first.

    Shape:
        features: sequence of (B, in_channels, h_l, w_l), finest first.
        output: (B, out_channels, h_0, w_0), at the finest level's stride.

    Example:
        >>> branch = MaskBranch(4, channels=6, num_convs=1)
        >>> tuple(branch([torch.randn(1, 4, 13, 10), torch.randn(1, 4, 7, 5), torch.randn(1, 4, 4, 3)]).shape)
        (1, 8, 13, 10)
    """

    def __init__(
        self,
        in_channels: int,
        *,
        channels: int = 128,
        out_channels: int = 8,
        num_convs: int = 4,
        norm: str | None = "BN",
        num_groups: int = 32,
        strides: Sequence[int] = (8, 16, 32),
    ) -> None:
        super().__init__()
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.strides = tuple(int(s) for s in strides)
        if any(s % self.strides[0] for s in self.strides):
            raise ValueError(f"strides {self.strides} must be multiples of the first")

        def block(c_in: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(c_in, channels, 3, padding=1),
                _norm_layer(norm, channels, num_groups),
                nn.ReLU(),
            )

        self.refine = nn.ModuleList(block(in_channels) for _ in self.strides)
        self.tower = nn.Sequential(*(block(channels) for _ in range(num_convs)))
        self.out = nn.Conv2d(channels, out_channels, 1)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Mask features; shapes in the class docstring."""
        if len(features) != len(self.strides):
            raise ValueError(f"expected {len(self.strides)} feature levels, got {len(features)}")
        size = (features[0].shape[2], features[0].shape[3])
        x = self.refine[0](features[0])  # (B, channels, h_0, w_0)
        for refine, feat, stride in zip(
            self.refine[1:], features[1:], self.strides[1:], strict=True
        ):
            y = aligned_bilinear(refine(feat), stride // self.strides[0])
            x = x + _fit(y, size)
        out: torch.Tensor = self.out(self.tower(x))
        return out

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, strides={self.strides}"


def _layer_channels(
    in_channels: int, hidden: int, num_layers: int, rel_coords: bool
) -> list[tuple[int, int]]:
    """(in, out) channels of each dynamic 1x1 conv."""
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    sizes = [in_channels + (2 if rel_coords else 0)] + [hidden] * (num_layers - 1) + [1]
    return list(zip(sizes[:-1], sizes[1:], strict=True))


def dynamic_parameter_count(
    in_channels: int = 8, hidden: int = 8, num_layers: int = 3, rel_coords: bool = True
) -> int:
    """Parameters of one instance's dynamic mask head (the controller's output size).

    Args:
        in_channels: Mask-feature channels.
        hidden: Channels of the hidden dynamic layers.
        num_layers: Dynamic 1x1 convs; the last has one output channel.
        rel_coords: Whether two relative-coordinate channels join the input.

    Example:
        >>> dynamic_parameter_count()  # (10 * 8 + 8) + (8 * 8 + 8) + (8 * 1 + 1)
        169
    """
    layers = _layer_channels(in_channels, hidden, num_layers, rel_coords)
    return sum(c_in * c_out + c_out for c_in, c_out in layers)


def split_dynamic_parameters(
    params: torch.Tensor,
    *,
    in_channels: int = 8,
    hidden: int = 8,
    num_layers: int = 3,
    rel_coords: bool = True,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Cut each instance's parameter vector into grouped 1x1-conv weights and biases.

    Layout of one instance's vector: the weights of every layer first (layer 1 to L, each
    (out, in) row-major), then the biases of every layer (layer 1 to L).

    Args:
        params: One parameter vector per instance.
        in_channels, hidden, num_layers, rel_coords: As in `dynamic_parameter_count`.

    Shape:
        params: (P, dynamic_parameter_count(...)).
        output: weights[l] (P * out_l, in_l, 1, 1), biases[l] (P * out_l,): instance p's
            filters are rows p * out_l to (p + 1) * out_l, as ``F.conv2d(..., groups=P)`` reads.

    Example:
        >>> weights, biases = split_dynamic_parameters(torch.zeros(5, 169))
        >>> [tuple(w.shape) for w in weights], [tuple(b.shape) for b in biases]
        ([(40, 10, 1, 1), (40, 8, 1, 1), (5, 8, 1, 1)], [(40,), (40,), (5,)])
    """
    layers = _layer_channels(in_channels, hidden, num_layers, rel_coords)
    expected = sum(c_in * c_out + c_out for c_in, c_out in layers)
    if params.ndim != 2 or params.shape[1] != expected:
        raise ValueError(f"expected params (P, {expected}), got {tuple(params.shape)}")
    num = params.shape[0]
    sizes = [c_in * c_out for c_in, c_out in layers] + [c_out for _, c_out in layers]
    chunks = torch.split(params, sizes, dim=1)
    weights = [
        w.reshape(num * c_out, c_in, 1, 1)
        for w, (c_in, c_out) in zip(chunks[: len(layers)], layers, strict=True)
    ]
    biases = [
        b.reshape(num * c_out) for b, (_, c_out) in zip(chunks[len(layers) :], layers, strict=True)
    ]
    return weights, biases


def relative_coordinates(
    locations: torch.Tensor, mask_size: tuple[int, int], stride: int, soi: torch.Tensor
) -> torch.Tensor:
    """Coordinates of each mask-feature pixel relative to each instance's location.

    ``(instance location - pixel location) / size of interest``, channel 0 for x and 1 for
    y, with pixel (i, j) of a stride-s map at ``(s // 2 + s j, s // 2 + s i)``.

    Args:
        locations: (x, y) of each instance's location in pixels.
        mask_size: (h, w) of the mask features.
        stride: Their stride in pixels.
        soi: Size of interest of each instance (of its location's level: 64, 128, 256, ...).

    Shape:
        locations: (P, 2).
        soi: (P,).
        output: (P, 2, h, w).

    Example:
        >>> relative_coordinates(torch.tensor([[12.0, 4.0]]), (2, 3), 8, torch.tensor([64.0])).tolist()
        [[[[0.125, 0.0, -0.125], [0.125, 0.0, -0.125]], [[0.0, 0.0, 0.0], [-0.125, -0.125, -0.125]]]]
    """
    h, w = mask_size
    pixels = fcos_locations([(h, w)], [stride], device=locations.device)[0]  # (h * w, 2)
    rel = locations[:, :, None] - pixels.T.to(locations.dtype)[None]  # (P, 2, h * w)
    rel = rel / soi.to(rel.dtype)[:, None, None]
    return rel.reshape(-1, 2, h, w)


@register_head("condinst_dynamic_mask")
class DynamicMaskHead(nn.Module):
    """CondInst's dynamic mask head: per-instance 1x1 convs on shared mask features.

    For each instance p: its image's mask features, with the relative coordinates of its
    location (normalised by the size of interest of its level), go through `num_layers` 1x1
    convolutions whose weights and biases are the instance's parameters (ReLU between
    layers); the one-channel logits are upsampled by `upsample` with `aligned_bilinear`. All
    instances run at once as one grouped convolution (groups = P). The module has no weights:
    the parameters come from the controller of `FCOSHead`.

    Args:
        mask_channels: Channels of the mask features.
        hidden: Channels of the hidden dynamic layers.
        num_layers: Dynamic 1x1 convs.
        rel_coords: Add the two relative-coordinate channels.
        sizes_of_interest: Size of interest of each pyramid level (normalises the coordinates).
        mask_stride: Stride of the mask features in pixels.
        upsample: Upsampling factor of the logits (output stride ``mask_stride / upsample``).

    Shape:
        mask_features: (B, mask_channels, h, w).
        params: (P, num_params), see `split_dynamic_parameters`.
        locations: (P, 2) (x, y) in pixels of each instance's location.
        image_index: (P,) image of each instance.
        levels: (P,) pyramid level of each instance's location.
        output: (P, upsample * h, upsample * w) mask logits.

    Example:
        >>> head = DynamicMaskHead()
        >>> head.num_params, head.output_stride
        (169, 4)
        >>> logits = head(torch.randn(2, 8, 5, 6), torch.randn(3, 169), torch.tensor([[4.0, 4.0], [20.0, 12.0], [8.0, 8.0]]),
        ...               torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]))
        >>> tuple(logits.shape)
        (3, 10, 12)
    """

    def __init__(
        self,
        *,
        mask_channels: int = 8,
        hidden: int = 8,
        num_layers: int = 3,
        rel_coords: bool = True,
        sizes_of_interest: Sequence[float] = (64, 128, 256, 512, 1024),
        mask_stride: int = 8,
        upsample: int = 2,
    ) -> None:
        super().__init__()
        if mask_stride % upsample:
            raise ValueError(f"upsample={upsample} must divide mask_stride={mask_stride}")
        self.mask_channels = int(mask_channels)
        self.hidden = int(hidden)
        self.num_layers = int(num_layers)
        self.rel_coords = bool(rel_coords)
        self.sizes_of_interest = tuple(float(s) for s in sizes_of_interest)
        self.mask_stride = int(mask_stride)
        self.upsample = int(upsample)
        self.num_params = dynamic_parameter_count(mask_channels, hidden, num_layers, rel_coords)

    @property
    def output_stride(self) -> int:
        """Stride of the output logits in pixels (4 by default)."""
        return self.mask_stride // self.upsample

    def forward(
        self,
        mask_features: torch.Tensor,
        params: torch.Tensor,
        locations: torch.Tensor,
        image_index: torch.Tensor,
        levels: torch.Tensor,
    ) -> torch.Tensor:
        """Mask logits per instance; shapes in the class docstring."""
        if mask_features.ndim != 4 or mask_features.shape[1] != self.mask_channels:
            raise ValueError(
                f"expected mask_features (B, {self.mask_channels}, h, w), "
                f"got {tuple(mask_features.shape)}"
            )
        h, w = mask_features.shape[-2:]
        num = params.shape[0]
        if num == 0:
            return params.new_zeros(0, self.upsample * h, self.upsample * w)
        x = mask_features[image_index]  # (P, C, h, w)
        if self.rel_coords:
            soi = torch.tensor(self.sizes_of_interest, device=x.device, dtype=x.dtype)[levels]
            rel = relative_coordinates(locations, (h, w), self.mask_stride, soi)
            x = torch.cat([x, rel.to(x.dtype)], dim=1)  # (P, C + 2, h, w)
        weights, biases = split_dynamic_parameters(
            params,
            in_channels=self.mask_channels,
            hidden=self.hidden,
            num_layers=self.num_layers,
            rel_coords=self.rel_coords,
        )
        x = x.reshape(1, -1, h, w)  # (1, P * C_in, h, w): one group per instance
        for i, (weight, bias) in enumerate(zip(weights, biases, strict=True)):
            x = F.conv2d(x, weight, bias, groups=num)  # (1, P * out_l, h, w)
            if i < len(weights) - 1:
                x = F.relu(x)
        logits = aligned_bilinear(x.reshape(num, 1, h, w), self.upsample)
        return logits[:, 0]  # (P, upsample * h, upsample * w)

    def extra_repr(self) -> str:
        return (
            f"mask_channels={self.mask_channels}, hidden={self.hidden}, "
            f"num_layers={self.num_layers}, rel_coords={self.rel_coords}, "
            f"num_params={self.num_params}"
        )


def sample_masks(
    masks: torch.Tensor, stride: int = 4, *, size: tuple[int, int] | None = None
) -> torch.Tensor:
    """Ground-truth masks at a stride: pixel (i, j) is mask pixel (s // 2 + s i, s // 2 + s j).

    Args:
        masks: Full-resolution masks (bool or {0, 1}).
        stride: Output stride s (4 for CondInst's logits: offset 2).
        size: (h, w) of the output, to match the logits: rows and columns past the mask's
            edge are 0 (background), extra ones are cropped. By default every sample that
            falls inside the mask.

    Shape:
        masks: (n, H, W).
        output: (n, h, w) float.

    Example:
        >>> m = torch.zeros(1, 8, 8, dtype=torch.bool)
        >>> m[0, 2, 6] = True
        >>> sample_masks(m).tolist(), sample_masks(m, size=(3, 1)).tolist()
        ([[[0.0, 1.0], [0.0, 0.0]]], [[[0.0], [0.0], [0.0]]])
    """
    if masks.ndim != 3:
        raise ValueError(f"expected masks (n, H, W), got {tuple(masks.shape)}")
    start = stride // 2
    out = masks[:, start::stride, start::stride].float()  # (n, h', w')
    if size is not None:
        h, w = size
        out = out[:, :h, :w]
        out = F.pad(out, (0, w - out.shape[2], 0, h - out.shape[1]))
    return out


def dice_loss(logits: torch.Tensor, targets: torch.Tensor, *, eps: float = 1e-5) -> torch.Tensor:
    """Dice loss per instance: ``1 - 2 sum(x y) / (sum x^2 + sum y^2 + eps)``, x = sigmoid.

    Shape:
        logits: (P, ...) mask logits.
        targets: (P, ...) in [0, 1], same shape.
        output: (P,).

    Example:
        >>> logits = torch.tensor([[20.0, -20.0], [0.0, 0.0]])
        >>> [round(v, 4) for v in dice_loss(logits, torch.tensor([[1.0, 0.0], [1.0, 1.0]])).tolist()]
        [0.0, 0.2]
    """
    if logits.shape != targets.shape:
        raise ValueError(
            f"targets {tuple(targets.shape)} do not match logits {tuple(logits.shape)}"
        )
    x = torch.sigmoid(logits).flatten(1)  # (P, n)
    y = targets.flatten(1).to(device=x.device, dtype=x.dtype)
    return 1.0 - 2.0 * (x * y).sum(1) / ((x * x).sum(1) + (y * y).sum(1) + eps)


def sample_positives(
    positive: torch.Tensor,
    *,
    max_positives: int = 500,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Rows of the positives, a random subset of `max_positives` when there are more.

    Args:
        positive: Which rows are positive (`FCOSTargets.positive`).
        max_positives: Cap per batch (CondInst's 500).
        generator: CPU generator for the subset (None: torch's global one).

    Shape:
        positive: (M,) bool.
        output: (P,) long, ascending, P = min(count, max_positives).

    Example:
        >>> sample_positives(torch.tensor([True, False, True, True])).tolist()
        [0, 2, 3]
        >>> len(sample_positives(torch.ones(9, dtype=torch.bool), max_positives=4))
        4
    """
    rows = torch.nonzero(positive).squeeze(1)  # (count,)
    if len(rows) > max_positives:
        pick = torch.randperm(len(rows), generator=generator)[:max_positives]
        rows = rows[pick.to(rows.device).sort().values]
    return rows


def _per_object(
    per_image: Sequence[torch.Tensor], image_index: torch.Tensor, gt_index: torch.Tensor
) -> torch.Tensor:
    """Rows `gt_index` of image `image_index` of per-image tables (n_i, ...) -> (P, ...)."""
    table = torch.cat(list(per_image))  # (sum n_i, ...)
    sizes = torch.tensor([len(x) for x in per_image], device=table.device)
    offsets = torch.cumsum(sizes, 0) - sizes  # (B,)
    rows = offsets[image_index.to(table.device)] + gt_index.to(table.device)
    return table[rows].to(image_index.device)


def _instance_targets(
    gt_masks: Sequence[torch.Tensor],
    image_index: torch.Tensor,
    gt_index: torch.Tensor,
    size: tuple[int, int],
    stride: int,
) -> torch.Tensor:
    """Each instance's matched mask sampled at `stride` to `size`: (P, h, w)."""
    sampled = [sample_masks(m, stride, size=size) for m in gt_masks]
    return _per_object(sampled, image_index, gt_index)


def _graph_zero(mask_features: torch.Tensor, params: Sequence[torch.Tensor]) -> torch.Tensor:
    """A zero loss that keeps the graph (no positive in the batch)."""
    return sum((p.sum() for p in params), mask_features.sum()) * 0.0


def mask_losses(
    head: DynamicMaskHead,
    mask_features: torch.Tensor,
    params: Sequence[torch.Tensor],
    targets: FCOSTargets,
    gt_masks: Sequence[torch.Tensor],
    *,
    max_positives: int = 500,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """CondInst's mask loss: Dice of each positive's mask against its matched ground truth.

    The positives of `targets` (a random subset of `max_positives` if there are more) take
    their parameters from the controller output at their location; the head runs them on
    their own image's mask features; Dice against the matched ground-truth mask sampled at
    the head's output stride (offset stride // 2), mean over positives.

    Args:
        head: The dynamic mask head.
        mask_features: `MaskBranch` output.
        params: Controller output per level (`FCOSOutput.params`).
        targets: `fcos_targets` of the same images and levels.
        gt_masks: Per image, the masks of its boxes, in the order of `fcos_targets`'s boxes.
        max_positives: Cap on positives per batch.
        generator: CPU generator for the subset.

    Shape:
        mask_features: (B, C, h, w).
        params: (B, num_params, h_l, w_l) per level.
        gt_masks: (n_i, H, W) per image, H and W the image size.

    Returns:
        {"mask": scalar}; a zero that keeps the graph when there is no positive.

    Example:
        >>> from avlab.heads.fcos import fcos_locations, fcos_targets
        >>> masks = torch.zeros(1, 32, 32)
        >>> masks[0, 4:20, 4:20] = 1
        >>> t = fcos_targets(fcos_locations([(4, 4)], [8]), [8], [torch.tensor([[4.0, 4.0, 20.0, 20.0]])],
        ...                  [torch.tensor([0])], size_ranges=((0, 64),))
        >>> zero = mask_losses(DynamicMaskHead(), torch.zeros(1, 8, 4, 4), [torch.zeros(1, 169, 4, 4)], t, [masks])
        >>> round(float(zero["mask"]), 4)  # every logit 0: sigmoid 1/2 everywhere
        0.6
    """
    rows = sample_positives(targets.positive, max_positives=max_positives, generator=generator)
    if len(rows) == 0:
        return {"mask": _graph_zero(mask_features, params)}
    image = targets.image_index[rows]
    levels = targets.levels[rows]
    inst_params = gather_locations(params, image, levels, targets.indices[rows])  # (P, n)
    logits = head(mask_features, inst_params, targets.locations[rows], image, levels)
    gt = _instance_targets(
        gt_masks, image, targets.gt_index[rows], logits.shape[-2:], head.output_stride
    )
    return {"mask": dice_loss(logits, gt).mean()}


class CrossoverFrame(NamedTuple):
    """What `crossover_loss` needs of one frame of each pair in the batch.

    Attributes:
        mask_features: `MaskBranch` output, (B, C, h, w).
        params: Controller output per level (`FCOSOutput.params`), (B, num_params, h_l, w_l).
        targets: `fcos_targets` of the frames.
        object_ids: Per image, the identity (track id) of each box, (n_i,); equal ids in the
            two frames of a pair (same batch index) are the same object.
        gt_masks: Per image, the masks of its boxes, (n_i, H, W).
    """

    mask_features: torch.Tensor
    params: Sequence[torch.Tensor]
    targets: FCOSTargets
    object_ids: Sequence[torch.Tensor]
    gt_masks: Sequence[torch.Tensor]


def _crossover_direction(
    head: DynamicMaskHead,
    source: CrossoverFrame,
    dest: CrossoverFrame,
    max_positives: int,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Mean Dice of `source`'s filters at `dest`'s locations of the same objects."""
    st, dt = source.targets, dest.targets
    rows = sample_positives(st.positive, max_positives=max_positives, generator=generator)
    src_image = st.image_index[rows]
    src_obj = _per_object(source.object_ids, src_image, st.gt_index[rows])  # (P,)
    cand = torch.nonzero(dt.positive).squeeze(1)  # (Q,) every positive of dest
    dst_image = dt.image_index[cand]
    dst_obj = _per_object(dest.object_ids, dst_image, dt.gt_index[cand])
    match = (src_image[:, None] == dst_image[None]) & (src_obj[:, None] == dst_obj[None])
    if not bool(match.any()):
        return _graph_zero(source.mask_features, source.params)
    # A uniform draw among each row's matches: the largest of random keys over the matches.
    keys = torch.rand(match.shape, generator=generator).to(match.device)
    pick = cand[torch.where(match, keys, -1.0).argmax(1)]  # (P,)
    keep = match.any(1)
    rows, pick = rows[keep], pick[keep]
    params = gather_locations(
        source.params, st.image_index[rows], st.levels[rows], st.indices[rows]
    )
    image = dt.image_index[pick]
    logits = head(dest.mask_features, params, dt.locations[pick], image, dt.levels[pick])
    gt = _instance_targets(
        dest.gt_masks, image, dt.gt_index[pick], logits.shape[-2:], head.output_stride
    )
    return dice_loss(logits, gt).mean()


def crossover_loss(
    head: DynamicMaskHead,
    frame_t: CrossoverFrame,
    frame_u: CrossoverFrame,
    *,
    max_positives: int = 500,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """CrossVIS's crossover loss over a batch of frame pairs (t, u = t + d).

    Image b of `frame_t` and image b of `frame_u` are two frames of the same video. For each
    positive of frame t (a random subset of `max_positives` if there are more) whose object
    (same id, same b) has positive locations in frame u: keep its dynamic filters, take a
    location drawn uniformly among that object's positive locations in frame u (and that
    location's level, which sets the size of interest), run the head on frame u's mask
    features, and score Dice against the object's mask in frame u; ``L_t->u`` is the mean over
    those positives. ``L_u->t`` likewise; the loss is ``(L_t->u + L_u->t) / 2``. A direction
    with no such positive counts 0 (keeping the graph).

    Args:
        head: The dynamic mask head.
        frame_t: The first frames.
        frame_u: The second frames, same batch order.
        max_positives: Cap on the positives of each frame batch.
        generator: CPU generator for the subsets and the location draws (t -> u first).

    Returns:
        Scalar loss.

    Example:
        >>> from avlab.heads.fcos import fcos_locations, fcos_targets
        >>> locs, ids = fcos_locations([(4, 4)], [8]), [torch.tensor([7])]
        >>> def frame(box):  # one image, one object (id 7) with its mask equal to its box
        ...     masks = torch.zeros(1, 32, 32)
        ...     masks[0, box[1]:box[3], box[0]:box[2]] = 1
        ...     t = fcos_targets(locs, [8], [torch.tensor([box]).float()], [torch.tensor([0])], size_ranges=((0, 64),))
        ...     return CrossoverFrame(torch.randn(1, 8, 4, 4), [torch.randn(1, 169, 4, 4)], t, ids, [masks])
        >>> frame_t, frame_u = frame([0, 0, 16, 16]), frame([12, 8, 32, 28])
        >>> loss = crossover_loss(DynamicMaskHead(), frame_t, frame_u, generator=torch.Generator().manual_seed(0))
        >>> 0.0 < float(loss) < 1.0
        True
    """
    forward = _crossover_direction(head, frame_t, frame_u, max_positives, generator)
    backward = _crossover_direction(head, frame_u, frame_t, max_positives, generator)
    return (forward + backward) / 2
