"""PixelPlayer (The Sound of Pixels, Zhao et al. 2018) and co-segmentation (Rouditchenko et al. 2019).

Both share PixelPlayer's layout: a visual net giving K maps per pixel, the audio U-Net giving K
maps of the mixture's warped spectrogram, and the synthesizer combining a visual vector with
the audio maps into a spectrogram mask per source.

- `PixelPlayer`: visual vector = max-pool of the visual maps (PixelPlayer's pooling); the
  sounding-object mask comes from the sound of every pixel (`Synthesizer.pixelwise`): a pixel's
  logit is an affine function of the share of the mixture's (weighted) energy its mask keeps.
- `CoSeg`: "Self-supervised Audio-Visual Co-Segmentation" re-implemented from the paper (no
  code of it is public): PixelPlayer whose K channels are tied to the K categories. A pixel is
  sounding where a category is both seen there (visual channel k) and heard (the audio maps'
  channel k); the per-source max-pooled visual logits double as category logits, which the
  training task can supervise with the sources' categories (the tie).

Sources that share a frame (natural mixtures) would get the same vector from a whole-frame
pool, so both pool within each source's region when the batch gives one (ours).

Example:
    >>> import torch
    >>> from avlab.models import PixelPlayer
    >>> _ = torch.manual_seed(0)
    >>> model = PixelPlayer((8, 16, 32), num_channels=4, unet_downs=3, unet_base=4)
    >>> batch = {"visual_c4": torch.randn(2, 16, 2, 2), "mixture_mag": torch.rand(2, 512, 8),
    ...          "source_region": torch.ones(2, 2, 32, 32)}
    >>> out = model(batch, output_size=(32, 32))
    >>> tuple(out["mask_logits"].shape), tuple(out["separation_logits"].shape)
    ((2, 32, 32), (2, 2, 256, 8))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from avlab.heads import AudioUNet, Synthesizer, separation_weights, warp_frequency
from avlab.models._registry import register_system
from avlab.models.batch import (
    LEVELS,
    MIXTURE_MAG,
    SOURCE_REGION,
    log_warped_mixture,
    output_size_of,
    region_weights,
    source_levels,
    visual_levels,
)

__all__ = ["CoSeg", "PixelPlayer"]


class _PixelSystem(nn.Module):
    """What PixelPlayer and CoSeg share: visual net, audio U-Net, synthesizer, pooling."""

    def __init__(
        self,
        channels: Sequence[int],
        *,
        level: str,
        num_channels: int,
        unet_downs: int,
        unet_base: int,
        freq_rows: int,
    ) -> None:
        super().__init__()
        if len(channels) != 3:
            raise ValueError(f"expected the channels of C3, C4, C5, got {tuple(channels)}")
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        if freq_rows % 2**unet_downs:
            raise ValueError(f"freq_rows={freq_rows} must be a multiple of 2**unet_downs={2**unet_downs}")
        self.channels = tuple(int(c) for c in channels)
        self.level = level
        self.freq_rows = freq_rows
        self.separates = True
        self.time_multiple = 2**unet_downs
        # PixelPlayer's visual head: a 3x3 conv from the backbone's map to K channels.
        self.visual = nn.Conv2d(self.channels[LEVELS.index(level)], num_channels, 3, padding=1)
        self.unet = AudioUNet(out_channels=num_channels, num_downs=unet_downs, base_channels=unet_base)
        self.synthesizer = Synthesizer(num_channels)

    def _inputs(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if MIXTURE_MAG not in batch:
            raise KeyError(
                f"{type(self).__name__} hears the mixture's spectrogram: the batch needs {MIXTURE_MAG!r} "
                f"(it has {sorted(batch)})"
            )
        (feature,) = visual_levels(batch, (self.level,))
        visual_map = self.visual(feature)  # (B, K, h, w)
        mixture = batch[MIXTURE_MAG]  # (B, F, T)
        audio = self.unet(log_warped_mixture(mixture, self.freq_rows))  # (B, K, rows, T)
        return visual_map, audio, mixture

    def pixel_sounds(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The sound of every pixel of each frame shown (PixelPlayer's pixel-wise separation).

        Each pixel's visual vector drives the synthesizer on the mixture's audio maps
        (`Synthesizer.pixelwise`): the separation mask that pixel would claim as a source.
        The frames are each source's own (``source_visual_{level}``, mix-and-separate) or
        else the batch's frame.

        Shape:
            batch: as `forward`, with mixture_mag.
            output: (B, V, h, w, freq_rows, T) mask logits; V = N sources' frames, or 1.

        Example:
            >>> model = PixelPlayer((8, 16, 32), num_channels=4, unet_downs=3, unet_base=4)
            >>> batch = {"visual_c4": torch.randn(1, 16, 2, 3), "mixture_mag": torch.rand(1, 512, 8)}
            >>> tuple(model.pixel_sounds(batch).shape)
            (1, 1, 2, 3, 256, 8)
        """
        visual_map, audio, _ = self._inputs(batch)
        frames = source_levels(batch, (self.level,))
        if frames is None:
            return self.synthesizer.pixelwise(visual_map, audio).unsqueeze(1)
        b, n = frames[0].shape[:2]
        maps = self.visual(frames[0].flatten(0, 1))  # (B*N, K, h, w)
        audio = audio.repeat_interleave(n, dim=0)  # (B*N, K, rows, T)
        sounds = self.synthesizer.pixelwise(maps, audio)  # (B*N, h, w, rows, T)
        return sounds.view(b, n, *sounds.shape[1:])

    def _source_vectors(self, batch: Mapping[str, torch.Tensor], visual_map: torch.Tensor) -> torch.Tensor:
        """Max-pool of each source's visual maps within its region: (B, N, K) logits."""
        regions = batch[SOURCE_REGION]  # (B, N, H, W)
        b, n = regions.shape[:2]
        frames = source_levels(batch, (self.level,))
        if frames is None:
            maps = visual_map.unsqueeze(1).expand(b, n, *visual_map.shape[1:])  # (B, N, K, h, w)
        else:
            maps = self.visual(frames[0].flatten(0, 1)).view(b, n, -1, *frames[0].shape[-2:])
        inside = region_weights(regions, maps.shape[-2:]) > 0  # (B, N, h, w)
        masked = maps.masked_fill(~inside.unsqueeze(2), float("-inf"))
        return masked.amax(dim=(-2, -1))  # (B, N, K)


