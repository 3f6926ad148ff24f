"""`frame_audio_windows` cuts one zero-padded window centred on each frame time."""

from __future__ import annotations

import numpy as np
import pytest

from avlab.media import frame_audio_windows, window_samples


def reference_windows(audio: np.ndarray, rate: int, times: np.ndarray, window: float) -> np.ndarray:
    """Sample by sample: window k holds audio[round((tau - w/2) rate) + j], zero outside the clip."""
    width = round(window * rate)
    out = np.zeros((len(times), *audio.shape[:-1], width), audio.dtype)
    for k, tau in enumerate(times):
        first = round((tau - window / 2) * rate)
        for j in range(width):
            if 0 <= first + j < audio.shape[-1]:
                out[k, ..., j] = audio[..., first + j]
    return out


def test_window_samples() -> None:
    assert window_samples(0.96, 16000) == 15360
    assert window_samples(0.96, 11025) == 10584
    assert window_samples(0.5, 3) == 2  # rounds half to even, as numpy does


def test_windows_are_centred_on_frame_times() -> None:
    rate = 100
    audio = np.arange(1, 301, dtype=np.float32)  # 3 s; sample i holds i + 1, so 0 means padding
    times = np.array([0.5, 1.0, 1.25, 2.5])

    windows = frame_audio_windows(audio, rate, times, window=0.4)

    assert windows.shape == (4, 40)
    assert windows.dtype == np.float32
    # The window of tau covers [tau - 0.2, tau + 0.2): samples 30..69 around 0.5 s.
    np.testing.assert_array_equal(windows[0], np.arange(31, 71))
    # Its centre sample (index W / 2) is the one heard at tau.
    np.testing.assert_array_equal(windows[:, 20], times * rate + 1)
    np.testing.assert_array_equal(windows, reference_windows(audio, rate, times, 0.4))


def test_windows_are_zero_padded_at_both_borders() -> None:
    rate = 16000
    audio = np.ones(rate, dtype=np.float32)  # 1 s of ones
    times = np.array([0.0, 0.1, 0.5, 0.9, 1.0, 1.5])

    windows = frame_audio_windows(audio, rate, times)  # default 0.96 s

    assert windows.shape == (6, 15360)
    half = 15360 // 2
    # At tau = 0 the first half lies before the clip; at tau = 1 s the second half after it.
    assert not windows[0, :half].any() and windows[0, half:].all()
    assert windows[4, :half].all() and not windows[4, half:].any()
    # tau = 0.1: the window starts 0.38 s before the clip.
    np.testing.assert_array_equal(np.flatnonzero(windows[1] == 0), np.arange(round(0.38 * rate)))
    assert windows[2].all()  # fully inside
    np.testing.assert_array_equal(windows.sum(axis=1), [half, half + 1600, 15360, half + 1600, half, 0])
    np.testing.assert_array_equal(windows, reference_windows(audio, rate, times, 0.96))


def test_channels_give_time_channel_window() -> None:
    rate = 50
    rng = np.random.default_rng(0)
    audio = rng.standard_normal((2, 120)).astype(np.float32)  # (C, S)
    times = np.array([0.0, 0.7, 1.3, 2.4])

    windows = frame_audio_windows(audio, rate, times, window=0.5)

    assert windows.shape == (4, 2, 25)  # (T, C, W)
    assert windows.flags.c_contiguous
    for c in range(2):
        np.testing.assert_array_equal(windows[:, c], frame_audio_windows(audio[c], rate, times, window=0.5))
    np.testing.assert_array_equal(windows, reference_windows(audio, rate, times, 0.5))


def test_irregular_and_repeated_frame_times() -> None:
    rate = 1000
    audio = np.sin(np.arange(2000) / 7).astype(np.float64)
    times = np.array([0.013, 0.013, 0.4005, 1.999, 0.2])  # need not be sorted

    windows = frame_audio_windows(audio, rate, times, window=0.02)

    assert windows.dtype == np.float64
    np.testing.assert_array_equal(windows, reference_windows(audio, rate, times, 0.02))


def test_no_frames() -> None:
    windows = frame_audio_windows(np.zeros(100, np.float32), 100, np.array([]), window=0.2)

    assert windows.shape == (0, 20)


@pytest.mark.parametrize(
    ("times", "window", "match"),
    [(np.zeros((2, 2)), 0.96, "1-D"), (np.zeros(2), 0.0, "holds no sample"), (np.zeros(2), 1e-6, "holds no sample")],
)
def test_invalid_arguments(times: np.ndarray, window: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        frame_audio_windows(np.zeros(100, np.float32), 16000, times, window=window)
