"""The demo's pipeline on the tiny preset: data to report, then a second run that retrains nothing."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avlab.experiments import DemoResult, run_demo
from avlab.experiments.demo import SEGMENTATION_SYSTEMS, VIS_SYSTEMS


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    root = tmp_path_factory.mktemp("demo")
    return run_demo(data_root=root / "synthav", out=root / "report", store_root=root / "featurestore",
                    runs_root=root / "runs", preset="tiny", progress=False, num_examples=2)


def test_every_system_is_trained_and_scored(demo: DemoResult) -> None:
    with demo.files["metrics_csv"].open() as f:
        rows = {row["system"]: row for row in csv.DictReader(f)}
    assert set(rows) == set(SEGMENTATION_SYSTEMS) | set(VIS_SYSTEMS)
    for system in SEGMENTATION_SYSTEMS:
        assert 0.0 <= float(rows[system]["val/miou"]) <= 1.0
    assert all(rows[system]["val/sdr"] != "" for system in SEGMENTATION_SYSTEMS)  # every one separates
    for system in VIS_SYSTEMS:
        assert 0.0 <= float(rows[system]["val/ap"]) <= 1.0
    assert json.loads(demo.files["metrics_json"].read_text()) == demo.summary["metrics"]
    assert demo.summary["backbone"]["weights"].startswith("fine-tuned end to end")


def test_the_report_shows_every_figure(demo: DemoResult) -> None:
    text = demo.files["report"].read_text()
    roles = [r for r in demo.files if r not in ("report", "html", "metrics_csv", "metrics_json", "summary")]
    assert {"attention", "masks_avisnet", "masks_visual_only", "separation_0", "pixels_0", "loss_curves",
            "contact_sheet"} <= set(roles)
    for role in roles:
        assert f"]({demo.files[role].name})" in text
        picture = np.asarray(Image.open(demo.files[role]).convert("L"))
        assert picture.std() > 5, role  # drawn, not blank
    html = demo.files["html"].read_text()
    assert html.count('src="data:image/png;base64,') == len(roles) and "<table>" in html
    assert "| avisnet |" in text and "| afcv |" in text


def test_a_second_run_reuses_data_store_and_checkpoints(demo: DemoResult) -> None:
    root = demo.data_root.parent
    results = sorted((root / "runs").glob("*/*/result.json"))
    assert {p.parent.parent.name[:5] for p in results} == {"tiny-"}  # runs/{preset}-{key}/{system}
    stamps = [p.stat().st_mtime_ns for p in results]
    again = run_demo(data_root=demo.data_root, out=demo.out, store_root=root / "featurestore", runs_root=root / "runs",
                     preset="tiny", progress=False, num_examples=2)
    assert again.summary["reused_data"]
    assert [p.stat().st_mtime_ns for p in results] == stamps and len(results) == 5
    assert again.summary["metrics"] == demo.summary["metrics"]
    assert "report.md" in again.summary_text()


def test_an_unknown_preset_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown demo preset 'huge'"):
        run_demo(data_root=tmp_path, preset="huge")
