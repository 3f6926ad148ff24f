"""The store's bookkeeping: one commit record per finished video, a writer lock, temp-file sweeps.

A video counts as cached only once its commit record exists, and a worker writes that record
after all of the video's shards. Each record is one small JSON object written atomically (a
temporary name, then a rename on local disks; object stores PUT whole objects), which works on
every fsspec filesystem, including S3, which has no append. Completion is never inferred from
which chunks exist.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from typing import Any

import fsspec

from avlab.errors import AvlabError
from avlab.store import schema

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
            self.fs.pipe_file(marker, b'{"zarr_format":3,"node_type":"group","attributes":{}}')

    def _write_atomic(self, path: str, data: bytes) -> None:
        parent = path.rsplit("/", 1)[0]
        for relative in (schema.BOOKKEEPING, schema.COMMITS):
            if parent.startswith(self._path(relative)):
                self._folder(relative)
        self.fs.makedirs(parent, exist_ok=True)
        if self.local:
            temporary = f"{path}.{uuid.uuid4().hex}.partial"
            with open(temporary, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        else:
            self.fs.pipe_file(path, data)

    def commit(self, index: int, record: dict[str, Any]) -> None:
        """Record that video `index` is finished (done or failed); call after its shards."""
        data = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
        self._write_atomic(self._path(schema.COMMITS, f"{index:08d}.json"), data)

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

    def forget(self, index: int) -> None:
        """Drop video `index`'s commit (its source changed and it must be redone)."""
        path = self._path(schema.COMMITS, f"{index:08d}.json")
        if self.fs.exists(path):
            self.fs.rm(path)

    def clear_commits(self) -> None:
        folder = self._path(schema.COMMITS)
        if self.fs.exists(folder):
            self.fs.rm(folder, recursive=True)

    def sweep(self) -> int:
        """Delete temporary files a killed writer left behind (``*.partial``); returns how many."""
        if not self.fs.exists(self.root):
            return 0
        stale = [p for p in self.fs.find(self.root) if p.endswith(".partial")]
        for path in stale:
            self.fs.rm(path)
        return len(stale)

    # The writer lock: one writing process per store at a time.

    def acquire(self) -> None:
        """Take the writer lock, or raise `StoreBusyError` naming the live process holding it.

        A lock left by a process that no longer runs on this host is taken over.
        """
        path = self._path(schema.BOOKKEEPING, "writer.lock")
        me = {"host": socket.gethostname(), "pid": os.getpid()}
        if self.fs.exists(path):
            try:
                holder = json.loads(self.fs.cat_file(path))
            except (ValueError, OSError):
                holder = {}
            if holder.get("pid") != me["pid"] and _alive(holder):
                raise StoreBusyError(f"{self.url}: store is being written by process {holder.get('pid')} "
                                     f"on {holder.get('host')}; wait for it, or stop it and rerun to resume")
        self._write_atomic(path, json.dumps(me).encode())

    def release(self) -> None:
        path = self._path(schema.BOOKKEEPING, "writer.lock")
        if self.fs.exists(path):
            self.fs.rm(path)


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
