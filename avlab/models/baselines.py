"""The single-modality baselines of AViS-Net's tables: audio-only and visual-only.

- `AudioOnly` never sees the frame: its mask is a coarse map predicted from the audio vector
  alone (where sounding things tend to be, given what is heard), and its separation is a
  U-Net with one output map per source slot. Without a visual cue the slots have no natural
  order, so it is trained and scored permutation-invariantly (`permutation_invariant`).
- `VisualOnly` never hears: its mask is an FPN over the visual levels, and each source's mask
  is a spectral template (one logit per warped frequency row, constant over time) predicted
  from the source's pooled visual features, applied to the mixture.

The read-outs (a g x g grid from an MLP; templates from an MLP) are ours: the seed gives the
baselines' names and figures, not their layers.

Example:
    >>> import torch
    >>> from avlab.models import AudioOnly, VisualOnly
    >>> batch = {"visual_c3": torch.randn(2, 8, 4, 4), "visual_c4": torch.randn(2, 16, 2, 2),
    ...          "visual_c5": torch.randn(2, 32, 1, 1), "logmel": torch.randn(2, 64, 96),
    ...          "mixture_mag": torch.rand(2, 512, 8), "source_region": torch.ones(2, 2, 32, 32)}
    >>> audio = AudioOnly(audio_dim=8, audio_channels=(4, 8), num_channels=4, unet_downs=3, unet_base=4)
    >>> tuple(audio(batch, output_size=(32, 32))["separation_logits"].shape)
    (2, 2, 256, 8)
    >>> visual = VisualOnly((8, 16, 32), fpn_width=8, hidden_dim=8)
    >>> tuple(visual(batch, output_size=(32, 32))["separation_logits"].shape)
    (2, 2, 256, 8)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from avlab.heads import AudioUNet, FPNMaskHead, LogMelEncoder
from avlab.models._registry import register_system
from avlab.models.batch import (
    LOGMEL,
    MIXTURE_MAG,
    SOURCE_REGION,
    has_separation_inputs,
    log_warped_mixture,
    output_size_of,
    region_weights,
    source_levels,
    visual_levels,
)

__all__ = ["AudioOnly", "VisualOnly"]


@register_system("audio_only")
class AudioOnly(nn.Module):
    """Audio-only baseline: a mask prior from the audio vector, slot-wise U-Net separation.

    Args:
        audio_dim: Ca, the audio vector's size.
        audio_channels: Widths of the log-mel encoder's conv blocks.
        grid_size: g: the mask is predicted on a g x g grid, then upsampled bilinearly.
        hidden_dim: Hidden width of the grid MLP.
        separation: Build the separation branch.
        num_sources: N, output slots of the separation (must equal the batch's N).
        num_channels: K, the U-Net's feature maps (then a 1x1 conv to N slots).
        unet_downs: Audio U-Net levels.
        unet_base: Width of the U-Net's outermost level.
        freq_rows: Rows of the warped spectrogram.

    Shape:
        batch: logmel, and for separation mixture_mag and source_region (its N only).
        output: "mask_logits" (B, H, W); when separating "separation_logits" (B, N, freq_rows, T).

    Example:
        >>> AudioOnly(audio_dim=8, audio_channels=(4, 8), separation=False).permutation_invariant
        True
    """

    permutation_invariant = True

    def __init__(
        self,
        *,
        audio_dim: int = 128,
        audio_channels: Sequence[int] = (32, 64, 128, 256),
        grid_size: int = 8,
        hidden_dim: int = 256,
        separation: bool = True,
        num_sources: int = 2,
        num_channels: int = 32,
        unet_downs: int = 7,
        unet_base: int = 64,
        freq_rows: int = 256,
    ) -> None:
        super().__init__()
        if separation and freq_rows % 2**unet_downs:
            raise ValueError(f"freq_rows={freq_rows} must be a multiple of 2**unet_downs={2**unet_downs}")
        self.grid_size = grid_size
        self.audio_encoder = LogMelEncoder(out_dim=audio_dim, channels=tuple(audio_channels))
        self.grid = nn.Sequential(
            nn.Linear(audio_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, grid_size * grid_size)
        )
        self.separates = bool(separation)
        self.num_sources = num_sources
        self.freq_rows = freq_rows
        self.time_multiple = 2**unet_downs if separation else 1
        if separation:
            self.unet = AudioUNet(out_channels=num_channels, num_downs=unet_downs, base_channels=unet_base)
            self.slots = nn.Conv2d(num_channels, num_sources, 1)

    def forward(
        self,
        batch: Mapping[str, torch.Tensor],
        *,
        output_size: tuple[int, int] | None = None,
        epoch: int = 0,
        step: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """Predict; see the class docstring for shapes (`epoch` and `step` are unused)."""
        audio = self.audio_encoder(batch[LOGMEL])  # (B, Ca)
        grid = self.grid(audio).view(-1, 1, self.grid_size, self.grid_size)  # (B, 1, g, g)
        size = output_size_of(batch, output_size, None)
        out = {"mask_logits": F.interpolate(grid, size=size, mode="bilinear", align_corners=False)[:, 0]}
        if self.separates and has_separation_inputs(batch):
            n = batch[SOURCE_REGION].shape[1]
            if n != self.num_sources:
                raise ValueError(f"the batch has {n} sources; this AudioOnly was built for {self.num_sources}")
            features = self.unet(log_warped_mixture(batch[MIXTURE_MAG], self.freq_rows))  # (B, K, rows, T)
            out["separation_logits"] = self.slots(features)  # (B, N, rows, T)
        return out


@register_system("visual_only")
class VisualOnly(nn.Module):
    """Visual-only baseline: an FPN mask from the frame; spectral templates from each source's look.

    Args:
        channels: Backbone channels of C3, C4, C5.
        fpn_width: Channels of the FPN.
        separation: Build the separation branch.
        hidden_dim: Hidden width of the template MLP.
        freq_rows: Rows of the warped spectrogram (the template's length).

    Shape:
        batch: the visual levels, and for separation mixture_mag (for T), source_region and
            optionally source_visual_c5.
        output: "mask_logits" (B, H, W); when separating "separation_logits" (B, N, freq_rows,
            T), constant along T.

    Example:
        >>> VisualOnly((8, 16, 32), separation=False).separates
        False
    """

    def __init__(
        self,
        channels: Sequence[int] = (128, 256, 512),
        *,
        fpn_width: int = 128,
        separation: bool = True,
        hidden_dim: int = 256,
        freq_rows: int = 256,
    ) -> None:
        super().__init__()
        if len(channels) != 3:
            raise ValueError(f"expected the channels of C3, C4, C5, got {tuple(channels)}")
        self.channels = tuple(int(c) for c in channels)
        self.fpn = FPNMaskHead(self.channels, width=fpn_width)
        self.separates = bool(separation)
        self.freq_rows = freq_rows
        self.time_multiple = 1
        if separation:
            self.template = nn.Sequential(
                nn.Linear(self.channels[2], hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, freq_rows)
            )

    def forward(
        self,
        batch: Mapping[str, torch.Tensor],
        *,
        output_size: tuple[int, int] | None = None,
        epoch: int = 0,
        step: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """Predict; see the class docstring for shapes (`epoch` and `step` are unused)."""
        levels = visual_levels(batch)
        size = output_size_of(batch, output_size, levels[0])
        out = {"mask_logits": self.fpn(levels, output_size=size)[:, 0]}
        if self.separates and has_separation_inputs(batch):
            regions = batch[SOURCE_REGION]  # (B, N, H, W)
            b, n = regions.shape[:2]
            frames = source_levels(batch, ("c5",))
            c5 = levels[2].unsqueeze(1).expand(b, n, *levels[2].shape[1:]) if frames is None else frames[0]
            weights = region_weights(regions, c5.shape[-2:]).to(c5.dtype).unsqueeze(2)  # (B, N, 1, h, w)
            pooled = (c5 * weights).sum(dim=(-2, -1)) / weights.sum(dim=(-2, -1))  # (B, N, C5)
            template = self.template(pooled)  # (B, N, rows)
            steps = batch[MIXTURE_MAG].shape[-1]
            out["separation_logits"] = template.unsqueeze(-1).expand(b, n, self.freq_rows, steps)
        return out
