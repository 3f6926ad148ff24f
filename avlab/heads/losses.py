"""Loss functions the training tasks call; heads never compute a loss themselves.

Example:
    >>> import torch
    >>> round(float(weighted_bce(torch.zeros(1, 2, 3, 4), torch.ones(1, 2, 3, 4))), 4)  # log 2
    0.6931
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["weighted_bce"]


def weighted_bce(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean of per-element weighted binary cross-entropy with logits (PixelPlayer's loss).

    ``mean(w * BCE(sigmoid(logits), targets))`` over every element: with (B, N, F, T) logits it
    equals the mean over sources of PixelPlayer's per-source ``F.binary_cross_entropy(...,
    weight=w)``, computed from logits for stability. Targets may be soft (ratio masks in
    [0, 1]); ratio targets above 1 call for a regression loss instead.

    Args:
        logits: Mask logits.
        targets: Targets in [0, 1], same shape as `logits`.
        weights: Broadcastable to `logits` (a mixture's (B, F, T) weights need ``.unsqueeze(1)``
            against (B, N, F, T)); None weighs every element 1.

    Shape:
        logits: any, e.g. (B, N, F, T).
        targets: same as `logits`.
        weights: broadcastable to `logits`.
        output: () scalar.

    Example:
        >>> logits = torch.tensor([[0.0, 2.0]])
        >>> round(float(weighted_bce(logits, torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0]]))), 4)
        0.3466
    """
    if targets.shape != logits.shape:
        raise ValueError(
            f"targets {tuple(targets.shape)} do not match logits {tuple(logits.shape)}"
        )
    loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    if weights is not None:
        try:
            weights = weights.expand(logits.shape)
        except RuntimeError:
            raise ValueError(
                f"weights {tuple(weights.shape)} do not broadcast to {tuple(logits.shape)}"
            ) from None
        loss = loss * weights
    return loss.mean()
