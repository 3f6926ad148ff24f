"""Frozen visual backbones as bundles, and the audio front-ends, both fingerprinted for the store.

Visual: `visual_bundle(name)` gives a `VisualBundle` ("debug", "resnet18", "resnet50",
"resnet18_deform", "resnet50_deform") whose `load` returns a module mapping images in [0, 1] to
C3-C5 feature maps, and whose `fingerprint` says what the features depend on. Audio:
`SeparationSTFT` (PixelPlayer / AViS-Net; its frequency warp is `avlab.heads.warp_frequency`), and
`LogMelFrames` (AFCV's per-frame log-mel patches).

Example:
    >>> import torch
    >>> net = visual_bundle("debug").load()
    >>> {level: tuple(x.shape) for level, x in net(torch.rand(1, 3, 64, 64)).items()}
    {'c3': (1, 8, 8, 8), 'c4': (1, 16, 4, 4), 'c5': (1, 32, 2, 2)}
"""

from __future__ import annotations

from avlab.backbones.audio import (
    LogMelFrames,
    SeparationSTFT,
    vggish_mel_matrix,
)
from avlab.backbones.bundle import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    RANDOM_SEED,
    VisualBackbone,
    VisualBundle,
    list_visual_bundles,
    register_visual_bundle,
    visual_bundle,
)
from avlab.backbones.debug import DEBUG, DebugCNN
from avlab.backbones.deformable import DeformableConv2d, make_deformable
from avlab.backbones.resnet import RESNET18, RESNET18_DEFORM, RESNET50, RESNET50_DEFORM
from avlab.backbones.weights import HubWeights, file_sha256, match_state_dict, read_state_dict

__all__ = [
    # visual bundles
    "VisualBundle",
    "VisualBackbone",
    "visual_bundle",
    "list_visual_bundles",
    "register_visual_bundle",
    "DEBUG",
    "RESNET18",
    "RESNET18_DEFORM",
    "RESNET50",
    "RESNET50_DEFORM",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "RANDOM_SEED",
    # building blocks
    "DebugCNN",
    "DeformableConv2d",
    "make_deformable",
    # weights
    "HubWeights",
    "file_sha256",
    "match_state_dict",
    "read_state_dict",
    # audio front-ends
    "LogMelFrames",
    "SeparationSTFT",
    "vggish_mel_matrix",
]
