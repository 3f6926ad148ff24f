"""The demo's pipeline on a tiny preset: data generated, described, drawn, and reused on a rerun."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from avlab.demo import run_demo


def test_demo_generates_describes_and_draws(tmp_path: Path) -> None:
    data, out = tmp_path / "synthav", tmp_path / "report"
    result = run_demo(data_root=data, out=out, num_videos=2, size=32, progress=False, num_contact_rows=2)
    assert (data / "dataset_card.json").exists() and not result.summary["reused_data"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["splits"]["train"]["num_videos"] == 2
    assert summary["splits"]["train"]["num_frames"] == 2 * 16
    assert 0.0 < summary["splits"]["train"]["sounding_fraction"] <= 1.0
    report = (out / "report.md").read_text()
    assert "| train | 2 | 32 |" in report and "![contact sheet](contact_sheet.png)" in report
    sheet = np.asarray(Image.open(out / "contact_sheet.png").convert("RGB"))
    assert sheet.shape[0] > 100 and sheet.std() > 10  # a drawn picture, not a blank canvas
    assert "report.md" in result.summary_text()

    again = run_demo(data_root=data, out=out, num_videos=2, size=32, progress=False, num_contact_rows=2)
    assert again.summary["reused_data"]
