"""The demo report's figures: arrays in, a matplotlib `Figure` out.

Every function builds a `matplotlib.figure.Figure` directly (no pyplot state, no display), so
figures can be drawn headless and from threads; ``figure.savefig("x.png")`` writes them.
Masks are tinted with `avlab.widgets.render`'s colours, so a track or a prediction has the
same colour here as in the notebook widgets.

Example:
    >>> import numpy as np
    >>> frames = np.zeros((2, 16, 16, 3), np.uint8)
    >>> truth = np.zeros((2, 16, 16), bool); truth[:, 4:12, 4:12] = True
    >>> figure = mask_figure(frames, truth.astype(np.float32) * 0.9, truth)
    >>> len(figure.axes)  # ground truth and prediction per frame
    4
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Patch

from avlab.widgets.render import instance_colors, mask_outline, overlay_masks, upsample_bilinear

__all__ = [
    "attention_figure",
    "loss_curves_figure",
    "mask_figure",
    "metric_bars",
    "pixel_sound_figure",
    "separation_figure",
    "tracks_figure",
]

_DPI = 110
_FLOOR_DB = -80.0  # spectrograms: dB below the mixture's peak shown as the floor


def _bare(axis: Axes) -> None:
    axis.set_xticks([])
    axis.set_yticks([])


def _frames(frames: Any) -> np.ndarray:
    array = np.asarray(frames)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"expected frames (N, H, W, 3) uint8, got shape {array.shape}")
    return array.astype(np.uint8, copy=False)


def attention_figure(
    frames: Any,
    attention: Any,
    logan_map: Any,
    *,
    titles: Sequence[str] | None = None,
) -> Figure:
    """AViS-Net's attention: per frame, the frame, its Q attention maps and LoGAN's map over it.

    Each map is upsampled bilinearly to the frame's size and drawn as a heat overlay on a
    fixed 0-1 colour scale (the maps are sigmoids and LoGAN's map lies in [0, 1]), so panels
    compare across frames; one colour bar serves them all.

    Args:
        frames: The frames shown (at any size: the maps are resized to it).
        attention: The attention maps S (the system's "attention" output).
        logan_map: LoGAN's map M of the maps fused (the system's "logan_map" output).
        titles: One label per frame (row), e.g. video id and time.

    Returns:
        A figure of N rows x (Q + 2) panels, plus a colour bar.

    Shape:
        frames: (N, H, W, 3) uint8.
        attention: (N, Q, h, w).
        logan_map: (N, h, w).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> figure = attention_figure(rng.integers(0, 255, (2, 16, 16, 3), dtype=np.uint8),
        ...                           rng.random((2, 3, 2, 2)), rng.random((2, 2, 2)), titles=["a", "b"])
        >>> len(figure.axes)  # 2 x (frame + 3 maps + M), and the colour bar
        11
    """
    images = _frames(frames)
    maps = np.asarray(attention, np.float64)
    merged = np.asarray(logan_map, np.float64)
    n = len(images)
    if maps.ndim != 4 or merged.ndim != 3 or len(maps) != n or len(merged) != n:
        raise ValueError(f"expected attention (N, Q, h, w) and logan_map (N, h, w) for N={n} frames, "
                         f"got {maps.shape} and {merged.shape}")
    num_queries = maps.shape[1]
    size = images.shape[1:3]
    heat_maps = upsample_bilinear(maps, size)  # (N, Q, H, W)
    heat_merged = upsample_bilinear(merged, size)  # (N, H, W)
    columns = num_queries + 2
    figure = Figure(figsize=(1.5 * columns + 0.6, 1.6 * n + 0.3), dpi=_DPI, layout="constrained")
    grid = figure.add_gridspec(n, columns)
    heat: AxesImage | None = None
    panels: list[Axes] = []
    for row in range(n):
        for column in range(columns):
            axis = figure.add_subplot(grid[row, column])
            panels.append(axis)
            axis.imshow(images[row])
            if column == 0:
                name = "frame"
            elif column <= num_queries:
                name = f"attention {column}"
                heat = axis.imshow(heat_maps[row, column - 1], cmap="inferno", alpha=0.6, vmin=0.0, vmax=1.0)
            else:
                name = "LoGAN M"
                heat = axis.imshow(heat_merged[row], cmap="inferno", alpha=0.6, vmin=0.0, vmax=1.0)
            _bare(axis)
            if row == 0:
                axis.set_title(name, fontsize=8)
            if column == 0 and titles is not None:
                axis.set_ylabel(titles[row], fontsize=7)
    if heat is not None:
        figure.colorbar(heat, ax=panels, shrink=0.8, label="map value")
    return figure


def pixel_sound_figure(frames: Any, energy: Any, *, labels: Sequence[str] | None = None) -> Figure:
    """Where each source's frame sounds: the share of the mixture each pixel's sound keeps.

    PixelPlayer's picture: every pixel's sound (the system's ``pixel_sounds``) is a mask of the
    mixture; its energy (`avlab.widgets.render.pixel_energy`) is drawn over the frame on a fixed
    0-1 scale, so the sources' frames compare.

    Args:
        frames: Each source's frame.
        energy: The pixels' shares of the mixture, on the feature grid.
        labels: One label per source.

    Returns:
        A figure of one panel per source, plus a colour bar.

    Shape:
        frames: (K, H, W, 3) uint8.
        energy: (K, h, w) in [0, 1].

    Example:
        >>> figure = pixel_sound_figure(np.zeros((2, 16, 16, 3), np.uint8), np.random.default_rng(0).random((2, 4, 4)),
        ...                             labels=["violin", "flute"])
        >>> [axis.get_title() for axis in figure.axes[:2]]
        ['violin', 'flute']
    """
    images = _frames(frames)
    shares = np.asarray(energy, np.float64)
    if shares.ndim != 3 or len(shares) != len(images):
        raise ValueError(f"expected energy (K, h, w) for K={len(images)} frames, got shape {shares.shape}")
    heat_maps = upsample_bilinear(shares, images.shape[1:3])  # (K, H, W)
    figure = Figure(figsize=(2.2 * len(images) + 0.8, 2.6), dpi=_DPI, layout="constrained")
    panels = [figure.add_subplot(1, len(images), k + 1) for k in range(len(images))]
    heat: AxesImage | None = None
    for k, axis in enumerate(panels):
        axis.imshow(images[k])
        heat = axis.imshow(heat_maps[k], cmap="inferno", alpha=0.6, vmin=0.0, vmax=1.0)
        axis.set_title(labels[k] if labels is not None else f"source {k + 1}", fontsize=8)
        _bare(axis)
    if heat is not None:
        figure.colorbar(heat, ax=panels, shrink=0.8, label="share of the mixture")
    return figure


def _binary(predicted: np.ndarray, threshold: float) -> np.ndarray:
    return predicted.astype(bool) if predicted.dtype == bool else predicted > threshold


def _iou(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-frame IoU; two empty masks score 1 (`avlab.eval.mask_iou`'s convention)."""
    inter = np.sum(predicted & truth, axis=(-2, -1))
    union = np.sum(predicted | truth, axis=(-2, -1))
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def mask_figure(
    frames: Any,
    predicted: Any,
    truth: Any,
    *,
    titles: Sequence[str] | None = None,
    ious: Any = None,
    threshold: float = 0.5,
) -> Figure:
    """Sounding-object masks: per frame, the ground truth above and the prediction below.

    The prediction's panel also outlines the ground truth in white, so misses and false
    alarms show at a glance; its title gives the IoU.

    Args:
        frames: The frames (at the masks' size).
        predicted: Probabilities (foreground above `threshold`) or binary masks.
        truth: Ground-truth masks.
        titles: One label per frame (column).
        ious: IoU per frame to print; None: computed from the binarised prediction (two
            empty masks score 1, as `avlab.eval.mask_iou`).
        threshold: Probability above which a pixel is predicted foreground.

    Returns:
        A figure of 2 rows x N panels.

    Shape:
        frames: (N, H, W, 3) uint8.
        predicted: (N, H, W) float or bool.
        truth: (N, H, W) bool.

    Example:
        >>> frames = np.zeros((3, 8, 8, 3), np.uint8)
        >>> truth = np.zeros((3, 8, 8), bool); truth[:, :4] = True
        >>> figure = mask_figure(frames, np.full((3, 8, 8), 0.7), truth, titles=["a", "b", "c"])
        >>> len(figure.axes), figure.axes[1].get_title()
        (6, 'prediction, IoU 0.50')
    """
    images = _frames(frames)
    prediction = _binary(np.asarray(predicted), threshold)
    gt = np.asarray(truth).astype(bool)
    if prediction.shape != gt.shape or gt.shape != images.shape[:3]:
        raise ValueError(f"expected predicted and truth (N, H, W) matching frames {images.shape[:3]}, "
                         f"got {prediction.shape} and {gt.shape}")
    scores = _iou(prediction, gt) if ious is None else np.asarray(ious, np.float64)
    truth_color, predicted_color = instance_colors(2)
    n = len(images)
    figure = Figure(figsize=(1.7 * n + 0.2, 3.8), dpi=_DPI, layout="constrained")
    grid = figure.add_gridspec(2, n)
    for k in range(n):
        top = figure.add_subplot(grid[0, k])
        top.imshow(overlay_masks(images[k], gt[k][None], colors=truth_color[None]))
        top.set_title("ground truth" if titles is None else f"{titles[k]}\nground truth", fontsize=7)
        bottom = figure.add_subplot(grid[1, k])
        shown = overlay_masks(images[k], prediction[k][None], colors=predicted_color[None])
        shown[mask_outline(gt[k])] = 255
        bottom.imshow(shown)
        bottom.set_title(f"prediction, IoU {scores[k]:.2f}", fontsize=7)
        _bare(top)
        _bare(bottom)
    return figure


def _decibels(magnitude: np.ndarray, reference: float) -> np.ndarray:
    floor = reference * 10 ** (_FLOOR_DB / 20)
    return 20 * np.log10(np.maximum(magnitude, floor) / reference)


def _spectrogram(axis: Axes, decibels: np.ndarray, seconds: float, sample_rate: int) -> AxesImage:
    return axis.imshow(decibels, origin="lower", aspect="auto", cmap="magma", vmin=_FLOOR_DB, vmax=0.0,
                       extent=(0.0, seconds, 0.0, sample_rate / 2000))


def separation_figure(
    mixture: Any,
    estimates: Any,
    references: Any,
    *,
    sdr: Any = None,
    labels: Sequence[str] | None = None,
    sample_rate: int = 11025,
    hop_length: int = 256,
) -> Figure:
    """Log-magnitude spectrograms: the mixture, then per source the true and the separated one.

    All panels share one dB scale relative to the mixture's peak (floor -80 dB), so a
    separated source can be compared with its reference by colour.

    Args:
        mixture: The mixture's STFT magnitude.
        estimates: The separated sources' magnitudes.
        references: The true sources' magnitudes, in the order of `estimates`.
        sdr: SDR per source in dB, printed in the titles (NaN: not scored).
        labels: A name per source (default "source 1", ...).
        sample_rate: Hz of the STFT's signal, for the axes.
        hop_length: Samples between STFT frames, for the time axis.

    Returns:
        A figure of 1 + 2K panels (the mixture across the top, then a row per source) and a
        colour bar.

    Shape:
        mixture: (F, T).
        estimates: (K, F, T).
        references: (K, F, T).
        sdr: (K,).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> sources = rng.random((2, 512, 20))
        >>> figure = separation_figure(sources.sum(0), sources * 0.9, sources, sdr=[12.3, float("nan")],
        ...                            labels=["violin", "flute"])
        >>> len(figure.axes), figure.axes[2].get_title(), figure.axes[4].get_title()
        (6, 'violin: separated, SDR 12.3 dB', 'flute: separated, SDR n/a')
    """
    mix = np.asarray(mixture, np.float64)
    ests = np.asarray(estimates, np.float64)
    refs = np.asarray(references, np.float64)
    if mix.ndim != 2 or ests.ndim != 3 or ests.shape != refs.shape or ests.shape[1:] != mix.shape:
        raise ValueError(f"expected mixture (F, T) and estimates, references (K, F, T), got {mix.shape}, "
                         f"{ests.shape} and {refs.shape}")
    count = len(ests)
    names = list(labels) if labels is not None else [f"source {k + 1}" for k in range(count)]
    scores = np.full(count, np.nan) if sdr is None else np.asarray(sdr, np.float64)
    reference = max(float(mix.max(initial=0.0)), float(refs.max(initial=0.0)), 1e-12)
    seconds = mix.shape[1] * hop_length / sample_rate
    figure = Figure(figsize=(7.0, 1.7 * (count + 1) + 0.3), dpi=_DPI, layout="constrained")
    grid = figure.add_gridspec(count + 1, 2)
    top = figure.add_subplot(grid[0, :])
    image = _spectrogram(top, _decibels(mix, reference), seconds, sample_rate)
    top.set_title("mixture", fontsize=8)
    panels = [top]
    for k in range(count):
        for column, (kind, magnitude) in enumerate((("true", refs[k]), ("separated", ests[k]))):
            axis = figure.add_subplot(grid[k + 1, column])
            panels.append(axis)
            _spectrogram(axis, _decibels(magnitude, reference), seconds, sample_rate)
            title = f"{names[k]}: {kind}"
            if kind == "separated":
                title += f", SDR {scores[k]:.1f} dB" if np.isfinite(scores[k]) else ", SDR n/a"
            axis.set_title(title, fontsize=8)
    for axis in panels:
        axis.tick_params(labelsize=6)
        axis.set_ylabel("kHz", fontsize=7)
    for axis in panels[-2:]:
        axis.set_xlabel("s", fontsize=7)
    figure.colorbar(image, ax=panels, shrink=0.6, label="dB re peak")
    return figure


def tracks_figure(
    frames: Any,
    tracks: Mapping[int, Any],
    *,
    labels: Mapping[int, str] | None = None,
    scores: Mapping[int, float] | None = None,
    num_frames: int = 6,
    max_tracks: int | None = 8,
) -> Figure:
    """A strip of one video's frames with each track's mask in its own colour and its id at the centroid.

    Track k is tinted with ``instance_colors`` entry k (its id), the colour the widgets give it;
    its id (and label) is written at the mask's centroid on every frame where it is visible. A
    legend below the strip lists the tracks with their labels and scores.

    Args:
        frames: The video's frames (at the masks' size).
        tracks: Track id -> its mask on every frame.
        labels: Track id -> category name.
        scores: Track id -> confidence.
        num_frames: Frames shown, evenly spaced over the video.
        max_tracks: Most tracks drawn: the highest-scoring ones when `scores` are given (an
            undertrained tracker keeps dozens of weak tracks that would hide the frames).
            None: all.

    Returns:
        A figure of min(num_frames, T) panels.

    Shape:
        frames: (T, H, W, 3) uint8.
        tracks: values (T, H, W) bool.

    Example:
        >>> frames = np.zeros((4, 16, 16, 3), np.uint8)
        >>> mask = np.zeros((4, 16, 16), bool); mask[:, 2:6, 2:6] = True
        >>> figure = tracks_figure(frames, {0: mask, 3: ~mask}, labels={0: "violin", 3: "drum"},
        ...                        scores={0: 0.9, 3: 0.5}, num_frames=3)
        >>> len(figure.axes), [t.get_text() for t in figure.axes[0].texts]
        (3, ['0 violin', '3 drum'])
    """
    images = _frames(frames)
    ids = sorted(int(k) for k in tracks)
    if max_tracks is not None and len(ids) > max_tracks:
        ranked = sorted(ids, key=lambda k: -scores.get(k, 0.0)) if scores is not None else ids
        ids = sorted(ranked[:max_tracks])
    masks = np.zeros((len(ids), *images.shape[:3]), bool)  # (I, T, H, W)
    for i, track in enumerate(ids):
        masks[i] = np.asarray(tracks[track]).astype(bool)
    colors = instance_colors(max(ids, default=-1) + 1)[ids] if ids else np.zeros((0, 3), np.uint8)
    count = len(images)
    picks = np.linspace(0, count - 1, num=max(1, min(num_frames, count))).round().astype(int)
    figure = Figure(figsize=(1.8 * len(picks) + 0.3, 2.2 + 0.15 * ((len(ids) + 3) // 4)), dpi=_DPI,
                    layout="constrained")
    grid = figure.add_gridspec(1, len(picks))
    axis = None
    for c, t in enumerate(picks):
        axis = figure.add_subplot(grid[0, c])
        axis.imshow(overlay_masks(images[t], masks[:, t], colors=colors))
        for i, track in enumerate(ids):
            rows, cols = np.nonzero(masks[i, t])
            if len(rows):
                name = f"{track} {labels[track]}" if labels is not None and track in labels else str(track)
                axis.text(cols.mean(), rows.mean(), name, color="white", fontsize=6, ha="center", va="center",
                          bbox={"facecolor": colors[i] / 255, "alpha": 0.8, "pad": 1, "linewidth": 0})
        _bare(axis)
        axis.set_xlabel(f"frame {t}", fontsize=7)
    if axis is not None and ids:
        handles = []
        for i, track in enumerate(ids):
            text = str(track)
            if labels is not None and track in labels:
                text += f" {labels[track]}"
            if scores is not None and track in scores:
                text += f" ({scores[track]:.2f})"
            handles.append(Patch(color=colors[i] / 255, label=text))
        figure.legend(handles=handles, fontsize=6, loc="outside lower center", ncols=min(4, len(handles)),
                      frameon=False)
    return figure


def _epoch_losses(table: pd.DataFrame) -> dict[str, pd.Series]:
    """Train (epoch means, else the mean of the step losses) and validation losses by epoch."""
    series: dict[str, pd.Series] = {}
    if "epoch" not in table:
        return series
    if "train/loss_epoch" in table and table["train/loss_epoch"].notna().any():
        series["train"] = table.dropna(subset=["train/loss_epoch"]).groupby("epoch")["train/loss_epoch"].last()
    elif "train/loss_step" in table and table["train/loss_step"].notna().any():
        series["train"] = table.dropna(subset=["train/loss_step"]).groupby("epoch")["train/loss_step"].mean()
    if "val/loss" in table and table["val/loss"].notna().any():
        series["validation"] = table.dropna(subset=["val/loss"]).groupby("epoch")["val/loss"].last()
    return series


def loss_curves_figure(runs: Mapping[str, str | os.PathLike[str]]) -> Figure:
    """Training and validation loss against the epoch, one panel per run.

    Reads each run's Lightning ``CSVLogger`` metrics.csv (`avlab.train.fit` writes one in its
    run folder): the train loss is ``train/loss_epoch`` (or, without it, the epoch's mean of
    ``train/loss_step``), the validation loss ``val/loss``. Epochs are counted from 1.

    Args:
        runs: Run name -> path of its metrics.csv.

    Returns:
        A figure of one panel per run, up to three per row.

    Raises:
        FileNotFoundError: A metrics file is missing.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "metrics.csv"
        >>> _ = path.write_text("epoch,step,train/loss_step,train/loss_epoch,val/loss\\n"
        ...                     "0,0,0.9,,\\n0,1,,0.8,0.75\\n1,2,0.6,,\\n1,3,,0.55,0.6\\n")
        >>> figure = loss_curves_figure({"avisnet": path, "pixelplayer": path})
        >>> len(figure.axes), [line.get_label() for line in figure.axes[0].lines]
        (2, ['train', 'validation'])
    """
    names = list(runs)
    columns = max(1, min(3, len(names)))
    rows = max(1, math.ceil(len(names) / columns))
    figure = Figure(figsize=(3.3 * columns, 2.6 * rows), dpi=_DPI, layout="constrained")
    grid = figure.add_gridspec(rows, columns)
    for k, name in enumerate(names):
        path = Path(runs[name])
        if not path.is_file():
            raise FileNotFoundError(f"{name}: no metrics file at {path}")
        axis = figure.add_subplot(grid[k // columns, k % columns])
        for label, values in _epoch_losses(pd.read_csv(path)).items():
            axis.plot(values.index.to_numpy() + 1, values.to_numpy(), marker="o" if label == "train" else "s",
                      label=label)
        axis.set_title(name, fontsize=9)
        axis.set_xlabel("epoch", fontsize=8)
        axis.set_ylabel("loss", fontsize=8)
        axis.tick_params(labelsize=7)
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend(fontsize=7)
        else:
            axis.text(0.5, 0.5, "no losses logged", ha="center", va="center", transform=axis.transAxes, fontsize=8)
    return figure


def metric_bars(
    table: Sequence[Mapping[str, Any]],
    metrics: Sequence[str],
    *,
    paper: Mapping[str, Mapping[str, float]] | None = None,
    title: str | None = None,
) -> Figure:
    """Ablation bars: one panel per metric, a bar per row with its standard deviation as error bar.

    Figures reported by a paper, on its own data, are drawn as black diamonds on the bars of
    the same label: a reference for the order of magnitude, not a like-for-like comparison.

    Args:
        table: Rows ``{"label": name, metric: mean, metric + "_std": std}``; a missing or
            NaN std draws no error bar, a missing mean no bar.
        metrics: The metrics to plot, one panel each.
        paper: Label -> {metric: value} reported in the paper.
        title: The figure's title.

    Returns:
        A figure of one panel per metric.

    Example:
        >>> rows = [{"label": "LoGAN", "miou": 0.61, "miou_std": 0.02},
        ...         {"label": "EM", "miou": 0.55, "miou_std": 0.03, "sdr": 4.0}]
        >>> figure = metric_bars(rows, ["miou", "sdr"], paper={"LoGAN": {"miou": 0.8}}, title="fusion")
        >>> len(figure.axes), figure.axes[0].get_legend().get_texts()[0].get_text()
        (2, 'paper (other data)')
    """
    labels = [str(row["label"]) for row in table]
    positions = np.arange(len(labels))
    figure = Figure(figsize=(max(2.6, 0.55 * len(labels) + 1.2) * len(metrics), 3.2), dpi=_DPI,
                    layout="constrained")
    grid = figure.add_gridspec(1, max(1, len(metrics)))
    colors = instance_colors(len(labels)) / 255
    for k, metric in enumerate(metrics):
        axis = figure.add_subplot(grid[0, k])
        means = np.asarray([float(row.get(metric, np.nan)) for row in table])
        stds = np.asarray([float(row.get(f"{metric}_std", np.nan)) for row in table])
        axis.bar(positions, np.nan_to_num(means), color=colors,
                 yerr=np.where(np.isfinite(stds) & np.isfinite(means), stds, 0.0), capsize=3)
        if paper:
            marked = [(x, float(paper[label][metric])) for x, label in zip(positions, labels, strict=True)
                      if label in paper and metric in paper[label]]
            if marked:
                xs, values = zip(*marked, strict=True)
                axis.scatter(xs, values, marker="D", color="black", zorder=3, s=22, label="paper (other data)")
                axis.legend(fontsize=7)
        axis.set_xticks(positions, labels, rotation=30, ha="right", fontsize=7)
        axis.set_title(metric, fontsize=9)
        axis.tick_params(axis="y", labelsize=7)
        axis.grid(axis="y", alpha=0.3)
    if title is not None:
        figure.suptitle(title, fontsize=10)
    return figure