@register_system("pixelplayer")
class PixelPlayer(_PixelSystem):
    """PixelPlayer: max-pooled visual vectors drive the synthesizer; pixels' sounds give the mask.

    The sounding-object mask (PixelPlayer only visualised its pixels' sounds; the map here is
    trained): for each pixel, the synthesizer's mask on a pooled copy of the audio maps
    (`energy_grid` cells, so the cost does not grow with the spectrogram), ``e = sum(w *
    sigmoid(m)) / sum(w)`` with PixelPlayer's loss weights ``w = clamp(log1p|X|)``: the share of
    the mixture the pixel claims; logit ``= scale * (e - offset)``, both learned.

    Args:
        channels: Backbone channels of C3, C4, C5.
        level: The backbone level of the visual net (PixelPlayer: a stride-16 map, "c4").
        num_channels: K.
        unet_downs: Audio U-Net levels (PixelPlayer: 7).
        unet_base: Width of the U-Net's outermost level (PixelPlayer: 64).
        freq_rows: Rows of the warped spectrogram (256).
        energy_grid: (frequency, time) cells of the pooled audio maps for the pixel energies.

    Shape:
        batch: the visual level, mixture_mag (always: the mask needs it), and for separation
            source_region (and optionally source_visual_{level}); see `avlab.models`.
        output: "mask_logits" (B, H, W), "pixel_energy" (B, h, w) in [0, 1], and with regions
            "separation_logits" (B, N, freq_rows, T).

    Example:
        >>> PixelPlayer((8, 16, 32), num_channels=4, unet_downs=3, unet_base=4).time_multiple
        8
    """

    def __init__(
        self,
        channels: Sequence[int] = (128, 256, 512),
        *,
        level: str = "c4",
        num_channels: int = 32,
        unet_downs: int = 7,
        unet_base: int = 64,
        freq_rows: int = 256,
        energy_grid: tuple[int, int] = (32, 8),
    ) -> None:
        super().__init__(channels, level=level, num_channels=num_channels, unet_downs=unet_downs,
                         unet_base=unet_base, freq_rows=freq_rows)
        self.energy_grid = (int(energy_grid[0]), int(energy_grid[1]))
        self.energy_scale = nn.Parameter(torch.tensor(10.0))
        self.energy_offset = nn.Parameter(torch.tensor(0.5))

    def forward(
        self,
        batch: Mapping[str, torch.Tensor],
        *,
        output_size: tuple[int, int] | None = None,
        epoch: int = 0,
        step: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """Predict; see the class docstring for shapes (`epoch` and `step` are unused)."""
        visual_map, audio, mixture = self._inputs(batch)
        grid = (min(self.energy_grid[0], audio.shape[-2]), min(self.energy_grid[1], audio.shape[-1]))
        pooled = F.adaptive_avg_pool2d(audio, grid)  # (B, K, f, t)
        warped = warp_frequency(mixture.float(), rows=self.freq_rows).unsqueeze(1)  # (B, 1, rows, T)
        weights = separation_weights(F.adaptive_avg_pool2d(warped, grid))  # (B, 1, f, t)
        pixel = torch.sigmoid(self.synthesizer.pixelwise(visual_map, pooled))  # (B, h, w, f, t)
        energy = (pixel * weights[:, :, None]).sum(dim=(-2, -1)) / weights.sum(dim=(-3, -2, -1))[:, None, None]
        logits = self.energy_scale * (energy - self.energy_offset)  # (B, h, w)
        size = output_size_of(batch, output_size, visual_map)
        out = {
            "mask_logits": F.interpolate(logits.unsqueeze(1), size=size, mode="bilinear", align_corners=False)[:, 0],
            "pixel_energy": energy,
        }
        if SOURCE_REGION in batch:
            out["separation_logits"] = self.synthesizer(self._source_vectors(batch, visual_map), audio)
        return out


@register_system("coseg")
class CoSeg(_PixelSystem):
    """Co-segmentation in the style of Rouditchenko et al. 2019, re-implemented from the paper.

    K = `num_categories` channels, channel k standing for category k. Each source's visual
    vector is the max-pool of the visual logits (within its region), returned as
    "category_logits" for the training task's category loss, and drives the synthesizer as in
    PixelPlayer. The audio's category logits are ``s_k * mean_w(a_k) + b_k`` (the U-Net's
    channel k averaged over the spectrogram with PixelPlayer's loss weights; s, b learned); the
    sounding-object logit of a pixel is ``logsumexp_k(visual_k + audio_k)``, a soft "some
    category is both here and heard". The pooling of the audio and this read-out are ours.

    Args:
        channels: Backbone channels of C3, C4, C5.
        num_categories: K: the dataset's categories (SynthAV: background + 8 classes).
        level: The backbone level of the visual net.
        unet_downs: Audio U-Net levels.
        unet_base: Width of the U-Net's outermost level.
        freq_rows: Rows of the warped spectrogram.

    Shape:
        batch: as `PixelPlayer`.
        output: "mask_logits" (B, H, W), "audio_category_logits" (B, K), and with regions
            "separation_logits" (B, N, freq_rows, T) and "category_logits" (B, N, K).

    Example:
        >>> CoSeg((8, 16, 32), num_categories=5, unet_downs=3, unet_base=4).synthesizer.num_channels
        5
    """

    def __init__(
        self,
        channels: Sequence[int] = (128, 256, 512),
        *,
        num_categories: int = 9,
        level: str = "c4",
        unet_downs: int = 7,
        unet_base: int = 64,
        freq_rows: int = 256,
    ) -> None:
        super().__init__(channels, level=level, num_channels=num_categories, unet_downs=unet_downs,
                         unet_base=unet_base, freq_rows=freq_rows)
        self.num_categories = num_categories
        self.audio_scale = nn.Parameter(torch.ones(num_categories))
        self.audio_bias = nn.Parameter(torch.zeros(num_categories))

    def forward(
        self,
        batch: Mapping[str, torch.Tensor],
        *,
        output_size: tuple[int, int] | None = None,
        epoch: int = 0,
        step: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """Predict; see the class docstring for shapes (`epoch` and `step` are unused)."""
        visual_map, audio, mixture = self._inputs(batch)
        warped = warp_frequency(mixture.float(), rows=self.freq_rows).unsqueeze(1)  # (B, 1, rows, T)
        weights = separation_weights(warped)  # (B, 1, rows, T)
        heard = (audio * weights).sum(dim=(-2, -1)) / weights.sum(dim=(-2, -1))  # (B, K)
        audio_logits = self.audio_scale * heard + self.audio_bias  # (B, K)
        joint = torch.logsumexp(visual_map + audio_logits[:, :, None, None], dim=1)  # (B, h, w)
        size = output_size_of(batch, output_size, visual_map)
        out = {
            "mask_logits": F.interpolate(joint.unsqueeze(1), size=size, mode="bilinear", align_corners=False)[:, 0],
            "audio_category_logits": audio_logits,
        }
        if SOURCE_REGION in batch:
            vectors = self._source_vectors(batch, visual_map)  # (B, N, K)
            out["separation_logits"] = self.synthesizer(vectors, audio)
            out["category_logits"] = vectors
        return out
