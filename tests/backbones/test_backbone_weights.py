"""Weights: ImageNet from a (fake) torch hub cache, local checkpoints, and their errors."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
import torchvision

from avlab.backbones import RESNET18, RESNET50, visual_bundle
from avlab.backbones.deformable import DeformableConv2d
from avlab.errors import WeightsError, WeightsNotFoundError


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # Inputs here are tiny: one thread is as fast, and many times faster on a busy machine,
    # where OpenMP threads of a 2-thread pool spin waiting for each other.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


RESNETS = ["resnet18", "resnet18_deform", "resnet50", "resnet50_deform"]


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache; any attempt to download fails the test."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("avlab tried to download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    assert folder == tmp_path / "torch" / "hub" / "checkpoints"
    return folder


def torchvision_resnet18() -> torchvision.models.ResNet:
    """A torchvision ResNet-18 whose weights and BatchNorm statistics differ from avlab's init."""
    generator = torch.Generator().manual_seed(5)
    net = torchvision.models.resnet18()
    with torch.no_grad():
        for key, value in net.state_dict().items():
            if value.is_floating_point():
                value.copy_(torch.randn(value.shape, generator=generator) * 0.1)
                if key.endswith("running_var"):
                    value.abs_().add_(0.5)
    return net.eval()


def torchvision_levels(net: torchvision.models.ResNet, images: torch.Tensor) -> dict[str, torch.Tensor]:
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = (images - mean) / std
    x = net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(x)))))
    c3 = net.layer2(x)
    c4 = net.layer3(c3)
    return {"c3": c3, "c4": c4, "c5": net.layer4(c4)}


def images() -> torch.Tensor:
    return torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", RESNETS)
def test_missing_imagenet_weights_say_which_file_goes_where(name: str, hub: Path) -> None:
    bundle = visual_bundle(name)
    assert bundle.imagenet is not None
    for attempt in (lambda: bundle.load("imagenet"), lambda: bundle.fingerprint("imagenet")):
        with pytest.raises(WeightsNotFoundError) as caught:
            attempt()
        message = str(caught.value)
        assert repr(bundle.imagenet.file_name) in message
        assert repr(str(hub)) in message
        assert bundle.imagenet.url in message
        assert "never downloads" in message
    assert not hub.exists(), "nothing may be written to the hub cache"


def test_imagenet_file_names_are_torchvisions() -> None:
    assert RESNET18.imagenet is not None and RESNET50.imagenet is not None
    assert RESNET18.imagenet.file_name == "resnet18-f37072fd.pth"
    assert RESNET50.imagenet.file_name == "resnet50-11ad3fa6.pth"  # IMAGENET1K_V2
    assert visual_bundle("resnet50_deform").imagenet == RESNET50.imagenet


def test_the_debug_bundle_has_no_imagenet_weights() -> None:
    with pytest.raises(ValueError, match="no ImageNet weights"):
        visual_bundle("debug").load("imagenet")


def test_imagenet_weights_found_in_the_hub_cache_load(hub: Path) -> None:
    reference = torchvision_resnet18()
    hub.mkdir(parents=True)
    torch.save(reference.state_dict(), hub / "resnet18-f37072fd.pth")
    x = images()
    with torch.no_grad():
        expected = torchvision_levels(reference, x)
        plain = RESNET18.load("imagenet")(x)
        deform_net = visual_bundle("resnet18_deform").load("imagenet")
        deform = deform_net(x)
    for level, value in expected.items():
        torch.testing.assert_close(plain[level], value, rtol=1e-4, atol=1e-4 * float(value.abs().max()))
        torch.testing.assert_close(deform[level], value, rtol=1e-4, atol=1e-4 * float(value.abs().max()))
    offsets = [m.conv_offset for m in deform_net.modules() if isinstance(m, DeformableConv2d)]
    assert offsets and all(not o.weight.any() and not o.bias.any() for o in offsets)


def trained_debug_state() -> dict[str, torch.Tensor]:
    net = visual_bundle("debug").load(trainable=True)
    with torch.no_grad():
        for value in net.state_dict().values():
            if value.is_floating_point():
                value.add_(0.25)
    return net.state_dict()


