"""Tiny store batches for the systems' tests, and one torch thread.

The batches are built by the training package's item builders from a real cached store (the
debug backbone on two SynthAV clips at 64 px: C5 is 2 x 2), so the systems are tested on the
batch contract exactly as training produces it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from avlab.testing import tiny_store
from avlab.train import MixFrames, NaturalFrames, StoreFrames, collate

NUM_STFT_FRAMES = 16  # a multiple of 2**3, the tiny preset's U-Net depth


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(tiny_store(tmp_path_factory.mktemp("models-store"), size=64).encoding["source"])


@pytest.fixture(scope="session")
def frames(store_path: Path) -> StoreFrames:
    return StoreFrames(store_path)


@pytest.fixture()
def natural_batch(frames: StoreFrames) -> dict[str, Any]:
    """Four frames of natural mixtures: every source on the batch's frame."""
    dataset = NaturalFrames(frames, num_sources=2, num_stft_frames=NUM_STFT_FRAMES)
    return collate([dataset[i] for i in range(4)])


@pytest.fixture()
def mix_batch(frames: StoreFrames) -> dict[str, Any]:
    """Three mix-and-separate items: sources on other clips' frames (source_visual_*)."""
    dataset = MixFrames(frames, num_mix=2, num_sources=2, num_stft_frames=NUM_STFT_FRAMES, augment=True)
    return collate([dataset[i] for i in range(3)])

