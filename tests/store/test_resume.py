"""Crash safety: a cache killed with SIGKILL and resumed equals an uninterrupted run, bit for bit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from avlab.datasets.synth import generate
from avlab.store import cache_features

OPTIONS = dict(visual="debug", size=64, augment=("hflip",), progress=False, batch_size=2)


def store_files(store: Path) -> dict[str, bytes]:
    """Every file of a store by relative path (the writer lock is gone once a run ends)."""
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("resume") / "synth", num_videos=10, size=64, fps=8, seconds=1.0,
                    renderer="additive", splits=["train"], num_solo=0, seed=5)


@pytest.fixture(scope="module")
def reference(root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    store = tmp_path_factory.mktemp("reference") / "store.zarr"
    cache_features(root, store, **OPTIONS)
    return store_files(store)


@pytest.mark.parametrize("kill_after_commits", [0, 3, 7])
def test_killed_and_resumed_equals_uninterrupted(root: Path, reference: dict[str, bytes], tmp_path: Path,
                                                 kill_after_commits: int) -> None:
    store = tmp_path / "store.zarr"
    script = (f"from avlab.store import cache_features\n"
              f"cache_features({str(root)!r}, {str(store)!r}, **{OPTIONS!r})\n")
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    commits = store / "_avlab" / "commits"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        done = len(list(commits.glob("*.json"))) if commits.exists() else 0
        if done >= kill_after_commits and (store / "zarr.json").exists():
            break
        time.sleep(0.005)
    was_running = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert was_running, f"the run ended before it could be killed: {process.stderr.read().decode()[-2000:]}"
    interrupted = json.loads((store / "zarr.json").read_text())["attributes"].get("avlab", {})
    assert not interrupted.get("sealed")  # nothing half-done looks finished

    resumed = cache_features(root, store, **OPTIONS)
    assert resumed.avlab.status.tolist() == ["done"] * 10
    assert not list(store.rglob("*.partial")), "temporary files were not swept"
    assert store_files(store) == reference


def test_a_live_writer_blocks_a_second_one(root: Path, tmp_path: Path) -> None:
    from avlab.store import StoreBusyError
    from avlab.store.commits import StoreFiles

    store = tmp_path / "store.zarr"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        files = StoreFiles(store)
        files.fs.makedirs(f"{store}/_avlab", exist_ok=True)
        (store / "_avlab" / "writer.lock").write_text(json.dumps({"host": os.uname().nodename, "pid": holder.pid}))
        with pytest.raises(StoreBusyError, match=f"process {holder.pid}"):
            cache_features(root, store, **OPTIONS)
    finally:
        holder.kill()
        holder.wait()
    # The holder is gone: its stale lock is taken over and the run completes.
    assert cache_features(root, store, **OPTIONS).avlab.status.tolist() == ["done"] * 10
