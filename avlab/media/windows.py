"""Audio windows centred on video frame timestamps (AFCV's per-frame audio slicing)."""

from __future__ import annotations

import numpy as np

__all__ = ["frame_audio_windows", "window_samples"]


def window_samples(window: float, sample_rate: int) -> int:
    """Number of samples in a window of `window` seconds.

    Example:
        >>> window_samples(0.96, 16000)
        15360
    """
    return int(round(window * sample_rate))


def frame_audio_windows(
    audio: np.ndarray,
    sample_rate: int,
    frame_times: np.ndarray,
    *,
    window: float = 0.96,
) -> np.ndarray:
    """Cut one window ``[tau - window / 2, tau + window / 2)`` around each frame time tau.

    Samples outside the clip are zeros, so frames near the borders get windows of the same
    length as the others. Sample ``i`` of `audio` is taken to sound at ``i / sample_rate``
    seconds, the clock of `read_video`'s timestamps and `read_audio`'s samples.

    Args:
        audio: Samples, (S,) or (C, S).
        sample_rate: Hz.
        frame_times: (T,) seconds, typically `read_video(...).times`.
        window: Window length in seconds (AFCV: 0.96).

    Returns:
        (T, W) or (T, C, W) windows, W = ``round(window * sample_rate)``, dtype of `audio`.

    Example:
        >>> audio = np.arange(10, dtype=np.float32)
        >>> frame_audio_windows(audio, 10, np.array([0.0, 0.5]), window=0.4)
        array([[0., 0., 0., 1.],
               [3., 4., 5., 6.]], dtype=float32)
    """
    audio = np.asarray(audio)
    times = np.asarray(frame_times, dtype=np.float64)
    if times.ndim != 1:
        raise ValueError(f"frame_times must be 1-D, got shape {times.shape}")
    width = window_samples(window, sample_rate)
    if width <= 0:
        raise ValueError(f"window of {window} s at {sample_rate} Hz holds no sample")
    starts = np.round((times - window / 2) * sample_rate).astype(np.int64)  # (T,)
    # Pad once by the largest overhang on each side, then index a sliding view.
    left = int(max(0, -starts.min(initial=0)))
    right = int(max(0, (starts + width).max(initial=0) - audio.shape[-1]))
    pad = [(0, 0)] * (audio.ndim - 1) + [(left, right)]
    padded = np.pad(audio, pad)
    views = np.lib.stride_tricks.sliding_window_view(padded, width, axis=-1)  # (..., S', W)
    windows = views[..., starts + left, :]  # (..., T, W)
    if audio.ndim == 2:
        windows = windows.transpose(1, 0, 2)  # (T, C, W)
    return np.ascontiguousarray(windows)
