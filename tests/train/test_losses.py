"""Losses against values computed by hand."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from avlab.heads import separation_weights, warp_frequency
from avlab.train import best_permutation, category_loss, mask_loss, separation_loss, warped_targets


def test_mask_loss_ignores_unannotated_pixels_and_frames() -> None:
    logits = torch.tensor([[[2.0, -1.0], [0.5, 3.0]], [[9.0, 9.0], [9.0, 9.0]]])
    mask = torch.tensor([[[1, 0], [255, 1]], [[0, 0], [0, 0]]], dtype=torch.uint8)
    annotated = torch.tensor([True, False])
    expected = (F.softplus(torch.tensor(-2.0)) + F.softplus(torch.tensor(-1.0)) + F.softplus(torch.tensor(-3.0))) / 3
    assert torch.isclose(mask_loss(logits, mask, annotated), expected)
    nothing = mask_loss(logits.requires_grad_(), mask, torch.tensor([False, False]))
    assert float(nothing.detach()) == 0.0 and nothing.requires_grad


def test_separation_loss_is_pixelplayers_weighted_bce_over_real_sources() -> None:
    torch.manual_seed(0)
    sources = torch.rand(2, 3, 512, 8)
    mixture = sources[:, :2].sum(dim=1)
    logits = torch.randn(2, 3, 256, 8)
    valid = torch.tensor([[True, True, False], [True, True, False]])
    loss = separation_loss(logits, mixture, sources, valid)
    mix_w = warp_frequency(mixture)
    weights = separation_weights(mix_w)
    per_source = []
    for n in range(2):
        target = (warp_frequency(sources[:, n]) > 0.5 * mix_w).float()
        per_source.append(F.binary_cross_entropy(torch.sigmoid(logits[:, n]), target, weight=weights))
    assert torch.isclose(loss, torch.stack(per_source).mean(), atol=1e-5)


def test_permutation_invariant_loss_ignores_slot_order() -> None:
    torch.manual_seed(1)
    sources = torch.rand(3, 2, 512, 8)
    mixture = sources.sum(dim=1)
    targets, weights = warped_targets(sources, mixture, 256)
    logits = (targets * 2 - 1) * 4
    valid = torch.ones(3, 2, dtype=torch.bool)
    swapped = logits.flip(1)
    straight = separation_loss(logits, mixture, sources, valid, permutation_invariant=True)
    assert torch.isclose(straight, separation_loss(swapped, mixture, sources, valid, permutation_invariant=True))
    assert separation_loss(swapped, mixture, sources, valid) > straight  # order matters without PIT
    assert best_permutation(swapped, targets, weights).tolist() == [[1, 0]] * 3


def test_category_loss_counts_known_categories_only() -> None:
    logits = torch.tensor([[[3.0, 0.0, 0.0], [0.0, 0.0, 3.0]]])
    categories = torch.tensor([[0, -1]])
    expected = F.cross_entropy(logits[0, :1], torch.tensor([0]))
    assert torch.isclose(category_loss(logits, categories, torch.tensor([[True, True]])), expected)
    assert float(category_loss(logits, torch.tensor([[-1, -1]]), torch.tensor([[True, True]]))) == 0.0
    assert math.isclose(float(category_loss(logits, torch.tensor([[2, 2]]), torch.tensor([[False, True]]))),
                        float(F.cross_entropy(logits[0, 1:], torch.tensor([2]))), rel_tol=1e-6)
