"""Torch datasets of training items: natural-mixture frames and mix-and-separate mixtures.

Random choices (cached view, mirror, mixing partners, volume gains) are drawn from
``numpy.random.default_rng((seed, epoch, index))``: an item depends only on those three
numbers, so runs repeat exactly whatever the worker count, and every epoch draws afresh
(`set_epoch`, called by the training task at each epoch's start).

Example:
    >>> import tempfile
    >>> from avlab.testing import tiny_store
    >>> from avlab.train.frames import StoreFrames
    >>> frames = StoreFrames(tiny_store(tempfile.mkdtemp()).encoding["source"])
    >>> mixes = MixFrames(frames, num_sources=2, num_stft_frames=16)
    >>> item = mixes[0]
    >>> tuple(item["source_visual_c5"].shape), item["source_valid"].tolist()
    ((2, 32, 1, 1), [True, True])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from avlab.errors import AvlabError
from avlab.train.frames import FrameTable
from avlab.train.items import StftWindow, mix_item, natural_item

__all__ = ["MixFrames", "NaturalFrames"]


class _EpochDataset(torch.utils.data.Dataset):
    """Shared seeding: draws depend on (seed, epoch, index)."""

    def __init__(self, frames: FrameTable, *, seed: int, augment: bool) -> None:
        self.frames, self.seed, self.augment, self.epoch = frames, seed, augment, 0

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's random choices."""
        self.epoch = int(epoch)

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng((self.seed, self.epoch, index))

    def _raw(self, position: int, rng: np.random.Generator) -> dict[str, Any]:
        # With augmentation: a random cached view, and a random mirror where frames are images.
        view = int(rng.integers(0, self.frames.num_views(position))) if self.augment else 0
        flip = bool(self.augment and self.frames.mirrorable and rng.random() < 0.5)
        return self.frames.frame(position, view=view, flip=flip)


class NaturalFrames(_EpochDataset):
    """Frames of natural mixtures (a video's own soundtrack and sources).

    Args:
        frames: The frame table.
        num_sources: N per item.
        num_stft_frames: T per window.
        window: The STFT window rule (default from `num_stft_frames`).
        separation: Add separation keys where the data has them.
        annotated_only: Keep only frames with a ground-truth mask (evaluation).
        augment: Random cached views (stores) or mirrors (decoded frames).
        seed: Seed of the draws.
    """

    def __init__(
        self,
        frames: FrameTable,
        *,
        num_sources: int,
        num_stft_frames: int,
        window: StftWindow | None = None,
        separation: bool = True,
        annotated_only: bool = False,
        augment: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(frames, seed=seed, augment=augment)
        self.num_sources, self.separation = num_sources, separation
        self.window = window or StftWindow(num_stft_frames)
        positions = list(range(len(frames)))
        if annotated_only:
            positions = [p for p in positions if bool(frames.frame(p).get("annotated", 0))]
        self.positions = positions

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: int) -> dict[str, Any]:
        raw = self._raw(self.positions[index], self._rng(index))
        return natural_item(raw, num_sources=self.num_sources, num_stft_frames=self.window.num_frames,
                            window=self.window, separation=self.separation)


class MixFrames(_EpochDataset):
    """Mix-and-separate items: each frame of a solo-clip table mixed with frames of other clips.

    Item i mixes frame i with `num_mix` - 1 frames drawn from other videos, with volume gains
    U(`volume`) in training (`augment`) and 1 otherwise.

    Args:
        frames: Frame table of solo clips (one sounding performer each).
        num_mix: N, clips per mixture (PixelPlayer: 2).
        num_sources: Sources per item (>= `num_mix`; padding after).
        num_stft_frames: T per window.
        window: The STFT window rule.
        volume: Range of the volume gains in training.
        augment: Random views / mirrors and volume gains.
        seed: Seed of the draws.
        length: Items per epoch (default: one per frame).

    Raises:
        AvlabError: Fewer videos than `num_mix`.
    """

    def __init__(
        self,
        frames: FrameTable,
        *,
        num_mix: int = 2,
        num_sources: int | None = None,
        num_stft_frames: int,
        window: StftWindow | None = None,
        volume: Sequence[float] = (0.5, 1.5),
        augment: bool = False,
        seed: int = 0,
        length: int | None = None,
    ) -> None:
        super().__init__(frames, seed=seed, augment=augment)
        self.num_mix = num_mix
        self.num_sources = num_sources or num_mix
        self.window = window or StftWindow(num_stft_frames)
        self.volume = (float(volume[0]), float(volume[1]))
        self.by_video: dict[int, list[int]] = {}
        for position in range(len(frames)):
            self.by_video.setdefault(frames.video_of(position), []).append(position)
        if len(self.by_video) < num_mix:
            raise AvlabError(f"mixing {num_mix} clips needs at least {num_mix} solo videos, got {len(self.by_video)}")
        self.length = len(frames) if length is None else int(length)

    def __len__(self) -> int:
        return self.length

    def positions(self, index: int) -> list[int]:
        """The frame-table positions of item `index`'s clips, the batch's frame first.

        Example:
            >>> import tempfile
            >>> from avlab.testing import tiny_store
            >>> from avlab.train import StoreFrames
            >>> frames = StoreFrames(tiny_store(tempfile.mkdtemp()).encoding["source"])
            >>> mixes = MixFrames(frames, num_mix=2, num_stft_frames=8)
            >>> first, other = mixes.positions(0)
            >>> first, frames.video_of(first) != frames.video_of(other)
            (0, True)
        """
        return self._draw(index)[1]

    def _draw(self, index: int) -> tuple[np.random.Generator, list[int]]:
        # The item's generator, after it drew the other clips and their frames.
        rng = self._rng(index)
        first = index % len(self.frames)
        chosen = [self.frames.video_of(first)]
        others = [v for v in self.by_video if v != chosen[0]]
        chosen += [int(v) for v in rng.choice(others, size=self.num_mix - 1, replace=False)]
        return rng, [first] + [int(rng.choice(self.by_video[v])) for v in chosen[1:]]

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng, positions = self._draw(index)
        gains = rng.uniform(*self.volume, size=self.num_mix) if self.augment else np.ones(self.num_mix)
        raws = [self._raw(p, rng) for p in positions]
        return mix_item(raws, [float(g) for g in gains], num_sources=self.num_sources,
                        num_stft_frames=self.window.num_frames, window=self.window)
