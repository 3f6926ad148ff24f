"""What a store was computed with, and its fingerprint: the hash of everything that changes values.

Paths, batch sizes, worker counts and chunking never enter the fingerprint (a store moved to
another disk, or cached with another batch size, holds the same numbers); the backbone, its
weights' content, the frame sampling, resizing, audio parameters, output dtype and compute
precision do.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from avlab.errors import AvlabError

__all__ = ["Recipe", "RecipeMismatchError", "fingerprint", "recipe_differences", "AUDIO_KINDS", "AUGMENTS"]

AUDIO_KINDS = ("stft", "logmel_frames", "raw")
AUGMENTS = ("hflip", "zoom")


class RecipeMismatchError(AvlabError):
    """A store exists at the path with a different recipe than the one asked for."""


@dataclass(frozen=True)
class Recipe:
    """The settings of a feature store, as given by the user.

    Attributes:
        visual: Backbone bundle name (`avlab.backbones.list_visual_bundles()`).
        layers: Backbone levels to cache.
        weights: None (random, seeded), ``"imagenet"`` or a checkpoint path.
        size: Frame size fed to the backbone, (height, width).
        fps: Frame rate to sample at; None keeps the dataset's own frames.
        audio: Audio features: any of ``"stft"``, ``"logmel_frames"``, ``"raw"``.
        raw_sample_rate: Rate of the raw audio kept with ``"raw"``.
        ground_truth: Cache masks, instances, sounding flags and source STFTs when present.
        mask_size: Resolution of cached masks, (height, width); None: `size`.
        augment: Extra views of every training frame: any of ``"hflip"``, ``"zoom"``.
        augment_splits: Splits whose videos get the extra views.
        dtype: Stored dtype of features.
        compression: ``"zstd"`` (level 1) or None. Not part of the fingerprint: it changes
            bytes on disk, not values.
    """

    visual: str = "resnet18"
    layers: tuple[str, ...] = ("c3", "c4", "c5")
    weights: str | None = None
    size: tuple[int, int] = (224, 224)
    fps: float | None = None
    audio: tuple[str, ...] = ("stft", "logmel_frames")
    raw_sample_rate: int = 11025
    ground_truth: bool = True
    mask_size: tuple[int, int] | None = None
    augment: tuple[str, ...] = ()
    augment_splits: tuple[str, ...] = ("train",)
    dtype: str = "float16"
    compression: str | None = "zstd"

    def __post_init__(self) -> None:
        unknown = set(self.audio) - set(AUDIO_KINDS)
        if unknown:
            raise ValueError(f"unknown audio features {sorted(unknown)}; choose from {AUDIO_KINDS}")
        unknown = set(self.augment) - set(AUGMENTS)
        if unknown:
            raise ValueError(f"unknown augmentations {sorted(unknown)}; choose from {AUGMENTS}")
        if self.dtype not in ("float16", "float32"):
            raise ValueError(f"dtype must be float16 or float32, got {self.dtype!r}")
        if self.compression not in ("zstd", None):
            raise ValueError(f"compression must be 'zstd' or None, got {self.compression!r}")
        if self.fps is not None and self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")

    @property
    def views(self) -> tuple[str, ...]:
        """View names along the store's `view` dim: the original, then each augmentation."""
        return ("original", *self.augment)

    @property
    def cached_mask_size(self) -> tuple[int, int]:
        return self.mask_size or self.size


def fingerprint(values: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of `values` (sorted keys, no whitespace).

    Example:
        >>> fingerprint({"b": 1, "a": [1, 2]}) == fingerprint({"a": [1, 2], "b": 1})
        True
    """
    text = json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def recipe_differences(stored: Mapping[str, Any], requested: Mapping[str, Any]) -> list[str]:
    """The fields where two recipe dicts differ, as ``"field: stored X, requested Y"`` lines.

    Example:
        >>> recipe_differences({"fps": 8, "audio": {"n_fft": 1022}}, {"fps": 4, "audio": {"n_fft": 1022}})
        ['fps: stored 8, requested 4']
    """
    a, b = _flatten(stored), _flatten(requested)
    lines = []
    for key in sorted(set(a) | set(b)):
        left, right = a.get(key, "<absent>"), b.get(key, "<absent>")
        # JSON round trips turn tuples into lists: compare as JSON.
        if json.dumps(left, sort_keys=True, default=str) != json.dumps(right, sort_keys=True, default=str):
            lines.append(f"{key}: stored {left}, requested {right}")
    return lines
