"""A tiny SynthAV with train and val splits and solo clips, cached with the debug backbone.

Session-scoped: generated and cached once (a few seconds), read by every training test.
One torch thread: the tensors are tiny and the machine is shared.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from avlab.datasets.synth import generate, load_synth
from avlab.store import cache_features


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("train-synth") / "synth", num_videos={"train": 4, "val": 2}, size=32,
                    fps=4, seconds=1.0, renderer="additive", splits=["train", "val"],
                    num_solo={"train": 3, "val": 2})


@pytest.fixture(scope="session")
def mix_store(synth_root: Path) -> Path:
    cache_features(synth_root, synth_root.parent / "mix.zarr", visual="debug", size=32, progress=False)
    return synth_root.parent / "mix.zarr"


@pytest.fixture(scope="session")
def solo_store(synth_root: Path) -> Path:
    solo = load_synth(synth_root, split=["train", "val"], solo=True)
    cache_features(solo, synth_root.parent / "solo.zarr", visual="debug", size=32, progress=False)
    return synth_root.parent / "solo.zarr"
