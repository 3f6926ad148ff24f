"""A tiny SynthAV dataset and its store with the debug backbone, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_cases import CACHE_OPTIONS

from avlab.datasets.synth import generate, load_synth


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    return generate(root / "synthav", num_videos={"train": 3, "val": 1}, size=32, fps=4, seconds=1.0,
                    sample_rate=11025, renderer="additive", num_solo=0, seed=3)


@pytest.fixture(scope="session")
def manifest(synth_root: Path):  # type: ignore[no-untyped-def]
    return load_synth(synth_root, split=["train", "val"])




@pytest.fixture(scope="session")
def cached(synth_root: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from avlab.store import cache_features

    store = tmp_path_factory.mktemp("store") / "synth.zarr"
    return cache_features(synth_root, store, **CACHE_OPTIONS)
