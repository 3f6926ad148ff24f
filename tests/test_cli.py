from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from avlab.cli import build_parser, main
from avlab.testing import write_test_video


def test_help_lists_the_subcommands() -> None:
    text = build_parser().format_help()
    for command in ("demo", "ablate", "synth", "cache", "train", "finetune", "probe", "info"):
        assert command in text


def test_console_script_is_installed_and_answers_help() -> None:
    # The `avlab` entry point from pyproject.toml, run as a user would.
    script = Path(sys.executable).with_name("avlab")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    assert "demo" in result.stdout and "probe" in result.stdout


def test_probe_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_test_video(tmp_path / "clip.mp4", num_frames=4, fps=4)
    assert main(["probe", str(path)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["num_frames"] == 4 and info["fps"] == 4.0 and info["audio"][0]["codec"] == "aac"


def test_bad_file_is_one_line_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("not a video")
    assert main(["probe", str(bogus)]) == 1
    err = capsys.readouterr().err
    assert str(bogus) in err and "Traceback" not in err


def test_info_reports_versions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["libraries"]["torch"] and info["cores"] >= 1


def test_cache_command_writes_a_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from avlab.datasets.synth import generate
    from avlab.store import open_store

    root = generate(tmp_path / "synth", num_videos=1, size=32, fps=4, seconds=1.0, renderer="additive",
                    splits=["train"], num_solo=0)
    store = tmp_path / "store.zarr"
    assert main(["cache", str(root), str(store), "--visual", "debug", "--size", "32", "--no-progress"]) == 0
    assert "1 done" in capsys.readouterr().out
    assert open_store(store).visual_c3.shape[:3] == (1, 1, 4)


def test_train_command_fits_a_system_from_a_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from avlab.testing import tiny_store

    store = tiny_store(tmp_path / "data").encoding["source"]
    args = ["train", store, "--system", "visual_only", "--epochs", "1", "--batch-size", "4", "--val-split", "none",
            "--runs", str(tmp_path / "runs"), "--no-progress", "--accelerator", "cpu"]
    assert main(args) == 0
    out = capsys.readouterr().out
    report = json.loads(out[out.index("{\n") :])  # the command's JSON closes its output
    assert Path(report["checkpoint"]).is_file() and "train/loss_epoch" in report["metrics"]
    from avlab.models import load_system

    assert type(load_system(report["checkpoint"])).__name__ == "VisualOnly"


def test_train_command_takes_vis_systems_presets_and_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from avlab.models import load_system
    from avlab.testing import tiny_store

    store = tiny_store(tmp_path / "data").encoding["source"]
    args = ["train", store, "--system", "crossvis", "--preset", "tiny", "--system-options", '{"embedding_dim": 4}',
            "--vis-options", '{"max_offset": 1}', "--epochs", "1", "--batch-size", "4", "--val-split", "none",
            "--runs", str(tmp_path / "runs"), "--no-progress", "--accelerator", "cpu"]
    assert main(args) == 0
    out = capsys.readouterr().out
    report = json.loads(out[out.index("{\n") :])
    assert math.isfinite(report["metrics"]["train/crossover_loss"])
    system = load_system(report["checkpoint"])
    assert type(system).__name__ == "CrossVIS" and system.embedding.dim == 4
