"""Torch datasets over a feature store: clips for heads, frame pairs for crossover learning.

Reading follows what STORE.md measured: contiguous slices per video (never fancy indexing),
batched requests sorted by video (`__getitems__`), the store opened lazily inside each
DataLoader worker (safe under spawn and forkserver), an in-memory mode for stores that fit in
RAM, and for local stores a direct shard reader (`avlab.store.shards`) that skips zarr-python's
per-read overhead.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import zarr

from avlab.errors import AvlabError
from avlab.store import schema
from avlab.store.groups import array, avlab_attrs, read
from avlab.store.shards import ShardedArrayReader, direct_reader

__all__ = ["ClipDataset", "FramePairDataset", "StoreReader", "to_tensor"]

# Per-frame arrays a clip can carry, and the per-video ones that come whole.
FRAME_ARRAYS = (schema.LOGMEL, schema.MASK, schema.INSTANCE_MASK, schema.ANNOTATED, schema.SOUNDING,
                schema.FRAME_TIME)
VIDEO_ARRAYS = (schema.STFT, schema.AUDIO, schema.SOURCE_STFT, schema.SOURCE_INSTANCE, schema.INSTANCE_ID,
                schema.INSTANCE_CATEGORY)
VIEWED = {schema.MASK, schema.INSTANCE_MASK}  # arrays with a `view` dim besides the visual ones


class StoreReader:
    """Reads frame runs and per-video arrays from one store, opening it on first use per process.

    Args:
        store: Path or URL of the store.
        names: Variables to read.
        engine: ``"direct"`` (pread of shard files; local stores only), ``"zarr"``, or
            ``"auto"`` (direct where the layout allows).
        in_memory: Load the named variables of `videos` into RAM at first use.
        videos: Video positions to keep in memory (default: all).
    """

    def __init__(self, store: str, names: Sequence[str], *, engine: str = "auto", in_memory: bool = False,
                 videos: Sequence[int] | None = None) -> None:
        if engine not in ("auto", "direct", "zarr"):
            raise ValueError(f"engine must be 'auto', 'direct' or 'zarr', got {engine!r}")
        self.store, self.names, self.engine, self.in_memory = store, tuple(names), engine, in_memory
        self.videos = None if videos is None else list(videos)
        self._pid: int | None = None
        self._arrays: dict[str, zarr.Array] = {}
        self._direct: dict[str, ShardedArrayReader] = {}
        self._memory: dict[str, np.ndarray] = {}
        self._memory_rows: dict[int, int] = {}

    def __getstate__(self) -> dict[str, Any]:
        # Handles never cross processes: each DataLoader worker reopens the store.
        state = dict(self.__dict__)
        state.update(_pid=None, _arrays={}, _direct={}, _memory={}, _memory_rows={})
        return state

    def _open(self) -> None:
        if self._pid == os.getpid():
            return
        group = zarr.open_group(self.store, mode="r")
        self._arrays = {name: array(group, name) for name in self.names if name in group}
        self._direct = {}
        local = os.path.isdir(self.store)
        if self.engine == "direct" and not local:
            raise AvlabError(f"{self.store}: the direct engine reads local stores only; use engine='zarr'")
        if local and self.engine in ("auto", "direct"):
            for name in self._arrays:
                reader = direct_reader(os.path.join(self.store, name))
                if reader is not None:
                    self._direct[name] = reader
        if self.in_memory:
            rows = self.videos if self.videos is not None else range(next(iter(self._arrays.values())).shape[0])
            self._memory_rows = {v: k for k, v in enumerate(rows)}
            self._memory = {name: np.stack([array[v] for v in rows]) for name, array in self._arrays.items()}
        self._pid = os.getpid()

    def has(self, name: str) -> bool:
        self._open()
        return name in self._arrays

    def shape(self, name: str) -> tuple[int, ...]:
        self._open()
        return tuple(self._arrays[name].shape)

    def frames(self, name: str, video: int, start: int, count: int, view: int = 0) -> np.ndarray:
        """``name[video, (view,) start : start + count]``: a contiguous run of frames."""
        self._open()
        viewed = schema.level_of(name) is not None or name in VIEWED
        if self.in_memory:
            row = self._memory[name][self._memory_rows[video]]
            return (row[view] if viewed else row)[start : start + count].copy()
        prefix = (video, view) if viewed else (video,)
        reader = self._direct.get(name)
        if reader is not None and reader.run_axis == len(prefix):
            return reader.read(prefix, start, count)
        return np.asarray(self._arrays[name][(*prefix, slice(start, start + count))])

    def whole(self, name: str, video: int) -> np.ndarray:
        """``name[video]``: a per-video array."""
        self._open()
        if self.in_memory:
            return self._memory[name][self._memory_rows[video]].copy()
        return np.asarray(self._arrays[name][video])


def _video_table(store: str) -> dict[str, np.ndarray]:
    group = zarr.open_group(store, mode="r")
    return {name: read(group, name).astype(object) if name in schema.STRING_TABLES else read(group, name)
            for name in schema.DRIVER_TABLES if name in group}


class ClipDataset(torch.utils.data.Dataset):
    """Clips of consecutive cached frames, with their audio features and ground truth.

    Each item is a dict of tensors: ``visual_{level}`` (L, C, h, w), ``logmel`` (L, mel, win),
    ``mask`` (L, mh, mw) uint8 (255: unannotated), ``annotated`` (L,), ``frame_time`` (L,),
    when present ``instance_mask`` (L, I, mh, mw), ``sounding`` (L, I), and per video ``stft``
    (atime, freq) complex64, ``source_stft`` (N, atime, freq), ``instance_id`` (I,), plus the
    ints ``video`` (position in the store), ``start`` and ``view``.

    Args:
        store: Path or URL of the store.
        videos: Video ids to use (default: every video cached successfully).
        split: Keep only this split's videos.
        clip_length: Frames per clip; videos shorter than that give one shorter clip.
        stride: Frames between clip starts (default: `clip_length`, non-overlapping).
        levels: Visual levels (default: all cached).
        include: Other variables to read (default: every per-frame and per-video one cached).
        view: ``"original"``, a view name, or ``"random"`` (one of the video's cached views,
            drawn per item from `seed` and the item index).
        dtype: dtype of float features (stored float16 is converted).
        in_memory: Hold the store's arrays for these videos in RAM.
        engine: ``"auto"``, ``"direct"`` or ``"zarr"`` (see `StoreReader`).
        seed: Seed of the random views.

    Example:
        >>> import tempfile
        >>> from avlab.testing import tiny_store
        >>> ds = tiny_store(tempfile.mkdtemp())
        >>> clips = ClipDataset(ds.encoding["source"], clip_length=2)
        >>> item = clips[0]
        >>> tuple(item["visual_c3"].shape), tuple(item["mask"].shape)
        ((2, 8, 4, 4), (2, 32, 32))
    """

    def __init__(
        self,
        store: str | os.PathLike[str],
        *,
        videos: Sequence[str] | None = None,
        split: str | None = None,
        clip_length: int = 8,
        stride: int | None = None,
        levels: Sequence[str] | None = None,
        include: Sequence[str] | None = None,
        view: str = "original",
        dtype: torch.dtype = torch.float32,
        in_memory: bool = False,
        engine: str = "auto",
        seed: int = 0,
    ) -> None:
        self.store = os.fspath(store)
        group = zarr.open_group(self.store, mode="r")
        attrs = avlab_attrs(group)
        table = _video_table(self.store)
        ids = [str(v) for v in table[schema.VIDEO_ID]]
        status = table[schema.STATUS].astype(str)
        chosen = [i for i, s in enumerate(status) if s == schema.STATUS_DONE]
        if videos is not None:
            position = {v: i for i, v in enumerate(ids)}
            missing = [v for v in videos if v not in position]
            if missing:
                raise AvlabError(f"{self.store}: no videos {missing[:5]} in the store")
            wanted = {position[v] for v in videos}
            chosen = [i for i in chosen if i in wanted]
        if split is not None:
            chosen = [i for i in chosen if str(table[schema.SPLIT][i]) == split]
        self.views = list(attrs.get("views", [schema.VIEWS_ORIGINAL]))
        if view not in ("random", *self.views):
            raise ValueError(f"view must be 'random' or one of {self.views}, got {view!r}")
        self.view, self.seed, self.dtype = view, seed, dtype
        self.levels = list(levels) if levels is not None else [lvl for lvl in attrs.get("levels", [])
                                                               if schema.visual_var(lvl) in group]
        available = set(group.array_keys())
        self.include = [n for n in (include if include is not None else FRAME_ARRAYS + VIDEO_ARRAYS) if n in available]
        names = [schema.visual_var(lvl) for lvl in self.levels] + self.include
        self.reader = StoreReader(self.store, names, engine=engine, in_memory=in_memory, videos=chosen)
        self.clip_length = clip_length
        stride = stride or clip_length
        frames = table[schema.NUM_FRAMES]
        self.num_views = table[schema.NUM_VIEWS]
        self.items: list[tuple[int, int]] = []
        for v in chosen:
            count = int(frames[v])
            starts = list(range(0, max(1, count - clip_length + 1), stride))
            if count > clip_length and starts[-1] + clip_length < count:
                starts.append(count - clip_length)  # cover the tail with one last full clip
            self.items.extend((v, s) for s in starts)
        self.lengths = {v: min(clip_length, int(frames[v])) for v in chosen}
        self.video_ids = ids

    def __len__(self) -> int:
        return len(self.items)

    def _view_of(self, index: int, video: int) -> int:
        if self.view != "random":
            return self.views.index(self.view)
        generator = np.random.default_rng((self.seed, index))
        return int(generator.integers(0, max(1, int(self.num_views[video]))))

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.get(index)

    def get(self, index: int, *, view: int | None = None) -> dict[str, Any]:
        """Item `index`, in the given view position instead of this dataset's choice."""
        video, start = self.items[index]
        view = self._view_of(index, video) if view is None else view
        length = self.lengths[video]
        item: dict[str, Any] = {"video": video, "start": start, "view": view}
        for level in self.levels:
            item[schema.visual_var(level)] = self._tensor(self.reader.frames(schema.visual_var(level), video, start, length, view))
        for name in self.include:
            if name in VIDEO_ARRAYS:
                item[name] = self._tensor(self.reader.whole(name, video))
            else:
                item[name] = self._tensor(self.reader.frames(name, video, start, length, view))
        return item

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """A batch of items, read in store order (by video, then start) for locality."""
        order = sorted(range(len(indices)), key=lambda k: self.items[indices[k]])
        items: list[dict[str, Any]] = [{} for _ in indices]
        for k in order:
            items[k] = self[indices[k]]
        return items

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        if array.dtype.kind == "f" and array.dtype != np.float64 and self.dtype.is_floating_point:
            return to_tensor(array, self.dtype)
        return torch.from_numpy(np.ascontiguousarray(array))


