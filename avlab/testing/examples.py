"""Small random `SegmentationExamples` and `SeparationExample`, for widget tests and doctests.

No system is trained: the arrays have the shapes and dtypes `avlab.report.examples` returns.
"""

from __future__ import annotations

import numpy as np

from avlab.report.examples import SegmentationExamples, SeparationExample

__all__ = ["synthetic_segmentation_examples", "synthetic_separation_example"]


def synthetic_segmentation_examples(num: int = 2, *, num_queries: int = 3, size: int = 16, map_size: int = 4,
                                    seed: int = 0) -> SegmentationExamples:
    """Random frames, square truths, probabilities and maps, with attention and LoGAN maps.

    Args:
        num: N frames.
        num_queries: Q attention maps per frame.
        size: H = W of the frames.
        map_size: h = w of the maps.
        seed: Seed of the random values.

    Example:
        >>> examples = synthetic_segmentation_examples(3, num_queries=2)
        >>> examples.frames.shape, examples.attention.shape, examples.logan_map.shape
        ((3, 16, 16, 3), (3, 2, 4, 4), (3, 4, 4))
    """
    rng = np.random.default_rng(seed)
    truth = np.zeros((num, size, size), bool)
    for k in range(num):
        start = k % max(1, size // 2)
        truth[k, start:start + size // 2, start:start + size // 2] = True
    return SegmentationExamples(
        video_ids=[f"video{k}" for k in range(num)],
        frame_indices=np.arange(num, dtype=np.int64),
        frame_times=np.arange(num, dtype=np.float64) * 0.5 + 0.25,
        frames=rng.integers(0, 256, (num, size, size, 3), dtype=np.uint8),
        truth=truth,
        probabilities=rng.random((num, size, size), dtype=np.float32),
        attention=rng.random((num, num_queries, map_size, map_size), dtype=np.float32),
        logan_map=rng.random((num, map_size, map_size), dtype=np.float32),
        ious=rng.random(num),
    )


def synthetic_separation_example(num_sources: int = 2, *, num_samples: int = 1024, sample_rate: int = 8000,
                                 hop_length: int = 64, seed: int = 0) -> SeparationExample:
    """A mixture of random tones, its sources, noisy estimates and made-up scores (NaN SAR for the last).

    Args:
        num_sources: K sources.
        num_samples: S samples of every waveform.
        sample_rate: Hz.
        hop_length: Samples between STFT frames (F = 33, T = S // hop_length + 1).
        seed: Seed of the random values.

    Example:
        >>> example = synthetic_separation_example(3)
        >>> example.estimates.shape, example.estimate_waveforms.shape, example.labels
        ((3, 33, 17), (3, 1024), ['source 1', 'source 2', 'source 3'])
    """
    rng = np.random.default_rng(seed)
    seconds = np.arange(num_samples) / sample_rate
    frequencies = 220.0 * (1 + np.arange(num_sources))
    references = (0.3 * np.sin(2 * np.pi * frequencies[:, None] * seconds)).astype(np.float32)  # (K, S)
    estimates = (references + 0.01 * rng.standard_normal(references.shape)).astype(np.float32)
    frames = num_samples // hop_length + 1

    def magnitude(waveform: np.ndarray) -> np.ndarray:  # (F, T) of a 64-sample frame every hop
        padded = np.pad(waveform, (32, 32 + hop_length))
        windows = np.stack([padded[t * hop_length:t * hop_length + 64] for t in range(frames)], axis=-1)
        return np.abs(np.fft.rfft(windows * np.hanning(64)[:, None], axis=0)).astype(np.float32)

    return SeparationExample(
        labels=[f"source {k + 1}" for k in range(num_sources)],
        mixture=magnitude(references.sum(0)),
        estimates=np.stack([magnitude(w) for w in estimates]),
        references=np.stack([magnitude(w) for w in references]),
        sdr=10.0 + np.arange(num_sources, dtype=np.float64),
        sir=20.0 + np.arange(num_sources, dtype=np.float64),
        sar=np.r_[15.0 + np.arange(num_sources - 1, dtype=np.float64), np.nan],
        mixture_waveform=references.sum(0),
        estimate_waveforms=estimates,
        reference_waveforms=references,
        sample_rate=sample_rate,
        hop_length=hop_length,
        scored=True,
    )
