"""Frame tables: one video frame at a time, in the feature store's layout, from a store or from raw video.

Both tables return the same "raw frame" dict, so one item builder (`avlab.train.items`) serves
head training on cached features and end-to-end training on decoded frames:

- per-frame arrays without the frame axis: ``visual_{level}`` (C, h, w) (`StoreFrames`) or
  ``image`` (3, H, W) float in [0, 1] (`DecodedFrames`), ``logmel`` (64, 96), ``mask`` (mh, mw)
  uint8, ``annotated`` () int8, ``frame_time`` () float64, ``instance_mask`` (I, mh, mw) uint8,
  ``sounding`` (I,) int8;
- per-video arrays whole: ``stft`` (atime, 512) complex64, ``source_stft`` (N, atime, 512)
  complex64 (NaN padding), ``source_instance`` (N,), ``instance_id`` (I,),
  ``instance_category`` (I,), and the counts ``num_atime`` (STFT frames holding audio) and
  ``num_sources`` (real sources);
- ``video`` (position in the table's video list).

Example:
    >>> import tempfile
    >>> from avlab.testing import tiny_store
    >>> ds = tiny_store(tempfile.mkdtemp())
    >>> frames = StoreFrames(ds.encoding["source"])
    >>> len(frames), tuple(frames.frame(0)["visual_c3"].shape), tuple(frames.frame(0)["mask"].shape)
    (8, (8, 4, 4), (32, 32))
"""

from __future__ import annotations

import abc
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import zarr

from avlab.backbones import LogMelFrames, SeparationSTFT
from avlab.datasets.detect import open_source
from avlab.datasets.manifest import Manifest
from avlab.errors import AvlabError
from avlab.store import ClipDataset, schema
from avlab.store.extract import load_inputs
from avlab.store.groups import array, avlab_attrs, read
from avlab.store.plan import plan_video
from avlab.store.reader import StoreReader
from avlab.store.recipe import Recipe

__all__ = ["DecodedFrames", "FrameTable", "StoreFrames", "store_info"]

# Arrays with a frame axis, and arrays per video.
_PER_FRAME = ("logmel", "mask", "annotated", "frame_time", "instance_mask", "sounding")
_PER_VIDEO = ("stft", "source_stft", "source_instance", "instance_id", "instance_category")


def store_info(store: str | os.PathLike[str]) -> dict[str, Any]:
    """What training needs to know about a store: levels, channels, sizes, categories, STFT.

    Returns:
        ``levels`` (list), ``channels`` (level -> C), ``visual`` (the backbone bundle's name),
        ``mask_size`` (h, w), ``categories`` (list of names), ``num_sources`` (the source
        axis' size, 0 without), ``num_atime`` (STFT frames, 0 without), ``stft`` (the
        separation STFT's parameters, or None), ``splits`` (split -> number of done videos).

    Example:
        >>> import tempfile
        >>> from avlab.testing import tiny_store
        >>> info = store_info(tiny_store(tempfile.mkdtemp()).encoding["source"])
        >>> info["channels"], info["mask_size"], info["num_sources"], info["splits"]
        ({'c3': 8, 'c4': 16, 'c5': 32}, (32, 32), 2, {'train': 2})
    """
    path = os.fspath(store)
    group = zarr.open_group(path, mode="r")
    attrs = avlab_attrs(group)
    if not attrs:
        raise AvlabError(f"{path}: not an avlab feature store (no '{schema.ATTRS_KEY}' attributes)")
    levels = [str(level) for level in attrs.get("levels", [])]
    channels = {lvl: int(array(group, schema.visual_var(lvl)).shape[3]) for lvl in levels}
    recipe: dict[str, Any] = dict(attrs.get("recipe", {}))
    mask_size = recipe.get("ground_truth", {}).get("mask_size")
    counts: dict[str, int] = {}
    for split, state in zip(read(group, schema.SPLIT), read(group, schema.STATUS), strict=True):
        if str(state) == schema.STATUS_DONE:
            counts[str(split)] = counts.get(str(split), 0) + 1
    return {
        "levels": levels,
        "channels": channels,
        "visual": recipe.get("visual", {}).get("backbone"),
        "mask_size": tuple(int(s) for s in mask_size) if mask_size else None,
        "categories": list(attrs.get("categories") or []),
        "num_sources": int(array(group, schema.SOURCE_STFT).shape[1]) if schema.SOURCE_STFT in group else 0,
        "num_atime": int(array(group, schema.STFT).shape[1]) if schema.STFT in group else 0,
        "stft": recipe.get("audio", {}).get("stft"),
        "splits": counts,
    }


