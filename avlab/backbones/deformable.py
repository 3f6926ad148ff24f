"""Deformable 3x3 convolutions for the AViS-Net backbone (stages 3-5 of a ResNet).

Each 3x3 conv of ``layer2``-``layer4`` becomes a `torchvision.ops.DeformConv2d` whose sampling
offsets are predicted from its input by a plain 3x3 conv initialised to zero. With zero offsets
a deformable conv samples exactly the pixels a plain conv does, so the network starts as the
ResNet whose weights it holds and learns to deform only if trained.

Parameter names follow mmcv's ``DeformConv2dPack`` (the conv's ``weight`` where the plain conv
had it, the offset conv under ``conv_offset``), so plain ResNet checkpoints load into it (the
offsets stay zero) and mmdetection DCN ResNet checkpoints load as they are.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torchvision.ops import DeformConv2d

__all__ = ["DeformableConv2d", "make_deformable"]


class DeformableConv2d(DeformConv2d):
    """A deformable conv that predicts its own offsets with a zero-initialised conv.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Square kernel size.
        stride: Stride of both the conv and the offset conv.
        padding: Zero padding of both.
        dilation: Dilation of both.
        groups: Conv groups.
        bias: Whether the conv has a bias.
        offset_groups: Groups of input channels sharing one set of offsets.

    Shape:
        input: (B, in_channels, H, W).
        output: (B, out_channels, H', W'), H' and W' as for ``nn.Conv2d`` with the same
            arguments.

    Example:
        >>> conv = nn.Conv2d(4, 6, 3, padding=1, bias=False)
        >>> deform = DeformableConv2d.from_conv(conv)
        >>> x = torch.rand(1, 4, 5, 5)
        >>> tuple(deform(x).shape), bool(torch.allclose(deform(x), conv(x), atol=1e-6))
        ((1, 6, 5, 5), True)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = False,
        *,
        offset_groups: int = 1,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias
        )
        kernel_h, kernel_w = self.kernel_size
        # Two coordinates (dy, dx) per kernel tap and offset group.
        self.conv_offset = nn.Conv2d(
            in_channels,
            2 * offset_groups * kernel_h * kernel_w,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            bias=True,
        )
        self.reset_offsets()

    def reset_offsets(self) -> None:
        """Zero the offset conv, so the layer samples the plain conv's grid again."""
        nn.init.zeros_(self.conv_offset.weight)
        if self.conv_offset.bias is not None:
            nn.init.zeros_(self.conv_offset.bias)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> DeformableConv2d:
        """A deformable conv with `conv`'s configuration and weights (offsets zero).

        Example:
            >>> deform = DeformableConv2d.from_conv(nn.Conv2d(2, 3, 3, stride=2, padding=1))
            >>> deform.stride, deform.bias is not None
            ((2, 2), True)
        """
        if isinstance(conv.padding, str):
            raise ValueError(f"padding={conv.padding!r} is not supported, give it in pixels: {conv}")
        pairs = (conv.kernel_size, conv.stride, conv.padding, conv.dilation)
        if conv.padding_mode != "zeros" or any(pair[0] != pair[1] for pair in pairs):
            raise ValueError(
                "only zero-padded convs with square kernels and equal strides, paddings and "
                f"dilations can be made deformable, got {conv}"
            )
        deform = cls(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size[0],
            stride=conv.stride[0],
            padding=conv.padding[0],
            dilation=conv.dilation[0],
            groups=conv.groups,
            bias=conv.bias is not None,
        )
        with torch.no_grad():
            deform.weight.copy_(conv.weight)
            if conv.bias is not None and deform.bias is not None:
                deform.bias.copy_(conv.bias)
        return deform

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 (the base class's name)
        """Deformable convolution with offsets predicted from `input` itself.

        Shape:
            input: (B, in_channels, H, W).
            output: (B, out_channels, H', W').
        """
        offset = self.conv_offset(input)  # (B, 2 * G * k * k, H', W')
        return super().forward(input, offset)


def make_deformable(
    net: nn.Module, stages: Iterable[str] = ("layer2", "layer3", "layer4")
) -> nn.Module:
    """Replace every 3x3 conv inside the named child modules by a `DeformableConv2d`, in place.

    1x1 convs (bottleneck projections, downsampling shortcuts) stay plain. The replacement
    takes the place of the conv in its parent, so parameter order and names are unchanged.

    Args:
        net: A network, e.g. a torchvision ResNet.
        stages: Names of the children whose 3x3 convs become deformable.

    Returns:
        `net` itself.

    Example:
        >>> import torchvision
        >>> net = make_deformable(torchvision.models.resnet18())
        >>> sum(isinstance(m, DeformableConv2d) for m in net.modules())
        12
    """
    # Collected first: replacing while walking would reach the new offset convs (3x3 too).
    targets = [
        (parent, name, child)
        for stage in stages
        for parent in getattr(net, stage).modules()
        for name, child in parent.named_children()
        if isinstance(child, nn.Conv2d) and child.kernel_size == (3, 3)
    ]
    for parent, name, child in targets:
        setattr(parent, name, DeformableConv2d.from_conv(child))
    return net
