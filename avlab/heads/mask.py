"""The FPN segmentation head of AViS-Net: C3-C5 in, per-pixel mask logits out.

The paper uses "a Features Pyramid Network to extract the multi-channel learnt attention based
features to get the segmentation map"; the layout here is FPN's (Lin et al. 2017) top-down
path, with a per-pixel classifier on the finest level (ours).

Example:
    >>> import torch
    >>> head = FPNMaskHead((8, 16, 32), width=16)
    >>> feats = [torch.randn(2, 8, 8, 8), torch.randn(2, 16, 4, 4), torch.randn(2, 32, 2, 2)]
    >>> tuple(head(feats, output_size=(64, 64)).shape)
    (2, 1, 64, 64)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from avlab.heads._registry import register_head

__all__ = ["FPNMaskHead"]


@register_head("fpn_mask")
class FPNMaskHead(nn.Module):
    """FPN over C3-C5 with a per-pixel classifier at the finest (stride-8) level.

    Lateral 1x1 convolutions bring every level to `width` channels; the top-down path
    upsamples each coarser level (nearest, to the finer level's exact size) and adds it; a 3x3
    smoothing convolution and a ReLU on the finest level, then a 1x1 convolution, give the
    logits, which `forward` upsamples bilinearly to `output_size`. The ReLU and the single
    smoothed output level are ours (only the finest level feeds the classifier, so no
    parameter goes unused).

    Args:
        in_channels: Channels per level, finest first: (C3, C4, C5), e.g. (8, 16, 32) for the
            debug backbone, (128, 256, 512) for ResNet-18, (512, 1024, 2048) for ResNet-50.
            Any number of levels >= 1 works.
        width: Channels of the pyramid (FPN's 256).
        num_classes: Output channels: 1 for the sounding-object mask, more for semantic masks.

    Shape:
        features: sequence of (B, C_l, H_l, W_l), finest first, each level half the size of
            the one before (up to rounding); or a mapping such as a backbone's
            {"c3": ..., "c4": ..., "c5": ...}, read in its order.
        output: (B, num_classes, *output_size), or at the finest level's size if no
            output_size is given.

    Example:
        >>> head = FPNMaskHead((8, 16, 32), width=16, num_classes=3)
        >>> feats = {"c3": torch.randn(1, 8, 7, 9), "c4": torch.randn(1, 16, 4, 5), "c5": torch.randn(1, 32, 2, 3)}
        >>> tuple(head(feats).shape), tuple(head(feats, output_size=(56, 72)).shape)
        ((1, 3, 7, 9), (1, 3, 56, 72))
    """

    def __init__(
        self, in_channels: Sequence[int], *, width: int = 256, num_classes: int = 1
    ) -> None:
        super().__init__()
        if len(in_channels) < 1:
            raise ValueError("need at least one feature level")
        self.in_channels = tuple(int(c) for c in in_channels)
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in self.in_channels)
        self.smooth = nn.Conv2d(width, width, 3, padding=1)
        self.classifier = nn.Conv2d(width, num_classes, 1)

    def forward(
        self,
        features: Sequence[torch.Tensor] | Mapping[str, torch.Tensor],
        *,
        output_size: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """Per-pixel logits; shapes in the class docstring."""
        levels = list(features.values()) if isinstance(features, Mapping) else list(features)
        if len(levels) != len(self.in_channels):
            raise ValueError(f"expected {len(self.in_channels)} feature levels, got {len(levels)}")
        for i, (x, c) in enumerate(zip(levels, self.in_channels, strict=True)):
            if x.ndim != 4 or x.shape[1] != c:
                raise ValueError(f"level {i}: expected (B, {c}, H, W), got {tuple(x.shape)}")
        p = self.lateral[-1](levels[-1])  # (B, width, H5, W5)
        for lateral, x in zip(self.lateral[-2::-1], levels[-2::-1], strict=True):
            # Nearest upsampling to the exact finer size: odd sizes round as the backbone did.
            p = lateral(x) + F.interpolate(
                p, size=x.shape[-2:], mode="nearest"
            )  # (B, width, Hl, Wl)
        logits: torch.Tensor = self.classifier(F.relu(self.smooth(p)))  # (B, K, H3, W3)
        if output_size is not None:
            logits = F.interpolate(
                logits, size=tuple(output_size), mode="bilinear", align_corners=False
            )
        return logits

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}"
