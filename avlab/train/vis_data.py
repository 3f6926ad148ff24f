"""Video instance segmentation data: frame pairs for training, frames in order for tracking, ground truth.

AFCV and its baselines train on pairs of frames (t, t + d) of one video, 0 < |d| <= `max_offset`
(CrossVIS's crossover learning; the plain CondInst baseline just uses both frames), with the
same augmentation on both frames. Validation runs every frame of every video in order, so the
tracker sees a video's frames one after the other, and scores the tracks with the YouTube-VIS
evaluation against ground truth built from the same frames (`ytvis_ground_truth`).

Both read a `avlab.train.frames.FrameTable`: cached features (`StoreFrames`) or decoded frames
(`DecodedFrames`, end to end), so the same code serves the two.

Frame items (the batch contract of `avlab.models`, plus instances)::

    visual_c3..c5 or image      as in `avlab.models`
    logmel            (64, 96)   the frame's log-mel patch
    instance_mask     (I, H, W)  uint8: 1 in, 0 out, 255 padding / unannotated
    instance_label    (I,)       int64 class index in [0, K) (the store's categories without
                                 "background"), -1 for padding
    instance_identity (I,)       int64 row of the identity classifier (`IdentityTable`), -1 unknown
    sounding          (I,)       int8 1 sounding, 0 silent, -1 unknown
    video, frame      ()         int64 the video's position in the table and the frame index

Example:
    >>> import tempfile
    >>> from avlab.testing import tiny_store
    >>> from avlab.train.frames import StoreFrames
    >>> frames = StoreFrames(tiny_store(tempfile.mkdtemp()).encoding["source"])
    >>> pairs = FramePairs(frames, IdentityTable.from_frames(frames), max_offset=2)
    >>> first, second = pairs[0]
    >>> tuple(first["instance_mask"].shape) == tuple(second["instance_mask"].shape), first["video"] == second["video"]
    (True, tensor(True))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pycocotools import mask as mask_utils

from avlab.train.datamodule import store_path
from avlab.train.frames import DecodedFrames, FrameTable, StoreFrames, store_info
from avlab.train.resume import EpochSampler, ResumableLoader

__all__ = [
    "FramePairs",
    "VISDataModule",
    "IdentityTable",
    "OrderedFrames",
    "category_labels",
    "collate_frames",
    "collate_pairs",
    "vis_item",
    "ytvis_ground_truth",
]

_VISUAL_PREFIXES = ("visual_", "image")


def category_labels(categories: Sequence[str]) -> tuple[list[str], int]:
    """The detector's classes: the store's categories without a leading "background".

    Returns:
        (class names, offset) with ``label = category index - offset``.

    Example:
        >>> category_labels(["background", "violin", "flute"])
        (['violin', 'flute'], 1)
    """
    names = list(categories)
    offset = 1 if names and names[0] == "background" else 0
    return names[offset:], offset


class IdentityTable:
    """The instance identities of a training split: one classifier row per (video, instance id).

    Identity counts come from the data (AFCV's embedding classifier has one output per training
    identity), never from a constant.

    Attributes:
        rows: (video position, instance id) -> row.
    """

    def __init__(self, rows: Mapping[tuple[int, int], int]) -> None:
        self.rows = dict(rows)

    @classmethod
    def from_frames(cls, frames: FrameTable) -> IdentityTable:
        """Every instance id of every video of `frames` (ids < 0 are padding)."""
        rows: dict[tuple[int, int], int] = {}
        seen: set[int] = set()
        for index, (video, _) in enumerate(frames.items):
            if video in seen:
                continue
            seen.add(video)
            for instance in _np(frames.frame(index).get("instance_id", np.zeros(0, np.int64))).tolist():
                if instance >= 0:
                    rows.setdefault((video, int(instance)), len(rows))
        return cls(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def lookup(self, video: int, instance_ids: np.ndarray) -> np.ndarray:
        """Rows of a video's instance ids, -1 where unknown. (I,) -> (I,) int64."""
        return np.asarray([self.rows.get((video, int(i)), -1) for i in instance_ids], np.int64)


