"""torchvision ResNet-18 / ResNet-50 bundles, plain and deformable (AViS-Net), C3-C5.

C3, C4 and C5 are the outputs of torchvision's ``layer2``, ``layer3`` and ``layer4`` (strides
8, 16, 32). The deformable variants replace every 3x3 conv of those three stages by a
`DeformableConv2d` whose offsets start at zero, so they compute what the plain ResNet with the
same weights computes until trained. Both variants load torchvision's ImageNet weights
(ResNet-18: IMAGENET1K_V1, ResNet-50: IMAGENET1K_V2) from the torch hub cache.

Example:
    >>> RESNET18.imagenet.file_name, RESNET50.imagenet.file_name
    ('resnet18-f37072fd.pth', 'resnet50-11ad3fa6.pth')
    >>> RESNET50_DEFORM.imagenet == RESNET50.imagenet, RESNET18_DEFORM.channels["c5"]
    (True, 512)
"""

from __future__ import annotations

from functools import partial

import torchvision
from torch import nn
from torchvision.models import ResNet18_Weights, ResNet50_Weights

from avlab.backbones.bundle import VisualBundle, register_visual_bundle
from avlab.backbones.deformable import make_deformable
from avlab.backbones.weights import HubWeights

__all__ = ["RESNET18", "RESNET18_DEFORM", "RESNET50", "RESNET50_DEFORM"]

_STEM = ("conv1", "bn1", "relu", "maxpool", "layer1")
_STAGES = ("layer2", "layer3", "layer4")


def _resnet(arch: str, *, deformable: bool) -> nn.Module:
    net = getattr(torchvision.models, arch)(weights=None)
    return make_deformable(net, _STAGES) if deformable else net


def _bundle(name: str, arch: str, channels: tuple[int, int, int], url: str, *, deformable: bool) -> VisualBundle:
    return register_visual_bundle(
        VisualBundle(
            name=name,
            channels=dict(zip(("c3", "c4", "c5"), channels, strict=True)),
            imagenet=HubWeights(url),
            _build=partial(_resnet, arch, deformable=deformable),
            _stem=_STEM,
            _stages=_STAGES,
        )
    )


RESNET18 = _bundle("resnet18", "resnet18", (128, 256, 512), ResNet18_Weights.IMAGENET1K_V1.url, deformable=False)
"""torchvision ResNet-18, C3-C5 with 128 / 256 / 512 channels."""

RESNET50 = _bundle("resnet50", "resnet50", (512, 1024, 2048), ResNet50_Weights.IMAGENET1K_V2.url, deformable=False)
"""torchvision ResNet-50, C3-C5 with 512 / 1024 / 2048 channels."""

RESNET18_DEFORM = _bundle(
    "resnet18_deform", "resnet18", (128, 256, 512), ResNet18_Weights.IMAGENET1K_V1.url, deformable=True
)
"""ResNet-18 with deformable 3x3 convs in stages 3-5 (AViS-Net); loads ResNet-18 weights."""

RESNET50_DEFORM = _bundle(
    "resnet50_deform", "resnet50", (512, 1024, 2048), ResNet50_Weights.IMAGENET1K_V2.url, deformable=True
)
"""ResNet-50 with deformable 3x3 convs in stages 3-5 (AViS-Net); loads ResNet-50 weights."""
