"""`avlab ablate --preset quick`: every table trained over two seeds, summarised, written, resumed."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avlab.cli import main
from avlab.experiments import PAPER, TABLES, AblationResult, run_ablation
from avlab.experiments.ablate import METRICS


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> AblationResult:
    return run_ablation(tmp_path_factory.mktemp("ablate"), "quick", progress=False)


def test_every_run_trains_once_per_seed(quick: AblationResult) -> None:
    runs = {row.run for rows in TABLES.values() for row in rows}
    assert len(quick.runs) == 2 * len(runs)  # shared rows (LoGAN, the VIS systems) train once
    assert {(r["run"], r["seed"]) for r in quick.runs} == {(run.key, s) for run in runs for s in (0, 1)}
    with quick.files["runs_csv"].open() as f:
        lines = list(csv.DictReader(f))
    assert len(lines) == 2 * sum(len(rows) for rows in TABLES.values())
    assert {line["table"] for line in lines} == set(TABLES)


def test_summary_is_the_mean_and_sample_std_over_seeds(quick: AblationResult) -> None:
    for name, rows in quick.summary.items():
        assert [r["label"] for r in rows] == [row.label for row in TABLES[name]]
        for entry, row in zip(rows, TABLES[name], strict=True):
            values = [r["metrics"] for r in quick.runs if r["run"] == row.run.key]
            for metric, _, scale, _ in METRICS[name]:
                seen = [v[metric] * scale for v in values if metric in v]
                if len(seen) == 2:
                    assert entry[metric] == pytest.approx(statistics.mean(seen))
                    assert entry[f"{metric}_std"] == pytest.approx(statistics.stdev(seen))
    # LoGAN in the fusion table is table 1's AViS-Net run.
    logan = next(r for r in quick.summary["fusion"] if r["key"] == "logan")
    avisnet = next(r for r in quick.summary["table1"] if r["key"] == "avisnet")
    assert logan["miou"] == avisnet["miou"] and logan["seeds"] == 2


def test_tables_show_ours_and_the_papers_as_other_data(quick: AblationResult) -> None:
    text = quick.files["tables"].read_text()
    for rows in TABLES.values():
        for row in rows:
            assert f"| {row.label} | 2 |" in text
    assert "| *paper: AViS-Net* | other data | *7.43* | *13.16* | - | *70.95* | - |" in text
    assert "| *paper: AFCV* | other data | *34.9* |" in text
    saved = json.loads(quick.files["summary_json"].read_text())
    assert saved["paper"] == PAPER and set(saved["summary"]) == set(TABLES)
    with quick.files["summary_csv"].open() as f:
        units = {(line["metric"], line["unit"]) for line in csv.DictReader(f)}
    assert ("sdr", "dB") in units and ("acc_iou75", "%") in units and ("ap", "%") in units
    for name in TABLES:
        picture = np.asarray(Image.open(quick.files[f"plot_{name}"]).convert("L"))
        assert picture.std() > 5  # drawn, not blank


def test_a_second_run_resumes_without_training(quick: AblationResult) -> None:
    records = sorted((quick.root / "runs").glob("*-seed*.json"))
    stamps = [p.stat().st_mtime_ns for p in records]
    assert main(["ablate", "--preset", "quick", "--root", str(quick.root), "--tables", "vis,crossover",
                 "--no-progress"]) == 0
    assert [p.stat().st_mtime_ns for p in records] == stamps
    assert "## Crossover learning removed" in (quick.root / "tables.md").read_text()


def test_unknown_presets_and_tables_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown ablation preset 'huge'"):
        run_ablation(tmp_path, "huge")
    with pytest.raises(ValueError, match=r"unknown tables \['table9'\]"):
        run_ablation(tmp_path, "quick", tables=["table9"])
