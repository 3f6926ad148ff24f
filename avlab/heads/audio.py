"""The audio encoder for per-frame log-mel patches (AFCV's a_t, Ca = 128).

The specification asks for a small encoder turning the (64 mel x 96 window) log-mel patch of
each video frame into a vector; the VGG-like layout (3x3 conv, BatchNorm, ReLU, 2x2 max-pool
per block, global average pooling, a linear layer) and its widths are ours, a scaled-down
VGGish.

Example:
    >>> import torch
    >>> tuple(LogMelEncoder()(torch.randn(2, 64, 96)).shape)
    (2, 128)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from avlab.heads._registry import register_head

__all__ = ["LogMelEncoder"]


@register_head("logmel_cnn")
class LogMelEncoder(nn.Module):
    """A small VGG-like CNN: log-mel patch (B, mel, window) -> audio vector (B, out_dim).

    Each block is Conv3x3 (no bias) -> BatchNorm -> ReLU -> MaxPool 2x2; the last map is
    averaged over frequency and time and projected linearly. Global pooling makes it accept any
    patch size of at least ``2^len(channels)`` on each side; the default (64, 96) patch pools
    to 4 x 6 cells.

    Args:
        out_dim: Ca, size of the audio vector.
        channels: Widths of the conv blocks, one block each.

    Shape:
        x: (B, mel, window) or (B, 1, mel, window) log-mel (AFCV: mel = 64, window = 96).
        output: (B, out_dim).

    Example:
        >>> encoder = LogMelEncoder(out_dim=16, channels=(4, 8))
        >>> tuple(encoder(torch.randn(3, 1, 64, 96)).shape)
        (3, 16)
    """

    def __init__(self, *, out_dim: int = 128, channels: Sequence[int] = (32, 64, 128, 256)) -> None:
        super().__init__()
        if len(channels) < 1:
            raise ValueError("need at least one conv block")
        blocks: list[nn.Module] = []
        in_dim = 1
        for width in channels:
            blocks += [
                nn.Conv2d(in_dim, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            in_dim = width
        self.features = nn.Sequential(*blocks)
        self.proj = nn.Linear(in_dim, out_dim)
        self.min_size = 2 ** len(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode; shapes in the class docstring."""
        if x.ndim == 3:
            x = x.unsqueeze(1)  # (B, 1, mel, window)
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(
                f"expected log-mel (B, mel, window) or (B, 1, mel, window), got {tuple(x.shape)}"
            )
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(
                f"patch {tuple(x.shape[-2:])} is smaller than {self.min_size} on a side"
            )
        out: torch.Tensor = self.proj(self.features(x).mean(dim=(2, 3)))  # (B, out_dim)
        return out