class FrameTable(abc.ABC):
    """A list of video frames, each read as a raw frame dict (see the module docstring).

    Attributes:
        items: (video, frame) per entry.
        mirrorable: Whether `frame` can mirror (images can; cached features cannot).
    """

    items: list[tuple[int, int]]
    mirrorable = False

    def __len__(self) -> int:
        return len(self.items)

    @abc.abstractmethod
    def frame(self, index: int, *, view: int = 0, flip: bool = False) -> dict[str, Any]:
        """The raw frame dict of entry `index`, in cached view `view`, mirrored if `flip`."""

    def num_views(self, index: int) -> int:
        """Cached views of entry `index`'s video."""
        return 1

    def video_of(self, index: int) -> int:
        """The video of entry `index`."""
        return self.items[index][0]


class StoreFrames(FrameTable):
    """Frames of a feature store's split, read through `avlab.store.ClipDataset`.

    Args:
        store: Path of the store.
        split: Keep this split's videos (None: all).
        levels: Visual levels (default: all cached).
        in_memory: Hold the split's arrays in RAM (stores of SynthAV's size fit).
    """

    def __init__(
        self,
        store: str | os.PathLike[str],
        *,
        split: str | None = None,
        levels: Sequence[str] | None = None,
        in_memory: bool = True,
    ) -> None:
        path = os.fspath(store)
        group = zarr.open_group(path, mode="r")
        per_frame = [name for name in _PER_FRAME if name in group]
        self.clips = ClipDataset(path, split=split, clip_length=1, stride=1, levels=levels, include=per_frame,
                                 in_memory=in_memory)
        self.items = list(self.clips.items)
        self.levels = list(self.clips.levels)
        self._video_names = [name for name in _PER_VIDEO if name in group]
        videos = sorted({video for video, _ in self.items})
        self._video_reader = StoreReader(path, self._video_names, in_memory=False, videos=videos)
        # Per-video counts from the store's tables: no NaN scans per item.
        self._counts = {name: read(group, name) for name in (schema.NUM_ATIME, schema.NUM_SOURCES)}
        self._per_video: dict[int, dict[str, torch.Tensor]] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_per_video"] = {}  # each DataLoader worker reads its own copy
        return state

    def num_views(self, index: int) -> int:
        return max(1, int(self.clips.num_views[self.items[index][0]]))

    def _video(self, video: int) -> dict[str, torch.Tensor]:
        if video not in self._per_video:
            # Read once per video (a whole STFT and its sources per frame would be copied
            # again for every frame otherwise).
            arrays = {name: torch.from_numpy(self._video_reader.whole(name, video)) for name in self._video_names}
            self._per_video[video] = arrays
        return self._per_video[video]

    def frame(self, index: int, *, view: int = 0, flip: bool = False) -> dict[str, Any]:
        if flip:
            raise ValueError("cached features cannot be mirrored: cache an 'hflip' view instead")
        item = self.clips.get(index, view=view)
        video = int(item["video"])
        raw: dict[str, Any] = {"video": video}
        for key, value in item.items():
            if key.startswith("visual_") or key in _PER_FRAME:
                raw[key] = value[0]  # drop the clip's frame axis (clip_length 1)
        raw.update(self._video(video))
        if schema.STFT in raw:
            raw["num_atime"] = int(self._counts[schema.NUM_ATIME][video])
        if schema.SOURCE_STFT in raw:
            raw["num_sources"] = int(self._counts[schema.NUM_SOURCES][video])
        return raw


