"""A feature pyramid (Lin et al. 2017): backbone levels C3-C5 -> P3-P5 of one width.

AFCV's detector, mask branch and embedding tower read P3-P5 (SPEC section 9); the cached
backbone levels are C3-C5, so the pyramid is trained from the cache like any other head.
(AViS-Net's `FPNMaskHead` is a mask head that ends in logits; this one returns the levels.)

Example:
    >>> import torch
    >>> fpn = FeaturePyramid((8, 16, 32), width=4)
    >>> levels = fpn([torch.randn(2, 8, 8, 8), torch.randn(2, 16, 4, 4), torch.randn(2, 32, 2, 2)])
    >>> [tuple(p.shape) for p in levels]
    [(2, 4, 8, 8), (2, 4, 4, 4), (2, 4, 2, 2)]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from avlab.heads._registry import register_head

__all__ = ["FeaturePyramid"]


@register_head("fpn", family="pyramid")
class FeaturePyramid(nn.Module):
    """Lateral 1x1 convs, a nearest-neighbour top-down path, a 3x3 conv per output level.

    Args:
        in_channels: Channels per level, finest first, e.g. ``bundle.channels`` of C3-C5.
        width: Channels of every output level (CondInst: 256).

    Shape:
        input: a list of (B, C_l, h_l, w_l), finest first.
        output: a list of (B, width, h_l, w_l), same sizes.
    """

    def __init__(self, in_channels: Sequence[int], *, width: int = 256) -> None:
        super().__init__()
        if len(in_channels) < 1:
            raise ValueError("need at least one feature level")
        self.in_channels = tuple(int(c) for c in in_channels)
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in self.in_channels)
        self.output = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1) for _ in self.in_channels)

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """P levels, finest first; shapes in the class docstring."""
        levels = list(features)
        if len(levels) != len(self.in_channels):
            raise ValueError(f"expected {len(self.in_channels)} feature levels, got {len(levels)}")
        merged = [self.lateral[-1](levels[-1])]  # coarsest first while building
        for lateral, x in zip(self.lateral[-2::-1], levels[-2::-1], strict=True):
            top = F.interpolate(merged[-1], size=x.shape[-2:], mode="nearest")  # (B, width, h_l, w_l)
            merged.append(lateral(x) + top)
        return [conv(p) for conv, p in zip(self.output, merged[::-1], strict=True)]

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}"
