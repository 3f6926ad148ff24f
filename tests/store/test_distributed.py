"""Scale-out: videos as tasks on a dask LocalCluster give the same store as a serial run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from store_cases import CACHE_OPTIONS

from avlab.store import cache_features


@pytest.fixture(scope="module")
def cluster_client():  # type: ignore[no-untyped-def]
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        yield client


def test_two_workers_give_the_serial_store(cached, synth_root: Path, tmp_path: Path, cluster_client) -> None:  # type: ignore[no-untyped-def]
    ds = cache_features(synth_root, tmp_path / "dask.zarr", client=cluster_client, **CACHE_OPTIONS)
    assert ds.avlab.status.tolist() == ["done"] * 4
    for name in cached.data_vars:
        np.testing.assert_array_equal(ds[name].values, cached[name].values, err_msg=name)
    assert ds.attrs == cached.attrs
