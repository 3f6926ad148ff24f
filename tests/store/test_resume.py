"""The writer lock: a live writer blocks a second one; a dead writer's lock is taken over.

Kills at exact places and their resumes are in test_kill_points.py, racing writers in
test_concurrent_writers.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from fault_cases import LOCK, NUM_VIDEOS, OPTIONS, make_root

from avlab.store import StoreBusyError, cache_features
from avlab.store.commits import StoreFiles


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_root(tmp_path_factory.mktemp("resume"))


def test_a_live_writer_blocks_a_second_one(root: Path, tmp_path: Path) -> None:
    store = tmp_path / "store.zarr"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (store / "_avlab").mkdir(parents=True)
        (store / LOCK).write_text(json.dumps({"host": socket.gethostname(), "pid": holder.pid}))
        with pytest.raises(StoreBusyError, match=f"store is being written by process {holder.pid} on "):
            cache_features(root, store, **OPTIONS)
        assert (store / LOCK).exists(), "the blocked writer removed the holder's lock"
    finally:
        holder.kill()
        holder.wait()
    # The holder is gone: its stale lock is taken over and the run completes.
    assert cache_features(root, store, **OPTIONS).avlab.status.tolist() == ["done"] * NUM_VIDEOS
    assert not (store / LOCK).exists()


def test_the_lock_survives_creating_the_store(root: Path, tmp_path: Path) -> None:
    """zarr's mode="w" wiped the whole folder, writer lock included, while the store was created."""
    store = tmp_path / "store.zarr"
    files = StoreFiles(store)
    files.acquire()
    (store / "stray").write_text("left by an older store")
    files.clear_store()
    assert sorted(str(p.relative_to(store)) for p in store.rglob("*")) == ["_avlab", "_avlab/writer.lock",
                                                                          "_avlab/zarr.json"]
    assert json.loads((store / LOCK).read_text()) == {"host": socket.gethostname(), "pid": os.getpid()}
    files.release()
    assert not (store / LOCK).exists()
