"""Sound separation as in PixelPlayer (The Sound of Pixels) and AViS-Net's audio stream.

- `warp_frequency` / `unwarp_frequency`: the log-frequency warp of the network's input and its
  inverse for the predicted masks (pure torch, so heads need no audio front-end).
- `AudioUNet`: PixelPlayer's audio U-Net, warped log-magnitude -> K feature maps.
- `Synthesizer`: mask logits ``m_n = sum_k s_k v_nk a_k + b`` from a visual vector per source;
  `Synthesizer.pixelwise` and `PixelSound` apply it at every pixel of a visual map.
- `separation_targets` / `separation_weights`: the binary or ratio targets and the
  ``clamp(log1p|X|)`` weights of the loss (`avlab.heads.losses.weighted_bce`).

Example:
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> mags = torch.rand(2, 2, 512, 16)  # (B, N, F, T) source magnitudes
    >>> mix = mags.sum(dim=1)  # (B, F, T)
    >>> unet = AudioUNet(out_channels=4, num_downs=3, base_channels=4)
    >>> feats = unet(torch.log(warp_frequency(mix, rows=32) + 1e-10).unsqueeze(1))
    >>> logits = Synthesizer(4)(torch.randn(2, 2, 4), feats)
    >>> targets = separation_targets(warp_frequency(mags, rows=32), warp_frequency(mix, rows=32))
    >>> tuple(feats.shape), tuple(logits.shape), tuple(targets.shape)
    ((2, 4, 32, 16), (2, 2, 32, 16), (2, 2, 32, 16))
"""

from __future__ import annotations

import math

import torch
from torch import nn

from avlab.heads._registry import register_head

__all__ = [
    "AudioUNet",
    "PixelSound",
    "Synthesizer",
    "separation_targets",
    "separation_weights",
    "unwarp_frequency",
    "warp_frequency",
]


def _warp_positions(rows: int, bins: int) -> torch.Tensor:
    # Row y in [-1, 1] reads the linear position (21^((y+1)/2) - 11) / 10 in [-1, 1].
    y = torch.linspace(-1.0, 1.0, rows, dtype=torch.float64)
    linear = (torch.pow(21.0, (y + 1) / 2) - 11) / 10
    return ((linear + 1) / 2 * (bins - 1)).clamp(0, bins - 1)  # (rows,) in bin units


def _unwarp_positions(bins: int, rows: int) -> torch.Tensor:
    # The inverse map: linear position x reads the warped row 2 log21(10 x + 11) - 1.
    x = torch.linspace(-1.0, 1.0, bins, dtype=torch.float64)
    warped = torch.log(10 * x + 11) / math.log(21) * 2 - 1
    return ((warped + 1) / 2 * (rows - 1)).clamp(0, rows - 1)  # (bins,) in row units


