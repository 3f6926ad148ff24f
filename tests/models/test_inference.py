"""Separation inference (SPEC section 6) and the batch helpers, on signals with known answers."""

from __future__ import annotations

import numpy as np
import torch

from avlab.backbones import SeparationSTFT
from avlab.eval import bss_eval
from avlab.heads import separation_targets, warp_frequency
from avlab.models import separate_waveforms, spectrogram_masks, waveforms
from avlab.models.batch import log_warped_mixture, output_size_of, region_weights

RATE = 11025


def two_tones(num_samples: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(num_samples) / RATE
    low = 0.3 * np.sin(2 * np.pi * 330 * t)
    high = 0.2 * np.sin(2 * np.pi * 2500 * t)
    return np.stack([low, high]).astype(np.float32), (low + high).astype(np.float32)


def oracle_logits(sources: torch.Tensor, mixture: torch.Tensor) -> torch.Tensor:
    """Logits of the ideal binary masks on the warped grid, as a perfect system would give."""
    targets = separation_targets(warp_frequency(sources.abs()), warp_frequency(mixture.abs()))
    return (targets * 2 - 1) * 20


def test_ideal_masks_separate_two_tones() -> None:
    stft = SeparationSTFT()
    sources, mixture = two_tones()
    spec_sources = torch.from_numpy(stft(sources))  # (2, 512, T)
    spec_mixture = torch.from_numpy(stft(mixture))  # (512, T)
    logits = oracle_logits(spec_sources, spec_mixture).unsqueeze(0)  # (1, 2, 256, T)
    frames = spec_mixture.shape[-1]
    estimates = separate_waveforms(logits, spec_mixture.unsqueeze(0), [frames])[0]  # (2, samples)
    references = waveforms(spec_sources.unsqueeze(0), [frames])[0]
    sdr = bss_eval(references[:, 1024:-1024], estimates[:, 1024:-1024])["sdr"]
    assert (sdr > 15).all(), sdr


def test_estimates_are_the_mixture_under_the_mask() -> None:
    stft = SeparationSTFT()
    _, mixture = two_tones(4096)
    spec = torch.from_numpy(stft(mixture)).unsqueeze(0)  # (1, 512, T)
    on = torch.full((1, 1, 256, spec.shape[-1]), 9.0)
    off = -on
    both = separate_waveforms(torch.cat([on, off], dim=1), spec)
    assert np.allclose(both[0, 0], stft.inverse(spec[0].numpy(), both.shape[-1]), atol=1e-6)
    assert not both[0, 1].any()


def test_waveforms_keep_only_each_samples_audio_frames() -> None:
    spec = torch.from_numpy(SeparationSTFT()(np.ones((2, 4096), np.float32) * 0.1))  # (2, 512, 17)
    out = waveforms(spec, [17, 9])
    assert out.shape == (2, 16 * 256)
    assert out[1, 8 * 256:].max() == 0 and np.abs(out[1, : 8 * 256]).max() > 0


def test_spectrogram_masks_threshold_after_unwarping() -> None:
    logits = torch.full((1, 1, 256, 2), -3.0)
    logits[..., 128:, :] = 3.0  # the upper half of the warped rows: high frequencies
    masks = spectrogram_masks(logits)
    assert masks.shape == (1, 1, 512, 2)
    assert set(masks.unique().tolist()) == {0.0, 1.0}
    # The middle warped row reads linear position (21 ** 0.5 - 11) / 10, bin 91.5 of 512: the
    # upper half of the rows covers bins 92-511 (the warp gives low frequencies more rows).
    first_on = int(masks[0, 0, :, 0].argmax())
    assert abs(first_on - 92) <= 1
    assert masks[0, 0, first_on:].all()


def test_region_weights_and_the_unet_input() -> None:
    regions = torch.zeros(1, 2, 8, 8)
    regions[0, 0, :, :4] = 1
    weights = region_weights(regions, (2, 2))
    assert weights[0, 0].tolist() == [[1.0, 0.0], [1.0, 0.0]]
    assert (weights[0, 1] == 1).all()  # an empty region reads everywhere
    x = log_warped_mixture(torch.zeros(2, 512, 4), 256)
    assert x.shape == (2, 1, 256, 4) and torch.allclose(x, torch.full_like(x, float(np.log(1e-10))))
    assert output_size_of({}, (5, 6), None) == (5, 6)
    assert output_size_of({}, None, torch.zeros(1, 1, 3, 4)) == (24, 32)
