"""Pure render functions: arrays in, RGB arrays or matplotlib figures out.

Nothing here imports ipywidgets or touches a display, so reports, tests and notebooks share
the same pictures.
"""

from __future__ import annotations

import html
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from avlab.backbones import SeparationSTFT

__all__ = [
    "ContactRow",
    "attention_overlay",
    "contact_sheet",
    "curriculum_iou_figure",
    "feature_map_image",
    "figure_png",
    "instance_colors",
    "mask_outline",
    "occlusion_overlay",
    "overlay_masks",
    "pixel_energy",
    "pixel_picker_image",
    "pixel_waveform",
    "png_bytes",
    "recipe_html",
    "separation_table_html",
    "truth_and_prediction",
    "upsample_bilinear",
    "waveform_figure",
    "wav_bytes",
]


def instance_colors(num: int) -> np.ndarray:
    """`num` well-separated RGB colours, the same for the same index everywhere in avlab.

    Returns:
        (num, 3) uint8.

    Example:
        >>> instance_colors(3).shape
        (3, 3)
    """
    import matplotlib

    palette = matplotlib.colormaps["tab10"].colors  # type: ignore[attr-defined]
    return (np.asarray([palette[i % len(palette)] for i in range(num)]) * 255).round().astype(np.uint8)


def mask_outline(mask: np.ndarray) -> np.ndarray:
    """The boundary pixels of a binary mask (4-neighbourhood), (H, W) bool.

    Example:
        >>> m = np.zeros((5, 5), bool); m[1:4, 1:4] = True
        >>> int(mask_outline(m).sum())
        8
    """
    mask = np.asarray(mask, dtype=bool)
    padded = np.pad(mask, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def overlay_masks(
    frame: np.ndarray,
    masks: np.ndarray,
    *,
    colors: np.ndarray | None = None,
    alpha: float = 0.45,
    outline: np.ndarray | Sequence[bool] | None = None,
) -> np.ndarray:
    """Tint each mask's pixels with its colour over a frame.

    Args:
        frame: (H, W, 3) uint8.
        masks: (I, H, W) binary masks at the frame's size.
        colors: (I, 3) uint8; default `instance_colors(I)`.
        alpha: Opacity of the tint.
        outline: (I,) bools: draw a white outline around these masks (e.g. sounding objects).

    Returns:
        (H, W, 3) uint8.

    Example:
        >>> frame = np.zeros((4, 4, 3), np.uint8)
        >>> masks = np.zeros((1, 4, 4), np.uint8); masks[0, :2] = 1
        >>> out = overlay_masks(frame, masks, colors=np.array([[200, 0, 0]], np.uint8), alpha=0.5)
        >>> out[0, 0].tolist(), out[3, 3].tolist()
        ([100, 0, 0], [0, 0, 0])
    """
    masks = np.asarray(masks).astype(bool)
    colors = instance_colors(len(masks)) if colors is None else np.asarray(colors)
    out = np.asarray(frame, dtype=np.float32).copy()
    for mask, color in zip(masks, colors, strict=True):
        out[mask] = (1 - alpha) * out[mask] + alpha * color.astype(np.float32)
    if outline is not None:
        for mask, marked in zip(masks, outline, strict=True):
            if marked:
                out[mask_outline(mask)] = 255.0
    return out.round().clip(0, 255).astype(np.uint8)


@dataclass(frozen=True)
class ContactRow:
    """One video of a contact sheet.

    Attributes:
        title: Row label (video id, category, ...).
        frames: (T, H, W, 3) uint8.
        masks: (I, T, H, W) instance masks at the frames' size, or None.
        sounding: (I, T) bool sounding flags, or None.
        audio: (S,) mono samples for the spectrogram, or None.
        sample_rate: Hz of `audio`.
        labels: (I,) names of the instances for the legend.
    """

    title: str
    frames: np.ndarray
    masks: np.ndarray | None = None
    sounding: np.ndarray | None = None
    audio: np.ndarray | None = None
    sample_rate: int = 11025
    labels: Sequence[str] | None = None


def contact_sheet(rows: Sequence[ContactRow], *, num_frames: int = 6, n_fft: int = 1022,
                  hop_length: int = 256):  # type: ignore[no-untyped-def]
    """A grid: for each video, frames with mask overlays, then the log spectrogram of its sound.

    Instances are tinted by track; sounding ones (in that frame) get a white outline. The
    spectrogram uses the separation STFT (n_fft 1022, hop 256) in dB.

    Args:
        rows: The videos to show.
        num_frames: Frames per row, evenly spaced over the video.
        n_fft: STFT size of the spectrogram.
        hop_length: STFT hop of the spectrogram.

    Returns:
        A matplotlib Figure (not attached to any display).

    Example:
        >>> row = ContactRow("v", np.zeros((4, 16, 16, 3), np.uint8), audio=np.zeros(4000, np.float32))
        >>> fig = contact_sheet([row], num_frames=2)
        >>> len(fig.axes)
        3
    """
    import librosa
    from matplotlib.figure import Figure

    has_audio = any(r.audio is not None for r in rows)
    columns = num_frames + (2 if has_audio else 0)
    figure = Figure(figsize=(1.6 * columns, 1.8 * len(rows)), dpi=110, layout="constrained")
    grid = figure.add_gridspec(len(rows), columns)
    for r, row in enumerate(rows):
        picks = np.linspace(0, len(row.frames) - 1, num=min(num_frames, len(row.frames))).round().astype(int)
        colors = instance_colors(0 if row.masks is None else len(row.masks))
        for c, t in enumerate(picks):
            axis = figure.add_subplot(grid[r, c])
            image = row.frames[t]
            if row.masks is not None:
                outline = None if row.sounding is None else row.sounding[:, t]
                image = overlay_masks(image, row.masks[:, t], colors=colors, outline=outline)
            axis.imshow(image)
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_xlabel(f"frame {t}", fontsize=7)
            if c == 0:
                axis.set_ylabel(row.title, fontsize=7)
        if row.audio is not None:
            axis = figure.add_subplot(grid[r, num_frames:])
            stft = np.abs(librosa.stft(np.asarray(row.audio, np.float32), n_fft=n_fft, hop_length=hop_length))
            decibels = librosa.amplitude_to_db(stft, ref=max(float(stft.max()), 1e-10), top_db=80)
            seconds = len(row.audio) / row.sample_rate
            axis.imshow(decibels, origin="lower", aspect="auto", cmap="magma",
                        extent=(0.0, seconds, 0.0, row.sample_rate / 2000))
            axis.set_xlabel("s", fontsize=7)
            axis.set_ylabel("kHz", fontsize=7)
            axis.tick_params(labelsize=6)
            if row.labels is not None:
                from matplotlib.patches import Patch

                handles = [Patch(color=colors[i] / 255, label=label) for i, label in enumerate(row.labels)]
                axis.legend(handles=handles, fontsize=6, loc="upper right", bbox_to_anchor=(1.0, 0.93),
                            framealpha=0.7)
            if row.sounding is not None:
                # One band per instance along the top: where it sounds, in its track colour.
                frame_seconds = seconds / row.sounding.shape[1]
                top = row.sample_rate / 2000
                for i, flags in enumerate(row.sounding):
                    for t in np.flatnonzero(flags):
                        axis.axhspan(top * (0.97 - 0.05 * i), top * (1.0 - 0.05 * i),
                                     xmin=t * frame_seconds / seconds, xmax=(t + 1) * frame_seconds / seconds,
                                     color=colors[i] / 255, linewidth=0)
    return figure


def upsample_bilinear(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of the last two axes, pixel centres aligned (torch's ``align_corners=False``).

    Args:
        maps: (..., h, w) values.
        size: (H, W) of the result.

    Returns:
        (..., H, W) float64.

    Example:
        >>> upsample_bilinear(np.array([[0.0, 1.0]]), (1, 4)).tolist()
        [[0.0, 0.25, 0.75, 1.0]]
    """

    def taps(source: int, target: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        where = np.clip((np.arange(target) + 0.5) * source / target - 0.5, 0, source - 1)
        low = np.floor(where).astype(np.int64)
        high = np.minimum(low + 1, source - 1)
        return low, high, where - low

    maps = np.asarray(maps, np.float64)
    low, high, frac = taps(maps.shape[-2], size[0])
    rows = maps[..., low, :] * (1 - frac)[:, None] + maps[..., high, :] * frac[:, None]  # (..., H, w)
    low, high, frac = taps(maps.shape[-1], size[1])
    return rows[..., low] * (1 - frac) + rows[..., high] * frac  # (..., H, W)


def attention_overlay(frame: np.ndarray, heat: np.ndarray, *, opacity: float = 0.6,
                      cmap: str = "inferno") -> np.ndarray:
    """A map drawn as a heat overlay on a frame, on the fixed 0-1 colour scale of the report.

    The map is upsampled bilinearly to the frame's size, clipped to [0, 1] (attention maps are
    sigmoids, LoGAN's map lies in [0, 1]), coloured with `cmap` and blended:
    ``(1 - opacity) * frame + opacity * colour``.

    Args:
        frame: (H, W, 3) uint8.
        heat: (h, w) map values in [0, 1].
        opacity: Weight of the heat colours, 0 (frame only) to 1 (map only).
        cmap: A matplotlib colormap name.

    Returns:
        (H, W, 3) uint8.

    Example:
        >>> frame = np.full((4, 4, 3), 100, np.uint8)
        >>> attention_overlay(frame, np.zeros((2, 2)), opacity=0.0)[0, 0].tolist()
        [100, 100, 100]
        >>> attention_overlay(frame, np.ones((2, 2)), opacity=1.0, cmap="gray")[0, 0].tolist()
        [255, 255, 255]
    """
    import matplotlib

    image = np.asarray(frame)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected a frame (H, W, 3), got shape {image.shape}")
    values = np.asarray(heat, np.float64)
    if values.ndim != 2:
        raise ValueError(f"expected a map (h, w), got shape {values.shape}")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must lie in [0, 1], got {opacity}")
    resized = np.clip(upsample_bilinear(values, (image.shape[0], image.shape[1])), 0.0, 1.0)  # (H, W)
    colours = matplotlib.colormaps[cmap](resized)[..., :3] * 255  # (H, W, 3)
    out = (1 - opacity) * image.astype(np.float64) + opacity * colours
    return out.round().clip(0, 255).astype(np.uint8)


def truth_and_prediction(frame: np.ndarray, truth: np.ndarray, predicted: np.ndarray, *,
                         threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """The ground truth and the prediction of one frame, tinted as `avlab.report.mask_figure` draws them.

    The truth is tinted with ``instance_colors(2)[0]``, the prediction with
    ``instance_colors(2)[1]``, and the prediction's picture outlines the truth in white.

    Args:
        frame: (H, W, 3) uint8.
        truth: (H, W) binary ground truth.
        predicted: (H, W) probabilities (foreground above `threshold`) or bool.
        threshold: Probability above which a pixel is predicted foreground.

    Returns:
        Two (H, W, 3) uint8 pictures: truth, prediction.

    Example:
        >>> frame = np.zeros((4, 4, 3), np.uint8)
        >>> truth = np.zeros((4, 4), bool); truth[:2] = True
        >>> left, right = truth_and_prediction(frame, truth, np.zeros((4, 4)))
        >>> left[3, 3].tolist(), right[0, 0].tolist(), right[3, 3].tolist()
        ([0, 0, 0], [255, 255, 255], [0, 0, 0])
    """
    gt = np.asarray(truth).astype(bool)
    values = np.asarray(predicted)
    mask = values.astype(bool) if values.dtype == bool else values > threshold
    if gt.shape != mask.shape or gt.shape != np.asarray(frame).shape[:2]:
        raise ValueError(f"expected truth and predicted (H, W) matching the frame's {np.asarray(frame).shape[:2]}, "
                         f"got {gt.shape} and {mask.shape}")
    truth_color, predicted_color = instance_colors(2)
    left = overlay_masks(frame, gt[None], colors=truth_color[None])
    right = overlay_masks(frame, mask[None], colors=predicted_color[None])
    right[mask_outline(gt)] = 255
    return left, right


def waveform_figure(audio: np.ndarray, sample_rate: int, *, time: float | None = None) -> Figure:
    """A waveform against seconds, with a red playhead line at `time`.

    Args:
        audio: (S,) mono samples.
        sample_rate: Hz of `audio`.
        time: Seconds of the playhead, or None for none.

    Returns:
        A matplotlib Figure (not attached to any display); the playhead is its axis' second line.

    Example:
        >>> figure = waveform_figure(np.zeros(100), 100, time=0.5)
        >>> [line.get_xdata()[0] for line in figure.axes[0].lines][1:]
        [0.5]
    """
    from matplotlib.figure import Figure

    samples = np.asarray(audio, np.float64)
    if samples.ndim != 1:
        raise ValueError(f"expected mono audio (S,), got shape {samples.shape}")
    figure = Figure(figsize=(6.0, 1.3), dpi=80, layout="constrained")
    axis = figure.add_subplot()
    axis.plot(np.arange(len(samples)) / sample_rate, samples, linewidth=0.5, color="0.3")
    if time is not None:
        axis.axvline(time, color="red", linewidth=1.2)
    axis.set_xlim(0.0, max(len(samples), 1) / sample_rate)
    axis.set_xlabel("s", fontsize=7)
    axis.tick_params(labelsize=6)
    return figure


def separation_table_html(labels: Sequence[str], sdr: np.ndarray, sir: np.ndarray, sar: np.ndarray, *,
                          selected: int | None = None) -> str:
    """An HTML table of SDR, SIR and SAR (dB) per source; NaN shows as "n/a".

    Args:
        labels: (K,) source names.
        sdr: (K,) dB.
        sir: (K,) dB.
        sar: (K,) dB.
        selected: Index of the row shown in bold, or None.

    Returns:
        A ``<table>`` string.

    Example:
        >>> text = separation_table_html(["violin"], np.array([3.25]), np.array([9.0]), np.array([float("nan")]))
        >>> "<td>3.2</td><td>9.0</td><td>n/a</td>" in text
        True
    """

    def cell(value: float) -> str:
        return f"{value:.1f}" if np.isfinite(value) else "n/a"

    rows = ["<tr><th>source</th><th>SDR (dB)</th><th>SIR (dB)</th><th>SAR (dB)</th></tr>"]
    columns = [np.asarray(v, np.float64) for v in (sdr, sir, sar)]
    for k, label in enumerate(labels):
        style = ' style="font-weight: bold"' if k == selected else ""
        values = "".join(f"<td>{cell(float(column[k]))}</td>" for column in columns)
        rows.append(f"<tr{style}><td>{html.escape(str(label))}</td>{values}</tr>")
    return "<table>" + "".join(rows) + "</table>"


def pixel_energy(pixel_masks: np.ndarray, mixture: np.ndarray) -> np.ndarray:
    """How much of the mixture each pixel's sound keeps: ``sum(mask * |X|) / sum(|X|)``.

    PixelPlayer's picture of where a frame sounds: a pixel whose mask keeps most of the
    mixture's magnitude is where the model hears the sound.

    Args:
        pixel_masks: (..., h, w, F, T) mask values in [0, 1] (`SeparationExample.pixel_masks`).
        mixture: (F, T) the mixture's magnitude.

    Returns:
        (..., h, w) float64 in [0, 1] (zeros for a silent mixture).

    Example:
        >>> masks = np.zeros((1, 2, 2, 3)); masks[0, 1] = 1.0  # pixel (0, 1) keeps everything
        >>> pixel_energy(masks, np.ones((2, 3))).tolist()
        [[0.0, 1.0]]
    """
    weights = np.asarray(mixture, np.float64)
    total = weights.sum()
    if total <= 0:
        return np.zeros(np.shape(pixel_masks)[:-2])
    return np.einsum("...ft,ft->...", np.asarray(pixel_masks, np.float64), weights) / total


def pixel_picker_image(frame: np.ndarray, energy: np.ndarray, *, selected: tuple[int, int] | None = None,
                       scale: int = 1, opacity: float = 0.5) -> np.ndarray:
    """A frame to click on: the pixels' energies over it and the selected grid cell outlined.

    The energy map (h, w) is drawn by `attention_overlay`, the image is enlarged `scale`
    times (nearest), and the selected cell of the h x w grid gets a white outline.

    Args:
        frame: (H, W, 3) uint8.
        energy: (h, w) values in [0, 1] (`pixel_energy`).
        selected: (row, column) of the cell to outline, or None.
        scale: Integer enlargement.
        opacity: Weight of the energy colours.

    Returns:
        (H * scale, W * scale, 3) uint8.

    Example:
        >>> frame = np.full((4, 4, 3), 100, np.uint8)
        >>> image = pixel_picker_image(frame, np.zeros((2, 2)), selected=(1, 0), scale=2, opacity=0.0)
        >>> image.shape, image[4, 0].tolist(), image[0, 0].tolist()
        ((8, 8, 3), [255, 255, 255], [100, 100, 100])
    """
    image = attention_overlay(frame, energy, opacity=opacity)
    if scale > 1:
        image = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
    if selected is not None:
        rows, cols = np.shape(energy)
        height, width = image.shape[:2]
        top, bottom = selected[0] * height // rows, (selected[0] + 1) * height // rows - 1
        left, right = selected[1] * width // cols, (selected[1] + 1) * width // cols - 1
        image[[top, bottom], left:right + 1] = 255
        image[top:bottom + 1, [left, right]] = 255
    return image


def pixel_waveform(mask: np.ndarray, mixture_stft: np.ndarray, *, threshold: float | None = 0.5,
                   stft: SeparationSTFT | None = None) -> np.ndarray:
    """The sound of one pixel: its mask on the mixture's STFT, inverted (PixelPlayer's protocol).

    As `avlab.models.separate_waveforms`: binary at `threshold` (None: the soft mask), the
    mixture's phase, the inverse of the separation STFT (`avlab.backbones.SeparationSTFT`),
    clipped to [-1, 1].

    Args:
        mask: (F, T) the pixel's mask probabilities on the STFT's bins.
        mixture_stft: (F, T) complex.
        threshold: Binary threshold, or None.
        stft: The STFT `mixture_stft` was computed with (default `SeparationSTFT()`).

    Returns:
        ((T - 1) * hop,) float32 samples.

    Example:
        >>> from avlab.backbones import SeparationSTFT
        >>> stft = SeparationSTFT()
        >>> mixture = stft(np.sin(np.arange(2048) / 3.0).astype(np.float32) * 0.5)
        >>> wave = pixel_waveform(np.ones(mixture.shape), mixture)
        >>> wave.shape, bool(np.allclose(wave, stft.inverse(mixture, wave.shape[0]), atol=1e-6))
        ((2048,), True)
    """
    from avlab.models import waveforms

    keep = np.asarray(mask, np.float32)
    if threshold is not None:
        keep = (keep > threshold).astype(np.float32)
    spectrogram = np.asarray(mixture_stft) * keep
    return np.clip(waveforms(spectrogram[None], stft=stft)[0], -1.0, 1.0)


def png_bytes(image: np.ndarray) -> bytes:
    """PNG encoding of an (H, W, 3) uint8 image (lossless: decoding gives the array back).

    Example:
        >>> png_bytes(np.zeros((2, 2, 3), np.uint8))[:4]
        b'\\x89PNG'
    """
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def figure_png(figure: Figure) -> bytes:
    """PNG encoding of a matplotlib Figure.

    Example:
        >>> figure_png(waveform_figure(np.zeros(10), 10))[:4]
        b'\\x89PNG'
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def wav_bytes(waveform: np.ndarray, sample_rate: int) -> bytes:
    """A WAV file of (S,) mono or (S, C) samples, 32-bit float (soundfile reads the samples back exactly).

    Example:
        >>> import soundfile
        >>> data, rate = soundfile.read(io.BytesIO(wav_bytes(np.array([0.5, -0.25]), 8000)), dtype="float32")
        >>> data.tolist(), rate
        ([0.5, -0.25], 8000)
    """
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, np.asarray(waveform, np.float32), int(sample_rate), format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def feature_map_image(features: np.ndarray, *, scale: int = 1, cmap: str = "viridis") -> np.ndarray:
    """The channel mean of a feature map, min-max scaled to [0, 1] and coloured.

    A constant map (e.g. all zeros) is drawn at the colormap's low end. Each cell becomes a
    `scale` x `scale` block, so a coarse grid stays readable.

    Args:
        features: (C, h, w) features of one frame (one backbone level).
        scale: Pixels per feature cell along each axis.
        cmap: A matplotlib colormap name.

    Returns:
        (h * scale, w * scale, 3) uint8.

    Example:
        >>> features = np.stack([np.array([[0.0, 2.0]]), np.array([[0.0, 4.0]])])  # (2, 1, 2)
        >>> feature_map_image(features, scale=2, cmap="gray")[..., 0].tolist()
        [[0, 0, 255, 255], [0, 0, 255, 255]]
    """
    import matplotlib

    values = np.asarray(features, np.float64)
    if values.ndim != 3:
        raise ValueError(f"expected features (C, h, w), got shape {values.shape}")
    if scale < 1:
        raise ValueError(f"scale must be at least 1, got {scale}")
    mean = values.mean(axis=0)  # (h, w)
    low, high = (float(mean.min()), float(mean.max())) if mean.size else (0.0, 0.0)
    scaled = (mean - low) / (high - low) if high > low else np.zeros_like(mean)
    colours = (matplotlib.colormaps[cmap](scaled)[..., :3] * 255).round().astype(np.uint8)  # (h, w, 3)
    return np.repeat(np.repeat(colours, scale, axis=0), scale, axis=1)


def recipe_html(recipe: dict[str, Any]) -> str:
    """A store's recipe as indented JSON in a ``<pre>`` block, HTML-escaped.

    Example:
        >>> recipe_html({"visual": {"backbone": "debug"}})
        '<pre>{\\n  &quot;visual&quot;: {\\n    &quot;backbone&quot;: &quot;debug&quot;\\n  }\\n}</pre>'
    """
    return "<pre>" + html.escape(json.dumps(recipe, indent=2, sort_keys=True, default=str)) + "</pre>"


# The hide-and-detect curriculum (`avlab.widgets.CurriculumViewer`).

HIDDEN_OUTLINE = np.array([255, 0, 0], np.uint8)  # red, as notebook 05 outlines hidden regions


def occlusion_overlay(frame: np.ndarray, hidden: np.ndarray, predicted: np.ndarray, truth: np.ndarray, *,
                      threshold: float = 0.5, darken: float = 0.6, alpha: float = 0.45) -> np.ndarray:
    """One frame under hide-and-detect's occlusion: the hidden region, the mask predicted then, the truth.

    The hidden region is darkened (its pixels scaled by ``1 - darken``), the prediction is
    tinted with ``instance_colors(2)[1]`` (the colour of `truth_and_prediction`'s prediction),
    then the hidden region is outlined in red (`HIDDEN_OUTLINE`) and the truth in white, the
    truth's outline drawn last.

    Args:
        frame: (H, W, 3) uint8.
        hidden: (H, W) bool, the hidden region at the frame's size.
        predicted: (H, W) probabilities (foreground above `threshold`) or bool.
        truth: (H, W) binary ground truth.
        threshold: Probability above which a pixel is predicted foreground.
        darken: Fraction of brightness the hidden pixels lose, 0 (none) to 1 (black).
        alpha: Opacity of the prediction's tint.

    Returns:
        (H, W, 3) uint8.

    Example:
        >>> frame = np.full((6, 6, 3), 100, np.uint8)
        >>> hidden = np.zeros((6, 6), bool); hidden[:3, :3] = True
        >>> out = occlusion_overlay(frame, hidden, np.zeros((6, 6)), np.zeros((6, 6), bool), darken=0.5)
        >>> out[1, 1].tolist(), out[0, 0].tolist(), out[5, 5].tolist()
        ([50, 50, 50], [255, 0, 0], [100, 100, 100])
    """
    image = np.asarray(frame)
    gone = np.asarray(hidden).astype(bool)
    gt = np.asarray(truth).astype(bool)
    values = np.asarray(predicted)
    mask = values.astype(bool) if values.dtype == bool else values > threshold
    if image.ndim != 3 or image.shape[-1] != 3 or not gone.shape == mask.shape == gt.shape == image.shape[:2]:
        raise ValueError(f"expected a frame (H, W, 3) with hidden, predicted and truth (H, W), got {image.shape}, "
                         f"{gone.shape}, {mask.shape} and {gt.shape}")
    if not 0.0 <= darken <= 1.0:
        raise ValueError(f"darken must lie in [0, 1], got {darken}")
    dimmed = image.astype(np.float64)
    dimmed[gone] *= 1.0 - darken
    out = overlay_masks(dimmed.round().astype(np.uint8), mask[None], colors=instance_colors(2)[1][None], alpha=alpha)
    out[mask_outline(gone)] = HIDDEN_OUTLINE
    out[mask_outline(gt)] = 255
    return out


def curriculum_iou_figure(epochs: Sequence[int] | np.ndarray, occluded: np.ndarray, unoccluded: float, *,
                          current: int | None = None) -> Figure:
    """IoU under the curriculum's occlusion against the epoch, with the unoccluded IoU as a dashed line.

    Args:
        epochs: (E,) the epochs.
        occluded: (E,) IoU of the prediction under each epoch's occlusion.
        unoccluded: IoU of the prediction on the intact features.
        current: Index (into `epochs`) of the epoch to mark in red, or None.

    Returns:
        A small matplotlib Figure (not attached to any display); its axis' lines are the
        occluded IoUs, the unoccluded line, then the marker of `current`.

    Example:
        >>> figure = curriculum_iou_figure([0, 5, 10], np.array([0.2, 0.4, 0.6]), 0.8, current=1)
        >>> [float(line.get_ydata()[0]) for line in figure.axes[0].lines]
        [0.2, 0.8, 0.4]
    """
    from matplotlib.figure import Figure

    xs = np.asarray(epochs, np.float64)
    ys = np.asarray(occluded, np.float64)
    if xs.ndim != 1 or ys.shape != xs.shape:
        raise ValueError(f"expected epochs and occluded IoUs (E,), got shapes {xs.shape} and {ys.shape}")
    figure = Figure(figsize=(3.2, 1.5), dpi=80, layout="constrained")
    axis = figure.add_subplot()
    axis.plot(xs, ys, marker="o", markersize=3, linewidth=1.0, color="0.3", label="occluded")
    axis.axhline(float(unoccluded), color="0.5", linestyle="--", linewidth=0.8, label="unoccluded")
    if current is not None:
        axis.plot([xs[current]], [ys[current]], marker="o", markersize=6, color="red", linestyle="none")
    axis.set_ylim(-0.02, 1.02)
    axis.set_xlabel("epoch", fontsize=7)
    axis.set_ylabel("IoU", fontsize=7)
    axis.tick_params(labelsize=6)
    axis.legend(fontsize=6, loc="lower right", framealpha=0.7)
    return figure
