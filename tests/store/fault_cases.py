"""Shared pieces of the fault tests (kills, concurrent writers, full disks): a module with a unique
name, importable from any test file and from the processes they start."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from avlab.datasets.synth import generate

OPTIONS: dict[str, Any] = dict(visual="debug", size=64, augment=("hflip",), progress=False, batch_size=2)
NUM_VIDEOS = 6
LOCK = "_avlab/writer.lock"


def make_root(folder: Path, num_videos: int = NUM_VIDEOS) -> Path:
    """A tiny SynthAV dataset: `num_videos` one-second 64 x 64 videos at 8 fps."""
    return generate(folder / "synth", num_videos=num_videos, size=64, fps=8, seconds=1.0, renderer="additive",
                    splits=["train"], num_solo=0, seed=5)


def store_files(store: Path) -> dict[str, bytes]:
    """Every file of a store by relative path, but the writer lock."""
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*"))
            if p.is_file() and str(p.relative_to(store)) != LOCK}


def leftovers(store: Path) -> list[str]:
    """Temporary files (ours: ``*.partial``; zarr's: ``*.<hex>.partial``) still in the store."""
    return sorted(str(p.relative_to(store)) for p in store.rglob("*.partial"))


def _cache(root: str, store: str, kill_at: str | None, options: dict[str, Any]) -> None:
    from avlab.store import cache_features, faults

    faults.arm(kill_at)
    cache_features(root, store, **options)


def cache_in_process(root: Path, store: Path, kill_at: str | None = None, **options: Any) -> int:
    """Run `cache_features` in a child process, killed at `kill_at`; returns its exit code.

    Children fork from a server that has avlab imported already (6 s saved per child), and
    arm the kill point themselves (`avlab.store.faults.arm`).
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["avlab.store.cache"])
    child = context.Process(target=_cache, args=(str(root), str(store), kill_at, {**OPTIONS, **options}))
    child.start()
    child.join(timeout=180)
    if child.exitcode is None:
        child.kill()
        child.join()
        raise AssertionError(f"the run killed at {kill_at} did not end in 180 s")
    return int(child.exitcode)


def cache_in_subprocess(root: Path, store: Path, kill_at: str) -> subprocess.CompletedProcess[bytes]:
    """Run `cache_features` in a fresh interpreter with ``AVLAB_KILL_AT=kill_at`` in its environment."""
    script = f"from avlab.store import cache_features\ncache_features({str(root)!r}, {str(store)!r}, **{OPTIONS!r})\n"
    return subprocess.run([sys.executable, "-c", script], env={**os.environ, "AVLAB_KILL_AT": kill_at},
                          capture_output=True, timeout=180, check=False)


def assert_done_videos_whole(store: Path, reference: Any) -> list[str]:
    """Open the interrupted store: every video it calls done holds the reference's values.

    Returns the status of every video.
    """
    from avlab.store import open_store

    ds = open_store(store)
    status = [str(s) for s in ds.avlab.status.tolist()]
    assert set(status) <= {"done", "pending"}, status
    if ds.avlab.attrs.get("sealed"):
        assert status == ["done"] * len(status), "sealed with videos pending"
    for index in (i for i, s in enumerate(status) if s == "done"):
        for name, variable in reference.data_vars.items():
            if "video" in variable.dims:
                np.testing.assert_array_equal(ds[name].isel(video=index).values, variable.isel(video=index).values,
                                              err_msg=f"{name} of done video {index}")
    return status


def _race(root: str, store: str, ready: str, go: str, result: str) -> None:
    from avlab.store import StoreBusyError, cache_features

    Path(ready).touch()
    while not os.path.exists(go):
        time.sleep(0.0005)
    try:
        cache_features(root, store, **OPTIONS)
    except StoreBusyError as error:
        Path(result).write_text(str(error))
        os._exit(3)
    Path(result).write_text("finished")


def race(root: Path, store: Path, folder: Path, num_writers: int = 2) -> list[tuple[int, int | None, str]]:
    """Start `num_writers` processes caching into `store` at the same moment (they wait on a file).

    Returns (pid, exit code, message) per writer: "finished" or its `StoreBusyError` message.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["avlab.store.cache"])
    go = folder / "go"
    writers = []
    for k in range(num_writers):
        child = context.Process(target=_race, args=(str(root), str(store), str(folder / f"ready-{k}"), str(go),
                                                    str(folder / f"result-{k}")))
        child.start()
        writers.append(child)
    deadline = time.monotonic() + 60
    while not all((folder / f"ready-{k}").exists() for k in range(num_writers)) and time.monotonic() < deadline:
        time.sleep(0.001)
    go.touch()
    outcomes = []
    for k, child in enumerate(writers):
        child.join(timeout=180)
        result = folder / f"result-{k}"
        outcomes.append((int(child.pid or 0), child.exitcode, result.read_text() if result.exists() else ""))
    return outcomes
