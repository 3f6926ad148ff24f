"""Dataset loaders: each reads one format and returns a `Manifest` of `VideoRecord`s."""

from __future__ import annotations

from avlab.datasets.manifest import Manifest, VideoRecord
from avlab.datasets.masks import Masks, MaskSource, PngMasks

__all__ = ["Manifest", "MaskSource", "Masks", "PngMasks", "VideoRecord"]
