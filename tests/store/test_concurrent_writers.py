"""Concurrency: writers racing for one store, and a dask worker dying in the middle of a video."""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path
from typing import Any

import pytest
from fault_cases import NUM_VIDEOS, OPTIONS, leftovers, make_root, race, store_files

from avlab.errors import AvlabWarning
from avlab.store import cache_features, faults
from avlab.store.commits import StoreFiles


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_root(tmp_path_factory.mktemp("race"))


@pytest.fixture(scope="module")
def reference(root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    store = tmp_path_factory.mktemp("reference") / "store.zarr"
    cache_features(root, store, **OPTIONS)
    return store_files(store)


@pytest.mark.parametrize("round_", range(5))
def test_two_writers_starting_at_once_one_wins_the_other_is_told(root: Path, reference: dict[str, bytes],
                                                                 tmp_path: Path, round_: int) -> None:
    store = tmp_path / "store.zarr"
    outcomes = race(root, store, tmp_path)
    winners = [o for o in outcomes if o[1] == 0]
    losers = [o for o in outcomes if o[1] == 3]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert winners[0][2] == "finished"
    assert re.fullmatch(rf"{re.escape(str(store))}: store is being written by process {winners[0][0]} on \S+; "
                        "wait for it, or stop it and rerun to resume", losers[0][2]), losers[0][2]
    assert store_files(store) == reference
    # The loser reruns once the winner is done: nothing to redo, nothing lost.
    assert cache_features(root, store, **OPTIONS).avlab.status.tolist() == ["done"] * NUM_VIDEOS
    assert store_files(store) == reference


def test_stale_lock_taken_over_by_one_of_two_racing_writers(root: Path, reference: dict[str, bytes],
                                                          tmp_path: Path) -> None:
    store = tmp_path / "store.zarr"
    cache_features(root, store, **OPTIONS)
    # A writer killed long ago (no such process) left its lock.
    (store / "_avlab" / "writer.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": 2**22 + 7}))
    outcomes = race(root, store, tmp_path)
    assert sorted(o[1] for o in outcomes) == [0, 3], outcomes
    assert store_files(store) == reference


@pytest.fixture(scope="module")
def cluster_client():  # type: ignore[no-untyped-def]
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.mark.timeout(300)  # a cluster that never gets its worker back fails instead of hanging
@pytest.mark.parametrize("kill_at", ["decode:1", "shard-write:3", "commit:1"])
def test_a_dask_worker_killed_mid_video_is_retried(root: Path, reference: dict[str, bytes], tmp_path: Path,
                                                   cluster_client: Any, kill_at: str) -> None:
    client = cluster_client
    client.wait_for_workers(2, timeout=120)
    client.run(faults.arm, None)
    before = client.run(os.getpid)
    victim = sorted(before)[0]
    client.run(faults.arm, kill_at, workers=[victim])
    store = tmp_path / "store.zarr"

    ds = cache_features(root, store, client=client, **OPTIONS)

    # The armed worker really died (its nanny started a new one), and its video was redone.
    assert before[victim] not in client.run(os.getpid).values()
    assert ds.avlab.status.tolist() == ["done"] * NUM_VIDEOS
    commits = StoreFiles(store).commits()
    assert sorted(commits) == list(range(NUM_VIDEOS))
    assert leftovers(store) == [], "the dead worker's temporary files were not swept"
    assert store_files(store) == reference


def _set_allowed_failures(count: int, dask_scheduler: Any = None) -> int:
    previous = dask_scheduler.allowed_failures
    dask_scheduler.allowed_failures = count
    return int(previous)


@pytest.mark.timeout(300)
def test_a_video_that_kills_its_workers_is_recorded_failed_then_retried(root: Path, reference: dict[str, bytes],
                                                                       tmp_path: Path, cluster_client: Any) -> None:
    client = cluster_client
    client.wait_for_workers(2, timeout=120)
    client.run(faults.arm, None)
    store = tmp_path / "store.zarr"
    # No second chance: the first worker death while caching a video is dask's last.
    previous = client.run_on_scheduler(_set_allowed_failures, 0)
    try:
        client.run(faults.arm, "shard-write:3", workers=[sorted(client.run(os.getpid))[0]])
        with pytest.warns(AvlabWarning, match="failed"):
            ds = cache_features(root, store, client=client, **OPTIONS)
    finally:
        client.run_on_scheduler(_set_allowed_failures, previous)
    # The video being cached and those queued on the dying worker are recorded failed (how many
    # were queued there is dask's choice); the run went on with the others.
    status = ds.avlab.status.tolist()
    assert set(status) == {"done", "failed"}, status
    errors = ds.avlab.videos["error"]
    assert all(errors.iloc[i].startswith("KilledWorker: ") for i, s in enumerate(status) if s == "failed")
    assert leftovers(store) == []

    resumed = cache_features(root, store, retry_failed=True, **OPTIONS)
    assert resumed.avlab.status.tolist() == ["done"] * NUM_VIDEOS
    assert store_files(store) == reference
