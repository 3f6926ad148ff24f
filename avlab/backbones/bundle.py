"""Visual backbones as bundles: what a backbone expects and returns, and how to load it.

A `VisualBundle` (after torchaudio's pretrained bundles) describes a backbone: its feature
levels with their strides and channel counts, the input normalisation it applies, a default
input size, the ImageNet weights it can use, and `VisualBundle.load`, which builds the network
as a `VisualBackbone`: images in [0, 1] in, a dict of feature maps out.

Random initialisation is deterministic: the network is built on the meta device (so building
it draws nothing from torch's global random generator) and then initialised from a private
generator seeded with `RANDOM_SEED`, the way torchvision initialises ResNets. Two loads give
identical weights on every machine with the same torch version, which the feature store's
fingerprint relies on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn
from torchvision.ops import DeformConv2d

from avlab.backbones.deformable import DeformableConv2d
from avlab.backbones.weights import HubWeights, file_sha256, match_state_dict, read_state_dict
from avlab.errors import WeightsError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "RANDOM_SEED",
    "VisualBackbone",
    "VisualBundle",
    "list_visual_bundles",
    "register_visual_bundle",
    "visual_bundle",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RANDOM_SEED = 0

LEVELS = ("c3", "c4", "c5")

Weights = str | os.PathLike[str] | None


@dataclass(frozen=True)
class VisualBundle:
    """A visual backbone's description, and the way to load it.

    Attributes:
        name: Registry name, e.g. "resnet18".
        levels: Feature levels, shallow to deep.
        strides: Level -> input pixels per feature cell.
        channels: Level -> channels.
        mean: Per-channel RGB mean subtracted inside the module.
        std: Per-channel RGB std divided by inside the module.
        input_size: Default (H, W) for callers that resize (the module takes any size).
        imagenet: The ImageNet weights it loads with ``weights="imagenet"``, if any.
        version: Bumped when avlab changes what the network computes; part of the fingerprint.

    Example:
        >>> bundle = visual_bundle("debug")
        >>> bundle.strides["c4"], bundle.channels["c5"]
        (16, 32)
        >>> net = bundle.load()
        >>> features = net(torch.rand(2, 3, 64, 96))
        >>> {level: tuple(map_.shape) for level, map_ in features.items()}
        {'c3': (2, 8, 8, 12), 'c4': (2, 16, 4, 6), 'c5': (2, 32, 2, 3)}
    """

    name: str
    channels: dict[str, int] = field(hash=False)
    strides: dict[str, int] = field(default_factory=lambda: {"c3": 8, "c4": 16, "c5": 32}, hash=False)
    levels: tuple[str, ...] = LEVELS
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    input_size: tuple[int, int] = (224, 224)
    imagenet: HubWeights | None = None
    version: int = 1
    # How to build the full network (called on the meta device), which of its children run
    # before the first level, and which child produces each level.
    _build: Callable[[], nn.Module] | None = field(default=None, repr=False, compare=False)
    _stem: tuple[str, ...] = field(default=(), repr=False)
    _stages: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if set(self.channels) != set(self.levels) or set(self.strides) != set(self.levels):
            raise ValueError(
                f"bundle {self.name!r}: channels {self.channels} and strides {self.strides} "
                f"must name exactly the levels {self.levels}"
            )
        if self._build is not None and len(self._stages) != len(self.levels):
            raise ValueError(f"bundle {self.name!r}: one stage per level, got {self._stages}")

    def load(
        self,
        weights: Weights = None,
        *,
        layers: str | Iterable[str] = LEVELS,
        trainable: bool = False,
    ) -> VisualBackbone:
        """Build the backbone, with its weights, computing only the requested levels.

        Args:
            weights: None (or "random") for the deterministic random initialisation;
                "imagenet" for torchvision's ImageNet weights from the torch hub cache (never
                downloaded); or the path of a local checkpoint (a state dict, bare or under
                "state_dict" / "model" / "backbone"; "module." / "backbone." prefixes are
                stripped). Deformable bundles take plain ResNet weights, offsets staying zero.
            layers: Levels to return; stages deeper than the deepest are not built.
            trainable: False (default) gives a frozen module: parameters without gradients and
                kept in eval mode even under ``.train()``. True gives a module in train mode
                with gradients, for fine-tuning; save its ``state_dict()`` and pass the file
                as `weights` to load it back frozen.

        Raises:
            WeightsNotFoundError: The weights file is missing (the message says where to put
                the ImageNet file and where it comes from).
            WeightsError: The checkpoint cannot be read or does not fit (the message names the
                file and a few missing / unexpected keys).

        Example:
            >>> net = visual_bundle("debug").load(layers=("c3",))
            >>> list(net(torch.rand(1, 3, 32, 32))), net.training, net.trainable
            (['c3'], False, False)
        """
        if self._build is None:
            raise ValueError(f"bundle {self.name!r} has no network to build")
        layers = self._canonical_layers(layers)
        path = self._weights_path(weights)
        with torch.device("meta"):  # no memory, no draws from the global generator
            full = self._build()
        full_shapes = {key: value.shape for key, value in full.state_dict().items()}
        deepest = max(self.levels.index(level) for level in layers)
        stages = list(zip(self.levels, self._stages, strict=True))  # (level, module name)
        kept = [(name, getattr(full, name)) for name in self._stem]
        kept += [(name, getattr(full, name)) for _, name in stages[: deepest + 1]]
        generator = torch.Generator().manual_seed(RANDOM_SEED)
        for _, module in kept:
            module.to_empty(device="cpu")
            _initialise(module, generator)
        backbone = VisualBackbone(
            self,
            kept,
            {name: level for level, name in stages[: deepest + 1]},
            layers,
            trainable=trainable,
        )
        if path is not None:
            _load_weights(backbone, path, full_shapes)
        backbone.requires_grad_(trainable)
        backbone.train(trainable)
        return backbone

    def fingerprint(
        self, weights: Weights = None, *, layers: str | Iterable[str] = LEVELS
    ) -> dict[str, Any]:
        """Everything that changes the features, as a JSON-ready dict (no paths).

        The weights are identified by content: "random:seed=0", "imagenet:<file name>" with
        the file's sha256, or "file:<sha256>" for a local checkpoint, so the same checkpoint
        under two paths gives one fingerprint. Hashing a file reads it once per process (the
        hash is cached per path, size and modification time).

        Args:
            weights: As for `load`.
            layers: As for `load`; their order does not matter.

        Raises:
            WeightsNotFoundError: The weights file is missing.

        Example:
            >>> bundle = visual_bundle("debug")
            >>> fp = bundle.fingerprint(layers=("c4", "c3"))
            >>> fp["backbone"], fp["layers"], fp["weights"]
            ('debug', ['c3', 'c4'], 'random:seed=0')
        """
        layers = self._canonical_layers(layers)
        path = self._weights_path(weights)
        if path is None:
            identity, digest = f"random:seed={RANDOM_SEED}", None
        elif weights == "imagenet":
            digest = file_sha256(path)
            identity = f"imagenet:{path.name}"
        else:
            digest = file_sha256(path)
            identity = f"file:{digest}"
        return {
            "backbone": self.name,
            "backbone_version": self.version,
            "layers": list(layers),
            "mean": list(self.mean),
            "std": list(self.std),
            "weights": identity,
            "weights_sha256": digest,
            "torch": _major_minor(torch.__version__),
            "torchvision": _major_minor(torchvision.__version__),
        }

    def _canonical_layers(self, layers: str | Iterable[str]) -> tuple[str, ...]:
        requested = {layers} if isinstance(layers, str) else set(layers)
        unknown = sorted(requested - set(self.levels))
        if unknown or not requested:
            raise ValueError(
                f"bundle {self.name!r} has levels {list(self.levels)}; "
                f"got layers={sorted(requested)}"
            )
        return tuple(level for level in self.levels if level in requested)

    def _weights_path(self, weights: Weights) -> Path | None:
        if weights is None or weights == "random":
            return None
        if weights == "imagenet":
            if self.imagenet is None:
                raise ValueError(
                    f"bundle {self.name!r} has no ImageNet weights; "
                    "use weights=None or a checkpoint path"
                )
            return self.imagenet.require(f"ImageNet weights of {self.name}")
        return Path(weights)


class VisualBackbone(nn.Module):
    """A loaded backbone: normalises images in [0, 1], returns the requested levels.

    Built by `VisualBundle.load`. Parameter names are those of the underlying network
    (torchvision's for ResNets), so its ``state_dict()`` loads back through
    ``bundle.load(weights=path)``.

    Args:
        bundle: The bundle it was loaded from.
        modules: (name, module) pairs run in order: the stem, then one stage per level.
        stages: Name of each stage module -> the level it produces.
        layers: Levels to return.
        trainable: Whether it may leave eval mode (see `VisualBundle.load`).

    Shape:
        images: (B, 3, H, W) float RGB in [0, 1].
        output: level -> (B, channels[level], ceil(H / stride), ceil(W / stride)).

    Example:
        >>> net = visual_bundle("debug").load(layers="c4")
        >>> tuple(net(torch.rand(1, 3, 40, 64))["c4"].shape)
        (1, 16, 3, 4)
        >>> net.train().training  # frozen modules stay in eval mode
        False
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        bundle: VisualBundle,
        modules: Sequence[tuple[str, nn.Module]],
        stages: Mapping[str, str],
        layers: Sequence[str],
        *,
        trainable: bool = False,
    ) -> None:
        super().__init__()
        self.bundle = bundle
        self.layers = tuple(layers)
        self.trainable = trainable
        self._order = [name for name, _ in modules]
        self._levels = dict(stages)
        for name, module in modules:
            self.add_module(name, module)
        # Not persistent: they are the bundle's constants, not weights to save or load.
        self.register_buffer("mean", torch.tensor(bundle.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(bundle.std).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> VisualBackbone:
        """Switch train / eval mode; a frozen (not `trainable`) backbone always stays in eval."""
        return super().train(mode and self.trainable)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Feature maps of the requested levels.

        Shape:
            images: (B, 3, H, W) float RGB in [0, 1].
            output: level -> (B, C, ceil(H / stride), ceil(W / stride)).
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images (B, 3, H, W), got shape {tuple(images.shape)}")
        if not images.is_floating_point():
            raise ValueError(
                f"expected float images in [0, 1], got {images.dtype} (divide uint8 by 255)"
            )
        x = (images - self.mean) / self.std  # (B, 3, H, W)
        features = {}
        for name in self._order:
            x = getattr(self, name)(x)
            level = self._levels.get(name)
            if level in self.layers:
                features[level] = x  # (B, C, H / stride, W / stride)
        return features

    def extra_repr(self) -> str:
        return f"bundle={self.bundle.name!r}, layers={self.layers}, trainable={self.trainable}"


_REGISTRY: dict[str, VisualBundle] = {}


def register_visual_bundle(bundle: VisualBundle, *, replace: bool = False) -> VisualBundle:
    """Add a bundle to the registry under its name.

    Args:
        bundle: The bundle.
        replace: Allow replacing a bundle of the same name.

    Returns:
        `bundle`, so it can be used as ``NAME = register_visual_bundle(VisualBundle(...))``.

    Example:
        >>> custom = register_visual_bundle(visual_bundle("debug"), replace=True)
        >>> custom.name in list_visual_bundles()
        True
    """
    if bundle.name in _REGISTRY and not replace:
        raise ValueError(f"a visual bundle named {bundle.name!r} is already registered")
    _REGISTRY[bundle.name] = bundle
    return bundle


def visual_bundle(name: str) -> VisualBundle:
    """The registered bundle called `name`.

    Example:
        >>> visual_bundle("resnet50").channels
        {'c3': 512, 'c4': 1024, 'c5': 2048}
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown visual bundle {name!r}; known: {list_visual_bundles()}"
        ) from None


def list_visual_bundles() -> list[str]:
    """Names of the registered bundles, sorted.

    Example:
        >>> list_visual_bundles()
        ['debug', 'resnet18', 'resnet18_deform', 'resnet50', 'resnet50_deform']
    """
    return sorted(_REGISTRY)


def _major_minor(version: str) -> str:
    return ".".join(version.split("+")[0].split(".")[:2])


@torch.no_grad()
def _initialise(module: nn.Module, generator: torch.Generator) -> None:
    """torchvision's ResNet initialisation, drawn from `generator` in module order."""
    offsets = {id(m.conv_offset) for m in module.modules() if isinstance(m, DeformableConv2d)}
    for m in module.modules():
        if id(m) in offsets:
            # Drawing nothing here keeps the draws of a deformable ResNet aligned with those of
            # the plain one, so both start with the same weights.
            for parameter in m.parameters(recurse=False):
                nn.init.zeros_(parameter)
        elif isinstance(m, nn.Conv2d | DeformConv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
            m.reset_running_stats()
        elif any(True for _ in m.parameters(recurse=False)) or any(True for _ in m.buffers(recurse=False)):
            raise TypeError(f"no deterministic initialisation for {type(m).__name__}")


def _load_weights(backbone: VisualBackbone, path: Path, full_shapes: Mapping[str, torch.Size]) -> None:
    state = read_state_dict(path)
    expected = {key: value.shape for key, value in backbone.state_dict().items()}
    has_offsets = any("conv_offset." in key for key in state)
    matched = match_state_dict(
        state,
        expected,
        source=path,
        # The classifier and the stages deeper than requested are in the file, not the module.
        ignored=set(full_shapes) - set(expected),
        optional=() if has_offsets else [key for key in expected if "conv_offset." in key],
    )
    result = backbone.load_state_dict(matched, strict=False)
    if result.unexpected_keys:  # match_state_dict has already checked; guards the contract
        raise WeightsError(path, f"unexpected keys {result.unexpected_keys[:5]}")
