"""CPU smoke runs of every system through `fit`, checkpoints, repeatability, precision, metrics."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from avlab.errors import AvlabError
from avlab.eval import AVSBenchMeter, mask_iou
from avlab.models import create_system, list_systems, load_system, system_preset
from avlab.train import AVSegmentationTask, NaturalFrames, StoreFrames, collate, fit

SEPARATING = {"avisnet", "pixelplayer", "coseg", "audio_only", "visual_only"}


def quick_fit(mix_store: Path, name: Any, root: Path, **options: Any) -> Any:
    preset = system_preset(name, "tiny") if isinstance(name, str) else {}
    settings = {"system_kwargs": preset, "max_epochs": 1, "batch_size": 8,
                "separation_eval_items": 2, "progress": False, "root_dir": root, **options}
    return fit(mix_store, name, **settings)


@pytest.mark.parametrize("name", list_systems("segmentation"))
def test_every_system_trains_validates_and_checkpoints(name: str, mix_store: Path, solo_store: Path,
                                                       tmp_path: Path) -> None:
    result = quick_fit(mix_store, name, tmp_path, solo_store=solo_store)
    metrics = result.metrics
    for key in ("train/loss_epoch", "val/loss", "val/miou", "val/fscore", "val/acc_iou75", "train/separation_loss"):
        assert math.isfinite(metrics[key]), key
    assert 0 <= metrics["val/miou"] <= 1 and 0 <= metrics["val/acc_iou75"] <= 1
    # Two solo mixtures were scored, or skipped as silent (an untrained mask may keep nothing).
    scored = 2 - metrics["val/separation_skipped"]
    assert scored == 0 or all(math.isfinite(metrics[f"val/{k}"]) for k in ("sdr", "sir", "sar", "nsdr"))
    assert (result.log_dir / "metrics.csv").is_file() and result.loss_curve.is_file()
    assert result.loss_curve.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The checkpoint rebuilds the system with no extra arguments, with the trained weights.
    rebuilt = load_system(result.checkpoint)
    for (key, a), b in zip(result.system.state_dict().items(), rebuilt.state_dict().values(), strict=True):
        assert torch.equal(a, b), key
    task = AVSegmentationTask.load_from_checkpoint(result.checkpoint)
    assert task.hparams["system"] == name and type(task.system) is type(result.system)
    system, returned = result  # unpacks as (system, metrics)
    assert system is result.system and returned is metrics


def test_validation_figures_match_the_metrics_computed_by_hand(mix_store: Path, tmp_path: Path) -> None:
    result = quick_fit(mix_store, "visual_only", tmp_path)
    dataset = NaturalFrames(StoreFrames(mix_store, split="val"), num_sources=2, num_stft_frames=16,
                            annotated_only=True)
    batch = collate([dataset[i] for i in range(len(dataset))])
    with torch.no_grad():
        logits = result.system(batch)["mask_logits"]
    meter = AVSBenchMeter(mode="dataset")
    meter.update(logits, batch["mask"] == 1)
    assert result.metrics["val/miou"] == pytest.approx(meter.compute()["miou"], abs=1e-6)
    # The same figure on frames showing a silent object, flagged from the instances by hand.
    raws = [dataset.frames.frame(p) for p in dataset.positions]
    silent = torch.tensor([bool((((r["instance_mask"] == 1).flatten(1).any(1)) & (r["sounding"] == 0)).any())
                           for r in raws])
    assert torch.equal(batch["silent_shown"], silent) and bool(silent.any())
    meter = AVSBenchMeter(mode="dataset")
    meter.update(logits[silent], batch["mask"][silent] == 1)
    assert result.metrics["val/miou_silent"] == pytest.approx(meter.compute()["miou"], abs=1e-6)
    accuracy = float(np.mean(mask_iou(logits, batch["mask"] == 1) >= 0.75))
    assert result.metrics["val/acc_iou75"] == pytest.approx(accuracy, abs=1e-6)


def test_runs_repeat_under_a_seed(mix_store: Path, solo_store: Path, tmp_path: Path) -> None:
    runs = [quick_fit(mix_store, "avisnet", tmp_path / str(k), solo_store=solo_store, seed=7) for k in range(2)]
    first, again = (r.system.state_dict() for r in runs)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert runs[0].metrics == runs[1].metrics


def test_bf16_mixed_precision_trains(mix_store: Path, tmp_path: Path) -> None:
    result = quick_fit(mix_store, "avisnet", tmp_path, precision="bf16-mixed", accelerator="cpu")
    assert math.isfinite(result.metrics["train/loss_epoch"]) and math.isfinite(result.metrics["val/miou"])


def test_a_built_system_starts_from_its_weights(mix_store: Path, tmp_path: Path) -> None:
    torch.manual_seed(5)
    model = create_system("visual_only", channels=(8, 16, 32), **system_preset("visual_only", "tiny"))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    result = quick_fit(mix_store, model, tmp_path, lr=0.0, weight_decay=0.0, val_split=None, max_steps=1)
    assert all(torch.equal(start[k], v) for k, v in result.system.state_dict().items())


def test_init_from_copies_matching_weights(mix_store: Path, tmp_path: Path) -> None:
    source = quick_fit(mix_store, "avisnet", tmp_path / "a", val_split=None)
    # Another fusion: the audio encoder and transformer match, the fusion head does not.
    options = {**system_preset("avisnet", "tiny"), "fusion": "mul"}
    target = quick_fit(mix_store, "avisnet", tmp_path / "b", system_kwargs=options, init_from=source.checkpoint,
                       lr=0.0, weight_decay=0.0, val_split=None, max_steps=1)
    a, b = source.system.state_dict(), target.system.state_dict()
    assert torch.equal(a["audio_encoder.proj.weight"], b["audio_encoder.proj.weight"])
    assert a["fusion.audio_proj.weight"].shape == b["fusion.audio_proj.weight"].shape  # same shape, ...
    assert not any(k.startswith("fusion.fuse") for k in b)  # ... but mul has no conv


def test_fit_explains_bad_options(mix_store: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="multiple of the system's time_multiple=8"):
        quick_fit(mix_store, "pixelplayer", tmp_path, num_stft_frames=12)
    with pytest.raises(AvlabError, match="val_split=None"):
        quick_fit(mix_store, "visual_only", tmp_path, val_split="test")


def test_spawned_dataloader_workers_give_the_same_first_step(mix_store: Path, tmp_path: Path) -> None:
    # Items are drawn from (seed, epoch, index), so where they are read does not change them.
    options = {"val_split": None, "max_steps": 1, "checkpoint": False}
    inline = quick_fit(mix_store, "visual_only", tmp_path / "inline", **options)
    spawned = quick_fit(mix_store, "visual_only", tmp_path / "spawned", num_workers=1, **options)
    for (key, a), b in zip(inline.system.state_dict().items(), spawned.system.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), key
