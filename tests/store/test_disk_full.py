"""A full disk: a clear error naming the store, a store that still opens, and a resume that completes.

The disk is a real tmpfs of a few pages, mounted for the test (we run as root in CI; elsewhere
the tests skip and say why).
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_cases import (
    LOCK,
    NUM_VIDEOS,
    OPTIONS,
    assert_done_videos_whole,
    cache_in_process,
    leftovers,
    make_root,
    store_files,
)

from avlab.errors import StoreWriteError
from avlab.store import cache_features, open_store
from avlab.store.commits import StoreFiles

PAGE = 4096


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_root(tmp_path_factory.mktemp("full"))


@pytest.fixture(scope="module")
def reference(root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, bytes], object]:
    store = tmp_path_factory.mktemp("reference") / "store.zarr"
    ds = cache_features(root, store, **OPTIONS)
    return store_files(store), ds


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (the 6-video store takes about 4 MiB); `remount` resizes it."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True,
                             check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def remount(disk: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(disk)], check=True)


def test_disk_full_while_writing_videos_then_resumed(root: Path, reference: tuple[dict[str, bytes], object],
                                                     small_disk: Path) -> None:
    store = small_disk / "store.zarr"
    with pytest.raises(StoreWriteError) as raised:
        cache_features(root, store, **OPTIONS)
    error = raised.value
    assert error.path == str(store)
    assert str(error).startswith(f"{store}: the disk is full (No space left on device")
    assert isinstance(error.__cause__, OSError) and error.__cause__.errno == errno.ENOSPC
    assert leftovers(store) == [], "a failed write left its temporary file"
    assert not (store / LOCK).exists()

    # The store opens; the videos committed before the disk filled are done and whole.
    status = assert_done_videos_whole(store, reference[1])
    done = {i for i, record in StoreFiles(store).commits().items() if record["status"] == "done"}
    assert {i for i, s in enumerate(status) if s == "done"} == done
    assert 0 < status.count("pending") <= NUM_VIDEOS
    assert not open_store(store).avlab.attrs["sealed"]

    remount(small_disk, "16m")
    resumed = cache_features(root, store, **OPTIONS)
    assert resumed.avlab.status.tolist() == ["done"] * NUM_VIDEOS
    assert leftovers(store) == []
    assert store_files(store) == reference[0]


def test_disk_full_while_sealing_then_resumed(root: Path, reference: tuple[dict[str, bytes], object],
                                              small_disk: Path) -> None:
    remount(small_disk, "16m")
    store = small_disk / "store.zarr"
    # Every video committed, then killed before sealing; the operator clears the dead lock.
    assert cache_in_process(root, store, "committed:6") == -9
    (store / LOCK).unlink()
    filler = small_disk / "filler"
    # Leave one page: the writer lock takes it, and the first table the seal rewrites finds none.
    free = os.statvfs(small_disk)
    filler.write_bytes(b"\0" * ((free.f_bavail - 1) * free.f_frsize))

    with pytest.raises(StoreWriteError, match="the disk is full"):
        cache_features(root, store, **OPTIONS)
    assert leftovers(store) == []
    ds = open_store(store)
    assert not ds.avlab.attrs["sealed"]
    assert assert_done_videos_whole(store, reference[1]) == ["done"] * NUM_VIDEOS

    filler.unlink()
    assert cache_features(root, store, **OPTIONS).avlab.attrs["sealed"]
    assert store_files(store) == reference[0]
