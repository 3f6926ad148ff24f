"""Direct readers and writers of Zarr v3 chunk and shard files on a local disk.

Reading: one pread per clip, then zstd.

zarr-python spends most of a small read in its async machinery (STORE.md measured about 200
random frames/s through zarr on sharded arrays, 1,080 with a 40-line pread reader over the same
files), so the training reader goes around it for local stores. It reads only what the zarr
metadata describes: a ``sharding_indexed`` codec whose inner chunks are ``bytes`` (+ optional
``zstd``) with the index at the end (``bytes`` + ``crc32c``), the layout every avlab store has.
Anything else falls back to zarr.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
from numcodecs import Zstd

from avlab.store import faults

__all__ = ["DirectChunkWriter", "ShardedArrayReader", "direct_reader"]

_EMPTY = np.uint64(2**64 - 1)  # offset and length of a chunk absent from its shard


@dataclass(frozen=True)
class _Layout:
    shape: tuple[int, ...]
    dtype: np.dtype
    fill_value: Any
    shard_shape: tuple[int, ...]
    chunk_shape: tuple[int, ...]
    zstd: bool
    index_checksum: bool


def direct_reader(array_path: str) -> ShardedArrayReader | None:
    """A `ShardedArrayReader` for the array folder, or None if its layout is not one it reads."""
    try:
        with open(os.path.join(array_path, "zarr.json"), encoding="utf-8") as file:
            meta = json.load(file)
    except (OSError, ValueError):
        return None
    codecs = meta.get("codecs", [])
    if len(codecs) != 1 or codecs[0].get("name") != "sharding_indexed":
        return None
    config = codecs[0]["configuration"]
    inner = [c["name"] for c in config["codecs"]]
    index = [c["name"] for c in config["index_codecs"]]
    if inner not in (["bytes"], ["bytes", "zstd"]) or index not in (["bytes"], ["bytes", "crc32c"]):
        return None
    if config.get("index_location", "end") != "end" or meta.get("chunk_key_encoding", {}).get("name") != "default":
        return None
    if any(c.get("configuration", {}).get("endian", "little") != "little" for c in config["codecs"][:1]):
        return None
    try:
        dtype = np.dtype(meta["data_type"])
    except TypeError:
        return None
    layout = _Layout(
        shape=tuple(meta["shape"]), dtype=dtype, fill_value=meta["fill_value"],
        shard_shape=tuple(meta["chunk_grid"]["configuration"]["chunk_shape"]),
        chunk_shape=tuple(config["chunk_shape"]), zstd="zstd" in inner, index_checksum="crc32c" in index,
    )
    separator = meta["chunk_key_encoding"].get("configuration", {}).get("separator", "/")
    return ShardedArrayReader(array_path, layout, separator)


class ShardedArrayReader:
    """Reads runs of whole inner chunks along one axis from shards written by zarr.

    Used for arrays chunked one frame per chunk: ``read(prefix, axis_start, count)`` returns
    ``array[prefix..., axis_start : axis_start + count, ...]`` where `prefix` fixes every
    axis before the run axis (e.g. video, view) and the run axis is chunked by 1.
    """

    def __init__(self, path: str, layout: _Layout, separator: str) -> None:
        self.path, self.layout, self.separator = path, layout, separator
        self._indexes: dict[str, np.ndarray | None] = {}
        self._files: dict[str, int] = {}
        self._zstd = Zstd()
        self._run_axis: int | None = None
        for axis, chunk in enumerate(layout.chunk_shape):
            if chunk == 1 and axis > 0 and all(c == s for c, s in zip(layout.chunk_shape[axis + 1:], layout.shape[axis + 1:], strict=True)):
                self._run_axis = axis
                break
        if self._run_axis is None:
            raise ValueError(f"{path}: no axis chunked by 1 followed by whole axes")

    @property
    def run_axis(self) -> int:
        assert self._run_axis is not None
        return self._run_axis

    def _shard_file(self, shard_coords: tuple[int, ...]) -> str:
        return os.path.join(self.path, "c", *map(str, shard_coords)) if self.separator == "/" else \
            os.path.join(self.path, "c" + self.separator + self.separator.join(map(str, shard_coords)))

    def _index(self, file: str) -> np.ndarray | None:
        """(chunks per shard along the run axis, 2) offsets and lengths, None if no shard."""
        if file in self._indexes:
            return self._indexes[file]
        per_shard = int(np.prod([s // c for s, c in zip(self.layout.shard_shape, self.layout.chunk_shape, strict=True)]))
        size = per_shard * 16 + (4 if self.layout.index_checksum else 0)
        try:
            with open(file, "rb") as handle:
                handle.seek(-size, os.SEEK_END)
                raw = handle.read(size)
        except FileNotFoundError:
            index = None
        else:
            index = np.frombuffer(raw[: per_shard * 16], dtype="<u8").reshape(per_shard, 2)
        self._indexes[file] = index
        return index

    def forget(self) -> None:
        """Drop cached shard indexes and open files (after the store was rewritten)."""
        self._indexes.clear()
        self.close()

    def _descriptor(self, file: str) -> int:
        descriptor = self._files.get(file)
        if descriptor is None:
            if len(self._files) >= 256:  # bound open descriptors; shards are revisited randomly
                for old in list(self._files)[:128]:
                    os.close(self._files.pop(old))
            descriptor = self._files[file] = os.open(file, os.O_RDONLY)
        return descriptor

    def close(self) -> None:
        for descriptor in self._files.values():
            os.close(descriptor)
        self._files.clear()

    def __del__(self) -> None:
        self.close()

    def read(self, prefix: tuple[int, ...], start: int, count: int) -> np.ndarray:
        """``array[prefix + (slice(start, start + count),)]`` as a new numpy array."""
        layout, axis = self.layout, self.run_axis
        if len(prefix) != axis:
            raise ValueError(f"prefix must fix the {axis} axes before the run axis")
        item_shape = layout.shape[axis + 1:]
        item_bytes = int(np.prod(item_shape)) * layout.dtype.itemsize
        out = np.empty((count, *item_shape), layout.dtype)
        filled = np.zeros(count, bool)
        per_shard = layout.shard_shape[axis]
        dtype = layout.dtype.newbyteorder("<")
        position = start
        while position < start + count:
            shard = position // per_shard
            first = position - shard * per_shard
            last = min(per_shard, start + count - shard * per_shard)
            coords = tuple(p // s for p, s in zip(prefix, layout.shard_shape[:axis], strict=True)) + (shard,) + (0,) * len(item_shape)
            file = self._shard_file(coords)
            index = self._index(file)
            if index is not None:
                entries = index[first:last]
                present = entries[:, 0] != _EMPTY
                if present.any():
                    lo = int(entries[present, 0].min())
                    hi = int((entries[present, 0] + entries[present, 1]).max())
                    here = position - start
                    if not layout.zstd and present.all() and hi - lo == len(entries) * item_bytes \
                            and np.all(np.diff(entries[:, 0].astype(np.int64)) == item_bytes) \
                            and dtype == layout.dtype:
                        # Uncompressed and contiguous: the run is read straight into `out`.
                        target = out[here : here + len(entries)].reshape(-1).view(np.uint8).data
                        if os.preadv(self._descriptor(file), [target], lo) != hi - lo:
                            raise OSError(f"{file}: shard shorter than its index says")
                        filled[here : here + len(entries)] = True
                    else:
                        span = os.pread(self._descriptor(file), hi - lo, lo)
                        for k, (offset, length) in enumerate(entries):
                            if offset == _EMPTY:
                                continue
                            blob = span[int(offset) - lo : int(offset) - lo + int(length)]
                            if layout.zstd and dtype == layout.dtype:
                                self._zstd.decode(blob, out=out[here + k])  # straight into `out`
                            else:
                                data = self._zstd.decode(blob) if layout.zstd else blob
                                out[here + k] = np.frombuffer(data, dtype=dtype).reshape(item_shape)
                            filled[here + k] = True
            position = shard * per_shard + last
        if not filled.all():
            out[~filled] = layout.fill_value if layout.dtype.kind != "f" else np.nan
        return out


class DirectChunkWriter:
    """Writes one video's slice of an array straight to its chunk or shard files.

    zarr-python's per-chunk async machinery cost about 90 ms per SynthAV video on this project's
    2-core machines against about 15 ms of actual encoding (benchmarks/bench_store.py), and on
    such machines every writer millisecond is taken from the backbone. Videos own whole shards
    (STORE.md), so a writer can encode a video's shards itself: exactly the bytes zarr writes
    (the tests compare them file for file), each file written atomically (temporary name, then
    rename), chunks equal to the fill value left out as zarr does with ``write_empty_chunks``
    off, and files of an earlier attempt that are now empty removed.

    Args:
        array_path: The array's folder in a local store.
        meta: The array's ``zarr.json`` content.
    """

    def __init__(self, array_path: str, meta: dict[str, Any]) -> None:
        self.path = array_path
        self.shape = tuple(meta["shape"])
        self.dtype = np.dtype(meta["data_type"])
        self.fill_value = _fill(meta["fill_value"], self.dtype)
        self.grid = tuple(meta["chunk_grid"]["configuration"]["chunk_shape"])
        codecs = meta["codecs"]
        self.sharded = codecs[0]["name"] == "sharding_indexed"
        inner = codecs[0]["configuration"]["codecs"] if self.sharded else codecs
        self.chunk_shape = tuple(codecs[0]["configuration"]["chunk_shape"]) if self.sharded else self.grid
        self.zstd = next((Zstd(level=c["configuration"]["level"], checksum=c["configuration"]["checksum"])
                          for c in inner if c["name"] == "zstd"), None)
        self.checksum = self.sharded and any(c["name"] == "crc32c" for c in codecs[0]["configuration"]["index_codecs"])

    @classmethod
    def open(cls, array_path: str) -> DirectChunkWriter | None:
        """A writer for the array, or None when its codecs are not the ones avlab writes."""
        try:
            with open(os.path.join(array_path, "zarr.json"), encoding="utf-8") as file:
                meta = json.load(file)
        except (OSError, ValueError):
            return None
        codecs = meta.get("codecs", [])
        allowed = (["bytes"], ["bytes", "zstd"])
        if meta.get("chunk_key_encoding", {}).get("configuration", {}).get("separator", "/") != "/":
            return None
        if codecs and codecs[0]["name"] == "sharding_indexed":
            config = codecs[0]["configuration"]
            if [c["name"] for c in config["codecs"]] not in allowed or config.get("index_location", "end") != "end":
                return None
            if [c["name"] for c in config["index_codecs"]] not in (["bytes"], ["bytes", "crc32c"]):
                return None
            per_shard = [s // c for s, c in zip(meta["chunk_grid"]["configuration"]["chunk_shape"], config["chunk_shape"], strict=True)]
            if sum(n > 1 for n in per_shard) > 1:
                return None  # chunk order inside such shards is Morton order: leave it to zarr
        elif [c["name"] for c in codecs] not in allowed:
            return None
        try:
            np.dtype(meta["data_type"])
        except TypeError:
            return None
        if any(c.get("configuration", {}).get("endian", "little") != "little" for c in codecs if c["name"] == "bytes"):
            return None
        return cls(array_path, meta)

    def _encode(self, chunk: np.ndarray) -> bytes | None:
        if _all_fill(chunk, self.fill_value):
            return None
        raw = np.ascontiguousarray(chunk, dtype=self.dtype.newbyteorder("<")).tobytes()
        return bytes(self.zstd.encode(raw)) if self.zstd is not None else raw

    def write(self, video: int, block: np.ndarray) -> None:
        """Write ``array[video] = block``, `block` covering the array's whole per-video extent."""
        if block.shape != self.shape[1:]:
            raise ValueError(f"{self.path}: block {block.shape} does not cover {self.shape[1:]}")
        if self.grid[0] != 1:
            raise ValueError(f"{self.path}: videos must be chunked one per shard")
        counts = [-(-n // g) for n, g in zip(self.shape[1:], self.grid[1:], strict=True)]
        for coords in np.ndindex(*counts):
            lo = [c * g for c, g in zip(coords, self.grid[1:], strict=True)]
            region = block[tuple(slice(a, a + g) for a, g in zip(lo, self.grid[1:], strict=True))]
            padded = region
            if region.shape != self.grid[1:]:  # edge: zarr pads to the full grid cell
                padded = np.full(self.grid[1:], self.fill_value, self.dtype)
                padded[tuple(slice(0, n) for n in region.shape)] = region
            data = self._shard(padded) if self.sharded else self._encode(padded)
            self._put(os.path.join(self.path, "c", str(video), *map(str, coords)), data)

    def _shard(self, shard: np.ndarray) -> bytes | None:
        inner = self.chunk_shape[1:]
        per = [s // c for s, c in zip(shard.shape, inner, strict=True)]
        pieces: list[bytes] = []
        index = np.full((int(np.prod(per)), 2), _EMPTY, dtype="<u8")
        offset = 0
        for k, coords in enumerate(np.ndindex(*per)):
            chunk = shard[tuple(slice(c * n, (c + 1) * n) for c, n in zip(coords, inner, strict=True))]
            encoded = self._encode(chunk)
            if encoded is None:
                continue
            index[k] = (offset, len(encoded))
            pieces.append(encoded)
            offset += len(encoded)
        if not pieces:
            return None
        raw_index = index.tobytes()
        if self.checksum:
            import google_crc32c

            raw_index += np.uint32(google_crc32c.value(raw_index)).tobytes()
        return b"".join(pieces) + raw_index

    def _put(self, path: str, data: bytes | None) -> None:
        if data is None:
            if os.path.exists(path):
                os.remove(path)
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = f"{path}.{uuid.uuid4().hex}.partial"
        try:
            with open(temporary, "wb") as file:
                file.write(data)
            faults.point("shard-write")
            os.replace(temporary, path)
        except BaseException:
            # A full disk must not also keep the half-written temporary file.
            with contextlib.suppress(FileNotFoundError):
                os.remove(temporary)
            raise


def _fill(value: Any, dtype: np.dtype) -> Any:
    if dtype.kind == "c":
        if isinstance(value, list):
            return complex(_fill(value[0], np.dtype("float64")), _fill(value[1], np.dtype("float64")))
        return complex(value)
    if isinstance(value, str):  # zarr spells NaN and infinities as strings in JSON
        return float(value)
    return value


def _all_fill(chunk: np.ndarray, fill: Any) -> bool:
    if chunk.dtype.kind in "fc" and isinstance(fill, (float, complex)) and np.isnan(fill):
        return bool(np.isnan(chunk).all())
    return bool((chunk == fill).all())
