"""The separation STFT (PixelPlayer / AViS-Net) and its log-frequency warp."""

from __future__ import annotations

import json
import warnings

import librosa
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avlab.backbones import SeparationSTFT
from avlab.heads import unwarp_frequency, warp_frequency


def noise(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, shape).astype(np.float32)


def test_a_65535_sample_clip_gives_256_frames_of_512_bins() -> None:
    stft = SeparationSTFT()
    spec = stft(noise(65535))
    assert spec.shape == (512, 256) and stft.num_frames(65535) == 256
    assert spec.dtype == np.complex64


def test_matches_librosa_with_zero_padding() -> None:
    audio = noise(11025)
    expected = librosa.stft(audio, n_fft=1022, hop_length=256, window="hann", center=True, pad_mode="constant")
    np.testing.assert_allclose(SeparationSTFT()(audio), expected, rtol=0, atol=1e-4)


def test_borders_are_padded_with_zeros_not_reflected() -> None:
    audio = np.ones(4096, dtype=np.float32)
    spec = SeparationSTFT()(audio)
    window = np.hanning(1023)[:-1]
    # Frame 0 is centred on sample 0: only the window's right half sees the signal.
    assert spec[0, 0].real == pytest.approx(window[511:].sum(), rel=1e-5)
    assert spec[0, 3].real == pytest.approx(window.sum(), rel=1e-5)


def test_batches_are_computed_row_by_row() -> None:
    audio = noise(3, 5000)
    stft = SeparationSTFT()
    batch = stft(audio)
    assert batch.shape == (3, 512, stft.num_frames(5000))
    for row in range(3):
        np.testing.assert_array_equal(batch[row], stft(audio[row]))


def test_the_stft_of_a_mixture_is_the_sum_of_the_sources_stfts() -> None:
    stft = SeparationSTFT()
    a, b = noise(8000, seed=1), noise(8000, seed=2)
    np.testing.assert_allclose(stft(a + b), stft(a) + stft(b), atol=1e-4)


@pytest.mark.parametrize("length", [65535, 5000, 100])
def test_inverse_reconstructs_the_audio(length: int) -> None:
    stft = SeparationSTFT()
    audio = noise(length)
    back = stft.inverse(stft(audio), length)
    assert back.shape == (length,) and back.dtype == np.float32
    np.testing.assert_allclose(back, audio, atol=1e-5)


def test_clips_shorter_than_a_window_work_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert SeparationSTFT()(noise(100)).shape == (512, 1)
        assert SeparationSTFT()(np.zeros(0, np.float32)).shape == (512, 1)


def test_params_are_json_and_rebuild_the_front_end() -> None:
    stft = SeparationSTFT()
    params = json.loads(json.dumps(stft.params()))
    assert params == {"sample_rate": 11025, "n_fft": 1022, "hop_length": 256, "window": "hann", "center": True}
    assert SeparationSTFT(**params) == stft


def pixelplayer_grid(batch: int, rows: int, columns: int, *, warp: bool) -> torch.Tensor:
    """``warpgrid`` of the Sound of Pixels code, for F.grid_sample with align_corners=True."""
    x = np.linspace(-1, 1, columns)
    y = np.linspace(-1, 1, rows)
    xv, yv = np.meshgrid(x, y)
    grid_y = (np.power(21, (yv + 1) / 2) - 11) / 10 if warp else np.log(yv * 10 + 11) / np.log(21) * 2 - 1
    grid = np.stack([xv, grid_y], axis=-1)[None].repeat(batch, axis=0)
    return torch.from_numpy(grid.astype(np.float32))


def test_warp_rows_read_log_spaced_bins_monotonically() -> None:
    ramp = torch.arange(512, dtype=torch.float64).view(1, 1, 512, 1)  # each bin holds its index
    positions = warp_frequency(ramp)[0, 0, :, 0]
    assert positions.shape == (256,)
    assert torch.all(positions[1:] > positions[:-1])
    y = np.linspace(-1, 1, 256)
    expected = ((21 ** ((y + 1) / 2) - 11) / 10 + 1) / 2 * 511
    np.testing.assert_allclose(positions.numpy(), expected, atol=1e-9)
    assert positions[0] == 0 and positions[-1] == pytest.approx(511)
    # Low frequencies get more rows than bins, high frequencies fewer.
    assert positions[1] - positions[0] < 1 < positions[-1] - positions[-2]


@pytest.mark.parametrize("warp", [True, False], ids=["warp", "unwarp"])
def test_warps_equal_pixelplayers_grid_sample(warp: bool) -> None:
    rows_in, rows_out = (512, 256) if warp else (256, 512)
    x = torch.rand(2, 1, rows_in, 7, generator=torch.Generator().manual_seed(0))
    expected = F.grid_sample(x, pixelplayer_grid(2, rows_out, 7, warp=warp), align_corners=True)
    actual = warp_frequency(x, rows=rows_out) if warp else unwarp_frequency(x, bins=rows_out)
    assert actual.shape == (2, 1, rows_out, 7) and actual.dtype == x.dtype
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-4)


def test_unwarp_inverts_warp_on_smooth_spectra() -> None:
    bins = torch.arange(512, dtype=torch.float32)
    smooth = torch.stack(
        [
            1 + 0.5 * torch.cos(2 * torch.pi * bins / 256),
            torch.exp(-((bins - 300) / 60) ** 2),
            torch.linspace(2, 0, 512),
        ]
    )  # (3, 512)
    x = smooth.T.reshape(1, 1, 512, 3)  # (B, C, F, T)
    back = unwarp_frequency(warp_frequency(x))
    assert back.shape == x.shape
    torch.testing.assert_close(back, x, rtol=0, atol=2e-3)


def test_warp_keeps_batch_channel_and_time() -> None:
    x = torch.rand(3, 2, 512, 11)
    assert warp_frequency(x).shape == (3, 2, 256, 11)
    assert unwarp_frequency(warp_frequency(x, rows=128)).shape == (3, 2, 512, 11)
