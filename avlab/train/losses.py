"""The training objectives: sounding-object mask BCE, PixelPlayer's separation loss, the category tie.

Systems return logits; these functions turn logits and the batch's targets into losses (the
heads and systems never compute one). SPEC sections 5-6: BCE with logits on the mask over
annotated pixels (255 ignored), plus lambda times the mean over sources of BCE on the warped
binary targets ``|S_n| > 0.5 |X|`` weighted by ``clamp(log1p|X|, 1e-3, 10)``.

Example:
    >>> import torch
    >>> mask = torch.tensor([[[1, 0], [255, 0]]], dtype=torch.uint8)
    >>> round(float(mask_loss(torch.zeros(1, 2, 2), mask, torch.tensor([True]))), 4)  # log 2 on 3 pixels
    0.6931
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from avlab.heads import separation_targets, separation_weights, warp_frequency, weighted_bce

__all__ = ["best_permutation", "category_loss", "mask_loss", "separation_loss", "warped_targets"]


def mask_loss(logits: torch.Tensor, mask: torch.Tensor, annotated: torch.Tensor | None = None) -> torch.Tensor:
    """Mean BCE with logits over the annotated pixels of annotated frames.

    A batch without an annotated pixel gives 0 (still connected to the graph, so every
    process of a distributed run backpropagates the same parameters).

    Shape:
        logits: (B, H, W).
        mask: (B, H, W) uint8: 1 in, 0 out, 255 unannotated.
        annotated: (B,) bool, or None (every frame).
        output: () scalar.
    """
    if logits.shape != mask.shape:
        raise ValueError(f"mask logits {tuple(logits.shape)} do not match the mask {tuple(mask.shape)}")
    valid = mask != 255
    if annotated is not None:
        valid = valid & annotated.bool().view(-1, 1, 1)
    target = (mask == 1).to(torch.float32)
    loss = F.binary_cross_entropy_with_logits(logits.float(), target, reduction="none")
    return (loss * valid).sum() / valid.sum().clamp_min(1)


def warped_targets(
    source_mag: torch.Tensor, mixture_mag: torch.Tensor, rows: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary targets and loss weights on the warped grid (PixelPlayer computes both after the warp).

    Shape:
        source_mag: (B, N, F, T).
        mixture_mag: (B, F, T).
        output: targets (B, N, rows, T) and weights (B, 1, rows, T).

    Example:
        >>> targets, weights = warped_targets(torch.ones(1, 2, 512, 4), torch.full((1, 512, 4), 2.0), 256)
        >>> tuple(targets.shape), tuple(weights.shape), float(targets.max())
        ((1, 2, 256, 4), (1, 1, 256, 4), 0.0)
    """
    mixture = warp_frequency(mixture_mag.float(), rows=rows)  # (B, rows, T)
    sources = warp_frequency(source_mag.float(), rows=rows)  # (B, N, rows, T)
    return separation_targets(sources, mixture), separation_weights(mixture).unsqueeze(1)


def _pair_losses(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    # (B, N slots, N targets): mean weighted BCE of slot i against target j.
    bce = F.binary_cross_entropy_with_logits(
        logits.float().unsqueeze(2).expand(-1, -1, targets.shape[1], -1, -1),
        targets.unsqueeze(1).expand(-1, logits.shape[1], -1, -1, -1),
        reduction="none",
    )  # (B, N, N, rows, T)
    return (bce * weights.unsqueeze(1)).mean(dim=(-2, -1))


def best_permutation(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """For each sample, the target order that the output slots match best (lowest summed loss).

    Returns ``order`` with ``targets[b, order[b, i]]`` assigned to slot i. Exhaustive over N!
    orders: meant for N <= 4.

    Shape:
        logits: (B, N, rows, T).
        targets: (B, N, rows, T).
        weights: (B, 1, rows, T).
        output: (B, N) int64.

    Example:
        >>> targets = torch.stack([torch.ones(2, 3), torch.zeros(2, 3)]).unsqueeze(0)  # (1, 2, 2, 3)
        >>> best_permutation(20 * targets.flip(1) - 10, targets, torch.ones(1, 1, 2, 3)).tolist()
        [[1, 0]]
    """
    with torch.no_grad():
        pairs = _pair_losses(logits, targets, weights)  # (B, N, N)
        orders = torch.tensor(list(itertools.permutations(range(targets.shape[1]))), device=pairs.device)  # (P, N)
        slots = torch.arange(targets.shape[1], device=pairs.device)
        totals = pairs[:, slots, orders].sum(dim=-1)  # (B, P)
        return orders[totals.argmin(dim=1)]


def separation_loss(
    logits: torch.Tensor,
    mixture_mag: torch.Tensor,
    source_mag: torch.Tensor,
    source_valid: torch.Tensor,
    *,
    permutation_invariant: bool = False,
) -> torch.Tensor:
    """PixelPlayer's loss: mean over real sources of weighted BCE on warped binary targets.

    With `permutation_invariant` (a system whose output slots have no visual identity), every
    slot counts, padding sources as silent targets, each sample in its best target order.

    Shape:
        logits: (B, N, rows, T).
        mixture_mag: (B, F, T).
        source_mag: (B, N, F, T).
        source_valid: (B, N) bool.
        output: () scalar.

    Example:
        >>> mags = torch.rand(2, 2, 512, 4)
        >>> loss = separation_loss(torch.zeros(2, 2, 256, 4), mags.sum(1), mags, torch.ones(2, 2, dtype=torch.bool))
        >>> bool(loss > 0)
        True
    """
    targets, weights = warped_targets(source_mag, mixture_mag, logits.shape[-2])
    if permutation_invariant:
        order = best_permutation(logits, targets, weights)  # (B, N)
        targets = targets.gather(1, order[:, :, None, None].expand_as(targets))
        return weighted_bce(logits.float(), targets, weights)
    valid = source_valid.bool()
    if not valid.any():
        return logits.float().sum() * 0.0
    weights = weights.expand_as(targets)
    return weighted_bce(logits.float()[valid], targets[valid], weights[valid])


def category_loss(category_logits: torch.Tensor, categories: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Cross-entropy tying channel k to category k, over real sources of known category.

    Shape:
        category_logits: (B, N, K).
        categories: (B, N) int64, -1 unknown.
        valid: (B, N) bool.
        output: () scalar (0 when no source has a known category).

    Example:
        >>> logits = torch.tensor([[[5.0, 0.0], [0.0, 5.0]]])
        >>> round(float(category_loss(logits, torch.tensor([[0, 1]]), torch.tensor([[True, True]]))), 4)
        0.0067
    """
    known = valid.bool() & (categories >= 0) & (categories < category_logits.shape[-1])
    if not known.any():
        return category_logits.float().sum() * 0.0
    return F.cross_entropy(category_logits.float()[known], categories[known])
