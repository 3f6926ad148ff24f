"""A tiny CNN with the strides of a ResNet's C3-C5 and 8 / 16 / 32 channels, for fast tests.

Example:
    >>> DEBUG.input_size, DEBUG.imagenet is None
    ((64, 64), True)
"""

from __future__ import annotations

import torch
from torch import nn

from avlab.backbones.bundle import VisualBundle, register_visual_bundle

__all__ = ["DEBUG", "DebugCNN"]


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    # A stride-2 3x3 conv halves H and W, rounding up like a ResNet's stages.
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class DebugCNN(nn.Module):
    """Five stride-2 conv blocks: a stride-4 stem, then C3 (8), C4 (16), C5 (32 channels).

    Shape:
        input: (B, 3, H, W), normalised.
        output: (B, 32, ceil(H / 32), ceil(W / 32)) from C5; `DEBUG` returns every level.

    Example:
        >>> tuple(DebugCNN()(torch.rand(1, 3, 64, 64)).shape)
        (1, 32, 2, 2)
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(_block(3, 8), _block(8, 8))  # stride 4
        self.stage3 = _block(8, 8)
        self.stage4 = _block(8, 16)
        self.stage5 = _block(16, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """C5 of normalised images (`DEBUG.load()` gives every level).

        Shape:
            x: (B, 3, H, W).
            output: (B, 32, ceil(H / 32), ceil(W / 32)).
        """
        return self.stage5(self.stage4(self.stage3(self.stem(x))))


DEBUG = register_visual_bundle(
    VisualBundle(
        name="debug",
        channels={"c3": 8, "c4": 16, "c5": 32},
        input_size=(64, 64),
        _build=DebugCNN,
        _stem=("stem",),
        _stages=("stage3", "stage4", "stage5"),
    )
)
"""The "debug" bundle: `DebugCNN`, random weights or a local checkpoint (no ImageNet)."""
