"""`EpochClock`: seconds and samples of every training epoch, as a Lightning callback.

Pass it to `avlab.fit` (``callbacks=[clock]``) to measure steady-state training throughput:
an epoch runs from its start to the end of its last batch, so it holds every read, collation
and step of the epoch, and nothing of validation or checkpointing.

Example:
    >>> clock = EpochClock()
    >>> clock.epochs = [(2.0, 10), (1.0, 10), (1.0, 10)]
    >>> clock.samples_per_second(skip=1)
    10.0
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch

__all__ = ["EpochClock", "batch_size", "seed_everything"]


class EpochClock(pl.Callback):
    """Seconds and samples of every training epoch, from its start to the end of its last batch.

    Attributes:
        epochs: (seconds, samples) per epoch, in order.
    """

    def __init__(self) -> None:
        self.epochs: list[tuple[float, int]] = []
        self._start = self._end = 0.0
        self._samples = 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = self._end = time.perf_counter()
        self._samples = 0

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._samples += batch_size(batch)
        self._end = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.epochs.append((self._end - self._start, self._samples))

    def timed(self, *, skip: int = 1) -> tuple[float, int]:
        """(seconds, samples) summed over the epochs after the first `skip`."""
        kept = self.epochs[skip:]
        return sum(s for s, _ in kept), sum(n for _, n in kept)

    def samples_per_second(self, *, skip: int = 1) -> float:
        """Samples/s over the epochs after the first `skip` (0 without any)."""
        seconds, samples = self.timed(skip=skip)
        return samples / seconds if seconds > 0 else 0.0


def batch_size(batch: Mapping[str, Any]) -> int:
    """Items in a batch: the leading size of its first tensor (frame pairs of VIS batches count once).

    Example:
        >>> batch_size({"first": {"logmel": torch.zeros(3, 64, 96)}, "second": {}})
        3
    """
    for value in batch.values():
        if isinstance(value, torch.Tensor):
            return int(value.shape[0])
        if isinstance(value, Mapping):
            return batch_size(value)
    raise ValueError("a batch without tensors")


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's generators, as Lightning's `seed_everything` (quietly)."""
    pl.seed_everything(seed, verbose=False)
