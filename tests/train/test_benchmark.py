"""The benchmark command end to end, at the smallest size: generate, cache, train, score, print."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avlab.train.benchmark import main


def test_benchmark_command_prints_a_row_per_system(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--root", str(tmp_path), "--systems", "visual_only,audio_only", "--num-videos", "2", "--size", "32",
                 "--seconds", "1", "--epochs", "1", "--preset", "tiny", "--separation-eval-items", "1", "--quiet"])
    assert code == 0
    table = capsys.readouterr().out.strip().splitlines()
    assert table[0].startswith("| system | train s | mIoU | acc@0.75 | mIoU silent | acc@0.75 silent | SDR")
    assert [line.split("|")[1].strip() for line in table[2:]] == ["visual_only", "audio_only"]
    rows = json.loads((tmp_path / "results.json").read_text())
    assert [row["system"] for row in rows] == ["visual_only", "audio_only"]
    assert all(0 <= row["val/miou"] <= 1 and Path(row["checkpoint"]).is_file() for row in rows)


def test_vis_benchmark_prints_ap_per_system(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--task", "vis", "--root", str(tmp_path), "--systems", "afcv", "--num-videos", "2", "--size", "32",
                 "--seconds", "1", "--epochs", "1", "--preset", "tiny", "--quiet"])
    assert code == 0
    table = capsys.readouterr().out.strip().splitlines()
    assert table[0].startswith("| system | train s | AP | AP50")
    assert [line.split("|")[1].strip() for line in table[2:]] == ["afcv"]
    rows = json.loads((tmp_path / "vis_results.json").read_text())
    assert 0 <= rows[0]["val/ap"] <= 1 and "val/ap_sounding" in rows[0]


def test_finetuned_benchmark_starts_heads_from_the_tuned_system_and_reuses_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--root", str(tmp_path), "--systems", "audio_only", "--num-videos", "2", "--size", "32", "--seconds", "1",
            "--epochs", "1", "--preset", "tiny", "--separation-eval-items", "1", "--finetune-epochs", "1", "--quiet"]
    assert main(args) == 0
    first = json.loads((tmp_path / "results.json").read_text())
    assert [row["system"] for row in first] == ["avisnet end to end (debug)", "audio_only"]
    record = json.loads((tmp_path / "finetune.json").read_text())
    assert Path(record["weights"]).is_file() and Path(record["checkpoint"]).is_file()
    assert main(args) == 0  # the second run reuses the fine-tuning
    again = json.loads((tmp_path / "results.json").read_text())
    assert again[0] == first[0]
    assert len(list((tmp_path / "runs" / "finetune" / "avisnet").iterdir())) == 1
    capsys.readouterr()