# torch runs an element-wise copy on its thread pool above this many elements (at::internal::GRAIN_SIZE).
_GRAIN = 32768


def to_tensor(array: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A numpy array as a new torch tensor of `dtype`, converted in slices of one thread's size.

    float16 -> float32 is the reader's hot spot. numpy converts half floats element by element
    (1.1-1.5 ms for an 8-frame C3 clip of 262k values here); torch's vectorised copy takes
    0.09 ms on one thread, but one call on the whole clip wakes its thread pool, which cost 12
    ms on a busy 2-core machine. Slices below torch's grain size run inline: 0.27 ms.

    Example:
        >>> half = np.random.default_rng(0).standard_normal((7, 10000)).astype(np.float16)
        >>> out = to_tensor(half)
        >>> out.dtype, torch.equal(out, torch.from_numpy(half.astype(np.float32)))
        (torch.float32, True)
    """
    array = np.ascontiguousarray(array)
    if not array.flags.writeable:  # a memory map, say: torch wants writable memory to share
        if torch.from_numpy(array[:0].copy()).dtype == dtype:
            return torch.from_numpy(array.copy())
        with warnings.catch_warnings():  # only read below, into a new tensor
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            source = torch.from_numpy(array)
    else:
        source = torch.from_numpy(array)
        if source.dtype == dtype:
            return source
    out = torch.empty(source.shape, dtype=dtype)
    flat_source, flat_out = source.reshape(-1), out.reshape(-1)
    for start in range(0, flat_source.numel(), _GRAIN):
        flat_out[start:start + _GRAIN].copy_(flat_source[start:start + _GRAIN])
    return out


class FramePairDataset(torch.utils.data.Dataset):
    """Pairs of frames (t, t + d) of one video with 0 < |d| <= `max_offset` (crossover learning).

    Items are ``{"first": frame item at t, "second": frame item at t + d, "offset": d}``, each
    frame item as a `ClipDataset` item of one frame. The offset is drawn per item from `seed`
    and the item index, so epochs are reproducible; both frames share the view.

    Args:
        store: Path or URL of the store.
        max_offset: Largest |d| in cached frames (CrossVIS: 20 annotated frames).
        **options: `ClipDataset` options (videos, split, levels, include, view, ...).
    """

    def __init__(self, store: str | os.PathLike[str], *, max_offset: int = 20, seed: int = 0, **options: Any) -> None:
        self.frames = ClipDataset(store, clip_length=1, stride=1, seed=seed, **options)
        self.max_offset, self.seed = max_offset, seed
        self.by_video: dict[int, list[int]] = {}
        for position, (video, _) in enumerate(self.frames.items):
            self.by_video.setdefault(video, []).append(position)
        self.items = [k for k, (video, _) in enumerate(self.frames.items) if len(self.by_video[video]) > 1]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        first = self.items[index]
        video, start = self.frames.items[first]
        positions = self.by_video[video]
        starts = [self.frames.items[p][1] for p in positions]
        candidates = [p for p, s in zip(positions, starts, strict=True) if 0 < abs(s - start) <= self.max_offset]
        generator = np.random.default_rng((self.seed, index))
        second = candidates[int(generator.integers(0, len(candidates)))]
        a = self.frames.get(first)
        b = self.frames.get(second, view=a["view"])  # the same augmentation on both frames
        return {"first": a, "second": b, "offset": self.frames.items[second][1] - start}
