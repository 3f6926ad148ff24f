"""A bundle's fingerprint holds what changes the features, by content, never a path."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
import torchvision

from avlab.backbones import list_visual_bundles, visual_bundle


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "a" / "debug.pt"
    path.parent.mkdir()
    torch.save(visual_bundle("debug").load().state_dict(), path)
    return path


@pytest.mark.parametrize("name", list_visual_bundles())
def test_the_random_fingerfpis_json_and_names_everything(name: str) -> None:
    fp = visual_bundle(name).fingerprint()
    assert json.loads(json.dumps(fp)) == fp
    assert fp == {
        "backbone": name,
        "backbone_version": 1,
        "layers": ["c3", "c4", "c5"],
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "weights": "random:seed=0",
        "weights_sha256": None,
        "torch": ".".join(torch.__version__.split(".")[:2]),
        "torchvision": ".".join(torchvision.__version__.split(".")[:2]),
    }


def test_bundles_have_distinct_fingerprints() -> None:
    prints = [json.dumps(visual_bundle(name).fingerprint()) for name in list_visual_bundles()]
    assert len(set(prints)) == len(prints)


def test_layers_change_the_fingerfpbut_not_their_order() -> None:
    bundle = visual_bundle("debug")
    assert bundle.fingerprint(layers=("c3", "c4")) != bundle.fingerprint()
    assert bundle.fingerprint(layers=("c4", "c3")) == bundle.fingerprint(layers=["c3", "c4"])
    assert bundle.fingerprint(layers="c5")["layers"] == ["c5"]


def test_a_checkpoint_is_identified_by_content_not_path(checkpoint: Path, tmp_path: Path) -> None:
    bundle = visual_bundle("debug")
    copy = tmp_path / "elsewhere" / "renamed.ckpt"
    copy.parent.mkdir()
    shutil.copy(checkpoint, copy)
    fp = bundle.fingerprint(checkpoint)
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert fp["weights"] == f"file:{digest}"
    assert fp["weights_sha256"] == digest
    assert bundle.fingerprint(str(copy)) == fp
    assert str(tmp_path) not in json.dumps(fp)
    assert fp != bundle.fingerprint()


def test_different_checkpoint_content_changes_the_fingerprint(checkpoint: Path, tmp_path: Path) -> None:
    bundle = visual_bundle("debug")
    before = bundle.fingerprint(checkpoint)
    state = torch.load(checkpoint, weights_only=True)
    state["stem.0.0.weight"] += 1
    other = tmp_path / "other.pt"
    torch.save(state, other)
    assert bundle.fingerprint(other)["weights"] != before["weights"]


def test_rewriting_a_checkpoint_in_place_is_noticed(checkpoint: Path) -> None:
    bundle = visual_bundle("debug")
    before = bundle.fingerprint(checkpoint)
    state = torch.load(checkpoint, weights_only=True)
    state["stem.0.0.weight"] += 1
    torch.save(state, checkpoint)
    assert bundle.fingerprint(checkpoint) != before


def test_imagenet_fingerfpnames_the_file_and_hashes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    path = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"stand-in for the weights")
    fp = visual_bundle("resnet18").fingerprint("imagenet")
    assert fp["weights"] == "imagenet:resnet18-f37072fd.pth"
    assert fp["weights_sha256"] == hashlib.sha256(b"stand-in for the weights").hexdigest()
    assert str(tmp_path) not in json.dumps(fp)
    assert visual_bundle("resnet18_deform").fingerprint("imagenet")["weights"] == fp["weights"]
