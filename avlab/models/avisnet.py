"""AViS-Net ("Listen to the Pixels"): attention-guided audio-visual segmentation and separation.

No public code of AViS-Net exists (its released code is a copy of PixelPlayer); this system is
assembled from ../shared/SPEC.md sections 4-8 and the heads built from it:

- audio: the frame's log-mel patch -> `LogMelEncoder` -> audio vector a (B, Ca);
- visual: C5 -> Spatial Attention Block -> audio-conditioned transformer -> attention maps S
  (B, Q, h, w) -> fusion(C5, a, attention=S) (LoGAN by default; EM, EA, concat, TPAVI for the
  ablation) -> FPN over (C3, C4, fused C5) -> sounding-object mask logits;
- separation (optional): the mixture's warped log-magnitude -> audio U-Net -> K maps; each
  source's visual vector is the transformer memory pooled with the mean attention map over that
  source's region, projected to K; the synthesizer gives its mask logits (SPEC section 6);
- hide-and-detect (optional): during training, a source's region of C5 is hidden before the
  visual path, on a curriculum from whole regions to grid cells (SPEC section 7);
- intensity cue (optional): the per-source attention maps are scaled by the softmax of the
  separated sources' levels before the fusion (SPEC section 8).

Example:
    >>> import torch
    >>> from avlab.models import AViSNet
    >>> _ = torch.manual_seed(0)
    >>> model = AViSNet((8, 16, 32), d_model=16, num_heads=2, dim_feedforward=32, num_queries=3,
    ...                 fpn_width=8, audio_dim=16, audio_channels=(4, 8), separation=False)
    >>> batch = {"visual_c3": torch.randn(2, 8, 4, 4), "visual_c4": torch.randn(2, 16, 2, 2),
    ...          "visual_c5": torch.randn(2, 32, 1, 1), "logmel": torch.randn(2, 64, 96)}
    >>> out = model(batch, output_size=(32, 32))
    >>> {k: tuple(v.shape) for k, v in sorted(out.items())}
    {'attention': (2, 3, 1, 1), 'logan_map': (2, 1, 1), 'mask_logits': (2, 32, 32)}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from avlab.heads import (
    AudioConditionedTransformer,
    AudioUNet,
    FPNMaskHead,
    HideAndDetect,
    LogMelEncoder,
    SpatialAttentionBlock,
    Synthesizer,
    create_head,
    intensity,
    intensity_weights,
    logan_map,
    scale_attention,
    warp_frequency,
)
from avlab.models._registry import register_system
from avlab.models.batch import (
    LOGMEL,
    MASK,
    MIXTURE_MAG,
    SOURCE_REGION,
    has_separation_inputs,
    log_warped_mixture,
    output_size_of,
    region_weights,
    source_levels,
    visual_levels,
)

__all__ = ["AViSNet"]

# Softmax logit of a padded source in the intensity cue: e^-1e4 is 0 in float32.
_SILENT_LEVEL = -1e4


@register_system("avisnet")
class AViSNet(nn.Module):
    """AViS-Net: SAB + audio-conditioned transformer + fusion + FPN, and PixelPlayer separation.

    Args:
        channels: Backbone channels of C3, C4, C5 (``bundle.channels``), finest first.
        fusion: Fusion head on C5: "logan" (AViS-Net), "mul" (EM), "add" (EA), "concat",
            "tpavi" (`avlab.heads.list_heads("fusion")`).
        fusion_options: Keyword options of the fusion head.
        fusion_levels: Levels the audio is fused into, of "c3", "c4", "c5". AViS-Net fuses C5
            only (the default); finer levels (ours, an option) get their own fusion head of
            the same kind, with the attention maps upsampled bilinearly to their size. On
            small frames C5 is a few cells (2 x 2 at 64 px), too coarse to pick one object
            out of several, and the FPN's finer laterals carry only what the frame shows.
        audio_dim: Ca, the audio vector's size.
        audio_channels: Widths of the log-mel encoder's conv blocks.
        d_model: Transformer width d.
        num_heads: Attention heads of the transformer.
        num_encoder_layers: Transformer encoder layers.
        num_decoder_layers: Transformer decoder layers.
        dim_feedforward: Hidden width of the transformer's feed-forward blocks.
        dropout: Transformer dropout.
        num_queries: Q, attention maps.
        fpn_width: Channels of the FPN.
        separation: Build the separation branch (used when a batch carries a mixture).
        num_channels: K, the U-Net's feature maps and the visual vectors' size.
        unet_downs: Levels of the audio U-Net (PixelPlayer: 7); T must be a multiple of
            ``2**unet_downs``.
        unet_base: Width of the U-Net's outermost level (PixelPlayer: 64).
        freq_rows: Rows of the warped spectrogram (256); a multiple of ``2**unet_downs``.
        hide_and_detect: False, True (default curriculum), or `HideAndDetect` keyword options.
        intensity: Scale each source's attention map by its intensity weight before the fusion
            (needs `separation`; applies to batches whose sources share the batch's frame).
        intensity_tau: Temperature of the intensity weights.

    Shape:
        batch: see `avlab.models` (visual levels, logmel; for separation mixture_mag,
            source_region, optionally source_visual_c5).
        output: dict with "mask_logits" (B, H, W), "attention" (B, Q, h5, w5), "logan_map"
            (B, h5, w5) (LoGAN's map of the maps the fusion used, shown by the widgets even for
            other fusions), and when separating "separation_logits" (B, N, freq_rows, T); with
            hiding, "hide_mask" (B, h5, w5); with the intensity cue, "intensity_weights" (B, N).

    Example:
        >>> model = AViSNet((8, 16, 32), fusion="mul", d_model=16, num_heads=2, num_queries=2,
        ...                 dim_feedforward=16, fpn_width=8, audio_dim=8, audio_channels=(4, 8),
        ...                 num_channels=4, unet_downs=3, unet_base=4)
        >>> model.separates, model.time_multiple
        (True, 8)
    """

    def __init__(
        self,
        channels: Sequence[int] = (128, 256, 512),
        *,
        fusion: str = "logan",
        fusion_options: Mapping[str, Any] | None = None,
        fusion_levels: Sequence[str] = ("c5",),
        audio_dim: int = 128,
        audio_channels: Sequence[int] = (32, 64, 128, 256),
        d_model: int = 256,
        num_heads: int = 8,
        num_encoder_layers: int = 1,
        num_decoder_layers: int = 1,
        dim_feedforward: int = 1024,
        dropout: float = 0.1,
        num_queries: int = 8,
        fpn_width: int = 128,
        separation: bool = True,
        num_channels: int = 32,
        unet_downs: int = 7,
        unet_base: int = 64,
        freq_rows: int = 256,
        hide_and_detect: bool | Mapping[str, Any] = False,
        intensity: bool = False,
        intensity_tau: float = 1.0,
    ) -> None:
        super().__init__()
        if len(channels) != 3:
            raise ValueError(f"expected the channels of C3, C4, C5, got {tuple(channels)}")
        if intensity and not separation:
            raise ValueError("the intensity cue weighs separated sources: it needs separation=True")
        if separation and freq_rows % 2**unet_downs:
            raise ValueError(f"freq_rows={freq_rows} must be a multiple of 2**unet_downs={2**unet_downs}")
        c5 = int(channels[2])
        self.channels = tuple(int(c) for c in channels)
        self.fusion_name = fusion
        self.audio_encoder = LogMelEncoder(out_dim=audio_dim, channels=tuple(audio_channels))
        self.sab = SpatialAttentionBlock()
        self.transformer = AudioConditionedTransformer(
            c5, audio_dim, d_model=d_model, num_heads=num_heads, num_encoder_layers=num_encoder_layers,
            num_decoder_layers=num_decoder_layers, dim_feedforward=dim_feedforward, dropout=dropout,
            num_queries=num_queries,
        )
        levels = tuple(fusion_levels)
        if "c5" not in levels or not set(levels) <= {"c3", "c4", "c5"} or len(set(levels)) != len(levels):
            raise ValueError(f"fusion_levels must be distinct levels of c3, c4, c5 including c5, got {levels}")
        self.fusion_levels = levels
        self.fusion = create_head(fusion, c5, audio_dim, **dict(fusion_options or {}))
        # Finer levels' fusion heads, by level name (empty: AViS-Net's C5-only fusion).
        self.fine_fusion = nn.ModuleDict({
            level: create_head(fusion, self.channels[("c3", "c4").index(level)], audio_dim,
                               **dict(fusion_options or {}))
            for level in ("c3", "c4") if level in levels
        })
        self.fpn = FPNMaskHead(self.channels, width=fpn_width)
        self.separates = bool(separation)
        self.freq_rows = freq_rows
        self.time_multiple = 2**unet_downs if separation else 1
        if separation:
            self.unet = AudioUNet(out_channels=num_channels, num_downs=unet_downs, base_channels=unet_base)
            self.source_proj = nn.Linear(d_model, num_channels)  # pooled memory -> visual vector
            self.synthesizer = Synthesizer(num_channels)
        self.hide: HideAndDetect | None = None
        if hide_and_detect:
            options = {} if hide_and_detect is True else dict(hide_and_detect)
            self.hide = HideAndDetect(**options)
        self.intensity = intensity
        self.intensity_tau = intensity_tau

    def forward(
        self,
        batch: Mapping[str, torch.Tensor],
        *,
        output_size: tuple[int, int] | None = None,
        epoch: int = 0,
        step: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """Predict; see the class docstring for shapes.

        Args:
            batch: The frame-level batch (`avlab.models`).
            output_size: (H, W) of the mask logits; default the batch's mask size.
            epoch: Training epoch, for the hide-and-detect curriculum.
            step: Training step, seeding hide-and-detect's draws.
        """
        c3, c4, c5 = visual_levels(batch)
        audio = self.audio_encoder(batch[LOGMEL])  # (B, Ca)
        out: dict[str, torch.Tensor] = {}
        shared_frame = source_levels(batch, ("c5",)) is None
        x5 = c5
        if self.hide is not None and self.training:
            inside = self.hide_regions(batch)
            if inside is not None:
                x5, out["hide_mask"] = self.hide(c5, inside, epoch=epoch, step=step)
        attended, _ = self.sab(x5)  # (B, C5, h, w)
        visual = self.transformer(attended, audio)
        maps = visual.maps  # (B, Q, h, w)
        attention = maps
        if self.separates and has_separation_inputs(batch):
            separation, per_source = self._separate(batch, audio, visual.maps, visual.memory, shared_frame)
            out["separation_logits"] = separation
            if self.intensity and shared_frame:
                weights = self._intensity_weights(batch, separation)
                out["intensity_weights"] = weights
                attention = scale_attention(per_source, weights)  # (B, N, h, w)
        fused, extras = self.fusion(x5, audio, attention=attention)  # (B, C5, h, w)
        finer = {"c3": c3, "c4": c4}
        for level, head in self.fine_fusion.items():
            x = finer[level]
            scaled = F.interpolate(attention, size=x.shape[-2:], mode="bilinear", align_corners=False)
            finer[level] = head(x, audio, attention=scaled)[0]  # (B, C_l, h_l, w_l)
        size = output_size_of(batch, output_size, c3)
        out["mask_logits"] = self.fpn([finer["c3"], finer["c4"], fused], output_size=size)[:, 0]  # (B, H, W)
        out["attention"] = maps
        out["logan_map"] = extras["map"] if "map" in extras else logan_map(attention.detach())
        return out

    def pixel_sounds(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The sound of every pixel of each frame shown: the synthesizer on each pixel's vector.

        A source's visual vector is the projection of the transformer memory pooled over its
        region; a pixel's is the projection of the memory at that pixel (the projection is
        linear, so a source's vector is the weighted mean of its pixels'). The frames are
        each source's own (``source_visual_c5``, mix-and-separate) or else the batch's frame.

        Raises:
            ValueError: The system was built with ``separation=False``.

        Shape:
            batch: as `forward`, with mixture_mag.
            output: (B, V, h, w, freq_rows, T) mask logits on the C5 grid; V = N sources'
                frames, or 1.

        Example:
            >>> model = AViSNet((8, 16, 32), d_model=16, num_heads=2, dim_feedforward=32, num_queries=3,
            ...                 fpn_width=8, audio_dim=16, audio_channels=(4, 8), num_channels=4,
            ...                 unet_downs=3, unet_base=4)
            >>> batch = {"visual_c5": torch.randn(1, 32, 2, 2), "logmel": torch.randn(1, 64, 96),
            ...          "mixture_mag": torch.rand(1, 512, 8)}
            >>> tuple(model.pixel_sounds(batch).shape)
            (1, 1, 2, 2, 256, 8)
        """
        if not self.separates:
            raise ValueError("AViSNet was built with separation=False: its pixels have no sound")
        audio = self.audio_encoder(batch[LOGMEL])  # (B, Ca)
        frames = source_levels(batch, ("c5",))
        x = visual_levels(batch, ("c5",))[0].unsqueeze(1) if frames is None else frames[0]  # (B, V, C5, h, w)
        b, v = x.shape[:2]
        attended, _ = self.sab(x.flatten(0, 1))
        # Each frame attends with the mixture's audio vector, as the sources' frames in `_separate`.
        memory = self.transformer(attended, audio.repeat_interleave(v, dim=0)).memory  # (B*V, d, h, w)
        vectors = self.source_proj(memory.movedim(1, -1)).movedim(-1, 1)  # (B*V, K, h, w)
        features = self.unet(log_warped_mixture(batch[MIXTURE_MAG], self.freq_rows))  # (B, K, rows, T)
        sounds = self.synthesizer.pixelwise(vectors, features.repeat_interleave(v, dim=0))  # (B*V, h, w, rows, T)
        return sounds.view(b, v, *sounds.shape[1:])

    def hide_regions(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        """The regions hide-and-detect hides from in training, on the C5 grid.

        These are the objects on the batch's frame: its sources' regions (natural mixtures),
        else the sounding-object mask (255, unannotated, counts as outside), each max-pooled
        onto C5's grid (a cell is inside when any of its pixels is). In training, `forward`
        passes them with C5 to ``self.hide``; ``self.hide(batch["visual_c5"],
        self.hide_regions(batch), epoch=e, step=s)`` reproduces its hiding.

        Shape:
            output: (B, N, h5, w5) bool, N sources (1 for the sounding-object mask); None when
                the batch carries neither.

        Example:
            >>> model = AViSNet((8, 16, 32), d_model=16, num_heads=2, dim_feedforward=16, num_queries=2,
            ...                 fpn_width=8, audio_dim=8, audio_channels=(4, 8), separation=False)
            >>> mask = torch.zeros(1, 8, 8, dtype=torch.long)
            >>> mask[0, :3, :3] = 1
            >>> batch = {"visual_c5": torch.zeros(1, 32, 2, 2), "mask": mask}
            >>> model.hide_regions(batch)[0, 0].int().tolist()
            [[1, 0], [0, 0]]
        """
        c5 = visual_levels(batch, ("c5",))[0]
        regions: torch.Tensor | None = None
        if source_levels(batch, ("c5",)) is None and SOURCE_REGION in batch:
            regions = batch[SOURCE_REGION]  # (B, N, H, W)
        elif MASK in batch:
            regions = (batch[MASK] == 1).unsqueeze(1)  # (B, 1, H, W)
        if regions is None:
            return None
        return F.adaptive_max_pool2d(regions.float(), c5.shape[-2:]) > 0.5  # (B, N, h5, w5)

    def _separate(
        self,
        batch: Mapping[str, torch.Tensor],
        audio: torch.Tensor,
        maps: torch.Tensor,
        memory: torch.Tensor,
        shared_frame: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        regions = batch[SOURCE_REGION]  # (B, N, H, W)
        b, n = regions.shape[:2]
        if shared_frame:
            source_maps = maps.mean(dim=1, keepdim=True).expand(b, n, *maps.shape[-2:])  # (B, N, h, w)
            source_memory = memory.unsqueeze(1).expand(b, n, *memory.shape[1:])  # (B, N, d, h, w)
        else:
            frames = batch["source_visual_c5"].flatten(0, 1)  # (B*N, C5, h', w')
            attended, _ = self.sab(frames)
            # Each source's frame attends with the mixture's audio vector: what was heard.
            visual = self.transformer(attended, audio.repeat_interleave(n, dim=0))
            source_maps = visual.maps.mean(dim=1).view(b, n, *visual.maps.shape[-2:])
            source_memory = visual.memory.view(b, n, *visual.memory.shape[1:])
        weights = source_maps * region_weights(regions, source_maps.shape[-2:]).to(source_maps.dtype)
        pooled = (source_memory * weights.unsqueeze(2)).sum(dim=(-2, -1))  # (B, N, d)
        pooled = pooled / weights.sum(dim=(-2, -1)).unsqueeze(-1).clamp_min(1e-6)
        vectors = self.source_proj(pooled)  # (B, N, K)
        features = self.unet(log_warped_mixture(batch[MIXTURE_MAG], self.freq_rows))  # (B, K, rows, T)
        return self.synthesizer(vectors, features), weights  # (B, N, rows, T), (B, N, h, w)

    def _intensity_weights(self, batch: Mapping[str, torch.Tensor], separation: torch.Tensor) -> torch.Tensor:
        # The cue guides the attention; it is not a path for the segmentation loss to train the
        # separation through, hence the detach.
        mixture = warp_frequency(batch[MIXTURE_MAG].float(), rows=self.freq_rows)  # (B, rows, T)
        estimates = mixture.unsqueeze(1) * torch.sigmoid(separation.detach().float())  # (B, N, rows, T)
        levels = intensity(estimates, [slice(0, estimates.shape[-1])])[..., 0]  # (B, N) dB
        if "source_valid" in batch:
            levels = levels.masked_fill(~batch["source_valid"].bool(), _SILENT_LEVEL)
        return intensity_weights(levels, tau=self.intensity_tau)
