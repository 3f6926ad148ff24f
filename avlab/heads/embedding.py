"""AFCV's instance embedding: a per-location embedding map and the identity loss that trains it.

CrossVIS-style tracking by embedding (SPEC section 9): an extra tower shared across the FPN
levels ends in a 1x1 convolution to `dim` channels and a BatchNorm; the embeddings of a
detector's positive locations are gathered (`avlab.heads.fcos.gather_locations`), normalised, scaled by
``sqrt(2) * log(nID - 1)`` and classified over the training identities (`IdentityClassifier`)
with a sigmoid focal loss (`identity_loss`). The number of identities nID is counted from the
data (`count_identities`), never hard-coded. At inference the raw embeddings feed the tracker
(`avlab.models.tracker.Tracker`).

Our choices, each said where it is made: one BatchNorm whose statistics pool every level's
locations, the scale for nID <= 2, the classifier's prior-probability bias, identities below 0
ignored by the loss.

Example:
    >>> import torch
    >>> head = InstanceEmbeddingHead(8, num_convs=1, dim=4, num_groups=4)
    >>> maps = head([torch.randn(2, 8, 4, 4), torch.randn(2, 8, 2, 2)])
    >>> [tuple(m.shape) for m in maps]
    [(2, 4, 4, 4), (2, 4, 2, 2)]
    >>> from avlab.heads.fcos import gather_locations
    >>> emb = gather_locations(maps, torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([5, 3]))
    >>> ids, rows = count_identities([[12, 40, -1], [40, 7]])
    >>> ids.tolist(), rows
    ([7, 12, 40], {7: 0, 12: 1, 40: 2})
    >>> classifier = IdentityClassifier(4, len(ids))
    >>> loss = identity_loss(classifier(emb), identity_rows(torch.tensor([40, 7]), ids))
    >>> loss.ndim, bool(loss > 0)
    (0, True)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import sigmoid_focal_loss

from avlab.heads._registry import register_head

__all__ = [
    "IdentityClassifier",
    "InstanceEmbeddingHead",
    "count_identities",
    "identity_loss",
    "identity_rows",
    "identity_scale",
]


@register_head("instance_embedding", family="tracking")
class InstanceEmbeddingHead(nn.Module):
    """Per-location instance embeddings on every FPN level (CrossVIS's tracking branch).

    ``num_convs`` x (3x3 conv, GroupNorm, ReLU) form a tower shared across levels (as FCOS's
    towers), then a 1x1 convolution to `dim` channels and a BatchNorm. The BatchNorm's
    statistics pool the locations of all levels at once (ours: one set of statistics for one
    embedding space, rather than per-level batch statistics that would shift each level's
    embeddings differently in training). Convolutions followed by a norm have no bias (the norm
    removes it).

    Args:
        in_channels: Channels of every input level (the FPN width, e.g. 256).
        num_convs: 3x3 convolutions in the tower; 0 applies the 1x1 projection directly.
        dim: Embedding channels (256 in the spec).
        norm: "GN" for GroupNorm after each tower convolution, None (or "none") for none.
        num_groups: GroupNorm groups; must divide `in_channels`.

    Shape:
        levels: sequence of (B, in_channels, h_l, w_l), e.g. P3-P5.
        output: list of (B, dim, h_l, w_l), one per level.

    Example:
        >>> head = InstanceEmbeddingHead(8, dim=6, num_groups=2)
        >>> [tuple(m.shape) for m in head([torch.randn(1, 8, 3, 5)])]
        [(1, 6, 3, 5)]
    """

    def __init__(
        self,
        in_channels: int,
        *,
        num_convs: int = 4,
        dim: int = 256,
        norm: str | None = "GN",
        num_groups: int = 32,
    ) -> None:
        super().__init__()
        if norm not in ("GN", "none", None):
            raise ValueError(f"norm must be 'GN' or None, not {norm!r}")
        use_norm = norm == "GN"
        if use_norm and in_channels % num_groups:
            raise ValueError(f"num_groups={num_groups} must divide in_channels={in_channels}")
        if num_convs < 0:
            raise ValueError(f"num_convs must be >= 0, not {num_convs}")
        self.in_channels = int(in_channels)
        self.dim = int(dim)
        layers: list[nn.Module] = []
        for _ in range(num_convs):
            layers.append(nn.Conv2d(in_channels, in_channels, 3, padding=1, bias=not use_norm))
            if use_norm:
                layers.append(nn.GroupNorm(num_groups, in_channels))
            layers.append(nn.ReLU())
        self.tower = nn.Sequential(*layers)
        self.projection = nn.Conv2d(in_channels, dim, 1, bias=False)
        self.norm = nn.BatchNorm1d(dim)

    def forward(self, levels: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Embedding maps, one per level; shapes in the class docstring."""
        if len(levels) == 0:
            raise ValueError("need at least one feature level")
        for i, x in enumerate(levels):
            if x.ndim != 4 or x.shape[1] != self.in_channels:
                raise ValueError(
                    f"level {i}: expected (B, {self.in_channels}, h, w), got {tuple(x.shape)}"
                )
        projected = [self.projection(self.tower(x)) for x in levels]  # each (B, D, h_l, w_l)
        sizes = [p.shape[-2] * p.shape[-1] for p in projected]
        # (B, D, sum_l h_l w_l): one BatchNorm over the locations of every level.
        flat = self.norm(torch.cat([p.flatten(2) for p in projected], dim=2))
        return [
            part.unflatten(2, p.shape[-2:])
            for part, p in zip(flat.split(sizes, dim=2), projected, strict=True)
        ]

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, dim={self.dim}"


def identity_scale(num_identities: int) -> float:
    """JDE's embedding scale ``sqrt(2) * log(nID - 1)``, defined for every nID >= 1.

    The formula is 0 at nID = 2 and undefined below; ours: nID <= 2 takes the value at nID = 3,
    ``sqrt(2) * log(2)`` (about 0.98), the smallest value the formula gives on its domain, so
    the scale stays positive and never decreases as nID grows.

    Example:
        >>> round(identity_scale(101), 4), round(identity_scale(2), 4) == round(identity_scale(3), 4)
        (6.5127, True)
    """
    if num_identities < 1:
        raise ValueError(f"num_identities must be >= 1, not {num_identities}")
    return math.sqrt(2.0) * math.log(max(num_identities, 3) - 1)


@register_head("identity_classifier", family="tracking")
class IdentityClassifier(nn.Module):
    """Training-time classifier of embeddings over the training identities.

    ``logits = Linear(scale * embedding / |embedding|)`` with ``scale = identity_scale(nID)``
    (``sqrt(2) * log(nID - 1)``). The linear layer's bias starts at ``-log((1 - p) / p)`` for
    ``p = prior_prob`` (ours, as FCOS's classifier: under the sigmoid focal loss every identity
    starts unlikely, so the many negatives do not swamp the first steps).

    Args:
        dim: Embedding channels.
        num_identities: nID, the training identities (`count_identities`).
        scale: Override of the scale; None uses `identity_scale`.
        prior_prob: Initial sigmoid probability of every identity.

    Shape:
        embeddings: (P, dim).
        output: (P, num_identities) logits.

    Example:
        >>> classifier = IdentityClassifier(4, 10)
        >>> tuple(classifier(torch.randn(3, 4)).shape), round(classifier.scale, 4)
        ((3, 10), 3.1073)
    """

    def __init__(
        self,
        dim: int,
        num_identities: int,
        *,
        scale: float | None = None,
        prior_prob: float = 0.01,
    ) -> None:
        super().__init__()
        if not 0.0 < prior_prob < 1.0:
            raise ValueError(f"prior_prob must be in (0, 1), not {prior_prob}")
        self.scale = identity_scale(num_identities) if scale is None else float(scale)
        self.classifier = nn.Linear(dim, num_identities)
        nn.init.constant_(self.classifier.bias, -math.log((1.0 - prior_prob) / prior_prob))

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Identity logits; shapes in the class docstring."""
        logits: torch.Tensor = self.classifier(self.scale * F.normalize(embeddings, dim=1))
        return logits

    def extra_repr(self) -> str:
        return f"scale={self.scale:.4f}"


def identity_loss(
    logits: torch.Tensor,
    identity: torch.Tensor,
    *,
    alpha: float = 0.25,
    gamma: float = 2.0,
) -> torch.Tensor:
    """Sigmoid focal loss of identity logits against one-hot targets, per positive.

    Summed over every (embedding, identity) pair and divided by the number of embeddings with
    an identity (each is one positive). Rows whose identity is below 0 (unknown, padding) are
    left out (ours); with none left the loss is a differentiable 0.

    Args:
        logits: `IdentityClassifier` output.
        identity: Classifier row of each embedding's identity (`identity_rows`), -1 unknown.
        alpha: Focal loss weight of the positives.
        gamma: Focal loss focusing exponent.

    Shape:
        logits: (P, nID).
        identity: (P,) int64.
        output: () scalar.

    Example:
        >>> round(float(identity_loss(torch.zeros(1, 2), torch.tensor([0]))), 4)  # (0.25 + 0.75) * 0.25 * log 2
        0.1733
    """
    if logits.ndim != 2 or identity.shape != logits.shape[:1]:
        raise ValueError(
            f"expected logits (P, nID) and identity (P,), got {tuple(logits.shape)} "
            f"and {tuple(identity.shape)}"
        )
    if len(identity) and int(identity.max()) >= logits.shape[1]:
        raise ValueError(f"identity {int(identity.max())} >= nID = {logits.shape[1]}")
    known = identity >= 0  # (P,)
    logits = logits[known]  # (P', nID)
    if len(logits) == 0:
        return logits.sum()
    targets = F.one_hot(identity[known], logits.shape[1]).to(logits.dtype)  # (P', nID)
    return sigmoid_focal_loss(logits, targets, alpha=alpha, gamma=gamma, reduction="sum") / len(logits)


def count_identities(ids: Iterable[Any]) -> tuple[torch.Tensor, dict[int, int]]:
    """The training identities found in the data, and their classifier rows.

    Args:
        ids: Identity arrays (tensors, NumPy arrays or lists of integers), e.g. a store's
            per-video ``instance_id`` arrays; entries below 0 are padding and skipped. Ids
            must name one object across the whole data set (YouTube-VIS annotation ids do).

    Returns:
        ``(identities, rows)``: the sorted unique ids as a (nID,) int64 tensor, and a dict
        from id to classifier row (its position in `identities`). nID is
        ``len(identities)``.

    Example:
        >>> import numpy as np
        >>> ids, rows = count_identities([np.array([9, 3, -1]), torch.tensor([3, 4])])
        >>> ids.tolist(), rows
        ([3, 4, 9], {3: 0, 4: 1, 9: 2})
    """
    parts = []
    for i, array in enumerate(ids):
        t = torch.as_tensor(array).reshape(-1)
        if t.numel() and (t.is_floating_point() or t.is_complex() or t.dtype == torch.bool):
            raise ValueError(f"identity array {i} must hold integers, not {t.dtype}")
        parts.append(t.to(torch.int64))
    identities = torch.unique(torch.cat(parts)) if parts else torch.zeros(0, dtype=torch.int64)
    identities = identities[identities >= 0]  # sorted by torch.unique
    return identities, {int(v): row for row, v in enumerate(identities.tolist())}


def identity_rows(ids: torch.Tensor, identities: torch.Tensor) -> torch.Tensor:
    """Classifier rows of ids (`identity_loss`'s targets); -1 for padding and unknown ids.

    Args:
        ids: Identity ids, any shape; below 0 is padding.
        identities: Sorted unique ids (`count_identities`).

    Shape:
        ids: any.
        identities: (nID,) int64.
        output: same as `ids`, int64.

    Example:
        >>> identity_rows(torch.tensor([9, -1, 5, 3]), torch.tensor([3, 4, 9])).tolist()
        [2, -1, -1, 0]
    """
    ids = ids.to(torch.int64)
    identities = identities.to(ids.device)
    if len(identities) == 0:
        return torch.full_like(ids, -1)
    rows = torch.searchsorted(identities, ids).clamp(max=len(identities) - 1)
    found = (ids >= 0) & (identities[rows] == ids)
    return torch.where(found, rows, torch.full_like(rows, -1))
