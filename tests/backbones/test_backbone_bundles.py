"""Every registered visual bundle: shapes, strides, channels, freezing, determinism, layers."""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import cache

import pytest
import torch

from avlab.backbones import (
    IMAGENET_MEAN,
    VisualBackbone,
    list_visual_bundles,
    visual_bundle,
)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # Inputs here are tiny: one thread is as fast, and many times faster on a busy machine,
    # where OpenMP threads of a 2-thread pool spin waiting for each other.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


BUNDLES = list_visual_bundles()


@cache
def frozen(name: str) -> VisualBackbone:
    # Shared by the read-only tests of this module: loading a ResNet-50 costs about 0.5 s.
    return visual_bundle(name).load()


def images(batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(seed))


def test_the_registry_holds_the_specified_bundles() -> None:
    assert BUNDLES == ["debug", "resnet18", "resnet18_deform", "resnet50", "resnet50_deform"]


def test_an_unknown_bundle_is_an_error_listing_the_known_ones() -> None:
    with pytest.raises(ValueError, match="resnet18_deform"):
        visual_bundle("resnet101")


@pytest.mark.parametrize("name", BUNDLES)
def test_bundle_describes_levels_strides_channels_and_normalisation(name: str) -> None:
    bundle = visual_bundle(name)
    assert bundle.levels == ("c3", "c4", "c5")
    assert bundle.strides == {"c3": 8, "c4": 16, "c5": 32}
    assert set(bundle.channels) == set(bundle.levels)
    assert bundle.mean == pytest.approx((0.485, 0.456, 0.406))
    assert bundle.std == pytest.approx((0.229, 0.224, 0.225))
    assert len(bundle.input_size) == 2


@pytest.mark.parametrize("size", [(64, 64), (40, 72)], ids=str)
@pytest.mark.parametrize("name", BUNDLES)
def test_output_shapes_follow_strides_and_channels(name: str, size: tuple[int, int]) -> None:
    bundle = visual_bundle(name)
    height, width = size
    with torch.no_grad():
        features = frozen(name)(images(2, height, width))
    assert list(features) == ["c3", "c4", "c5"]
    for level, x in features.items():
        stride = bundle.strides[level]
        expected = (2, bundle.channels[level], math.ceil(height / stride), math.ceil(width / stride))
        assert tuple(x.shape) == expected, level
        assert x.dtype == torch.float32
        assert torch.isfinite(x).all(), level
        assert x.abs().max() > 0, level


@pytest.mark.parametrize("name", BUNDLES)
def test_loaded_backbones_are_frozen_and_stay_in_eval_mode(name: str) -> None:
    net = visual_bundle(name).load(layers="c3")
    assert not net.training and not net.trainable
    assert all(not p.requires_grad for p in net.parameters())
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.train()  # what a parent module's .train() does
    assert not net.training and not any(m.training for m in net.modules())
    net(images(2, 64, 64))
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "BatchNorm statistics moved"


@pytest.mark.parametrize("name", ["debug", "resnet18_deform"])
def test_trainable_backbones_train_and_get_gradients(name: str) -> None:
    net = visual_bundle(name).load(trainable=True)
    assert net.training and net.trainable
    features = net(images(2, 64, 64))
    sum(x.square().mean() for x in features.values()).backward()
    assert all(p.grad is not None for p in net.parameters())
    assert not net.eval().training


@pytest.mark.parametrize("name", BUNDLES)
def test_random_weights_are_deterministic_and_leave_the_global_generator_alone(name: str) -> None:
    saved = torch.random.get_rng_state()
    try:
        torch.manual_seed(123)
        first = visual_bundle(name).load().state_dict()
        torch.manual_seed(7)
        seeded = torch.random.get_rng_state()
        second = visual_bundle(name).load().state_dict()
        assert torch.equal(torch.random.get_rng_state(), seeded), "load drew from the global generator"
    finally:
        torch.random.set_rng_state(saved)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)


@pytest.mark.parametrize("name", BUNDLES)
def test_a_layer_subset_returns_only_those_levels_and_builds_no_deeper_stage(name: str) -> None:
    x = images(1, 64, 64)
    full = frozen(name)
    with torch.no_grad():
        everything = full(x)
        only_c4 = visual_bundle(name).load(layers=("c4",))
        assert list(only_c4(x)) == ["c4"]
        torch.testing.assert_close(only_c4(x)["c4"], everything["c4"], rtol=0, atol=0)
        only_c3 = visual_bundle(name).load(layers="c3")
        assert set(only_c3.state_dict()) < set(only_c4.state_dict()) < set(full.state_dict())
        assert list(visual_bundle(name).load(layers=["c5", "c3"])(x)) == ["c3", "c5"]


@pytest.mark.parametrize("layers", [(), ("c2",), ("c3", "p3")], ids=str)
def test_unknown_or_empty_layers_are_an_error(layers: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="levels"):
        visual_bundle("debug").load(layers=layers)


@pytest.mark.parametrize("name", BUNDLES)
def test_normalisation_happens_inside(name: str) -> None:
    # At initialisation no conv has a bias and BatchNorm is the identity, so an image equal to
    # the bundle's mean (zero after normalisation) must give all-zero features.
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1).expand(1, 3, 32, 32)
    with torch.no_grad():
        features = frozen(name)(mean)
    assert all(torch.equal(x, torch.zeros_like(x)) for x in features.values())


def test_images_must_be_float_batches_of_rgb() -> None:
    net = frozen("debug")
    with pytest.raises(ValueError, match="uint8"):
        net(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        net(torch.zeros(3, 32, 32))
