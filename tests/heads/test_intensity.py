"""The audio-intensity cue on synthetic sines at known levels."""

from __future__ import annotations

import math

import pytest
import torch

from avlab.heads import (
    assign_by_intensity,
    even_frame_slices,
    intensity,
    intensity_weights,
    scale_attention,
)

SAMPLE_RATE = 11025


def sine(freq: float, amplitude: float, seconds: float = 1.0) -> torch.Tensor:
    t = torch.arange(int(SAMPLE_RATE * seconds), dtype=torch.float64) / SAMPLE_RATE
    return amplitude * torch.sin(2 * math.pi * freq * t)


def magnitudes(*signals: torch.Tensor) -> torch.Tensor:
    audio = torch.stack(signals)  # (N, S)
    spec = torch.stft(
        audio, 1022, 256, window=torch.hann_window(1022, dtype=audio.dtype), return_complex=True
    )
    return spec.abs().float().unsqueeze(0)  # (1, N, 512, T)


def test_two_sines_at_known_levels() -> None:
    # Two violins, one 20 dB quieter (ten times smaller amplitude): the levels differ by 20 dB.
    mags = magnitudes(sine(440.0, 0.05), sine(466.2, 0.5))
    levels = intensity(mags, even_frame_slices(4, mags.shape[-1]))  # (1, 2, 4)
    assert levels.shape == (1, 2, 4)
    assert torch.allclose(levels[0, 1] - levels[0, 0], torch.full((4,), 20.0), atol=0.05)
    # Parseval: a sine of amplitude A under a Hann window of n = 1022 puts n * A^2 / 4 * sum(w^2)
    # = n^2 A^2 3 / 32 into the 512 one-sided bins.
    expected = 10 * math.log10(1022**2 * 0.5**2 * 3 / 32 / 512)
    assert abs(float(levels[0, 1, 1]) - expected) < 0.1
    order = torch.argsort(levels[0, :, 0], descending=True)
    assert order.tolist() == [1, 0]


def test_louder_source_goes_to_the_larger_instance() -> None:
    mags = magnitudes(sine(440.0, 0.05), sine(466.2, 0.5))
    levels = intensity(mags, even_frame_slices(4, mags.shape[-1])).mean(-1)  # (1, 2)
    # Instance 0 is far (small), instance 1 near (large).
    assert assign_by_intensity(levels, torch.tensor([[120.0, 2000.0]])).tolist() == [[0, 1]]
    assert assign_by_intensity(levels, torch.tensor([[2000.0, 120.0]])).tolist() == [[1, 0]]
    mags = magnitudes(sine(466.2, 0.5), sine(440.0, 0.05))  # swapped sources
    levels = intensity(mags, [slice(0, mags.shape[-1])]).squeeze(-1)
    assert assign_by_intensity(levels, torch.tensor([[120.0, 2000.0]])).tolist() == [[1, 0]]


def test_levels_follow_time() -> None:
    # Source 0 loud then quiet, source 1 the opposite: the per-frame ranking flips.
    half = SAMPLE_RATE // 2
    a = torch.cat([sine(440.0, 0.5)[:half], sine(440.0, 0.05)[:half]])
    b = torch.cat([sine(440.0, 0.05)[:half], sine(440.0, 0.5)[:half]])
    mags = magnitudes(a, b)
    levels = intensity(mags, even_frame_slices(4, mags.shape[-1]))[0]  # (2, 4)
    assert (levels[0, :1] > levels[1, :1] + 15).all() and (levels[1, 3:] > levels[0, 3:] + 15).all()
    weights = intensity_weights(levels.unsqueeze(0))[0]  # (2, 4)
    assert torch.allclose(weights.sum(0), torch.ones(4))
    assert weights[0, 0] > 0.99 and weights[1, 3] > 0.99


def test_intensity_of_silence_and_of_a_known_power() -> None:
    mags = torch.zeros(1, 2, 4, 4)
    mags[0, 1] = 10.0  # power 100 -> 20 dB
    assert intensity(mags, [(0, 2), (2, 4)]).tolist() == [[[-100.0, -100.0], [20.0, 20.0]]]
    with pytest.raises(ValueError, match="empty window"):
        intensity(mags, [slice(4, 4)])


def test_intensity_weights_temperature() -> None:
    levels = torch.tensor([[0.0, 3.0]])
    assert torch.allclose(intensity_weights(levels), torch.softmax(levels, 1))
    assert torch.allclose(intensity_weights(levels, tau=3.0), torch.softmax(levels / 3, 1))


def test_assignment_with_classes_and_unequal_counts() -> None:
    levels = torch.tensor([-10.0, -30.0, -20.0, -5.0])
    sizes = torch.tensor([10.0, 500.0, 40.0])
    # Classes: sources 0, 1, 2 are violins (class 7), source 3 a dog (class 2);
    # instances 0 and 1 are violins, instance 2 a dog.
    out = assign_by_intensity(
        levels,
        sizes,
        source_classes=torch.tensor([7, 7, 7, 2]),
        instance_classes=torch.tensor([7, 7, 2]),
    )
    assert out.tolist() == [1, -1, 0, 2]  # the quietest violin finds no instance
    assert assign_by_intensity(torch.tensor([-3.0]), sizes).tolist() == [1]
    with pytest.raises(ValueError, match="or neither"):
        assign_by_intensity(levels, sizes, source_classes=torch.zeros(4))


def test_scale_attention() -> None:
    maps = torch.rand(2, 3, 4, 5)
    weights = torch.rand(2, 3)
    assert torch.allclose(scale_attention(maps, weights), maps * weights[:, :, None, None])
    with pytest.raises(ValueError, match=r"must be \(B, N\)"):
        scale_attention(maps, weights[:, :2])


def test_even_frame_slices() -> None:
    slices = even_frame_slices(5, 256)
    assert slices[0].start == 0 and slices[-1].stop == 256
    assert all(a.stop == b.start for a, b in zip(slices, slices[1:], strict=False))
    with pytest.raises(ValueError, match="cannot split"):
        even_frame_slices(5, 3)