def vis_item(raw: Mapping[str, Any], *, offset: int, identities: IdentityTable | None = None,
             frame: int = 0) -> dict[str, torch.Tensor]:
    """A raw frame (`avlab.train.frames`) as a frame item with its instances (module docstring).

    Raises:
        ValueError: The frame has no instance masks (the data has no instances to learn).
    """
    if "instance_mask" not in raw or "instance_category" not in raw:
        raise ValueError("video instance segmentation needs instance masks and categories in the data")
    out: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        if key.startswith(_VISUAL_PREFIXES):
            out[key] = torch.as_tensor(value)
    out["logmel"] = torch.as_tensor(_np(raw["logmel"]), dtype=torch.float32)
    masks = _np(raw["instance_mask"]).astype(np.uint8)  # (I, H, W)
    categories = _np(raw["instance_category"]).astype(np.int64)  # (I,)
    ids = _np(raw.get("instance_id", np.full(len(categories), -1))).astype(np.int64)
    labels = np.where(categories >= offset, categories - offset, -1)
    video = int(raw.get("video", 0))
    rows = identities.lookup(video, ids) if identities is not None else np.full(len(ids), -1, np.int64)
    sounding = _np(raw.get("sounding", np.full(len(ids), -1))).astype(np.int8)
    out.update(
        instance_mask=torch.from_numpy(masks),
        instance_label=torch.from_numpy(labels),
        instance_identity=torch.from_numpy(np.where(ids >= 0, rows, -1)),
        sounding=torch.from_numpy(sounding),
        video=torch.tensor(video),
        frame=torch.tensor(int(frame)),
    )
    return out


class FramePairs(torch.utils.data.Dataset):
    """Pairs of frames (t, t + d) of one video, 0 < |d| <= `max_offset`, the same view on both.

    The partner and the cached view are drawn from `seed`, the epoch and the item index, so
    epochs are reproducible. A video of one frame pairs the frame with itself.

    Args:
        frames: The split's frame table.
        identities: Identity rows (`IdentityTable.from_frames` of the training split).
        max_offset: Largest |d| in frames (CrossVIS: 20).
        augment: Random cached views (mirrors when the table decodes frames).
        seed: Seed of the draws.
        offset: Category index of the first class (`category_labels`).
    """

    def __init__(self, frames: FrameTable, identities: IdentityTable, *, max_offset: int = 20,
                 augment: bool = True, seed: int = 0, offset: int = 1) -> None:
        if max_offset < 1:
            raise ValueError(f"max_offset must be >= 1, got {max_offset}")
        self.frames, self.identities = frames, identities
        self.max_offset, self.augment, self.seed, self.offset = max_offset, augment, seed, offset
        self.epoch = 0
        self.by_video: dict[int, list[tuple[int, int]]] = {}  # video -> [(frame, index)]
        for index, (video, t) in enumerate(frames.items):
            self.by_video.setdefault(video, []).append((t, index))

    def set_epoch(self, epoch: int) -> None:
        """Draw new partners and views for `epoch`."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        rng = np.random.default_rng((self.seed, self.epoch, index))
        video, t = self.frames.items[index]
        near = [(u, k) for u, k in self.by_video[video] if 0 < abs(u - t) <= self.max_offset]
        u, partner = near[int(rng.integers(len(near)))] if near else (t, index)
        view, flip = 0, False
        if self.augment:
            if self.frames.mirrorable:
                flip = bool(rng.random() < 0.5)
            else:
                view = int(rng.integers(self.frames.num_views(index)))
        first = self.frames.frame(index, view=view, flip=flip)
        second = self.frames.frame(partner, view=view, flip=flip)
        return (vis_item(first, offset=self.offset, identities=self.identities, frame=t),
                vis_item(second, offset=self.offset, identities=self.identities, frame=u))


class OrderedFrames(torch.utils.data.Dataset):
    """Every frame of a split in (video, frame) order, original view: what the tracker reads."""

    def __init__(self, frames: FrameTable, *, offset: int = 1) -> None:
        self.frames, self.offset = frames, offset
        self.order = sorted(range(len(frames)), key=lambda k: frames.items[k])

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        position = self.order[index]
        return vis_item(self.frames.frame(position), offset=self.offset, frame=self.frames.items[position][1])


# Per-instance keys and their padding: videos decoded one by one have their own instance counts.
_INSTANCE_PADDING = {"instance_mask": 255, "instance_label": -1, "instance_identity": -1, "sounding": -1}


def collate_frames(items: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack frame items into a batch (every key, first axis B), padding the instance axis.

    Example:
        >>> a = {"instance_label": torch.tensor([3]), "video": torch.tensor(0)}
        >>> b = {"instance_label": torch.tensor([1, 2]), "video": torch.tensor(1)}
        >>> collate_frames([a, b])["instance_label"].tolist()
        [[3, -1], [1, 2]]
    """
    out = {}
    for key in items[0]:
        values = [item[key] for item in items]
        if key in _INSTANCE_PADDING:
            count = max(v.shape[0] for v in values)
            values = [torch.cat([v, v.new_full((count - v.shape[0], *v.shape[1:]), _INSTANCE_PADDING[key])])
                      for v in values]
        out[key] = torch.stack(values)
    return out


