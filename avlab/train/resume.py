"""Resuming a killed training run exactly: data order, random draws and checkpoints.

A run killed at any step and resumed from its last checkpoint ends with the same weights as
one never interrupted (fixed seed, CPU, deterministic kernels). Three pieces make that so:

- `EpochSampler` shuffles epoch e by a permutation drawn from ``(seed, e)`` alone, and
  `ResumableLoader` records how many batches of the epoch it has handed out; Lightning saves
  that count in the checkpoint (its ``state_dict`` interface) and the resumed loader starts
  after it. The items themselves depend only on (seed, epoch, index) (`avlab.train.datasets`).
- `StepSeeds` reseeds torch, numpy and Python at every training step from (seed, epoch,
  batch), so dropout and any other draw of a redone step repeats the lost one.
- `AtomicCheckpointIO` writes a checkpoint to a temporary file in the same folder, syncs it
  and renames it over the target: a kill mid-write leaves the previous checkpoint whole and
  never a truncated ``.ckpt`` (Lightning's own writer stages in the system temp folder and
  copies when that is another file system, which a kill can cut short).

Example:
    >>> sampler = EpochSampler(6, seed=0)
    >>> first = list(sampler)
    >>> sampler.set_epoch(1)
    >>> second = list(sampler)
    >>> sorted(first) == sorted(second) == list(range(6)), first != second
    (True, True)
    >>> sampler.set_epoch(0)
    >>> list(sampler) == first
    True
"""

from __future__ import annotations

import os
import random
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from avlab.errors import WeightsError, WeightsNotFoundError
from avlab.models.checkpoint import read_checkpoint

__all__ = ["AtomicCheckpointIO", "EpochSampler", "ResumableLoader", "StepSeeds", "last_checkpoint",
           "resume_checkpoint", "step_seed"]

_STEP = re.compile(r"step=(\d+)")


def step_seed(*numbers: int) -> int:
    """A 63-bit seed that depends only on `numbers` (e.g. seed, epoch, batch).

    Example:
        >>> step_seed(0, 1, 2) == step_seed(0, 1, 2) != step_seed(0, 2, 1)
        True
    """
    return int(np.random.SeedSequence([int(n) for n in numbers]).generate_state(2, np.uint64)[0] >> np.uint64(1))


class EpochSampler(torch.utils.data.Sampler[int]):
    """Indices of `size` items, shuffled per epoch by ``(seed, epoch)`` alone.

    Args:
        size: Items in the dataset.
        seed: Seed of the orders.
        shuffle: Shuffle (False: 0, 1, 2, ...).

    Attributes:
        epoch: The epoch whose order `__iter__` yields (`set_epoch`; Lightning calls it).
        start: Position in that order the next `__iter__` starts at (then back to 0).
    """

    def __init__(self, size: int, *, seed: int, shuffle: bool = True) -> None:
        self.size, self.seed, self.shuffle = int(size), int(seed), shuffle
        self.epoch = self.start = 0

    def set_epoch(self, epoch: int) -> None:
        """Yield `epoch`'s order from now on."""
        self.epoch = int(epoch)

    def order(self) -> list[int]:
        """This epoch's order of all the indices."""
        if not self.shuffle:
            return list(range(self.size))
        generator = torch.Generator().manual_seed(step_seed(self.seed, self.epoch))
        return torch.randperm(self.size, generator=generator).tolist()

    def __iter__(self) -> Iterator[int]:
        start, self.start = self.start, 0
        return iter(self.order()[start:])

    def __len__(self) -> int:
        return self.size


class ResumableLoader(torch.utils.data.DataLoader):
    """A DataLoader whose place in the epoch is saved in checkpoints and restored on resume.

    Built as a DataLoader (same arguments) with an `EpochSampler`. ``state_dict()`` is the
    epoch and the batches handed out in it; after ``load_state_dict``, iterating that epoch
    again starts at the next batch. Lightning calls both (its ``combined_loader`` state) and
    expects a restored loader to yield only the epoch's remaining batches. With another
    sampler (Lightning swaps in a `DistributedSampler` under DDP) the handed-out batches are
    read and dropped instead.

    Example:
        >>> loader = ResumableLoader(list(range(10)), batch_size=4, sampler=EpochSampler(10, seed=0))
        >>> batches = iter(loader)
        >>> first = next(batches)
        >>> state = loader.state_dict()
        >>> state
        {'epoch': 0, 'batches': 1}
        >>> again = ResumableLoader(list(range(10)), batch_size=4, sampler=EpochSampler(10, seed=0))
        >>> again.load_state_dict(state)
        >>> [b.tolist() for b in again] == [b.tolist() for b in batches]
        True
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._epoch, self._batches = self._sampler_epoch(), 0
        self._pending: tuple[int, int] | None = None

    def _sampler_epoch(self) -> int:
        return int(getattr(self.sampler, "epoch", 0))

    def state_dict(self) -> dict[str, int]:
        """``{"epoch": e, "batches": b}``: b batches of epoch e were handed out."""
        return {"epoch": self._epoch, "batches": self._batches}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume epoch ``state["epoch"]`` after its first ``state["batches"]`` batches."""
        self._pending = (int(state["epoch"]), int(state["batches"]))
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(self._pending[0])

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        # A generator: the underlying iterator (and its workers) starts at the first batch,
        # after Lightning has set the sampler's epoch.
        epoch = self._sampler_epoch()
        skip = 0
        if self._pending is not None and self._pending[0] == epoch:
            skip = self._pending[1]
        self._pending = None
        self._epoch, self._batches = epoch, skip
        # Lightning skips `on_train_epoch_start` when it resumes mid-epoch: the loader tells
        # the items which epoch's draws to make.
        for part in getattr(self.dataset, "datasets", [self.dataset]):
            if hasattr(part, "set_epoch"):
                part.set_epoch(epoch)
        if self.generator is not None:
            self.generator.manual_seed(step_seed(getattr(self.sampler, "seed", 0), epoch))  # workers' seeds
        sampler = self.sampler
        if isinstance(sampler, EpochSampler) and self.batch_size is not None:
            sampler.start, skip = skip * self.batch_size, 0
        for batch in super().__iter__():
            if skip:
                skip -= 1
                continue
            self._batches += 1
            yield batch