class DecodedFrames(FrameTable):
    """Frames of raw videos, decoded once into memory with the feature cache's own decoding.

    Every video goes through `avlab.store.extract.load_inputs` (frames resized to `size`,
    the separation STFT, per-frame log-mel patches, masks, instances, sources): the arrays are
    those a store cached with the same settings would hold, with images instead of features.

    Args:
        source: A `Manifest`, or a dataset folder (`avlab.datasets.open_source`).
        split: Keep this split's videos (None: all).
        size: Frame size, an int (square) or (height, width).
        fps: Frame sampling rate; None: the dataset's own frames.
        mask_size: Resolution of masks (default: `size`).
        progress: Show a progress bar while decoding.

    Raises:
        AvlabError: A video cannot be decoded (the message names it), or no video is left.
    """

    mirrorable = True

    def __init__(
        self,
        source: Manifest | str | os.PathLike[str],
        *,
        split: str | None = None,
        size: int | tuple[int, int] = 128,
        fps: float | None = None,
        mask_size: int | tuple[int, int] | None = None,
        progress: bool = False,
    ) -> None:
        from tqdm.auto import tqdm

        manifest = open_source(source)
        records = [r for r in manifest if split is None or r.split == split]
        if not records:
            raise AvlabError(f"{getattr(manifest, 'name', source)}: no videos in split {split!r}")
        size_hw = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        masks_hw = None if mask_size is None else ((mask_size, mask_size) if isinstance(mask_size, int) else tuple(mask_size))
        recipe = Recipe(visual="debug", size=size_hw, fps=fps, audio=("stft", "logmel_frames"),
                        mask_size=masks_hw)  # type: ignore[arg-type]
        stft, logmel = SeparationSTFT(), LogMelFrames()
        self.categories = list(manifest.categories or [])
        self.video_ids: list[str] = []
        self.videos: list[dict[str, Any]] = []
        self.items = []
        for record in tqdm(records, desc="decoding", disable=not progress, leave=False):
            try:
                inputs = load_inputs(record, plan_video(record, fps=fps), recipe, views=("original",),
                                     stft=stft, logmel=logmel)
            except AvlabError as error:
                raise AvlabError(f"{record.video_id}: cannot decode for end-to-end training: {error}") from error
            arrays = {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in inputs.arrays.items()}
            for name in (schema.MASK, schema.INSTANCE_MASK):
                if name in arrays:
                    arrays[name] = arrays[name][0]  # the one view
            arrays["frames"] = torch.from_numpy(inputs.frames[0])  # (T, H, W, 3) uint8
            position = len(self.videos)
            self.items.extend((position, t) for t in range(inputs.frames.shape[1]))
            self.videos.append(arrays)
            self.video_ids.append(record.video_id)

    def frame(self, index: int, *, view: int = 0, flip: bool = False) -> dict[str, Any]:
        video, t = self.items[index]
        arrays = self.videos[video]
        frame = arrays["frames"][t].numpy()  # (H, W, 3) uint8
        if flip:
            frame = frame[:, ::-1]
        # numpy, not torch: see avlab.train.items on small arrays and busy machines.
        image = np.ascontiguousarray(frame.transpose(2, 0, 1), dtype=np.float32) / np.float32(255)  # (3, H, W)
        raw: dict[str, Any] = {"video": video, "image": torch.from_numpy(image)}
        for name, value in arrays.items():
            if name == "frames":
                continue
            raw[name] = value[t] if name in _PER_FRAME else value
        raw.setdefault(schema.ANNOTATED, torch.tensor(0, dtype=torch.int8))
        if flip:
            for name in (schema.MASK, schema.INSTANCE_MASK):
                if name in raw:
                    raw[name] = torch.from_numpy(np.ascontiguousarray(raw[name].numpy()[..., ::-1]))
        if schema.STFT in raw:
            raw["num_atime"] = int(raw[schema.STFT].shape[0])
        if schema.SOURCE_STFT in raw:
            raw["num_sources"] = int(raw[schema.SOURCE_STFT].shape[0])
        return raw
