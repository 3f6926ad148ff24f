"""The store's bookkeeping: one commit record per finished video, a writer lock, temp-file sweeps.

A video counts as cached only once its commit record exists, and a worker writes that record
after all of the video's shards. Each record is one small JSON object written atomically (a
temporary name, then a rename on local disks; object stores PUT whole objects), which works on
every fsspec filesystem, including S3, which has no append. Completion is never inferred from
which chunks exist.

One process writes a store at a time: it holds ``_avlab/writer.lock`` (its host and pid), created
by a hard link, so of two processes starting at once exactly one gets it. Temporary files
(``*.partial``) of a killed writer are swept by the next one. Kill points for crash tests:
`avlab.store.faults`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import fsspec
import numpy as np

from avlab.errors import AvlabError
from avlab.store import faults, schema

__all__ = ["StoreFiles", "StoreBusyError", "normalise_store_path"]


def normalise_store_path(store: str | os.PathLike[str]) -> str:
    """A store path as zarr and fsspec should see it: ``file://`` URLs become local paths.

    zarr's local store writes atomically and creates folders; its fsspec store on a local
    filesystem does neither, so local URLs take the local route.

    Example:
        >>> normalise_store_path("file:///data/a.zarr"), normalise_store_path("memory://x/a.zarr")
        ('/data/a.zarr', 'memory://x/a.zarr')
    """
    text = os.fspath(store)
    if text.startswith("file://"):
        return text.removeprefix("file://")
    return text


class StoreBusyError(AvlabError):
    """Another live process is writing the store."""


class StoreFiles:
    """Bookkeeping files of one store, through fsspec (local paths, ``file://``, ``memory://``, ...).

    Args:
        store: The store's path or URL.

    Example:
        >>> import tempfile
        >>> files = StoreFiles(tempfile.mkdtemp() + "/s.zarr")
        >>> files.commit(3, {"video_id": "a", "status": "done"})
        >>> files.commits()
        {3: {'status': 'done', 'video_id': 'a'}}
    """

    def __init__(self, store: str | os.PathLike[str]) -> None:
        self.url = normalise_store_path(store)
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        self.local = "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,))

    def _path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    def _folder(self, relative: str) -> None:
        """Create a bookkeeping folder as a (member-less) Zarr group, so zarr's listing of the
        store recognises it instead of warning about an unknown object."""
        path = self._path(relative)
        self.fs.makedirs(path, exist_ok=True)
        marker = f"{path}/zarr.json"
        if not self.fs.exists(marker):
            self._put(marker, b'{"zarr_format":3,"node_type":"group","attributes":{}}')

    def _write_atomic(self, path: str, data: bytes, *, fault: str | None = None, replace: bool = True) -> bool:
        """Write `path` whole or not at all; returns False if not `replace` and it exists.

        `fault` names the kill point between the temporary file and its rename
        (`avlab.store.faults`). Without `replace`, the file is linked into place, which fails if
        it exists: creation is atomic across processes (local disks only).
        """
        parent = path.rsplit("/", 1)[0]
        for relative in (schema.BOOKKEEPING, schema.COMMITS):
            if parent.startswith(self._path(relative)):
                self._folder(relative)
        return self._put(path, data, fault=fault, replace=replace)

    def _put(self, path: str, data: bytes, *, fault: str | None = None, replace: bool = True) -> bool:
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        if not self.local:
            if not replace and self.fs.exists(path):
                return False
            self.fs.pipe_file(path, data)
            return True
        temporary = f"{path}.{uuid.uuid4().hex}.partial"
        try:
            with open(temporary, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            if fault is not None:
                faults.point(fault)
            if replace:
                os.replace(temporary, path)
                return True
            try:
                os.link(temporary, path)
            except FileExistsError:
                return False
            return True
        finally:
            # A full disk leaves no temporary file behind; after a rename or link it is gone or a
            # second name.
            with contextlib.suppress(FileNotFoundError):
                os.remove(temporary)

    def commit(self, index: int, record: dict[str, Any]) -> None:
        """Record that video `index` is finished (done or failed); call after its shards."""
        data = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
        self._write_atomic(self._path(schema.COMMITS, f"{index:08d}.json"), data, fault="commit")
        faults.point("committed")

    def commits(self) -> dict[int, dict[str, Any]]:
        """Every commit record, by video index. Unreadable records (a torn write) are ignored."""
        folder = self._path(schema.COMMITS)
        if not self.fs.exists(folder):
            return {}
        found: dict[int, dict[str, Any]] = {}
        for path in sorted(self.fs.ls(folder, detail=False)):
            name = path.rsplit("/", 1)[-1]
            if not name.endswith(".json") or name == "zarr.json":
                continue
            try:
                found[int(name.removesuffix(".json"))] = json.loads(self.fs.cat_file(path))
            except (ValueError, OSError):
                continue
        return found

    def tables(self, num_videos: int) -> dict[str, np.ndarray]:
        """The per-video tables as sealing writes them, from the commit records.

        Videos without a record are pending, with counts of -1.

        Example:
            >>> import tempfile
            >>> files = StoreFiles(tempfile.mkdtemp() + "/s.zarr")
            >>> files.commit(1, {"video_id": "b", "status": "done", "num_frames": 4})
            >>> files.tables(2)["status"].tolist(), files.tables(2)["num_frames"].tolist()
            (['pending', 'done'], [-1, 4])
        """
        tables: dict[str, np.ndarray] = {
            schema.STATUS: np.full(num_videos, schema.STATUS_PENDING, dtype=object),
            schema.ERROR: np.full(num_videos, "", dtype=object),
            schema.SOURCE_HASH: np.full(num_videos, "", dtype=object),
        }
        for name in _COUNTS:
            tables[name] = np.full(num_videos, -1, np.int32)
        for index, record in self.commits().items():
            if index >= num_videos:
                continue
            tables[schema.STATUS][index] = record["status"]
            tables[schema.ERROR][index] = record.get("error", "")
            tables[schema.SOURCE_HASH][index] = record.get("source_hash", "")
            for name in _COUNTS:
                tables[name][index] = record.get(name, -1)
        return tables

    def forget(self, index: int) -> None:
        """Drop video `index`'s commit (its source changed and it must be redone)."""
        path = self._path(schema.COMMITS, f"{index:08d}.json")
        if self.fs.exists(path):
            self.fs.rm(path)

    def sweep(self) -> int:
        """Delete temporary files a killed writer left behind (``*.partial``); returns how many."""
        if not self.fs.exists(self.root):
            return 0
        stale = [p for p in self.fs.find(self.root) if p.endswith(".partial")]
        for path in stale:
            faults.point("sweep")
            self.fs.rm(path)
        return len(stale)

    def clear_store(self) -> None:
        """Delete everything in the store but the writer lock (zarr's ``mode="w"`` deletes that too,
        which would let a second writer in while this one creates the store)."""
        if not self.fs.exists(self.root):
            return
        keep = {self._path(schema.BOOKKEEPING, "writer.lock"), self._path(schema.BOOKKEEPING, "zarr.json")}
        for path in self.fs.ls(self.root, detail=False):
            if path.rstrip("/") == self._path(schema.BOOKKEEPING):
                for inner in self.fs.ls(path, detail=False):
                    if inner.rstrip("/") not in keep:
                        self.fs.rm(inner, recursive=True)
            else:
                self.fs.rm(path, recursive=True)

    # The writer lock: one writing process per store at a time.

    def acquire(self) -> None:
        """Take the writer lock, or raise `StoreBusyError` naming the live process holding it.

        On local disks the lock file is linked into place, which fails if it exists, so two
        processes starting at once cannot both take it. A lock left by a process that no longer
        runs on this host is taken over, one process at a time.
        """
        path = self._path(schema.BOOKKEEPING, "writer.lock")
        mine = json.dumps({"host": socket.gethostname(), "pid": os.getpid()}).encode()
        for _ in range(8):
            if self._write_atomic(path, mine, replace=False):
                return
            holder = self._holder(path)
            if holder is None:
                continue  # released meanwhile
            if holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
                return
            if _alive(holder):
                raise StoreBusyError(f"{self.url}: store is being written by process {holder.get('pid')} "
                                     f"on {holder.get('host')}; wait for it, or stop it and rerun to resume")
            with self._takeover():
                # Remove the stale lock only if it still is the one judged stale: another process
                # may have taken it over since.
                if self._holder(path) == holder:
                    self.fs.rm(path)
        raise StoreBusyError(f"{self.url}: store is being written by other processes taking the writer lock in turn")

    def _holder(self, path: str) -> dict[str, Any] | None:
        """The lock's content, {} if unreadable, None if there is no lock."""
        try:
            holder = json.loads(self.fs.cat_file(path))
        except FileNotFoundError:
            return None
        except (ValueError, OSError):
            return {}
        return holder if isinstance(holder, dict) else {}

    @contextlib.contextmanager
    def _takeover(self) -> Iterator[None]:
        """Serialise stale-lock takeovers: an exclusive flock on the bookkeeping folder (local)."""
        if not self.local:
            yield
            return
        descriptor = os.open(self._path(schema.BOOKKEEPING), os.O_RDONLY)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)

    def release(self) -> None:
        """Drop the writer lock if this process holds it."""
        path = self._path(schema.BOOKKEEPING, "writer.lock")
        holder = self._holder(path)
        if holder is not None and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
            self.fs.rm(path)


_COUNTS = (schema.NUM_FRAMES, schema.NUM_ATIME, schema.NUM_SAMPLES, schema.NUM_VIEWS, schema.NUM_INSTANCES,
           schema.NUM_SOURCES)


def _alive(holder: dict[str, Any]) -> bool:
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        # Another host's process cannot be checked from here: assume it is alive.
        return bool(holder.get("host"))
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
