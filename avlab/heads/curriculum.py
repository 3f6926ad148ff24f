"""AViS-Net's hide-and-detect occlusion curriculum (ours: the paper gives only the idea).

The paper masks "the occluded source features before feeding it to the transformer encoder",
first the entire source, then gradually smaller segments. Here: stage 0 hides the whole mask of
one chosen source with probability p; each later stage g cuts that source's bounding box into
g x g cells and hides each cell with probability p. Hidden values are zero or a mean. The
draws come from a generator seeded by (seed, step), so a training run is reproducible; in
eval mode nothing is hidden.

Example:
    >>> import torch
    >>> hide = HideAndDetect(stages=(0, 2), epochs_per_stage=1, p=1.0)
    >>> masks = torch.zeros(1, 4, 4, dtype=torch.bool)
    >>> masks[0, 1:3, 1:3] = True
    >>> _, hidden = hide(torch.ones(1, 3, 4, 4), masks, epoch=0, step=0)
    >>> hidden[0].int().tolist()
    [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from avlab.heads._registry import register_head

__all__ = ["HideAndDetect"]

# Mixes (seed, step) into one generator seed; any odd 64-bit constant spreads nearby seeds.
_SEED_MIX = 0x9E3779B97F4A7C15


@register_head("hide_and_detect")
class HideAndDetect(nn.Module):
    """Hide-and-detect: hide a chosen source, wholly then cell by cell, as epochs pass.

    Stage ``k`` lasts `epochs_per_stage` epochs (the last stage lasts for good); its entry in
    `stages` is the grid size g, 0 meaning the whole region. For each sample one source is
    chosen uniformly among those with a non-empty mask (a sample without one is left alone):

    - g = 0: its whole mask is hidden with probability `p`;
    - g > 0: its bounding box is cut into g x g cells (edges at ``start + i * size // g``, so
      cells may be empty on small boxes) and each cell rectangle is hidden with probability `p`.

    Every sample draws the same number of random values, so one sample's result depends only
    on the generator's state, not on the other samples. Without a `generator`, one is seeded
    from (`seed`, `step`); without a `step` either, from (`seed`, the number of earlier calls
    in training mode). In eval mode (``.eval()``) the input is returned as it is with an empty
    hide mask. The schedule (default 5 epochs per stage), the choice of one source per sample
    and the cell layout are ours.

    Args:
        stages: Grid size per stage, 0 = whole region (default 0, 2, 4, 8).
        epochs_per_stage: Epochs each stage lasts.
        p: Probability of hiding the region (g = 0) or each cell (g > 0).
        fill: "zero", or "mean": `fill_value` if given, else each sample's per-channel mean.
        fill_value: Mean used by ``fill="mean"``: a number or one per channel (e.g. the dataset
            mean of the input frames).
        seed: Seed of the draws.

    Shape:
        x: (B, C, H, W), frames or a feature level.
        masks: (B, H, W) the source of each sample, or (B, N, H, W) its N sources; bool, or
            numbers (inside where > 0.5). Same H, W as `x`: resize to the feature level first.
        output: x_hidden (B, C, H, W) and hide_mask (B, H, W) bool.

    Example:
        >>> hide = HideAndDetect(p=1.0, epochs_per_stage=2)
        >>> [hide.grid_size(e) for e in range(0, 10, 2)], hide.stage(3)
        ([0, 2, 4, 8, 8], 1)
        >>> masks = torch.zeros(1, 8, 8)
        >>> masks[0, 2:6, 2:6] = 1
        >>> x_hidden, hidden = hide(torch.ones(1, 2, 8, 8), masks, epoch=2, step=0)
        >>> int(hidden.sum()), float(x_hidden.sum())  # all 4 cells of the 4 x 4 box
        (16, 96.0)
        >>> _, hidden = hide.eval()(torch.ones(1, 2, 8, 8), masks, epoch=2)
        >>> bool(hidden.any())
        False
    """

    def __init__(
        self,
        *,
        stages: Sequence[int] = (0, 2, 4, 8),
        epochs_per_stage: int = 5,
        p: float = 0.5,
        fill: str = "zero",
        fill_value: float | Sequence[float] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not stages or any(int(g) < 0 for g in stages):
            raise ValueError(f"stages must be non-empty grid sizes >= 0, got {stages}")
        if epochs_per_stage < 1:
            raise ValueError(f"epochs_per_stage must be at least 1, got {epochs_per_stage}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        if fill not in ("zero", "mean"):
            raise ValueError(f"fill must be 'zero' or 'mean', got {fill!r}")
        self.stages = tuple(int(g) for g in stages)
        self.epochs_per_stage = epochs_per_stage
        self.p = p
        self.fill = fill
        self.fill_value = fill_value
        self.seed = seed
        self._calls = 0

    def stage(self, epoch: int) -> int:
        """Index of the stage in force at `epoch` (0-based).

        Example:
            >>> HideAndDetect(epochs_per_stage=5).stage(12)
            2
        """
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        return min(epoch // self.epochs_per_stage, len(self.stages) - 1)

    def grid_size(self, epoch: int) -> int:
        """Grid size g at `epoch`; 0 means the whole region.

        Example:
            >>> HideAndDetect(epochs_per_stage=5).grid_size(12)
            4
        """
        return self.stages[self.stage(epoch)]

    def forward(
        self,
        x: torch.Tensor,
        masks: torch.Tensor,
        *,
        epoch: int,
        step: int | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hide; see the class docstring for shapes and the draws."""
        if x.ndim != 4:
            raise ValueError(f"expected x (B, C, H, W), got {tuple(x.shape)}")
        if masks.ndim == 3:
            masks = masks.unsqueeze(1)  # (B, 1, H, W)
        if masks.ndim != 4 or masks.shape[0] != x.shape[0] or masks.shape[-2:] != x.shape[-2:]:
            raise ValueError(
                f"masks {tuple(masks.shape)} do not match x {tuple(x.shape)}: expected (B, H, W) "
                "or (B, N, H, W) on the same grid"
            )
        b, _, h, w = x.shape
        if not self.training:
            return x, torch.zeros(b, h, w, dtype=torch.bool, device=x.device)
        if generator is None:
            if step is None:
                step = self._calls
            generator = torch.Generator().manual_seed((self.seed * _SEED_MIX + step) % 2**63)
        self._calls += 1
        g = self.grid_size(epoch)
        inside = (masks if masks.dtype == torch.bool else masks > 0.5).cpu()  # (B, N, H, W)
        # Per sample: [source choice, region coin, g*g cell coins], drawn whether used or not.
        draws = torch.rand(b, 2 + g * g, generator=generator, dtype=torch.float64)
        hide = torch.zeros(b, h, w, dtype=torch.bool)
        for i in range(b):
            present = inside[i].flatten(1).any(dim=1).nonzero().flatten()  # (n,)
            if len(present) == 0:
                continue
            pick = min(int(draws[i, 0] * len(present)), len(present) - 1)
            source = inside[i, int(present[pick])]  # (H, W)
            if g == 0:
                if draws[i, 1] < self.p:
                    hide[i] = source
                continue
            rows = source.any(dim=1).nonzero().flatten()
            cols = source.any(dim=0).nonzero().flatten()
            y0, y1 = int(rows[0]), int(rows[-1]) + 1
            x0, x1 = int(cols[0]), int(cols[-1]) + 1
            ys = [y0 + k * (y1 - y0) // g for k in range(g + 1)]
            xs = [x0 + k * (x1 - x0) // g for k in range(g + 1)]
            coins = draws[i, 2:].view(g, g)
            for r in range(g):
                for c in range(g):
                    if coins[r, c] < self.p:
                        hide[i, ys[r] : ys[r + 1], xs[c] : xs[c + 1]] = True
        hide = hide.to(x.device)
        return torch.where(hide[:, None], self._fill(x), x), hide

    def _fill(self, x: torch.Tensor) -> torch.Tensor:
        if self.fill == "zero":
            return x.new_zeros(())
        if self.fill_value is None:
            return x.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        value = torch.as_tensor(self.fill_value, dtype=x.dtype, device=x.device)
        if value.ndim == 1 and value.numel() != x.shape[1]:
            raise ValueError(f"fill_value has {value.numel()} entries for {x.shape[1]} channels")
        return value.view(1, -1, 1, 1) if value.ndim == 1 else value

    def extra_repr(self) -> str:
        return (
            f"stages={self.stages}, epochs_per_stage={self.epochs_per_stage}, p={self.p}, "
            f"fill={self.fill!r}, seed={self.seed}"
        )
