"""A tiny cached store for doctests, tests and notebooks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["tiny_store"]


def tiny_store(folder: str | os.PathLike[str], *, num_videos: int = 2, size: int = 32, **options: Any) -> Any:
    """Generate a tiny SynthAV train split and cache it with the debug backbone.

    Args:
        folder: Where to put ``synth/`` and ``store.zarr``.
        num_videos: Videos in the split.
        size: Frame size.
        **options: More `cache_features` options (augment, audio, ...).

    Returns:
        The opened store (an xarray Dataset).
    """
    from avlab.datasets.synth import generate
    from avlab.store import cache_features

    folder = Path(folder)
    root = folder / "synth"
    if not (root / "dataset_card.json").exists():
        generate(root, num_videos=num_videos, size=size, fps=4, seconds=1.0, renderer="additive",
                 splits=["train"], num_solo=0)
    return cache_features(root, folder / "store.zarr", visual="debug", size=size, progress=False, **options)
