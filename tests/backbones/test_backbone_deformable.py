"""The AViS-Net deformable ResNets start as the plain ResNets and can learn to deform."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

from avlab.backbones import DeformableConv2d, make_deformable, visual_bundle


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # Inputs here are tiny: one thread is as fast, and many times faster on a busy machine,
    # where OpenMP threads of a 2-thread pool spin waiting for each other.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def images(height: int, width: int) -> torch.Tensor:
    return torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize(
    ("plain", "size"),
    [("resnet18", (64, 64)), ("resnet18", (48, 80)), ("resnet50", (40, 72))],
    ids=str,
)
def test_deformable_equals_plain_at_initialisation(plain: str, size: tuple[int, int]) -> None:
    x = images(*size)
    with torch.no_grad():
        expected = visual_bundle(plain).load()(x)
        actual = visual_bundle(f"{plain}_deform").load()(x)
    for level in expected:
        scale = float(expected[level].abs().max())
        torch.testing.assert_close(actual[level], expected[level], rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize(("name", "count"), [("resnet18_deform", 12), ("resnet50_deform", 13)])
def test_every_3x3_conv_of_stages_3_to_5_is_deformable_with_zero_offsets(name: str, count: int) -> None:
    net = visual_bundle(name).load()
    deformable = {n: m for n, m in net.named_modules() if isinstance(m, DeformableConv2d)}
    assert len(deformable) == count
    assert all(n.split(".")[0] in ("layer2", "layer3", "layer4") for n in deformable)
    assert all(m.kernel_size == (3, 3) for m in deformable.values())
    assert all(not m.conv_offset.weight.any() and not m.conv_offset.bias.any() for m in deformable.values())
    plain_3x3 = [
        n
        for n, m in net.named_modules()
        if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) and not n.endswith("conv_offset")
    ]
    assert all(n.split(".")[0] in ("conv1", "layer1") for n in plain_3x3)


def test_offsets_change_the_output_once_they_are_not_zero() -> None:
    net = visual_bundle("resnet18_deform").load(layers="c3")
    x = images(32, 32)
    with torch.no_grad():
        before = net(x)["c3"]
        net.layer2[0].conv2.conv_offset.bias.fill_(0.5)
        after = net(x)["c3"]
    assert not torch.allclose(before, after)


def test_offsets_get_gradients_when_trained() -> None:
    net = visual_bundle("resnet18_deform").load(layers="c3", trainable=True)
    net(images(32, 32))["c3"].square().mean().backward()
    grad = net.layer2[0].conv2.conv_offset.weight.grad
    assert grad is not None and grad.abs().sum() > 0


@pytest.mark.parametrize("stride", [1, 2])
def test_from_conv_copies_the_conv(stride: int) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, stride=stride, padding=1, bias=True)
    deform = DeformableConv2d.from_conv(conv)
    x = torch.rand(2, 4, 9, 7)
    with torch.no_grad():
        torch.testing.assert_close(deform(x), conv(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "conv",
    [nn.Conv2d(2, 2, (3, 1), padding=1), nn.Conv2d(2, 2, 3, padding="same"), nn.Conv2d(2, 2, 3, stride=(1, 2))],
    ids=["non-square", "same-padding", "unequal-stride"],
)
def test_from_conv_rejects_what_it_cannot_reproduce(conv: nn.Conv2d) -> None:
    with pytest.raises(ValueError, match="deformable|padding"):
        DeformableConv2d.from_conv(conv)


def test_make_deformable_leaves_offset_convs_plain() -> None:
    net = make_deformable(nn.Sequential(nn.Sequential(nn.Conv2d(3, 3, 3, padding=1))), stages=["0"])
    assert isinstance(net[0][0], DeformableConv2d)
    assert type(net[0][0].conv_offset) is nn.Conv2d
