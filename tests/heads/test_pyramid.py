"""The feature pyramid's information flow: top-down only."""

from __future__ import annotations

import pytest
import torch

from avlab.heads import FeaturePyramid


def test_coarse_levels_reach_fine_ones_and_not_the_reverse() -> None:
    torch.manual_seed(0)
    fpn = FeaturePyramid((4, 6, 8), width=3).eval()
    levels = [torch.randn(1, 4, 8, 8), torch.randn(1, 6, 4, 4), torch.randn(1, 8, 2, 2)]
    base = fpn(levels)
    finer = fpn([levels[0] + 1, levels[1], levels[2]])
    coarser = fpn([levels[0], levels[1], levels[2] + 1])
    assert torch.equal(finer[2], base[2]) and torch.equal(finer[1], base[1])  # C3 stays at P3
    assert not torch.allclose(coarser[0], base[0])  # C5 reaches P3 through the top-down path


def test_top_down_sum_is_lateral_plus_nearest_upsampling() -> None:
    fpn = FeaturePyramid((1, 1), width=1)
    with torch.no_grad():
        for conv in [*fpn.lateral, *fpn.output]:
            conv.weight.zero_()
            conv.bias.zero_()
        for conv in fpn.lateral:
            conv.weight.fill_(1.0)
        for conv in fpn.output:
            conv.weight[0, 0, 1, 1] = 1.0  # identity 3x3
        fine = torch.zeros(1, 1, 2, 2)
        coarse = torch.tensor([[[[5.0]]]])
        p3, p4 = fpn([fine, coarse])
    assert torch.equal(p4, coarse) and torch.equal(p3, torch.full((1, 1, 2, 2), 5.0))


def test_level_count_is_checked() -> None:
    with pytest.raises(ValueError, match="expected 2 feature levels"):
        FeaturePyramid((1, 1))([torch.zeros(1, 1, 2, 2)])
