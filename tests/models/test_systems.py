"""Registry-driven tests: every registered system runs on real tiny store batches, in both kinds.

Each case builds a system with the "tiny" preset, runs it on a natural-mixture batch (sources
on the batch's frame) and a mix-and-separate batch (sources on other clips' frames), and
checks the contract's output shapes, finiteness, and that a loss on the outputs reaches every
trainable parameter. A new system gets these tests by joining `CASES`;
`test_every_registered_system_has_a_case` fails until it does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

from avlab.errors import AvlabError
from avlab.models import (
    AudioOnly,
    create_system,
    list_systems,
    load_system,
    register_system,
    save_system,
    system_config,
    system_preset,
)

CHANNELS = (8, 16, 32)  # the debug backbone's C3, C4, C5
NUM_STFT_FRAMES = 16  # as the batches of conftest.py


@dataclass(frozen=True)
class Case:
    system: str
    options: dict[str, Any] = field(default_factory=dict)
    # Parameters whose gradient is zero at initialisation by design.
    zero_grad_ok: tuple[str, ...] = ()


CASES = {
    "avisnet": Case("avisnet"),
    "avisnet-mul": Case("avisnet", {"fusion": "mul"}),
    "avisnet-add": Case("avisnet", {"fusion": "add"}),
    "avisnet-concat": Case("avisnet", {"fusion": "concat", "fusion_options": {"num_groups": 8}}),
    # TPAVI's residual BatchNorm starts at zero (the block starts as the identity).
    "avisnet-tpavi": Case("avisnet", {"fusion": "tpavi"},
                          ("fusion.audio_proj", "fusion.theta", "fusion.phi", "fusion.g.", "fusion.W_z.0")),
    "avisnet-hide-intensity": Case("avisnet", {"hide_and_detect": {"p": 1.0}, "intensity": True}),
    "avisnet-no-separation": Case("avisnet", {"separation": False}),
    "avisnet-all-levels": Case("avisnet", {"fusion_levels": ("c3", "c4", "c5")}),
    "pixelplayer": Case("pixelplayer"),
    "coseg": Case("coseg", {"num_categories": 9}),
    "audio_only": Case("audio_only"),
    "visual_only": Case("visual_only"),
}


def build(case: Case) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_system(case.system, channels=CHANNELS, **system_preset(case.system, "tiny"), **case.options)


def loss_of(out: dict[str, torch.Tensor]) -> torch.Tensor:
    # Every differentiable output counts, so a parameter unused by all of them shows up.
    return sum(v.float().mean() for v in out.values() if v.is_floating_point() and v.requires_grad)


def test_every_registered_system_has_a_case() -> None:
    # Video instance segmentation systems have their own contract and tests (test_afcv.py).
    assert set(list_systems("segmentation")) == set(list_systems()) - {"afcv", "crossvis", "condinst_vis"}
    assert {case.system for case in CASES.values()} == set(list_systems("segmentation"))


@pytest.mark.parametrize("kind", ["natural", "mix"])
@pytest.mark.parametrize("name", list(CASES))
def test_forward_shapes_finite_and_gradients(name: str, kind: str, request: pytest.FixtureRequest) -> None:
    case = CASES[name]
    batch = request.getfixturevalue(f"{kind}_batch")
    model = build(case).train()
    out = model(batch, epoch=0, step=0)
    b, n = batch["source_region"].shape[:2]
    assert out["mask_logits"].shape == (b, 64, 64)
    if model.separates:
        assert out["separation_logits"].shape == (b, n, 256, NUM_STFT_FRAMES)
    else:
        assert "separation_logits" not in out
    if case.system == "avisnet":
        q = model.transformer.num_queries
        assert out["attention"].shape == (b, q, 2, 2)
        assert out["logan_map"].shape == (b, 2, 2)
    for key, value in out.items():
        assert torch.isfinite(value.float()).all(), key
    loss_of(out).backward()
    for pname, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        assert parameter.grad is not None, pname
        assert torch.isfinite(parameter.grad).all(), pname
        if not any(pname.startswith(prefix) for prefix in case.zero_grad_ok):
            assert parameter.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", list(CASES))
def test_eval_is_deterministic_and_checkpoint_rebuilds(name: str, natural_batch: dict[str, Any], tmp_path: Any) -> None:
    model = build(CASES[name]).eval()
    with torch.no_grad():
        first, second = model(natural_batch), model(natural_batch)
    assert "hide_mask" not in first  # hide-and-detect is off at evaluation
    for key in first:
        assert torch.equal(first[key], second[key]), key
    save_system(model, tmp_path / "system.ckpt")
    again = load_system(tmp_path / "system.ckpt")
    assert system_config(again) == system_config(model)
    with torch.no_grad():
        third = again(natural_batch)
    for key in first:
        assert torch.equal(first[key], third[key]), key


def test_mask_logits_follow_output_size(natural_batch: dict[str, Any]) -> None:
    for name in sorted({case.system for case in CASES.values()}):
        out = build(Case(name)).eval()(natural_batch, output_size=(40, 24))
        assert out["mask_logits"].shape == (4, 40, 24), name


def test_hide_and_detect_hides_a_source_region_in_training(natural_batch: dict[str, Any]) -> None:
    model = build(Case("avisnet", {"hide_and_detect": {"p": 1.0}})).train()
    out = model(natural_batch, epoch=0, step=0)
    # Stage 0 with p = 1 hides the whole region (on the C5 grid) of one source per frame.
    regions = torch.nn.functional.adaptive_max_pool2d(natural_batch["source_region"], (2, 2)) > 0.5
    hidden = out["hide_mask"]
    assert hidden.any()
    assert (hidden <= regions.any(dim=1)).all()  # nothing hidden outside the sources


def test_intensity_weights_are_a_distribution_over_real_sources(frames: Any) -> None:
    from avlab.train import NaturalFrames, collate

    dataset = NaturalFrames(frames, num_sources=3, num_stft_frames=NUM_STFT_FRAMES)  # one padded slot at least
    batch = collate([dataset[i] for i in range(4)])
    out = build(Case("avisnet", {"intensity": True})).eval()(batch)
    weights = out["intensity_weights"]
    assert torch.allclose(weights.sum(dim=1), torch.ones(4))
    assert (weights[~batch["source_valid"]] < 1e-6).all()


def test_mix_batches_pool_each_source_from_its_own_frame(mix_batch: dict[str, Any]) -> None:
    # Swapping the sources' frames (and regions) swaps their separation logits: each source's
    # visual vector comes from its own clip.
    model = build(Case("avisnet")).eval()
    swapped = dict(mix_batch)
    for key in [k for k in mix_batch if k.startswith("source_visual_")] + ["source_region"]:
        swapped[key] = mix_batch[key].flip(1)
    with torch.no_grad():
        a, b = model(mix_batch)["separation_logits"], model(swapped)["separation_logits"]
    assert torch.allclose(a, b.flip(1), atol=1e-5)
    assert not torch.allclose(a[:, 0], a[:, 1])


def test_pixelplayer_needs_the_mixture(natural_batch: dict[str, Any]) -> None:
    batch = {k: v for k, v in natural_batch.items() if k != "mixture_mag"}
    with pytest.raises(KeyError, match="mixture_mag"):
        build(Case("pixelplayer"))(batch)


def test_audio_only_checks_the_number_of_sources(natural_batch: dict[str, Any]) -> None:
    model = AudioOnly(num_sources=3, **system_preset("audio_only", "tiny"))
    with pytest.raises(ValueError, match="2 sources"):
        model(natural_batch)


def test_systems_without_separation_ignore_the_mixture(natural_batch: dict[str, Any]) -> None:
    model = build(Case("visual_only", {"separation": False}))
    assert set(model(natural_batch)) == {"mask_logits"}


def test_registry_builds_by_name_and_records_arguments() -> None:
    model = create_system("audio_only", channels=CHANNELS, separation=False, audio_dim=8, audio_channels=(4, 8))
    # The audio-only baseline takes no channels: create_system leaves them out.
    assert system_config(model) == {"name": "audio_only",
                                    "kwargs": {"separation": False, "audio_dim": 8, "audio_channels": (4, 8)}}
    with pytest.raises(ValueError, match="known systems: afcv, audio_only, avisnet"):
        create_system("nope")


def test_registry_refuses_a_taken_name_and_unsaveable_arguments() -> None:
    class Other(torch.nn.Module):
        """Not the registered class."""

    with pytest.raises(ValueError, match="already registered"):
        register_system("avisnet")(Other)
    with pytest.raises(TypeError, match="saved in a checkpoint"):
        create_system("visual_only", channels=CHANNELS, fpn_width=torch.tensor(8))


def test_load_system_refuses_a_file_without_a_system(tmp_path: Any) -> None:
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    with pytest.raises(AvlabError, match="no avlab system"):
        load_system(tmp_path / "other.ckpt")


def test_fusion_levels_must_include_c5_and_be_levels() -> None:
    for levels in (("c3", "c4"), ("c5", "c6"), ("c5", "c5")):
        with pytest.raises(ValueError, match="fusion_levels"):
            build(Case("avisnet", {"fusion_levels": levels}))


def test_fine_fusion_conditions_the_finer_levels_on_the_audio(natural_batch: dict[str, Any]) -> None:
    torch.manual_seed(0)
    model = build(Case("avisnet", {"fusion_levels": ("c3", "c4", "c5"), "separation": False})).eval()
    assert set(model.fine_fusion) == {"c3", "c4"}
    seen: list[torch.Tensor] = []
    model.fine_fusion["c3"].register_forward_hook(lambda module, args, out: seen.append(out[0]))
    quiet = dict(natural_batch, logmel=torch.zeros_like(natural_batch["logmel"]))
    with torch.no_grad():
        model(natural_batch), model(quiet)
    heard, silent = seen
    assert heard.shape == natural_batch["visual_c3"].shape  # C3's own resolution
    assert not torch.allclose(heard, silent)  # and it depends on what is heard
