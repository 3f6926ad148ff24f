"""Registry-driven tests: every registered head is built small, run, and back-propagated.

A new head joins `CASES` with its small constructor arguments, inputs and expected output
shapes, and gets the forward-shape, finite-output and gradient tests for free;
`test_every_registered_head_has_a_case` fails until it does.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

import avlab.heads as heads
from avlab.heads import create_head, head_family, list_heads, register_head


@dataclass(frozen=True)
class Case:
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    inputs: Callable[[], tuple[tuple[Any, ...], dict[str, Any]]]
    shapes: list[tuple[int, ...]]  # shapes of the output's tensors, in `tensors` order
    # Parameters whose gradient is zero (but present) at initialisation, by design.
    zero_grad_ok: tuple[str, ...] = field(default=())


def fusion_inputs() -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (torch.randn(2, 8, 5, 6), torch.randn(2, 6)), {"attention": torch.rand(2, 3, 5, 6)}


def fusion_case(**kwargs: Any) -> Case:
    return Case((8, 6), kwargs, fusion_inputs, [(2, 8, 5, 6), (2, 8)])


def hide_inputs() -> tuple[tuple[Any, ...], dict[str, Any]]:
    masks = torch.zeros(2, 8, 8, dtype=torch.bool)
    masks[:, 2:6, 1:7] = True
    return (torch.randn(2, 3, 8, 8), masks), {"epoch": 0, "step": 0}


def p_levels() -> list[torch.Tensor]:
    return [torch.randn(2, 8, 8, 8), torch.randn(2, 8, 4, 4), torch.randn(2, 8, 2, 2)]


CASES: dict[str, Case] = {
    "fcos": Case((8, 3), {"num_convs": 1, "num_groups": 4}, lambda: ((p_levels(),), {}),
                 [(2, k, h, h) for k in (3, 4, 1, 169, 8) for h in (8, 4, 2)]),
    "condinst_mask_branch": Case((8,), {"channels": 8, "num_convs": 1}, lambda: ((p_levels(),), {}), [(2, 8, 8, 8)]),
    "condinst_dynamic_mask": Case(
        (), {},
        lambda: ((torch.randn(2, 8, 4, 4), torch.randn(3, 169), torch.tensor([[4.0, 4.0], [20.0, 12.0], [8.0, 24.0]]),
                  torch.tensor([0, 1, 1]), torch.tensor([0, 1, 2])), {}),
        [(3, 8, 8)]),
    "fpn": Case(
        ((8, 16, 32),),
        {"width": 4},
        lambda: (([torch.randn(2, 8, 8, 8), torch.randn(2, 16, 4, 4), torch.randn(2, 32, 2, 2)],), {}),
        [(2, 4, 8, 8), (2, 4, 4, 4), (2, 4, 2, 2)],
    ),
    "instance_embedding": Case(
        (8,),
        {"num_convs": 1, "dim": 4, "num_groups": 4},
        lambda: (([torch.randn(2, 8, 4, 4), torch.randn(2, 8, 2, 2)],), {}),
        [(2, 4, 4, 4), (2, 4, 2, 2)],
    ),
    "identity_classifier": Case((4, 5), {}, lambda: ((torch.randn(3, 4),), {}), [(3, 5)]),
    "mul": fusion_case(),
    "add": fusion_case(),
    "concat": fusion_case(num_groups=4),
    "logan": Case((8, 6), {}, fusion_inputs, [(2, 8, 5, 6), (2, 8), (2, 5, 6)]),
    "tpavi": Case(
        (8, 6),
        {},
        fusion_inputs,
        [(2, 8, 5, 6), (2, 8)],
        # BatchNorm's zero-initialised weight blocks the attention path's gradients at first.
        zero_grad_ok=("audio_proj", "theta", "phi", "g.", "W_z.0"),
    ),
    "spatial_attention": Case(
        (), {}, lambda: ((torch.randn(2, 8, 5, 6),), {}), [(2, 8, 5, 6), (2, 1, 5, 6)]
    ),
    "av_transformer": Case(
        (8, 6),
        {"d_model": 16, "num_heads": 2, "dim_feedforward": 32, "num_queries": 3},
        lambda: ((torch.randn(2, 8, 5, 6), torch.randn(2, 6)), {}),
        [(2, 3, 5, 6), (2, 3, 5, 6), (2, 3, 16), (2, 16, 5, 6)],
    ),
    "fpn_mask": Case(
        ((8, 16, 32),),
        {"width": 16},
        lambda: (
            ([torch.randn(2, 8, 8, 8), torch.randn(2, 16, 4, 4), torch.randn(2, 32, 2, 2)],),
            {"output_size": (32, 32)},
        ),
        [(2, 1, 32, 32)],
    ),
    "logmel_cnn": Case(
        (), {"out_dim": 16, "channels": (4, 8)}, lambda: ((torch.randn(2, 16, 24),), {}), [(2, 16)]
    ),
    "audio_unet": Case(
        (),
        {"out_channels": 4, "num_downs": 3, "base_channels": 4, "max_channels": 8},
        lambda: ((torch.randn(2, 1, 16, 16),), {}),
        [(2, 4, 16, 16)],
    ),
    "synthesizer": Case(
        (4,), {}, lambda: ((torch.randn(2, 3, 4), torch.randn(2, 4, 16, 8)), {}), [(2, 3, 16, 8)]
    ),
    "pixel_sound": Case(
        (4,),
        {},
        lambda: ((torch.randn(2, 4, 2, 3), torch.randn(2, 4, 16, 8)), {}),
        [(2, 2, 3, 16, 8)],
    ),
    "hide_and_detect": Case((), {"p": 1.0}, hide_inputs, [(2, 3, 8, 8), (2, 8, 8)]),
}


def tensors(out: Any) -> Iterator[torch.Tensor]:
    """The tensors of a nested output: tuples (NamedTuples too) in order, dicts by sorted key."""
    if isinstance(out, torch.Tensor):
        yield out
    elif isinstance(out, dict):
        for key in sorted(out):
            yield from tensors(out[key])
    elif isinstance(out, (tuple, list)):
        for item in out:
            yield from tensors(item)


def build(name: str) -> tuple[torch.nn.Module, tuple[Any, ...], dict[str, Any]]:
    torch.manual_seed(0)
    case = CASES[name]
    head = create_head(name, *case.args, **case.kwargs)
    args, kwargs = case.inputs()
    return head, args, kwargs


def test_every_registered_head_has_a_case() -> None:
    assert sorted(CASES) == list_heads()


@pytest.mark.parametrize("name", list_heads())
def test_forward_shapes(name: str) -> None:
    head, args, kwargs = build(name)
    out = head(*args, **kwargs)
    assert [tuple(t.shape) for t in tensors(out)] == CASES[name].shapes


@pytest.mark.parametrize("name", list_heads())
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_outputs_are_finite(name: str, train: bool) -> None:
    head, args, kwargs = build(name)
    head.train(train)
    with torch.no_grad():
        out = head(*args, **kwargs)
    for t in tensors(out):
        if t.is_floating_point():
            assert torch.isfinite(t).all()


@pytest.mark.parametrize("name", list_heads())
def test_every_parameter_receives_a_gradient(name: str) -> None:
    head, args, kwargs = build(name)
    head.train()
    for value in (*args, *kwargs.values()):
        for t in tensors(value):
            if t.is_floating_point():
                t.requires_grad_(True)
    out = head(*args, **kwargs)
    # Random weights: a plain sum would cancel under the normalisations (LayerNorm, softmax).
    loss = sum((t * torch.randn_like(t)).sum() for t in tensors(out) if t.is_floating_point())
    loss.backward()
    for pname, param in head.named_parameters():
        assert param.grad is not None, pname
        assert torch.isfinite(param.grad).all(), pname
        if not pname.startswith(CASES[name].zero_grad_ok):
            assert param.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", list_heads())
def test_constructor_options_are_keyword_only_with_defaults(name: str) -> None:
    cls = type(build(name)[0])
    for param in inspect.signature(cls.__init__).parameters.values():
        assert param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD), (name, param)
        if param.kind == param.KEYWORD_ONLY:
            assert param.default is not param.empty, (name, param)


def test_families() -> None:
    assert list_heads("fusion") == ["add", "concat", "logan", "mul", "tpavi"]
    assert list_heads("attention") == ["av_transformer", "spatial_attention"]
    assert list_heads("mask") == ["fpn_mask"]
    assert list_heads("audio") == ["logmel_cnn"]
    assert list_heads("separation") == ["audio_unet", "pixel_sound", "synthesizer"]
    assert list_heads("curriculum") == ["hide_and_detect"]
    assert list_heads("pyramid") == ["fpn"]
    assert list_heads("detection") == ["fcos"]
    assert list_heads("condinst") == ["condinst_dynamic_mask", "condinst_mask_branch"]
    assert list_heads("tracking") == ["identity_classifier", "instance_embedding"]
    assert head_family("logan") == "fusion"


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown head 'nope'.*logan"):
        create_head("nope")
    with pytest.raises(ValueError, match="unknown head"):
        head_family("nope")
    with pytest.raises(ValueError, match="no heads in family 'nope'.*fusion"):
        list_heads("nope")


def test_a_taken_name_refuses_another_class_but_accepts_the_same_again() -> None:
    assert register_head("logan")(heads.LoGANFusion) is heads.LoGANFusion
    assert head_family("logan") == "fusion"

    class Impostor(heads.LoGANFusion):
        """Another class."""

    with pytest.raises(ValueError, match="already registered"):
        register_head("logan")(Impostor)
    assert create_head("logan", 8, 6).__class__ is heads.LoGANFusion


def test_create_head_passes_arguments() -> None:
    head = create_head("concat", 16, 4, num_groups=8, audio_proj_dim=3)
    assert isinstance(head, heads.ConcatFusion)
    assert head.audio_proj.out_features == 3 and head.norm.num_groups == 8
