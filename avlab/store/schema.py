"""The feature store's schema: the only module that names dimensions, variables and attributes.

A store is one Zarr v3 group per dataset x feature recipe (../shared/STORE.md). Arrays are
dense, padded with their fill value (NaN for floats: unwritten padding costs nothing on disk),
and indexed by video first. Visual and per-frame arrays use one chunk per frame and one shard
per video x `frames_per_shard` frames, so every shard belongs to exactly one video and has one
writer.

Variables (dims):

=================  ===============================================  ==========  =========
name               dims                                             dtype       writer
=================  ===============================================  ==========  =========
visual_{level}     video, view, frame, channel_{level}, y_{level},  float16     worker
                   x_{level}
logmel             video, frame, mel, win                           float16     worker
stft               video, atime, freq                               complex64   worker
audio              video, sample                                    float32     worker
mask               video, view, frame, mask_y, mask_x               uint8       worker
instance_mask      video, view, frame, instance, mask_y, mask_x     uint8       worker
annotated          video, frame                                     int8        worker
sounding           video, frame, instance                           int8        worker
instance_id        video, instance                                  int64       worker
instance_category  video, instance                                  int64       worker
source_stft        video, source, atime, freq                       complex64   worker
source_instance    video, source                                    int64       worker
frame_time         video, frame                                     float64     worker
video_id, split, category, source_hash          video               string      driver
num_frames, num_atime, num_samples, num_views,  video               int32       driver
num_instances, num_sources
status, error      video                                            string      driver
=================  ===============================================  ==========  =========

`mask` is the union of the sounding objects (AVSBench's target); `instance_mask` holds every
annotated object. Integer arrays use -1 (int) or 255 (uint8) for "nothing here".

Example:
    >>> visual_var("c4"), level_dims("c4")
    ('visual_c4', ('channel_c4', 'y_c4', 'x_c4'))
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "SCHEMA_VERSION",
    "ATTRS_KEY",
    "VIEWS_ORIGINAL",
    "ArraySpec",
    "visual_var",
    "level_dims",
    "level_of",
    "build_layout",
    "frames_per_shard",
    "attrs_problem",
]

SCHEMA_VERSION = 1
# Everything avlab records lives under this one key of the root group's attributes.
ATTRS_KEY = "avlab"
# Where commit records and other bookkeeping live, inside the store.
BOOKKEEPING = "_avlab"
COMMITS = f"{BOOKKEEPING}/commits"

VIEWS_ORIGINAL = "original"

# Dimensions
VIDEO = "video"
VIEW = "view"
FRAME = "frame"
ATIME = "atime"
FREQ = "freq"
MEL = "mel"
WIN = "win"
SAMPLE = "sample"
SOURCE = "source"
INSTANCE = "instance"
MASK_Y = "mask_y"
MASK_X = "mask_x"

# Variables written by the worker that caches a video.
LOGMEL = "logmel"
STFT = "stft"
AUDIO = "audio"
MASK = "mask"
INSTANCE_MASK = "instance_mask"
ANNOTATED = "annotated"
SOUNDING = "sounding"
INSTANCE_ID = "instance_id"
INSTANCE_CATEGORY = "instance_category"
SOURCE_STFT = "source_stft"
SOURCE_INSTANCE = "source_instance"
FRAME_TIME = "frame_time"

# Per-video tables written by the driver (at creation and when sealing).
VIDEO_ID = "video_id"
SPLIT = "split"
CATEGORY = "category"
SOURCE_HASH = "source_hash"
NUM_FRAMES = "num_frames"
NUM_ATIME = "num_atime"
NUM_SAMPLES = "num_samples"
NUM_VIEWS = "num_views"
NUM_INSTANCES = "num_instances"
NUM_SOURCES = "num_sources"
STATUS = "status"
ERROR = "error"

STATUS_DONE = "done"
STATUS_FAILED = "failed"
STATUS_PENDING = "pending"

DRIVER_TABLES = (VIDEO_ID, SPLIT, CATEGORY, SOURCE_HASH, NUM_FRAMES, NUM_ATIME, NUM_SAMPLES,
                 NUM_VIEWS, NUM_INSTANCES, NUM_SOURCES, STATUS, ERROR)
STRING_TABLES = (VIDEO_ID, SPLIT, CATEGORY, SOURCE_HASH, STATUS, ERROR)


def visual_var(level: str) -> str:
    """Name of the visual feature array of a backbone level ("c3" -> "visual_c3")."""
    return f"visual_{level}"


def level_of(name: str) -> str | None:
    """The backbone level of a visual array name, or None for other variables."""
    return name.removeprefix("visual_") if name.startswith("visual_") else None


def level_dims(level: str) -> tuple[str, str, str]:
    """The (channel, y, x) dimension names of a level: each level has its own grid."""
    return (f"channel_{level}", f"y_{level}", f"x_{level}")


class ArraySpec:
    """Shape, chunking and encoding of one array of a store.

    Args:
        name: Variable name.
        dims: Dimension names, video first.
        shape: Full shape.
        dtype: numpy dtype (``str`` for variable-length UTF-8).
        fill_value: The value of unwritten elements.
        chunks: Inner chunk shape.
        shards: Shard shape (None: unsharded, one chunk is one object).
        compress: zstd-compress the chunks.
    """

    def __init__(self, name: str, dims: tuple[str, ...], shape: tuple[int, ...], dtype: Any,
                 fill_value: Any, chunks: tuple[int, ...], shards: tuple[int, ...] | None = None,
                 compress: bool = True) -> None:
        if len(dims) != len(shape) or len(chunks) != len(shape):
            raise ValueError(f"{name}: dims, shape and chunks must have the same length")
        if shards is not None and any(s % c for s, c in zip(shards, chunks, strict=True)):
            raise ValueError(f"{name}: shards {shards} are not a multiple of chunks {chunks}")
        self.name, self.dims, self.shape = name, dims, shape
        self.dtype, self.fill_value = dtype, fill_value
        self.chunks, self.shards, self.compress = chunks, shards, compress

    @property
    def frames_per_block(self) -> int | None:
        """Frames per write block along `frame` (the shard's, else the chunk's), if any."""
        if FRAME not in self.dims:
            return None
        axis = self.dims.index(FRAME)
        return (self.shards or self.chunks)[axis]

    def __repr__(self) -> str:
        return f"ArraySpec({self.name!r}, dims={self.dims}, shape={self.shape}, dtype={np.dtype(self.dtype) if self.dtype is not str else 'str'})"


# Uncompressed bytes a shard aims at (STORE.md: shards of 4-32 MiB read and write well).
SHARD_TARGET_BYTES = 16 << 20


def frames_per_shard(max_frames: int, frame_bytes: int) -> int:
    """Frames per shard so the largest per-frame array's shards hold about 16 MiB.

    Example:
        >>> frames_per_shard(160, 1 << 20), frames_per_shard(16, 1 << 10)
        (16, 16)
    """
    return max(1, min(max_frames, SHARD_TARGET_BYTES // max(1, frame_bytes)))


def build_layout(
    *,
    num_videos: int,
    views: tuple[str, ...],
    max_frames: int,
    levels: dict[str, tuple[int, int, int]],
    dtype: str,
    stft_shape: tuple[int, int] | None = None,
    logmel_shape: tuple[int, int] | None = None,
    max_samples: int | None = None,
    mask_size: tuple[int, int] | None = None,
    max_instances: int = 0,
    max_sources: int = 0,
    compress: bool = True,
) -> list[ArraySpec]:
    """Every array of a store, with its shape, chunks, shards and fill value.

    Args:
        num_videos: Videos in the store.
        views: View names (original first).
        max_frames: Longest video, in cached frames.
        levels: Level -> (channels, height, width) of its feature map.
        dtype: Stored feature dtype.
        stft_shape: (max atime, freq) of the separation STFT, if cached.
        logmel_shape: (mel, win) of the per-frame log-mel patches, if cached.
        max_samples: Longest raw audio, if cached.
        mask_size: (height, width) of cached masks, if ground truth is cached.
        max_instances: Most instances in a video (instance masks, ids, sounding flags).
        max_sources: Most ground-truth sources in a video.
        compress: zstd-compress the arrays that are compressible (features, masks, spectra).

    Returns:
        The array specs, in a stable order.
    """
    n, v, t = num_videos, len(views), max(1, max_frames)
    frame_bytes = max([np.dtype(dtype).itemsize * c * h * w for c, h, w in levels.values()] + [1])
    if mask_size is not None:
        frame_bytes = max(frame_bytes, mask_size[0] * mask_size[1] * max(1, max_instances))
    s = frames_per_shard(t, frame_bytes)
    specs = []
    for level, (c, h, w) in levels.items():
        specs.append(ArraySpec(visual_var(level), (VIDEO, VIEW, FRAME, *level_dims(level)), (n, v, t, c, h, w),
                               dtype, np.nan, (1, 1, 1, c, h, w), (1, 1, s, c, h, w)))
    specs.append(ArraySpec(FRAME_TIME, (VIDEO, FRAME), (n, t), "float64", np.nan, (1, t), compress=False))
    if logmel_shape is not None:
        mel, win = logmel_shape
        specs.append(ArraySpec(LOGMEL, (VIDEO, FRAME, MEL, WIN), (n, t, mel, win), dtype, np.nan,
                               (1, 1, mel, win), (1, s, mel, win)))
    if stft_shape is not None:
        a, f = stft_shape
        specs.append(ArraySpec(STFT, (VIDEO, ATIME, FREQ), (n, a, f), "complex64", complex(np.nan, np.nan), (1, a, f)))
        if max_sources:
            specs.append(ArraySpec(SOURCE_STFT, (VIDEO, SOURCE, ATIME, FREQ), (n, max_sources, a, f), "complex64",
                                   complex(np.nan, np.nan), (1, 1, a, f), (1, max_sources, a, f)))
            specs.append(ArraySpec(SOURCE_INSTANCE, (VIDEO, SOURCE), (n, max_sources), "int64", -1, (1, max_sources),
                                   compress=False))
    if max_samples is not None:
        specs.append(ArraySpec(AUDIO, (VIDEO, SAMPLE), (n, max_samples), "float32", np.nan, (1, max_samples)))
    if mask_size is not None:
        mh, mw = mask_size
        specs.append(ArraySpec(ANNOTATED, (VIDEO, FRAME), (n, t), "int8", -1, (1, t), compress=False))
        specs.append(ArraySpec(MASK, (VIDEO, VIEW, FRAME, MASK_Y, MASK_X), (n, v, t, mh, mw), "uint8", 255,
                               (1, 1, 1, mh, mw), (1, 1, s, mh, mw)))
        if max_instances:
            i = max_instances
            specs.append(ArraySpec(INSTANCE_MASK, (VIDEO, VIEW, FRAME, INSTANCE, MASK_Y, MASK_X),
                                   (n, v, t, i, mh, mw), "uint8", 255, (1, 1, 1, i, mh, mw), (1, 1, s, i, mh, mw)))
            specs.append(ArraySpec(SOUNDING, (VIDEO, FRAME, INSTANCE), (n, t, i), "int8", -1, (1, t, i), compress=False))
            specs.append(ArraySpec(INSTANCE_ID, (VIDEO, INSTANCE), (n, i), "int64", -1, (1, i), compress=False))
            specs.append(ArraySpec(INSTANCE_CATEGORY, (VIDEO, INSTANCE), (n, i), "int64", -1, (1, i), compress=False))
    if not compress:
        for spec in specs:
            spec.compress = False
    for name in DRIVER_TABLES:
        dtype_of = str if name in STRING_TABLES else "int32"
        specs.append(ArraySpec(name, (VIDEO,), (n,), dtype_of, "" if dtype_of is str else -1, (max(1, n),),
                               compress=False))
    return specs


# The root attributes every store carries under ATTRS_KEY, and the JSON types they must have.
_ATTR_TYPES: dict[str, tuple[type, ...]] = {
    "recipe": (dict,),
    "fingerprint": (str,),
    "versions": (dict,),
    "dataset": (str,),
    "views": (list,),
    "levels": (list,),
    "encoding": (dict,),
    "sealed": (bool,),
}


def attrs_problem(attrs: Any) -> str | None:
    """What is wrong with a store's ``avlab`` attributes, in words, or None when they are valid.

    The schema version is checked first, so an older store is named as such rather than by
    the first field it lacks.

    Example:
        >>> attrs_problem({"schema_version": 0})
        'written with store schema version 0; this avlab reads version 1. Re-cache it with overwrite=True.'
        >>> attrs_problem([])
        "the 'avlab' attributes must be a JSON object, got list"
    """
    if not isinstance(attrs, dict):
        return f"the '{ATTRS_KEY}' attributes must be a JSON object, got {type(attrs).__name__}"
    version = attrs.get("schema_version")
    if isinstance(version, bool) or version != SCHEMA_VERSION or not isinstance(version, int):
        shown = "none" if version is None else f"{version!r:.40}"
        return (f"written with store schema version {shown}; this avlab reads version {SCHEMA_VERSION}. "
                "Re-cache it with overwrite=True.")
    for name, types in _ATTR_TYPES.items():
        if name not in attrs:
            return f"the '{ATTRS_KEY}' attributes have no '{name}' field"
        if not isinstance(attrs[name], types):
            return (f"the '{ATTRS_KEY}' attribute '{name}' must be a {' or '.join(t.__name__ for t in types)}, "
                    f"got {type(attrs[name]).__name__}")
    for name in ("views", "levels"):
        if not all(isinstance(item, str) for item in attrs[name]):
            return f"the '{ATTRS_KEY}' attribute '{name}' must be a list of strings"
    if not attrs["views"] or attrs["views"][0] != VIEWS_ORIGINAL:
        return f"the '{ATTRS_KEY}' attribute 'views' must start with {VIEWS_ORIGINAL!r}"
    categories = attrs.get("categories")
    if categories is not None and (not isinstance(categories, list) or not all(isinstance(c, str) for c in categories)):
        return f"the '{ATTRS_KEY}' attribute 'categories' must be null or a list of strings"
    return None
