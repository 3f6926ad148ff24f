"""The Lightning data module: training and validation batches from a feature store (or raw videos).

Training batches mix two kinds of items, shuffled together: frames of the store's natural
mixtures (each video's own soundtrack and sources) and, given a store of solo clips,
mix-and-separate mixtures made on the fly from their cached complex STFTs. Validation has one
loader of the natural split's annotated frames (masks, and separation of the natural
mixtures), and, when the solo store has the validation split, a second one of fixed solo
mixtures (volume 1) for the Sound of Pixels separation protocol.

With ``end_to_end=True`` the "store" arguments are raw datasets (a folder or a `Manifest`),
decoded once into memory (`DecodedFrames`); batches then carry images, not features.

Example:
    >>> import tempfile
    >>> from avlab.testing import tiny_store
    >>> data = AVDataModule(tiny_store(tempfile.mkdtemp()).encoding["source"], val_split=None,
    ...                     batch_size=4, num_stft_frames=16)
    >>> data.setup("fit")
    >>> batch = next(iter(data.train_dataloader()))
    >>> tuple(batch["visual_c3"].shape), tuple(batch["mixture_mag"].shape)
    ((4, 8, 4, 4), (4, 512, 16))
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
import torch

from avlab.datasets.manifest import Manifest
from avlab.errors import AvlabError
from avlab.train.datasets import MixFrames, NaturalFrames
from avlab.train.frames import DecodedFrames, FrameTable, StoreFrames, store_info
from avlab.train.items import StftWindow, collate
from avlab.train.resume import EpochSampler, ResumableLoader

__all__ = ["AVDataModule", "choose_num_stft_frames"]

Source = str | os.PathLike[str] | Manifest


def choose_num_stft_frames(num_atime: int, multiple: int, *, cap: int = 256) -> int:
    """T: the audio's STFT frames (at most `cap`, PixelPlayer's 256) rounded up to `multiple`.

    Example:
        >>> choose_num_stft_frames(44, 16), choose_num_stft_frames(87, 64), choose_num_stft_frames(1000, 128)
        (48, 128, 256)
    """
    frames = max(1, min(num_atime, cap))
    return int(math.ceil(frames / multiple) * multiple)


def store_path(store: Any) -> Any:
    """The path of an opened store (xarray Dataset from open_store / cache_features), or `store` itself."""
    encoding = getattr(store, "encoding", None)
    if isinstance(encoding, dict) and "source" in encoding:
        return encoding["source"]
    return store


class AVDataModule(pl.LightningDataModule):
    """Batches in the `avlab.models` contract from a store (and a store of solo clips).

    Args:
        store: Feature store (path or opened) of the natural mixtures; with `end_to_end`, a
            raw dataset (folder or `Manifest`).
        solo_store: Store (or raw dataset) of solo clips for mix-and-separate; None: none.
        train_split: Split to train on.
        val_split: Split to validate on; None: no validation.
        batch_size: Items per batch.
        num_stft_frames: T, STFT frames per separation window (see `choose_num_stft_frames`);
            None: the clips' length, set before `setup` by `fit`.
        num_mix: Clips per mix-and-separate mixture.
        volume: Range of mix-and-separate volume gains in training.
        augment: Random cached views (or mirrors of decoded frames) and volume gains.
        separation: Add separation keys to batches where the data allows.
        separation_eval_items: Fixed solo mixtures in the second validation loader.
        num_workers: DataLoader worker processes (spawned; 0 reads in the training process).
        seed: Seed of every draw.
        in_memory: Hold the stores' arrays in RAM.
        end_to_end: Read raw videos instead of stores.
        size: Frame size for decoding (end to end).
        fps: Frame sampling rate for decoding (end to end; None: the dataset's frames).
        progress: Progress bar while decoding.
    """

    def __init__(
        self,
        store: Any,
        *,
        solo_store: Any = None,
        train_split: str = "train",
        val_split: str | None = "val",
        batch_size: int = 16,
        num_stft_frames: int | None = None,
        num_mix: int = 2,
        volume: Sequence[float] = (0.5, 1.5),
        augment: bool = True,
        separation: bool = True,
        separation_eval_items: int = 16,
        num_workers: int = 0,
        seed: int = 0,
        in_memory: bool = True,
        end_to_end: bool = False,
        size: int | tuple[int, int] = 128,
        fps: float | None = None,
        progress: bool = False,
    ) -> None:
        super().__init__()
        self.store, self.solo_store = store_path(store), store_path(solo_store)
        self.train_split, self.val_split = train_split, val_split
        self.batch_size, self.num_stft_frames = batch_size, num_stft_frames
        self.num_mix, self.volume, self.augment = num_mix, tuple(volume), augment
        self.separation, self.separation_eval_items = separation, separation_eval_items
        self.num_workers, self.seed, self.in_memory = num_workers, seed, in_memory
        self.end_to_end, self.size, self.fps, self.progress = end_to_end, size, fps, progress
        self._tables: dict[tuple[str, str], FrameTable] = {}
        self._info: dict[str, Any] | None = None
        self.train_sets: list[torch.utils.data.Dataset] = []
        self.val_sets: list[torch.utils.data.Dataset] = []

    # What the data is: read before the system is built.

    def _table(self, which: str, split: str) -> FrameTable:
        key = (which, split)
        if key not in self._tables:
            source = self.store if which == "natural" else self.solo_store
            if self.end_to_end:
                self._tables[key] = DecodedFrames(source, split=split, size=self.size, fps=self.fps,
                                                  progress=self.progress)
            else:
                self._tables[key] = StoreFrames(source, split=split, in_memory=self.in_memory)
        return self._tables[key]

    @property
    def info(self) -> dict[str, Any]:
        """``channels`` (level -> C; end to end: None), ``mask_size``, ``categories``,
        ``num_sources`` (N per item), ``num_atime`` (longest clip's STFT frames, 0 without
        audio), ``separates`` (whether training batches carry separation keys), ``stft``
        (the separation STFT's parameters)."""
        if self._info is None:
            self._info = self._describe()
        return self._info

    def _describe(self) -> dict[str, Any]:
        if self.end_to_end:
            table = self._table("natural", self.train_split)
            assert isinstance(table, DecodedFrames)
            first = table.videos[0]
            info: dict[str, Any] = {
                "channels": None,
                "mask_size": tuple(first["mask"].shape[-2:]) if "mask" in first else None,
                "categories": table.categories,
                "num_sources": max((v["source_stft"].shape[0] for v in table.videos if "source_stft" in v), default=0),
                "num_atime": max((v["stft"].shape[0] for v in table.videos if "stft" in v), default=0),
                "stft": None,
            }
        else:
            info = store_info(self.store)
            splits = info["splits"]
            for split in (self.train_split, self.val_split):
                if split is not None and split not in splits:
                    raise AvlabError(f"{self.store}: no videos in split {split!r} (splits: {splits}); "
                                     "pass val_split=None to train without validation")
        has_solo = self.solo_store is not None
        if has_solo and not info["num_sources"]:
            raise AvlabError(f"{self.store} has no source STFTs: mixing its frames with solo clips needs them "
                             "(train on the solo store alone, or cache the mixtures with ground truth)")
        info["num_sources"] = max(info["num_sources"], self.num_mix if has_solo else 0, 1)
        info["separates"] = bool(self.separation and (info["num_sources"] and info["num_atime"]))
        return info

    def window(self) -> StftWindow:
        """The STFT window rule of every item."""
        if self.num_stft_frames is None:
            raise ValueError("set num_stft_frames (fit does, from the system's time_multiple) before setup")
        stft = self.info.get("stft") or {}
        return StftWindow(self.num_stft_frames, sample_rate=int(stft.get("sample_rate", 11025)),
                          hop_length=int(stft.get("hop_length", 256)))

    # Lightning hooks.

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets (once)."""
        if self.train_sets:
            return
        window, info = self.window(), self.info
        common = {"num_sources": info["num_sources"], "num_stft_frames": window.num_frames, "window": window}
        separation = info["separates"]
        self.train_sets = [NaturalFrames(self._table("natural", self.train_split), separation=separation,
                                         augment=self.augment, seed=self.seed, **common)]
        if self.solo_store is not None and separation:
            self.train_sets.append(MixFrames(self._table("solo", self.train_split), num_mix=self.num_mix,
                                             volume=self.volume, augment=self.augment, seed=self.seed, **common))
        if self.val_split is None:
            return
        self.val_sets = [NaturalFrames(self._table("natural", self.val_split), separation=separation,
                                       annotated_only=True, seed=self.seed, **common)]
        if self.solo_store is not None and separation and self._has_split(self.solo_store, self.val_split):
            self.val_sets.append(MixFrames(self._table("solo", self.val_split), num_mix=self.num_mix,
                                           seed=self.seed + 1, length=self.separation_eval_items, **common))

    def _has_split(self, source: Any, split: str) -> bool:
        if self.end_to_end:
            try:
                self._table("solo", split)
            except AvlabError:
                return False
            return True
        return split in store_info(source)["splits"]

    def set_epoch(self, epoch: int) -> None:
        """Make the training datasets draw this epoch's views, partners and gains."""
        for dataset in self.train_sets:
            dataset.set_epoch(epoch)  # type: ignore[attr-defined]

    def _loader(self, dataset: torch.utils.data.Dataset, *, shuffle: bool) -> torch.utils.data.DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        # Workers are spawned: forking a process that has used zarr can deadlock (STORE.md). Not
        # persistent: each epoch's workers get a fresh copy of the dataset, with its epoch's draws.
        context = "spawn" if self.num_workers > 0 else None
        if shuffle:
            # The epoch's order from (seed, epoch), and its place in it saved in checkpoints.
            sampler = EpochSampler(len(dataset), seed=self.seed)  # type: ignore[arg-type]
            return ResumableLoader(dataset, batch_size=self.batch_size, sampler=sampler, collate_fn=collate,
                                   num_workers=self.num_workers, generator=generator, multiprocessing_context=context)
        return torch.utils.data.DataLoader(dataset, batch_size=self.batch_size, shuffle=False, collate_fn=collate,
                                           num_workers=self.num_workers, generator=generator,
                                           multiprocessing_context=context)

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        """Natural frames and solo mixtures, shuffled together (a `ResumableLoader`)."""
        dataset = self.train_sets[0] if len(self.train_sets) == 1 else torch.utils.data.ConcatDataset(self.train_sets)
        return self._loader(dataset, shuffle=True)

    def val_dataloader(self) -> list[torch.utils.data.DataLoader]:
        """[annotated natural frames, fixed solo mixtures (when there are)]."""
        return [self._loader(dataset, shuffle=False) for dataset in self.val_sets]
