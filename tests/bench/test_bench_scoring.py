"""The scoring and scale benchmarks, quick: every figure measured, sane, and against its named baseline."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from avlab.bench import scale, scoring
from avlab.bench.harness import BenchContext, Figure


def _context(tmp_path: Path, repeats: int) -> BenchContext:
    work = tmp_path / "work"
    work.mkdir()
    return BenchContext(quick=True, work=work, repeats=repeats, out=tmp_path / "results")


def _sane(figure: Figure) -> None:
    for rate in (figure.rate, figure.baseline_rate):
        assert math.isfinite(rate) and rate > 0, figure.name
    assert figure.baseline and figure.unit


def test_ellipse_runs_match_the_drawn_mask() -> None:
    rng = np.random.default_rng(0)
    height, width = 37, 53
    rows, columns = np.mgrid[:height, :width]
    for _ in range(40):
        centre, radii = (rng.uniform(-5, height + 5), rng.uniform(-5, width + 5)), tuple(rng.uniform(1, 30, 2))
        drawn = ((rows - centre[0]) / radii[0]) ** 2 + ((columns - centre[1]) / radii[1]) ** 2 <= 1
        counts = scoring.ellipse_rle(height, width, centre=centre, radii=radii)
        if counts is None:
            assert not drawn.any()
            continue
        decoded = coco_mask.decode(coco_mask.frPyObjects({"size": [height, width], "counts": counts}, height, width))
        np.testing.assert_array_equal(decoded, drawn)


@pytest.mark.timeout(300)
def test_quick_scoring_figures_agree_with_their_references(tmp_path: Path) -> None:
    figures = scoring.run(_context(tmp_path, repeats=1))
    separation, ytvis = figures[:3], figures[3:]
    assert [f.name.split(",")[1].split(":")[0].strip() for f in separation] == list(scoring.WORKLOADS)
    for figure in separation:
        _sane(figure)
        assert figure.unit == "mixtures/s" and figure.baseline.startswith("mir_eval ") and figure.target == 5.0
        assert figure.details["agrees"] and figure.details["max_abs_diff_db"] <= scoring.AGREEMENT_DB
        assert figure.details["blas_threads"] == 1
    assert [f.baseline.split(", ")[-1] for f in ytvis] == ["mask.iou per frame", "per-pair merge loop"]
    for figure in ytvis:
        _sane(figure)
        assert figure.unit == "tracks/s" and figure.target is None
        assert figure.details["ground_truth_tracks"] == 100 and figure.details["result_tracks"] > 50
        assert figure.details["max_abs_diff_stats"] < 1e-12  # the same AP and AR to round-off
        assert 0 < figure.details["avlab_stats"]["AP"] < 1


@pytest.mark.timeout(300)
def test_quick_scale_figures_and_growth_plot(tmp_path: Path) -> None:
    context = _context(tmp_path, repeats=1)
    figures = scale.run(context)
    assert [f.baseline for f in figures] == ["threaded default (no dask)", "float32 .npy per video and level",
                                             "the same at 2 videos (16 frames)", "the same at 2 videos"]
    for figure in figures:
        _sane(figure)
    workers, size, caching, training = figures
    assert workers.details["torch_threads"]["dask LocalCluster, 2 workers"] == [1, 1]
    # float16 + zstd against float32: well under the float32 bytes, metadata included.
    assert size.details["store_bytes_per_frame"] < 0.75 * size.details["npy_bytes_per_frame"]
    assert size.ratio == pytest.approx(size.details["npy_bytes_per_frame"] / size.details["store_bytes_per_frame"])
    assert caching.unit == "frames/s" and training.unit == "samples/s"
    assert caching.details["plot"] == "scale_growth_quick.png"
    assert (context.out / "scale_growth_quick.png").stat().st_size > 10_000
