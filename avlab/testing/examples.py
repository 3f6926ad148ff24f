"""Small random examples of `avlab.report` (segmentation, separation, curriculum), for widget tests and doctests.

No system is trained: the arrays have the shapes and dtypes `avlab.report.examples` returns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from avlab.backbones import SeparationSTFT
from avlab.heads import HideAndDetect
from avlab.report.curriculum import CurriculumExamples, cells_to_pixels
from avlab.report.examples import SegmentationExamples, SeparationExample

__all__ = ["synthetic_curriculum_examples", "synthetic_segmentation_examples", "synthetic_separation_example"]


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
                                 hop_length: int = 64, seed: int = 0, pixels: bool = False, size: int = 16,
                                 grid: int = 4) -> SeparationExample:
    """A mixture of random tones, its sources, noisy estimates and made-up scores (NaN SAR for the last).

    With `pixels`, each source also has a frame (a dark frame with one bright square, in grid
    cell (k, k) of a `grid` x `grid` grid) whose pixels sound: the square's cell keeps the
    bins where source k is loudest, every other pixel keeps nothing.

    Args:
        num_sources: K sources.
        num_samples: S samples of every waveform.
        sample_rate: Hz.
        hop_length: Samples between STFT frames (F = 33, T = S // hop_length + 1).
        seed: Seed of the random values.
        pixels: Add frames, pixel masks and the mixture's STFT (a 64-point `SeparationSTFT`).
        size: H = W of the frames.
        grid: h = w of the pixel masks' grid (K <= grid).

    Example:
        >>> example = synthetic_separation_example(3)
        >>> example.estimates.shape, example.estimate_waveforms.shape, example.labels
        ((3, 33, 17), (3, 1024), ['source 1', 'source 2', 'source 3'])
        >>> example = synthetic_separation_example(2, pixels=True)
        >>> example.frames.shape, example.pixel_masks.shape, example.mixture_stft.shape
        ((2, 16, 16, 3), (2, 4, 4, 33, 17), (33, 17))
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

    frames_k = pixel_masks = mixture_stft = None
    if pixels:
        if num_sources > grid:
            raise ValueError(f"pixels need num_sources <= grid, got {num_sources} > {grid}")
        stft = SeparationSTFT(sample_rate=sample_rate, n_fft=64, hop_length=hop_length)
        spectra = np.abs(stft(references))  # (K, F, T)
        mixture_stft = stft(references.sum(0))
        frames_k = np.full((num_sources, size, size, 3), 20, np.uint8)
        pixel_masks = np.zeros((num_sources, grid, grid, *spectra.shape[1:]), np.float16)
        cell = size // grid
        for k in range(num_sources):
            frames_k[k, k * cell:(k + 1) * cell, k * cell:(k + 1) * cell] = 230
            pixel_masks[k, k, k] = spectra.argmax(axis=0) == k
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
        frames=frames_k,
        pixel_masks=pixel_masks,
        mixture_stft=mixture_stft,
    )


def synthetic_curriculum_examples(num: int = 2, *, epochs: Sequence[int] = (0, 1, 2), hide: HideAndDetect | None = None,
                                  size: int = 16, grid: int = 4, step: int = 0, seed: int = 0) -> CurriculumExamples:
    """`synthetic_segmentation_examples`' frames, hidden by a real `HideAndDetect` on a coarse grid.

    Each frame's truth, max-pooled onto a `grid` x `grid` grid (AViS-Net's C5 stand-in), is
    the region to hide; `hide` (a copy, in training mode) hides it at each epoch with `step`,
    as `avlab.report.curriculum_examples` does. The occluded "prediction" is the unoccluded
    one halved on the hidden pixels, and IoUs are `avlab.eval.mask_iou` of the thresholded
    probabilities.

    Args:
        num: N frames.
        epochs: The E epochs shown.
        hide: The curriculum; default ``HideAndDetect(stages=(0, 2), epochs_per_stage=1, p=1.0)``.
        size: H = W of the frames, a multiple of `grid`.
        grid: h = w of the grid the hiding works on.
        step: Training step seeding the draws.
        seed: Seed of the random frames and probabilities.

    Example:
        >>> examples = synthetic_curriculum_examples(3)
        >>> examples.hidden.shape, examples.hide_masks.shape, examples.grid_sizes.tolist()
        ((3, 3, 16, 16), (3, 3, 4, 4), [0, 2, 2])
    """
    import copy

    import torch
    import torch.nn.functional as F

    from avlab.eval import mask_iou

    if size % grid:
        raise ValueError(f"size={size} must be a multiple of grid={grid}")
    module = HideAndDetect(stages=(0, 2), epochs_per_stage=1, p=1.0) if hide is None else hide
    hiding = copy.deepcopy(module).train()
    seen = synthetic_segmentation_examples(num, size=size, seed=seed)
    truth = torch.from_numpy(seen.truth).float()[:, None]  # (N, 1, H, W)
    regions = F.adaptive_max_pool2d(truth, (grid, grid)) > 0.5  # (N, 1, h, w)
    cells = np.stack([hiding(torch.zeros(num, 1, grid, grid), regions, epoch=int(e), step=step)[1].numpy()
                      for e in epochs])  # (E, N, h, w)
    hidden = cells_to_pixels(cells, (size, size))  # (E, N, H, W)
    occluded = np.where(hidden, seen.probabilities * 0.5, seen.probabilities).astype(np.float32)
    return CurriculumExamples(
        video_ids=seen.video_ids,
        frame_indices=seen.frame_indices,
        frame_times=seen.frame_times,
        frames=seen.frames,
        truth=seen.truth,
        probabilities=seen.probabilities,
        ious=mask_iou(seen.probabilities > 0.5, seen.truth),
        epochs=np.asarray(epochs, np.int64),
        stages=np.asarray([module.stage(int(e)) for e in epochs], np.int64),
        grid_sizes=np.asarray([module.grid_size(int(e)) for e in epochs], np.int64),
        step=step,
        hide_masks=cells,
        hidden=hidden,
        occluded_probabilities=occluded,
        occluded_ious=mask_iou(occluded > 0.5, seen.truth[None].repeat(len(cells), axis=0)),
    )