class StepSeeds(pl.Callback):
    """Reseed torch, numpy and Python before every training step from (seed, epoch, batch).

    A step's random draws (dropout, random masks, mixing draws made in the task) then depend
    only on where it is in training, so a step redone after a resume draws what the lost one
    drew. Validation and other steps in between no longer shift them either.
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        seed = step_seed(self.seed, trainer.current_epoch, batch_idx)
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)  # noqa: NPY002 - libraries may draw from the global state
        random.seed(seed)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, made atomic in the checkpoint's own folder.

    The checkpoint goes to a hidden temporary file next to the target, is flushed to disk,
    and is renamed over the target (`os.replace`, atomic on POSIX within one file system).
    A kill at any moment leaves either the old file or the new one, whole; at worst a stray
    ``.*.ckpt.tmp`` file, which nothing reads.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        """Write `checkpoint` to `path` atomically."""
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        atomic_save(checkpoint, path)


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """`torch.save` `obj` to `path` through a synced temporary file renamed over it.

    Example:
        >>> folder = tempfile.mkdtemp()
        >>> atomic_save({"w": torch.ones(2)}, os.path.join(folder, "a.ckpt"))
        >>> os.listdir(folder)
        ['a.ckpt']
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(obj, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    # The rename itself survives a power cut only once the folder's entry is on disk.
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def last_checkpoint(run_dir: str | os.PathLike[str]) -> Path:
    """The run's checkpoint of the highest step in ``{run_dir}/checkpoints``.

    Raises:
        WeightsNotFoundError: The run has no checkpoint.
    """
    folder = Path(run_dir) / "checkpoints"
    found = [(int(m.group(1)), p) for p in folder.glob("*.ckpt")
             if not p.name.startswith(".") and (m := _STEP.search(p.name))]
    if not found:
        raise WeightsNotFoundError(folder, "no checkpoint to resume from (is this a run folder of avlab.fit, "
                                           "saved with checkpoint=True?)")
    return max(found)[1]


def resume_checkpoint(resume: str | os.PathLike[str], runs: str | os.PathLike[str]) -> tuple[Path, Path, int]:
    """(checkpoint, run folder, its step) that ``fit(resume=...)`` continues.

    Args:
        resume: "last" (the newest run under `runs`), a run folder (``version_k``), or one of
            its checkpoint files.
        runs: The system's runs folder, ``{root_dir}/{system}``.

    Raises:
        WeightsNotFoundError: No such run or checkpoint.
        WeightsError: The checkpoint is not under a run folder's ``checkpoints/``, or cannot
            be read (truncated, corrupt, or not a plain-tensor checkpoint).
    """
    if resume == "last":
        versions = [(int(p.name.split("_")[1]), p) for p in Path(runs).glob("version_*")
                    if p.name.split("_")[1].isdigit()]
        if not versions:
            raise WeightsNotFoundError(runs, "no run to resume (resume='last' continues the newest version_k here)")
        run_dir = max(versions)[1]
        checkpoint = last_checkpoint(run_dir)
    elif Path(resume).is_dir():
        run_dir = Path(resume)
        checkpoint = last_checkpoint(run_dir)
    else:
        checkpoint = Path(resume)
        if not checkpoint.is_file():
            raise WeightsNotFoundError(checkpoint, "checkpoint to resume from not found")
        if checkpoint.parent.name != "checkpoints":
            raise WeightsError(checkpoint, "resume from a checkpoint inside a run folder (version_k/checkpoints/); "
                                           "init_from= starts a new run from a checkpoint's weights")
        run_dir = checkpoint.parent.parent
    data = read_checkpoint(checkpoint)
    if "loops" not in data or "optimizer_states" not in data:
        raise WeightsError(checkpoint, "not a training checkpoint (no loop or optimiser state): it cannot be "
                                       "resumed; init_from= starts a new run from its weights")
    return checkpoint, run_dir, int(data.get("global_step", 0))
