"""Smoke runs of the "training" and "headline" benchmarks at their --quick sizes: sane figures."""

from __future__ import annotations

import math
from pathlib import Path

from avlab.bench import headline, training
from avlab.bench.harness import BenchContext, Figure


def _context(tmp_path: Path, name: str) -> BenchContext:
    work = tmp_path / name
    work.mkdir()
    return BenchContext(quick=True, work=work, repeats=1, out=tmp_path / "results")


def _check(figures: list[Figure]) -> None:
    assert figures
    for figure in figures:
        assert figure.unit and figure.baseline and figure.details
        for rate in (figure.rate, figure.baseline_rate):
            assert math.isfinite(rate) and rate > 0, figure
        assert math.isfinite(figure.ratio) and figure.ratio > 0


def test_training_quick(tmp_path: Path) -> None:
    figures = training.run(_context(tmp_path, "training"))
    _check(figures)
    data_path, end_to_end = figures
    assert data_path.target == 0.9 and "plain" in data_path.baseline
    assert data_path.details["torch_threads"] >= 1 and len(data_path.details["avlab_rates"]) == 1
    assert "end_to_end=True" in end_to_end.baseline
    assert end_to_end.details["decode_seconds_per_frame"] > 0
    assert end_to_end.details["end_to_end_rate_without_decoding"] >= end_to_end.baseline_rate


def test_headline_quick(tmp_path: Path) -> None:
    figures = headline.run(_context(tmp_path, "headline"))
    _check(figures)
    (figure,) = figures
    assert figure.target == 10.0 and "end to end" in figure.baseline
    assert figure.details["runs"] and figure.details["measured_now"]
