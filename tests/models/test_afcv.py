"""AFCV, CrossVIS and CondInst-VIS: outputs, what each one hears, predictions, gradients, rebuilding."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from avlab.models import AFCV, create_system, list_systems, load_system, save_system, system_preset
from avlab.train.vis_task import VISTask

CHANNELS = (8, 16, 32)


def frame_batch(b: int = 2, size: int = 32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"visual_c3": torch.randn(b, 8, size // 8, size // 8, generator=g),
            "visual_c4": torch.randn(b, 16, size // 16, size // 16, generator=g),
            "visual_c5": torch.randn(b, 32, size // 32, size // 32, generator=g),
            "logmel": torch.randn(b, 64, 96, generator=g)}


def build(name: str, **options: Any) -> AFCV:
    torch.manual_seed(0)
    system = create_system(name, channels=CHANNELS, num_classes=3, num_identities=5,
                           **{**system_preset(name, "tiny"), **options})
    assert isinstance(system, AFCV)
    return system


@pytest.mark.parametrize("name", list_systems("vis"))
def test_outputs_per_level_and_parts_by_system(name: str) -> None:
    system = build(name)
    out = system(frame_batch())
    assert [tuple(x.shape) for x in out["detector"].logits] == [(2, 3, 4, 4), (2, 3, 2, 2), (2, 3, 1, 1)]
    assert [x.shape[1] for x in out["detector"].params] == [169] * 3  # 8 mask channels + 2 coordinates
    assert tuple(out["mask_features"].shape) == (2, 8, 4, 4)
    assert ("sounding_logits" in out) == (name == "afcv")
    assert (system.audio, system.crossover) == {"afcv": (True, True), "crossvis": (False, True),
                                                "condinst_vis": (False, False)}[name]


@pytest.mark.parametrize("name", list_systems("vis"))
def test_only_afcv_hears(name: str) -> None:
    system = build(name).eval()
    batch = frame_batch()
    quiet = dict(batch, logmel=torch.zeros_like(batch["logmel"]))
    with torch.no_grad():
        a, b = system(batch)["detector"].logits[0], system(quiet)["detector"].logits[0]
    assert torch.equal(a, b) == (name != "afcv")


def test_predict_gives_masks_at_frame_size_with_embeddings_and_sounding() -> None:
    system = build("afcv").eval()
    found = system.predict(frame_batch(), image_size=(32, 32), score_threshold=0.0, max_detections=4)
    assert len(found) == 2
    for frame in found:
        n = len(frame["scores"])
        assert 0 < n <= 4
        assert tuple(frame["masks"].shape) == (n, 32, 32) and float(frame["masks"].min()) >= 0
        assert tuple(frame["embeddings"].shape) == (n, 8) and tuple(frame["sounding"].shape) == (n,)
        assert bool((frame["sounding"] > 0).all() and (frame["sounding"] < 1).all())
        assert bool((frame["scores"][:-1] >= frame["scores"][1:]).all())  # best first


def test_every_parameter_learns_from_the_task_losses() -> None:
    # One training step of the task on a hand-made pair: every parameter of AFCV gets a gradient.
    task = VISTask("afcv", {"channels": CHANNELS, "num_classes": 3, "num_identities": 5,
                            **system_preset("afcv", "tiny")}, categories=["background", "a", "b", "c"])
    frames = []
    for shift in (0, 2):
        batch = frame_batch()
        masks = torch.full((2, 2, 32, 32), 0, dtype=torch.uint8)
        masks[:, 0, 4 + shift:14 + shift, 4:14] = 1
        masks[:, 1, 16:30, 18 - shift:30 - shift] = 1
        batch.update(instance_mask=masks, instance_label=torch.tensor([[0, 2], [1, 2]]),
                     instance_identity=torch.tensor([[0, 1], [2, 3]]), sounding=torch.tensor([[1, 0], [0, 1]]))
        frames.append(batch)
    out = [task.system(f) for f in frames]
    losses = [task.frame_losses(f, o)[0] for f, o in zip(frames, out, strict=True)]
    assert set(losses[0]) == {"cls", "box", "ctr", "mask", "identity", "sounding"}
    total = sum(sum(part.values()) for part in losses)
    total.backward()
    missing = [n for n, p in task.system.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


def test_sounding_needs_audio_and_checkpoints_rebuild(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="needs audio"):
        AFCV(CHANNELS, 3, audio=False, sounding=True)
    with pytest.raises(ValueError, match="size_bounds"):
        AFCV(CHANNELS, 3, size_bounds=(64,))
    for name in list_systems("vis"):
        system = build(name)
        save_system(system, tmp_path / f"{name}.pt")
        rebuilt = load_system(tmp_path / f"{name}.pt")
        assert type(rebuilt) is type(system)
        for (key, a), b in zip(system.state_dict().items(), rebuilt.state_dict().values(), strict=True):
            assert torch.equal(a, b), key
