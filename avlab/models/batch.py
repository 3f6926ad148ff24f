"""The frame-level batch contract shared by every system, and the helpers that read it.

`avlab.models` documents the keys; this module names them once and holds what several systems
do with them: gather the visual levels of the batch's frame and of each source's frame, turn
the mixture magnitude into the audio U-Net's input, and bring source regions to a feature grid.

Example:
    >>> import torch
    >>> regions = torch.zeros(1, 2, 8, 8)
    >>> regions[0, 0, :4, :4] = 1  # source 0 in the top-left quarter; source 1 unknown
    >>> region_weights(regions, (2, 2))[0].tolist()
    [[[1.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from avlab.heads import warp_frequency

__all__ = [
    "LEVELS",
    "LOGMEL",
    "MASK",
    "MIXTURE_MAG",
    "SOURCE_REGION",
    "has_separation_inputs",
    "log_warped_mixture",
    "output_size_of",
    "region_weights",
    "source_levels",
    "visual_levels",
]

LEVELS = ("c3", "c4", "c5")  # the backbone levels, finest first
LOGMEL = "logmel"
MASK = "mask"
MIXTURE_MAG = "mixture_mag"
SOURCE_REGION = "source_region"
_LOG_EPS = 1e-10  # PixelPlayer's log(|X| + 1e-10)


def visual_levels(batch: Mapping[str, torch.Tensor], levels: Sequence[str] = LEVELS) -> list[torch.Tensor]:
    """The batch frame's feature maps, finest first.

    Raises:
        KeyError: A level is missing; the message lists the keys the batch has.

    Shape:
        output: one (B, C_l, h_l, w_l) tensor per level.

    Example:
        >>> maps = visual_levels({"visual_c3": torch.zeros(2, 8, 4, 4), "visual_c4": torch.zeros(2, 16, 2, 2)}, ("c3", "c4"))
        >>> [tuple(m.shape) for m in maps]
        [(2, 8, 4, 4), (2, 16, 2, 2)]
    """
    try:
        return [batch[f"visual_{level}"] for level in levels]
    except KeyError as error:
        raise KeyError(f"the batch has no {error.args[0]!r}; it has {sorted(batch)}") from None


def source_levels(
    batch: Mapping[str, torch.Tensor], levels: Sequence[str] = LEVELS
) -> list[torch.Tensor] | None:
    """Each source's frame features, or None when every source is on the batch's frame.

    Shape:
        output: one (B, N, C_l, h_l, w_l) tensor per level, or None.

    Example:
        >>> source_levels({"visual_c3": torch.zeros(2, 8, 4, 4)}, ("c3",)) is None
        True
    """
    if f"source_visual_{levels[0]}" not in batch:
        return None
    return [batch[f"source_visual_{level}"] for level in levels]


def has_separation_inputs(batch: Mapping[str, torch.Tensor]) -> bool:
    """Whether the batch carries a mixture to separate (and the sources' regions).

    Example:
        >>> has_separation_inputs({"logmel": torch.zeros(1, 64, 96)})
        False
    """
    return MIXTURE_MAG in batch and SOURCE_REGION in batch


def log_warped_mixture(mixture_mag: torch.Tensor, rows: int) -> torch.Tensor:
    """The audio U-Net's input: ``log(warp(|X|) + 1e-10)`` with a channel axis (PixelPlayer).

    Shape:
        mixture_mag: (B, F, T) linear magnitudes (F = 512 for the separation STFT).
        output: (B, 1, rows, T).

    Example:
        >>> tuple(log_warped_mixture(torch.ones(2, 512, 16), 256).shape)
        (2, 1, 256, 16)
    """
    if mixture_mag.ndim != 3:
        raise ValueError(f"expected mixture_mag (B, F, T), got {tuple(mixture_mag.shape)}")
    warped = warp_frequency(mixture_mag.float(), rows=rows)  # (B, rows, T)
    return torch.log(warped.clamp_min(0) + _LOG_EPS).unsqueeze(1)


def region_weights(regions: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Source regions brought to a feature grid as area fractions; an empty region means everywhere.

    A source whose region is empty (not annotated, hidden, or out of frame) cannot be located,
    so its weights are ones: pooling then reads the whole frame, which is what PixelPlayer
    does for every source.

    Args:
        regions: Where each source is on its frame, in [0, 1].
        size: The feature grid (h, w).

    Shape:
        regions: (B, N, H, W).
        output: (B, N, h, w) in [0, 1], float32.

    Example:
        >>> region_weights(torch.zeros(1, 1, 4, 4), (1, 1)).tolist()
        [[[[1.0]]]]
    """
    if regions.ndim != 4:
        raise ValueError(f"expected regions (B, N, H, W), got {tuple(regions.shape)}")
    weights = F.adaptive_avg_pool2d(regions.float(), (int(size[0]), int(size[1])))  # (B, N, h, w)
    empty = weights.flatten(2).sum(dim=2) <= 0  # (B, N)
    return torch.where(empty[..., None, None], torch.ones_like(weights), weights)


def output_size_of(
    batch: Mapping[str, torch.Tensor], output_size: tuple[int, int] | None, finest: torch.Tensor | None
) -> tuple[int, int]:
    """Where mask logits go: `output_size`, else the batch's mask size, else 8 x the finest grid.

    Example:
        >>> output_size_of({"mask": torch.zeros(2, 32, 24)}, None, None)
        (32, 24)
    """
    if output_size is not None:
        return (int(output_size[0]), int(output_size[1]))
    if MASK in batch:
        return (int(batch[MASK].shape[-2]), int(batch[MASK].shape[-1]))
    if finest is None:
        raise ValueError("pass output_size: the batch has no mask and the system no visual grid")
    return (8 * int(finest.shape[-2]), 8 * int(finest.shape[-1]))