def collate_pairs(
    pairs: Sequence[tuple[Mapping[str, torch.Tensor], Mapping[str, torch.Tensor]]],
) -> dict[str, dict[str, torch.Tensor]]:
    """Stack pairs: ``{"first": batch at t, "second": batch at t + d}``; row b of both is one video."""
    return {"first": collate_frames([a for a, _ in pairs]), "second": collate_frames([b for _, b in pairs])}


def ytvis_ground_truth(
    frames: FrameTable,
    categories: Sequence[str],
    *,
    sounding_only: bool = False,
    video_ids: Sequence[str] | None = None,
) -> dict[str, Any]:
    """YouTube-VIS ground truth (the JSON's content) of a frame table's instances.

    Video ids are the table's video positions + 1; category ids are the store's category
    indices (so "background", index 0, is never used). With `sounding_only`, an instance
    keeps its masks only on the frames where it sounds and instances that never sound are
    left out: the ground truth of audio-visual instance segmentation (sounding instances).

    Args:
        frames: The frame table (store or decoded).
        categories: The store's category names.
        sounding_only: Keep sounding instances and frames only.
        video_ids: Names of the videos (the JSON's ``file_names`` folder), by position.

    Returns:
        ``{"videos", "categories", "annotations"}`` for `avlab.eval.ytvis_evaluate`.
    """
    names, offset = category_labels(categories)
    order = sorted(range(len(frames)), key=lambda k: frames.items[k])
    per_video: dict[int, list[int]] = {}
    for position in order:
        per_video.setdefault(frames.items[position][0], []).append(position)
    videos: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for video, positions in sorted(per_video.items()):
        raws = [frames.frame(p) for p in positions]
        masks = np.stack([_np(r["instance_mask"]) for r in raws], axis=1)  # (I, T, H, W)
        sounding = np.stack([_np(r.get("sounding", np.ones(masks.shape[0], np.int8))) for r in raws], axis=1)
        category = _np(raws[0]["instance_category"])
        height, width = masks.shape[-2:]
        name = video_ids[video] if video_ids is not None else f"video{video:05d}"
        videos.append({"id": video + 1, "height": int(height), "width": int(width), "length": len(raws),
                       "file_names": [f"{name}/{t:05d}.jpg" for t in range(len(raws))]})
        for i in range(masks.shape[0]):
            if category[i] < offset:
                continue
            present = (masks[i] == 1) & ((sounding[i] == 1)[:, None, None] if sounding_only else True)
            if not present.any():
                continue
            segmentations: list[Any] = []
            areas: list[Any] = []
            boxes: list[Any] = []
            for t in range(present.shape[0]):
                if not present[t].any():
                    segmentations.append(None)
                    areas.append(None)
                    boxes.append(None)
                    continue
                rle = mask_utils.encode(np.asfortranarray(present[t].astype(np.uint8)))
                rle["counts"] = rle["counts"].decode("ascii")
                segmentations.append(rle)
                areas.append(float(mask_utils.area(rle)))
                boxes.append([float(v) for v in mask_utils.toBbox(rle)])
            annotations.append({"id": len(annotations) + 1, "video_id": video + 1,
                                "category_id": int(category[i]), "segmentations": segmentations,
                                "areas": areas, "bboxes": boxes, "iscrowd": 0})
    return {"videos": videos,
            "categories": [{"id": k + offset, "name": n} for k, n in enumerate(names)],
            "annotations": annotations}


