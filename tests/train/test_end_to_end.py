"""End-to-end training from raw video, and the fine-tune -> freeze -> cache pipeline."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from avlab.backbones import visual_bundle
from avlab.datasets.synth import load_synth
from avlab.models import system_preset
from avlab.store import cache_features
from avlab.train import DecodedFrames, StoreFrames, finetune_backbone, fit


@pytest.fixture(scope="module")
def decoded(synth_root: Path) -> DecodedFrames:
    return DecodedFrames(synth_root, split="train", size=32)


def test_decoded_frames_match_the_cache(decoded: DecodedFrames, mix_store: Path) -> None:
    cached = StoreFrames(mix_store, split="train")
    assert len(decoded) == len(cached) == 16
    a, b = decoded.frame(5), cached.frame(5)
    assert a["image"].shape == (3, 32, 32) and 0 <= float(a["image"].min()) and float(a["image"].max()) <= 1
    assert torch.equal(a["mask"], b["mask"]) and torch.equal(a["stft"], b["stft"])
    assert torch.allclose(a["logmel"], b["logmel"], atol=1e-2)  # the store keeps float16
    # The cached features are the debug backbone's on the decoded image.
    features = visual_bundle("debug").load()(a["image"].unsqueeze(0))
    assert torch.allclose(features["c4"][0], b["visual_c4"], atol=2e-2, rtol=1e-2)
    flipped = decoded.frame(5, flip=True)
    assert torch.equal(flipped["image"], a["image"].flip(-1)) and torch.equal(flipped["mask"], a["mask"].flip(-1))


def test_end_to_end_fit_trains_the_backbone_slower(synth_root: Path, tmp_path: Path) -> None:
    solo = load_synth(synth_root, split=["train", "val"], solo=True)
    start = visual_bundle("debug").load(trainable=True).state_dict()
    result = fit(synth_root, "avisnet", system_kwargs=system_preset("avisnet", "tiny"), solo_store=solo,
                 end_to_end=True, visual="debug", size=32, max_epochs=1, batch_size=8, lr=1e-3,
                 separation_eval_items=1, progress=False, root_dir=tmp_path)
    assert math.isfinite(result.metrics["val/miou"]) and math.isfinite(result.metrics["train/separation_loss"])
    backbone = result.task.backbone
    assert backbone is not None and backbone.trainable
    moved = [k for k, v in backbone.state_dict().items() if v.is_floating_point() and not torch.equal(v, start[k])]
    assert any(k.endswith("weight") for k in moved)
    groups = result.task.optimizers().optimizer.param_groups
    assert [g["lr"] for g in groups] == [1e-3, 1e-4]


def test_finetuned_backbone_is_frozen_and_cached(synth_root: Path, tmp_path: Path) -> None:
    result = finetune_backbone(synth_root, visual="debug", system_kwargs=system_preset("avisnet", "tiny"),
                               size=32, max_epochs=1, batch_size=8, val_split=None, progress=False,
                               root_dir=tmp_path, output=tmp_path / "debug-ft.pt")
    assert result.weights == tmp_path / "debug-ft.pt"
    assert json.loads(result.fingerprint_path.read_text()) == result.fingerprint
    trained = result.run.task.backbone.state_dict()
    frozen = visual_bundle("debug").load(result.weights)
    assert not frozen.trainable
    for key, value in frozen.state_dict().items():
        assert torch.equal(value, trained[key]), key
    store = cache_features(synth_root, tmp_path / "ft.zarr", visual="debug", size=32, weights=result.weights,
                           progress=False)
    assert store.attrs["avlab"]["recipe"]["visual"] == result.fingerprint
    image = DecodedFrames(synth_root, split="train", size=32).frame(0)["image"]
    with torch.no_grad():
        expected = frozen(image.unsqueeze(0))["c3"][0].numpy()
    cached = np.asarray(store.visual_c3[0, 0, 0], dtype=np.float32)
    assert np.allclose(cached, expected, atol=2e-2, rtol=1e-2)
