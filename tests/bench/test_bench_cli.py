"""`avlab bench --quick` end to end: the harness runs, records and summarises (speed is not asserted)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from avlab.bench import BENCHMARKS, recorded_figures
from avlab.cli import main


@pytest.mark.timeout(600)
def test_quick_bench_records_every_figure_with_the_machine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quick", "--only", "store", "--out", str(tmp_path), "--repeats", "1"]) == 0
    record = json.loads((tmp_path / "store_quick.json").read_text())
    assert record["quick"] and record["environment"]["cores"] >= 1 and "torch" in record["environment"]["libraries"]
    figures = recorded_figures(tmp_path, "store", quick=True)
    assert figures[0].name.startswith("caching resnet18 @ 128 px") and figures[0].target == 0.85
    readers = {f.name.split(": ")[1] for f in figures[1:]}
    assert readers == {"ClipDataset, direct shard engine, zstd store (default)", "ClipDataset, in memory",
                       "ClipDataset, direct shard engine, uncompressed store", "ClipDataset, zarr engine, zstd store"}
    assert {f.baseline for f in figures[1:]} == {"npy memmap per video", "h5py, a chunk per frame",
                                                 "naive zarr indexing"}
    for figure in figures:
        assert math.isfinite(figure.ratio) and figure.rate > 0 and figure.baseline_rate > 0
    summary = (tmp_path / "summary_quick.md").read_text()
    assert summary in capsys.readouterr().out
    assert "## store" in summary and "| caching resnet18 @ 128 px" in summary and "Machine: " in summary
    assert not (tmp_path / "summary.md").exists()  # a quick run never touches the full results


def test_unknown_benchmarks_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--only", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown benchmark(s) ['nope']" in capsys.readouterr().err
    assert set(BENCHMARKS) == {"store", "training", "headline", "scoring", "scale"}