WRAPPERS: dict[str, Callable[[dict[str, torch.Tensor]], object]] = {
    "bare": lambda sd: sd,
    "state_dict": lambda sd: {"state_dict": sd, "epoch": 3},
    "model": lambda sd: {"model": sd},
    "backbone": lambda sd: {"backbone": sd},
    "module-prefix": lambda sd: {f"module.{k}": v for k, v in sd.items()},
    "whole-model": lambda sd: {**{f"backbone.{k}": v for k, v in sd.items()}, "head.weight": torch.zeros(3)},
    "lightning": lambda sd: {"state_dict": {f"model.backbone.{k}": v for k, v in sd.items()}},
}


@pytest.mark.parametrize("wrapper", list(WRAPPERS))
def test_local_checkpoints_load_bare_wrapped_or_prefixed(wrapper: str, tmp_path: Path) -> None:
    state = trained_debug_state()
    path = tmp_path / "ckpt.pt"
    torch.save(WRAPPERS[wrapper](state), path)
    net = visual_bundle("debug").load(path)
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    loaded = net.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_a_checkpoint_loads_into_fewer_layers(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    torch.save(trained_debug_state(), path)
    x = images()
    with torch.no_grad():
        torch.testing.assert_close(
            visual_bundle("debug").load(path, layers="c3")(x)["c3"],
            visual_bundle("debug").load(path)(x)["c3"],
        )


def test_a_trained_deformable_checkpoint_keeps_its_offsets(tmp_path: Path) -> None:
    net = visual_bundle("resnet18_deform").load(trainable=True)
    with torch.no_grad():
        net.layer3[1].conv2.conv_offset.bias.fill_(0.25)
    torch.save(net.state_dict(), tmp_path / "deform.pt")
    loaded = visual_bundle("resnet18_deform").load(tmp_path / "deform.pt")
    assert torch.equal(loaded.layer3[1].conv2.conv_offset.bias, torch.full((18,), 0.25))


def test_mismatched_keys_name_the_file_and_some_keys(tmp_path: Path) -> None:
    path = tmp_path / "resnet18_weights.pt"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    with pytest.raises(WeightsError) as caught:
        RESNET50.load(path)
    message = str(caught.value)
    assert str(path) in message
    assert "missing keys" in message and "layer1.0.conv3.weight" in message
    assert "wrong shape" in message and "layer1.0.conv1.weight" in message


def test_unexpected_keys_are_named(tmp_path: Path) -> None:
    path = tmp_path / "extra.pt"
    torch.save({**trained_debug_state(), "stage6.0.weight": torch.zeros(1)}, path)
    with pytest.raises(WeightsError, match=r"1 unexpected keys: \['stage6.0.weight'\]") as caught:
        visual_bundle("debug").load(path)
    assert "extra.pt" in str(caught.value)


def test_a_missing_checkpoint_is_named(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="nowhere.pt"):
        visual_bundle("debug").load(tmp_path / "nowhere.pt")


class Payload:
    """Something torch.load(weights_only=True) must refuse to unpickle."""


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"not a checkpoint", "weights_only"),
        (pickle.dumps({"state_dict": Payload()}, protocol=2), "weights_only"),
    ],
    ids=["garbage", "arbitrary-pickle"],
)
def test_unreadable_checkpoints_are_errors(content: bytes, match: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=match) as caught:
        visual_bundle("debug").load(path)
    assert "bad.pt" in str(caught.value)


def test_a_file_without_a_state_dict_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "list.pt"
    torch.save({"optimizer": {"lr": torch.tensor(0.1)}, "epoch": 1}, path)
    with pytest.raises(WeightsError, match="holds no state dict.*optimizer"):
        visual_bundle("debug").load(path)


def test_weights_errors_survive_pickling() -> None:
    error = pickle.loads(pickle.dumps(WeightsNotFoundError("a.pth", "not found")))
    assert isinstance(error, WeightsNotFoundError) and str(error) == "a.pth: not found"
