"""The FPN mask head on the channel counts of each backbone."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from avlab.heads import FPNMaskHead


@pytest.mark.parametrize(
    "channels",
    [(8, 16, 32), (128, 256, 512), (512, 1024, 2048)],
    ids=["debug", "resnet18", "resnet50"],
)
def test_backbone_channel_counts(channels: tuple[int, int, int]) -> None:
    head = FPNMaskHead(channels, width=8)
    feats = [torch.randn(1, c, 8 // 2**i, 8 // 2**i) for i, c in enumerate(channels)]
    assert head(feats).shape == (1, 1, 8, 8)
    assert head(feats, output_size=(64, 64)).shape == (1, 1, 64, 64)


def test_odd_sizes_and_a_backbone_dict() -> None:
    # A 100 x 76 frame through a ResNet: C3 13 x 10, C4 7 x 5, C5 4 x 3.
    head = FPNMaskHead((8, 16, 32), width=8, num_classes=2)
    feats = {
        "c3": torch.randn(2, 8, 13, 10),
        "c4": torch.randn(2, 16, 7, 5),
        "c5": torch.randn(2, 32, 4, 3),
    }
    assert head(feats, output_size=(100, 76)).shape == (2, 2, 100, 76)


def test_top_down_path_by_hand() -> None:
    torch.manual_seed(0)
    head = FPNMaskHead((4, 6), width=5)
    c3, c4 = torch.randn(1, 4, 6, 6), torch.randn(1, 6, 3, 3)
    p3 = head.lateral[0](c3) + F.interpolate(head.lateral[1](c4), size=(6, 6), mode="nearest")
    expected = head.classifier(F.relu(head.smooth(p3)))
    assert torch.allclose(head([c3, c4]), expected, atol=1e-6)


def test_rejects_wrong_levels() -> None:
    head = FPNMaskHead((8, 16, 32), width=8)
    with pytest.raises(ValueError, match="expected 3 feature levels"):
        head([torch.randn(1, 8, 4, 4)])
    with pytest.raises(ValueError, match=r"level 1: expected \(B, 16, H, W\)"):
        head([torch.randn(1, 8, 4, 4), torch.randn(1, 8, 2, 2), torch.randn(1, 32, 1, 1)])