def _resample_rows(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    # Linear interpolation along dim -2 at fractional positions: what F.grid_sample with
    # align_corners=True computes along that axis when the other axis is sampled on its own
    # grid, without resampling the time axis at all.
    size = x.shape[-2]
    if x.ndim < 2 or size < 2:
        raise ValueError(f"need (..., F, T) with F >= 2 to interpolate, got {tuple(x.shape)}")
    low = positions.floor().clamp(max=size - 2).long()  # (R,)
    weight = (positions - low).to(device=x.device, dtype=x.dtype).unsqueeze(-1)  # (R, 1)
    low = low.to(x.device)
    below = x.index_select(-2, low)  # (..., R, T)
    above = x.index_select(-2, low + 1)  # (..., R, T)
    return below * (1 - weight) + above * weight


def warp_frequency(mag: torch.Tensor, rows: int = 256) -> torch.Tensor:
    """Resample linear frequency bins to log-spaced rows (PixelPlayer's ``warpgrid``).

    Output row ``y`` in [-1, 1] (`rows` evenly spaced values) reads the linear position
    ``(21^((y+1)/2) - 11) / 10`` in [-1, 1] of the input bins, interpolating linearly: what
    ``F.grid_sample(mag, grid, align_corners=True)`` computes with PixelPlayer's grid, with the
    time axis left exactly as it is. Low frequencies get more rows than bins, high ones fewer.
    The same warp as ``avlab.backbones.audio.warp_frequency``, kept here so heads need torch
    only.

    Args:
        mag: Spectrogram magnitudes (or anything on the STFT's bins).
        rows: Output frequency rows.

    Shape:
        mag: (..., F, T), typically (B, F = 512, T).
        output: (..., rows, T).

    Example:
        >>> ramp = torch.arange(512.0).view(512, 1)  # each bin holds its index
        >>> warped = warp_frequency(ramp)
        >>> tuple(warped.shape), float(warped[0, 0]), float(warped[-1, 0]), bool((warped.diff(dim=0) > 0).all())
        ((256, 1), 0.0, 511.0, True)
    """
    return _resample_rows(mag, _warp_positions(rows, mag.shape[-2]))


def unwarp_frequency(x: torch.Tensor, bins: int = 512) -> torch.Tensor:
    """Resample log-spaced rows back to linear frequency bins: the inverse of `warp_frequency`.

    Brings masks predicted on the warped grid back to the STFT's bins (PixelPlayer's unwarp
    grid ``log(10 x + 11) / log(21) * 2 - 1``).

    Args:
        x: Warped maps (masks, magnitudes).
        bins: Output frequency bins.

    Shape:
        x: (..., rows, T), typically (B, N, 256, T).
        output: (..., bins, T).

    Example:
        >>> x = torch.linspace(0, 1, 512).view(512, 1).expand(512, 3)
        >>> back = unwarp_frequency(warp_frequency(x))
        >>> tuple(back.shape), round(float((back - x).abs().max()), 4)
        ((512, 3), 0.0)
    """
    return _resample_rows(x, _unwarp_positions(bins, x.shape[-2]))


@register_head("audio_unet")
class AudioUNet(nn.Module):
    """PixelPlayer's audio U-Net: warped log-magnitude (B, 1, F, T) -> K feature maps.

    Laid out as PixelPlayer's ``Unet`` (``audio_net.py``), unrolled into lists: a BatchNorm on
    the input; `num_downs` down levels of 4x4 stride-2 convolutions (LeakyReLU 0.2 before
    every one but the first, BatchNorm after every one but the first and the innermost), with
    widths doubling from `base_channels` up to `max_channels`; `num_downs` up levels of ReLU,
    bilinear x2 upsampling (align_corners=True), 3x3 convolution and BatchNorm (none on the
    outermost), each concatenating the matching down level's output as a skip. Convolutions
    followed by BatchNorm have no bias; the outermost has one. Defaults: PixelPlayer's
    ``unet7`` with ngf 64 and K = 32 (widths 64, 128, 256, 512, 512, 512, 512).

    Args:
        in_channels: Input channels (1: the log-magnitude).
        out_channels: K, the feature maps the synthesizer combines.
        num_downs: Down (and up) levels; F and T must be divisible by ``2^num_downs``.
        base_channels: Width of the outermost level (PixelPlayer's ngf).
        max_channels: Cap on the widths (PixelPlayer's 8 ngf).

    Shape:
        x: (B, in_channels, F, T), F = T = 256 for PixelPlayer's clips.
        output: (B, out_channels, F, T), no activation (the synthesizer follows).

    Example:
        >>> unet = AudioUNet(out_channels=8, num_downs=3, base_channels=4, max_channels=8)
        >>> tuple(unet(torch.randn(2, 1, 16, 24)).shape)
        (2, 8, 16, 24)
    """

    def __init__(
        self,
        in_channels: int = 1,
        *,
        out_channels: int = 32,
        num_downs: int = 7,
        base_channels: int = 64,
        max_channels: int = 512,
    ) -> None:
        super().__init__()
        if num_downs < 2:
            raise ValueError(f"need at least 2 levels, got num_downs={num_downs}")
        self.num_downs = num_downs
        widths = [min(base_channels * 2**i, max_channels) for i in range(num_downs)]
        self.widths = tuple(widths)
        self.input_norm = nn.BatchNorm2d(in_channels)
        innermost = num_downs - 1
        self.down = nn.ModuleList()
        for i, width in enumerate(widths):
            layers: list[nn.Module] = []
            if i > 0:
                layers.append(nn.LeakyReLU(0.2))
            source = in_channels if i == 0 else widths[i - 1]
            layers.append(nn.Conv2d(source, width, 4, stride=2, padding=1, bias=False))
            if 0 < i < innermost:
                layers.append(nn.BatchNorm2d(width))
            self.down.append(nn.Sequential(*layers))
        # up[i] undoes down[i]: its input is down[i]'s output (innermost) or the previous up
        # level's output concatenated with down[i]'s output (the skip), so twice the width.
        self.up = nn.ModuleList()
        for i, width in enumerate(widths):
            source = width if i == innermost else 2 * width
            target = out_channels if i == 0 else widths[i - 1]
            layers = [
                nn.ReLU(),
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                nn.Conv2d(source, target, 3, padding=1, bias=i == 0),
            ]
            if i > 0:
                layers.append(nn.BatchNorm2d(target))
            self.up.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps of a warped log-magnitude; shapes in the class docstring."""
        factor = 2**self.num_downs
        if x.ndim != 4 or x.shape[-2] % factor or x.shape[-1] % factor:
            raise ValueError(
                f"expected (B, C, F, T) with F and T divisible by {factor}, got {tuple(x.shape)}"
            )
        skips = []
        h: torch.Tensor = self.input_norm(x)
        for down in self.down:
            h = down(h)  # (B, width_i, F / 2^(i+1), T / 2^(i+1))
            skips.append(h)
        h = self.up[-1](skips[-1])  # (B, width_{n-2}, ...)
        for i in range(self.num_downs - 2, -1, -1):
            h = self.up[i](torch.cat([skips[i], h], dim=1))  # (B, width_{i-1} or K, ...)
        return h  # (B, K, F, T)

    def extra_repr(self) -> str:
        return f"widths={self.widths}"


@register_head("synthesizer")
class Synthesizer(nn.Module):
    """PixelPlayer's synthesizer: mask logits ``m_n = sum_k s_k v_nk a_k + b``.

    ``a`` (B, K, F, T) are the U-Net's feature maps of the mixture; ``v_n`` (K,) is the visual
    vector of source n (AViS-Net: pooled from the sounding-object attention over the source's
    region; PixelPlayer: max-pooled visual features), passed through a sigmoid first when
    `visual_sigmoid` (PixelPlayer's default image activation). ``s`` (ones) and ``b`` (zero)
    are learned, as PixelPlayer's ``InnerProd`` initialises them.

    Args:
        num_channels: K.
        visual_sigmoid: Apply a sigmoid to the visual vectors.

    Shape:
        visual: (B, K) for one source or (B, N, K) for N sources.
        audio: (B, K, F, T).
        output: (B, F, T) or (B, N, F, T) mask logits.

    Example:
        >>> synth = Synthesizer(4)
        >>> audio = torch.randn(2, 4, 8, 5)
        >>> tuple(synth(torch.randn(2, 4), audio).shape), tuple(synth(torch.randn(2, 3, 4), audio).shape)
        ((2, 8, 5), (2, 3, 8, 5))
    """

    def __init__(self, num_channels: int, *, visual_sigmoid: bool = True) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.visual_sigmoid = visual_sigmoid
        self.scale = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(1))

    def _check_audio(self, audio: torch.Tensor) -> None:
        if audio.ndim != 4 or audio.shape[1] != self.num_channels:
            raise ValueError(
                f"expected audio (B, {self.num_channels}, F, T), got {tuple(audio.shape)}"
            )

    def forward(self, visual: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Mask logits per source; shapes in the class docstring."""
        self._check_audio(audio)
        single = visual.ndim == 2
        v = visual.unsqueeze(1) if single else visual  # (B, N, K)
        if v.ndim != 3 or v.shape[0] != audio.shape[0] or v.shape[-1] != self.num_channels:
            raise ValueError(
                f"expected visual (B, K) or (B, N, K) with B = {audio.shape[0]}, "
                f"K = {self.num_channels}, got {tuple(visual.shape)}"
            )
        if self.visual_sigmoid:
            v = torch.sigmoid(v)
        logits = torch.einsum("bnk,bkft->bnft", v * self.scale, audio) + self.bias  # (B, N, F, T)
        return logits.squeeze(1) if single else logits

    def pixelwise(self, visual_map: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """The sound of every pixel: the synthesizer applied at each position of a visual map.

        PixelPlayer's ``forward_pixelwise`` leaves out the scale ``s`` and the sigmoid; here
        they apply as in `forward`, so a pixel's mask equals `forward` on that pixel's vector.

        Shape:
            visual_map: (B, K, H, W).
            audio: (B, K, F, T).
            output: (B, H, W, F, T) mask logits, one spectrogram mask per pixel.

        Example:
            >>> synth = Synthesizer(4)
            >>> vmap, audio = torch.randn(1, 4, 3, 2), torch.randn(1, 4, 8, 5)
            >>> masks = synth.pixelwise(vmap, audio)
            >>> tuple(masks.shape), bool(torch.allclose(masks[0, 2, 1], synth(vmap[:, :, 2, 1], audio)[0]))
            ((1, 3, 2, 8, 5), True)
        """
        self._check_audio(audio)
        if visual_map.ndim != 4 or visual_map.shape[:2] != audio.shape[:2]:
            raise ValueError(
                f"expected visual_map ({audio.shape[0]}, {self.num_channels}, H, W), got {tuple(visual_map.shape)}"
            )
        b, k, h, w = visual_map.shape
        v = visual_map.flatten(2).transpose(1, 2)  # (B, H*W, K)
        logits = self.forward(v, audio)  # (B, H*W, F, T)
        return logits.view(b, h, w, *audio.shape[-2:])


@register_head("pixel_sound")
class PixelSound(nn.Module):
    """A sound for every pixel: `Synthesizer.pixelwise` as a module, for models built by name.

    Pass the model's `Synthesizer` to share its ``s`` and ``b`` (the sound of a pixel is then
    what that synthesizer would give for the pixel's vector); without one, it owns a new one.

    Args:
        num_channels: K.
        visual_sigmoid: As `Synthesizer`'s, when a new synthesizer is built.
        synthesizer: An existing synthesizer to share; its K must equal `num_channels`.

    Shape:
        visual_map: (B, K, H, W).
        audio: (B, K, F, T).
        output: (B, H, W, F, T) mask logits.

    Example:
        >>> synth = Synthesizer(4)
        >>> pixels = PixelSound(4, synthesizer=synth)
        >>> pixels.synthesizer is synth, tuple(pixels(torch.randn(2, 4, 3, 3), torch.randn(2, 4, 8, 5)).shape)
        (True, (2, 3, 3, 8, 5))
    """

    def __init__(
        self,
        num_channels: int,
        *,
        visual_sigmoid: bool = True,
        synthesizer: Synthesizer | None = None,
    ) -> None:
        super().__init__()
        if synthesizer is not None and synthesizer.num_channels != num_channels:
            raise ValueError(
                f"synthesizer has K = {synthesizer.num_channels}, expected {num_channels}"
            )
        self.synthesizer = synthesizer or Synthesizer(num_channels, visual_sigmoid=visual_sigmoid)

    def forward(self, visual_map: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Mask logits of every pixel; shapes in the class docstring."""
        return self.synthesizer.pixelwise(visual_map, audio)


def _broadcast_mixture(source_mags: torch.Tensor, mixture_mag: torch.Tensor) -> torch.Tensor:
    # (B, F, T) mixture against (B, N, F, T) sources: add the source axis.
    if mixture_mag.ndim == source_mags.ndim - 1:
        mixture_mag = mixture_mag.unsqueeze(-3)
    if mixture_mag.ndim != source_mags.ndim:
        raise ValueError(
            f"mixture {tuple(mixture_mag.shape)} does not match sources {tuple(source_mags.shape)}"
        )
    return mixture_mag


def separation_targets(
    source_mags: torch.Tensor,
    mixture_mag: torch.Tensor,
    kind: str = "binary",
    *,
    threshold: float = 0.5,
    max_ratio: float = 5.0,
    eps: float = 1e-10,
) -> torch.Tensor:
    """Mask targets of mix-and-separate (PixelPlayer), computed on the warped magnitudes.

    ``binary``: ``|S_n| > threshold |X|`` (default 0.5) as 0. / 1.; ``ratio``:
    ``clamp(|S_n| / (|X| + eps), 0, max_ratio)``. The `eps` (ours) keeps silent bins at 0
    where PixelPlayer's ``|S_n| / |X|`` gives NaN.

    Args:
        source_mags: Magnitudes of the sources, after the warp.
        mixture_mag: Magnitude of the mixture, after the warp.
        kind: "binary" or "ratio".
        threshold: Fraction of the mixture a source must exceed (binary).
        max_ratio: Upper clamp of the ratio.
        eps: Added to the mixture in the ratio.

    Shape:
        source_mags: (B, N, F, T).
        mixture_mag: (B, F, T) or (B, 1, F, T).
        output: (B, N, F, T), same dtype as `source_mags`.

    Example:
        >>> s = torch.tensor([[[[3.0, 0.0]], [[1.0, 0.0]]]])  # (1, 2, 1, 2)
        >>> x = s.sum(dim=1)
        >>> separation_targets(s, x).flatten().tolist(), separation_targets(s, x, "ratio").flatten().tolist()
        ([1.0, 0.0, 0.0, 0.0], [0.75, 0.0, 0.25, 0.0])
    """
    mixture_mag = _broadcast_mixture(source_mags, mixture_mag)
    if kind == "binary":
        return (source_mags > threshold * mixture_mag).to(source_mags.dtype)
    if kind == "ratio":
        return (source_mags / (mixture_mag + eps)).clamp(0.0, max_ratio)
    raise ValueError(f"kind must be 'binary' or 'ratio', got {kind!r}")


def separation_weights(
    mixture_mag: torch.Tensor, *, low: float = 1e-3, high: float = 10.0
) -> torch.Tensor:
    """Per-bin loss weights ``clamp(log1p |X|, low, high)`` (PixelPlayer's weighted loss).

    Loud bins count more; silent bins keep a small weight `low`.

    Shape:
        mixture_mag: any, e.g. (B, F, T) or (B, 1, F, T) warped magnitudes.
        output: same as `mixture_mag`.

    Example:
        >>> separation_weights(torch.tensor([0.0, math.e - 1, 1e6])).tolist()
        [0.001, 1.0, 10.0]
    """
    return torch.log1p(mixture_mag.abs()).clamp(low, high)
