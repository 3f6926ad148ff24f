"""Pure render functions: arrays in, RGB arrays or matplotlib figures out.

Nothing here imports ipywidgets or touches a display, so reports, tests and notebooks share
the same pictures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ContactRow", "contact_sheet", "instance_colors", "overlay_masks", "mask_outline"]


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
