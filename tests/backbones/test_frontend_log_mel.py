"""AFCV's per-frame log-mel patches: placement in time and frequency, padding, silence."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from avlab.backbones import LogMelFrames, vggish_mel_matrix
from avlab.testing.media import sine, tone_burst

SILENCE = math.log(0.01)


def mel(hz: float) -> float:
    return 1127.0 * math.log(1 + hz / 700.0)


def nearest_band(hz: float) -> int:
    centres = np.linspace(mel(125.0), mel(7500.0), 66)[1:-1]
    return int(np.argmin(np.abs(centres - mel(hz))))


def test_patches_are_64_mels_by_96_frames_of_float32() -> None:
    frames = LogMelFrames()
    patches = frames(np.zeros(16000, np.float32), np.array([0.0, 0.5, 1.0]))
    assert patches.shape == (3, 64, 96) and patches.dtype == np.float32
    assert frames.num_frames == 96 and frames.window_samples == 15600


def test_silence_gives_log_of_the_offset() -> None:
    patches = LogMelFrames()(np.zeros(32000, np.float32), np.array([0.3, 1.7]))
    np.testing.assert_allclose(patches, SILENCE, rtol=1e-6)


@pytest.mark.parametrize("frequency", [500.0, 1000.0, 3000.0])
def test_a_tone_burst_lands_at_its_time_and_frequency(frequency: float) -> None:
    at = 1.625
    audio = tone_burst(3.0, 16000, at=at, length=0.03, frequency=frequency)
    times = np.array([0.5, 1.25, 1.5, 1.75, 2.5])
    patches = LogMelFrames()(audio, times)
    # At 1 frame per second (0.5, 1.5, 2.5) only the nearest frame's patch hears the burst.
    np.testing.assert_allclose(patches[[0, 4]], SILENCE, rtol=1e-6)
    # Overlapping patches (1.25, 1.5, 1.75) all hear it, each at its own column: STFT frame k of
    # the patch of tau is centred at tau - 0.475 + 0.01 k.
    for index in (1, 2, 3):
        row, column = np.unravel_index(np.argmax(patches[index]), patches[index].shape)
        assert column == round((at - times[index] + 0.475) / 0.01), index
        assert row == nearest_band(frequency), index


def test_the_patch_extends_half_a_window_each_side_with_zeros_outside_the_clip() -> None:
    audio = sine(1.0, 16000, frequency=1000.0)
    patch = LogMelFrames()(audio, np.array([0.0]))[0]
    # Frame k reads [-0.4875 + 0.01 k, -0.4625 + 0.01 k): before the clip for k <= 46.
    np.testing.assert_allclose(patch[:, :47], SILENCE, rtol=1e-6)
    assert (patch[:, 49:].max(axis=0) > 0).all()


def test_long_frame_lists_are_computed_in_blocks_consistently() -> None:
    audio = np.random.default_rng(0).normal(0, 0.1, 16000 * 4).astype(np.float32)
    times = np.linspace(0, 4, 150)
    frames = LogMelFrames()
    together = frames(audio, times)
    one_by_one = np.concatenate([frames(audio, times[i : i + 1]) for i in range(0, 150, 37)])
    np.testing.assert_allclose(together[::37], one_by_one, rtol=1e-6, atol=1e-6)


def test_no_frames_give_an_empty_array() -> None:
    assert LogMelFrames()(np.zeros(100, np.float32), np.array([])).shape == (0, 64, 96)


def test_stereo_must_be_mixed_down_first() -> None:
    with pytest.raises(ValueError, match="mono"):
        LogMelFrames()(np.zeros((2, 16000), np.float32), np.array([0.5]))


def test_vggish_mel_matrix() -> None:
    matrix = vggish_mel_matrix()
    assert matrix.shape == (257, 64)
    assert not matrix[0].any(), "the DC bin is dropped"
    assert matrix.max() <= 1 and (matrix.max(axis=0) > 0.5).all()
    bin_hz = np.linspace(0, 8000, 257)
    peaks = bin_hz[np.argmax(matrix, axis=0)]
    assert np.all(np.diff(peaks) >= 0) and 125 < peaks[0] < peaks[-1] < 7500


def test_params_are_json_and_rebuild_the_front_end() -> None:
    frames = LogMelFrames()
    params = json.loads(json.dumps(frames.params()))
    assert params["n_mels"] == 64 and params["log_offset"] == 0.01
    assert LogMelFrames(**params) == frames


def test_fmax_above_nyquist_is_refused() -> None:
    with pytest.raises(ValueError, match="fmax"):
        LogMelFrames(sample_rate=8000)
