"""Crash safety at exact places: `cache_features` SIGKILLed at named kill points
(`avlab.store.faults`) and resumed gives the uninterrupted store bit for bit.

A full run of the 6-video dataset reaches: create 26, decode 6, backbone 6, shard-write 114
(19 per video), video-written 6, commit 6, committed 6, seal-tables, seal-metadata, sealed 1.
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
from fault_cases import (
    LOCK,
    NUM_VIDEOS,
    OPTIONS,
    assert_done_videos_whole,
    cache_in_process,
    cache_in_subprocess,
    leftovers,
    make_root,
    store_files,
)

from avlab.store import StoreSchemaError, cache_features, open_store

KILLED = -signal.SIGKILL

KILL_POINTS = [
    "create:1",  # the store was wiped, no array exists yet
    "create:20",  # half of the arrays exist, no attributes
    "decode:1",
    "decode:5",  # loaders decode ahead while earlier videos are written
    "backbone:3",
    "shard-write:1",  # the first shard's bytes are in its temporary file
    "shard-write:19",  # the first video's last shard
    "shard-write:60",  # mid-way through the fourth video
    "shard-write:114",  # the last shard of the last video
    "video-written:2",  # a whole video on disk, without its commit record
    "commit:1",  # a commit record in its temporary file
    "commit:6",
    "committed:4",
    "seal-tables:1",  # the tables are written, the attributes are not
    "seal-metadata:1",  # sealed in the attributes, metadata not consolidated
    "sealed:1",  # all written, the writer lock left behind
]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_root(tmp_path_factory.mktemp("kill"))


@pytest.fixture(scope="module")
def reference(root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, bytes], Any]:
    store = tmp_path_factory.mktemp("reference") / "store.zarr"
    ds = cache_features(root, store, **OPTIONS)
    return store_files(store), ds


def check_interrupted(store: Path, reference: Any) -> None:
    """Nothing half-written is visible: done videos are whole, the rest pending, or no store yet."""
    if not (store / "zarr.json").exists():
        return
    try:
        assert_done_videos_whole(store, reference)
    except StoreSchemaError as error:
        # Killed while creating: the attributes, written last, are not there yet.
        assert "not written by avlab" in str(error)


def check_resumed(root: Path, store: Path, reference: dict[str, bytes]) -> None:
    resumed = cache_features(root, store, **OPTIONS)
    assert resumed.avlab.status.tolist() == ["done"] * NUM_VIDEOS
    assert leftovers(store) == [], "temporary files were not swept"
    assert not (store / LOCK).exists(), "the writer lock outlived the run"
    files = store_files(store)
    assert sorted(files) == sorted(reference[0])
    assert [name for name in files if files[name] != reference[0][name]] == []


@pytest.mark.parametrize("kill_at", KILL_POINTS)
def test_killed_at_a_point_and_resumed_equals_uninterrupted(root: Path, reference: Any, tmp_path: Path,
                                                            kill_at: str) -> None:
    store = tmp_path / "store.zarr"
    assert cache_in_process(root, store, kill_at) == KILLED
    check_interrupted(store, reference[1])
    check_resumed(root, store, reference)


@pytest.mark.parametrize("first, second, from_environment", [("shard-write:40", "sweep:1", True),
                                                             ("commit:3", "shard-write:30", False),
                                                             ("video-written:5", "seal-tables:1", False)])
def test_killed_twice_and_resumed_equals_uninterrupted(root: Path, reference: Any, tmp_path: Path, first: str,
                                                       second: str, from_environment: bool) -> None:
    store = tmp_path / "store.zarr"
    if from_environment:
        # Armed the way users arm it: AVLAB_KILL_AT in a fresh interpreter.
        run = cache_in_subprocess(root, store, first)
        assert run.returncode == KILLED, run.stderr.decode()[-2000:]
    else:
        assert cache_in_process(root, store, first) == KILLED
    if second.startswith("sweep"):
        assert leftovers(store), "the first kill left no temporary file to sweep"
    check_interrupted(store, reference[1])
    assert cache_in_process(root, store, second) == KILLED
    check_interrupted(store, reference[1])
    check_resumed(root, store, reference)


def test_a_changed_video_being_recached_is_not_done_while_killed(root: Path, reference: Any, tmp_path: Path) -> None:
    store = tmp_path / "store.zarr"
    shutil.copytree(root, tmp_path / "synth")
    cache_features(tmp_path / "synth", store, **OPTIONS)
    videos = sorted((tmp_path / "synth").rglob("*.mp4"))
    # Another clip's bytes under the first video's name: its source hash changes.
    shutil.copyfile(videos[1], videos[0])

    assert cache_in_process(tmp_path / "synth", store, "shard-write:5") == KILLED
    ds = open_store(store)
    assert not ds.avlab.attrs["sealed"]
    assert ds.avlab.status.tolist() == ["pending"] + ["done"] * (NUM_VIDEOS - 1)

    expected = tmp_path / "expected.zarr"
    cache_features(tmp_path / "synth", expected, **OPTIONS)
    resumed = cache_features(tmp_path / "synth", store, **OPTIONS)
    assert resumed.avlab.status.tolist() == ["done"] * NUM_VIDEOS
    assert leftovers(store) == []
    assert store_files(store) == store_files(expected)