class VISDataModule(pl.LightningDataModule):
    """Frame pairs for training, ordered frames and YouTube-VIS ground truth for validation.

    Args:
        store: Feature store (path or opened); with `end_to_end`, a raw dataset.
        train_split: Split to train on.
        val_split: Split to validate on; None: none.
        batch_size: Pairs per training batch (frames per validation batch).
        max_offset: Largest frame distance within a pair.
        augment: Random cached views (mirrors of decoded frames), the same on both frames.
        num_workers: DataLoader worker processes.
        seed: Seed of the draws.
        in_memory: Hold the store's arrays in RAM.
        end_to_end: Read raw videos instead of a store.
        size: Frame size for decoding (end to end).
        fps: Frame sampling rate for decoding (end to end).
        progress: Progress bar while decoding.
    """

    def __init__(self, store: Any, *, train_split: str = "train", val_split: str | None = "val",
                 batch_size: int = 8, max_offset: int = 20, augment: bool = True, num_workers: int = 0,
                 seed: int = 0, in_memory: bool = True, end_to_end: bool = False,
                 size: int | tuple[int, int] = 128, fps: float | None = None, progress: bool = False) -> None:
        super().__init__()
        self.store = store_path(store)
        self.train_split, self.val_split = train_split, val_split
        self.batch_size, self.max_offset, self.augment = batch_size, max_offset, augment
        self.num_workers, self.seed, self.in_memory = num_workers, seed, in_memory
        self.end_to_end, self.size, self.fps, self.progress = end_to_end, size, fps, progress
        self._tables: dict[str, FrameTable] = {}
        self.ground_truth: dict[str, Any] | None = None
        self.ground_truth_sounding: dict[str, Any] | None = None

    def table(self, split: str) -> FrameTable:
        """The frame table of `split` (read once)."""
        if split not in self._tables:
            if self.end_to_end:
                self._tables[split] = DecodedFrames(self.store, split=split, size=self.size, fps=self.fps,
                                                    progress=self.progress)
            else:
                self._tables[split] = StoreFrames(self.store, split=split, in_memory=self.in_memory)
        return self._tables[split]

    @property
    def categories(self) -> list[str]:
        """The data's category names (store order)."""
        if self.end_to_end:
            return list(getattr(self.table(self.train_split), "categories", []))
        return list(store_info(self.store)["categories"])

    @property
    def identities(self) -> IdentityTable:
        """The training split's identities."""
        if not hasattr(self, "_identities"):
            self._identities = IdentityTable.from_frames(self.table(self.train_split))
        return self._identities

    def setup(self, stage: str | None = None) -> None:
        _, offset = category_labels(self.categories)
        self.train_set = FramePairs(self.table(self.train_split), self.identities, max_offset=self.max_offset,
                                    augment=self.augment, seed=self.seed, offset=offset)
        self.val_set = None
        if self.val_split is not None:
            frames = self.table(self.val_split)
            self.val_set = OrderedFrames(frames, offset=offset)
            self.ground_truth = ytvis_ground_truth(frames, self.categories)
            self.ground_truth_sounding = ytvis_ground_truth(frames, self.categories, sounding_only=True)

    def set_epoch(self, epoch: int) -> None:
        """New partners and views for `epoch`."""
        self.train_set.set_epoch(epoch)

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        # The epoch's order from (seed, epoch), and its place in it saved in checkpoints.
        sampler = EpochSampler(len(self.train_set), seed=self.seed)
        return ResumableLoader(self.train_set, batch_size=self.batch_size, sampler=sampler,
                               collate_fn=collate_pairs, num_workers=self.num_workers, generator=generator,
                               # spawned (zarr and fork do not mix); not persistent, so
                               # each epoch's workers copy the dataset with its epoch
                               multiprocessing_context="spawn" if self.num_workers else None)

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        assert self.val_set is not None
        return torch.utils.data.DataLoader(self.val_set, batch_size=self.batch_size, shuffle=False,
                                           collate_fn=collate_frames, num_workers=self.num_workers,
                                           multiprocessing_context="spawn" if self.num_workers else None)


def _np(value: Any) -> np.ndarray:
    return value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
