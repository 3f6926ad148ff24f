"""AViS-Net's audio-intensity cue for several similar sources (ours: the paper gives the idea).

"Audio intensity is faint for objects at greater depths": the level of each separated source
per video frame, ``I_nt = 10 log10(mean |S_n|^2 over the frame's window + 1e-10)`` in dB,
becomes weights ``w_nt = softmax_n(I_nt / tau)``. Uses: `assign_by_intensity` matches
same-class sources to visual instances (louder to larger, i.e. nearer), and `scale_attention`
scales each source's attention map by its weight before LoGAN.

Example:
    >>> import torch
    >>> mags = torch.stack([torch.full((4, 8), 1.0), torch.full((4, 8), 0.1)]).unsqueeze(0)  # (1, 2, F, T)
    >>> levels = intensity(mags, even_frame_slices(2, 8))
    >>> levels.round().tolist(), assign_by_intensity(levels[..., 0], torch.tensor([[50.0, 900.0]])).tolist()
    ([[[0.0, 0.0], [-20.0, -20.0]]], [[1, 0]])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = [
    "assign_by_intensity",
    "even_frame_slices",
    "intensity",
    "intensity_weights",
    "scale_attention",
]


def even_frame_slices(num_frames: int, num_stft_frames: int) -> list[slice]:
    """Split `num_stft_frames` spectrogram frames into `num_frames` consecutive windows.

    Window i covers ``[round(i T / n), round((i + 1) T / n))``: AFCV's even division of the
    spectrogram along time, one window per video frame.

    Example:
        >>> even_frame_slices(3, 10)
        [slice(0, 3, None), slice(3, 7, None), slice(7, 10, None)]
    """
    if num_frames < 1 or num_stft_frames < num_frames:
        raise ValueError(f"cannot split {num_stft_frames} STFT frames into {num_frames} windows")
    edges = [round(i * num_stft_frames / num_frames) for i in range(num_frames + 1)]
    return [slice(edges[i], edges[i + 1]) for i in range(num_frames)]


def intensity(
    source_mags: torch.Tensor,
    frame_slices: Sequence[slice | tuple[int, int]],
    *,
    eps: float = 1e-10,
) -> torch.Tensor:
    """Level in dB of each source in each video frame's window.

    ``I_nt = 10 log10(mean over frequency and the window's STFT frames of |S_n|^2 + eps)``.

    Args:
        source_mags: Linear magnitudes of the separated sources (not log, not dB).
        frame_slices: One window of STFT frames per video frame, as slices or (start, stop).
        eps: Floor inside the log (1e-10: silence reads -100 dB).

    Shape:
        source_mags: (B, N, F, T).
        output: (B, N, num_frames).

    Example:
        >>> mags = torch.ones(1, 1, 4, 6) * torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
        >>> intensity(mags, [(0, 3), (3, 6)]).tolist()
        [[[0.0, -100.0]]]
    """
    if source_mags.ndim != 4:
        raise ValueError(f"expected source_mags (B, N, F, T), got {tuple(source_mags.shape)}")
    power = source_mags.abs().square()  # (B, N, F, T)
    levels = []
    for window in frame_slices:
        window = window if isinstance(window, slice) else slice(*window)
        part = power[..., window]  # (B, N, F, t)
        if part.shape[-1] == 0:
            raise ValueError(f"empty window {window} of {source_mags.shape[-1]} STFT frames")
        levels.append(10 * torch.log10(part.mean(dim=(-2, -1)) + eps))  # (B, N)
    return torch.stack(levels, dim=-1)  # (B, N, num_frames)


def intensity_weights(intensities: torch.Tensor, *, tau: float = 1.0, dim: int = 1) -> torch.Tensor:
    """Softmax over sources of the levels: ``w_nt = softmax_n(I_nt / tau)``.

    With levels in dB and tau = 1, a source 3 dB louder gets e^3 = 20 times the weight.

    Args:
        intensities: Levels in dB from `intensity`.
        tau: Temperature.
        dim: The source axis.

    Shape:
        intensities: (B, N, num_frames) or (B, N).
        output: same; sums to 1 along `dim`.

    Example:
        >>> intensity_weights(torch.tensor([[0.0, 0.0], [1.0, 1.0]]), dim=0).sum(dim=0).tolist()
        [1.0, 1.0]
    """
    return torch.softmax(intensities / tau, dim=dim)


def assign_by_intensity(
    intensities: torch.Tensor,
    instance_sizes: torch.Tensor,
    *,
    source_classes: torch.Tensor | None = None,
    instance_classes: torch.Tensor | None = None,
) -> torch.Tensor:
    """Assign sources to visual instances of the same class: louder to larger (nearer).

    Within each class (one class if none are given), sources sorted by level (loudest first)
    are paired with instances sorted by size (largest first), rank for rank. Sources left over
    (more sources than instances) get -1; extra instances stay unassigned. Ties keep index order.

    Args:
        intensities: Levels of the sources (e.g. a frame of `intensity`, or its mean over time).
        instance_sizes: Sizes of the instances (mask areas, or box heights).
        source_classes: Class of each source; needs `instance_classes`.
        instance_classes: Class of each instance; needs `source_classes`.

    Shape:
        intensities: (N,) or (B, N).
        instance_sizes: (M,) or (B, M).
        source_classes: like `intensities`.
        instance_classes: like `instance_sizes`.
        output: like `intensities`, int64: the instance index of each source, or -1.

    Example:
        >>> assign_by_intensity(torch.tensor([-30.0, -10.0, -20.0]), torch.tensor([5.0, 80.0, 20.0]))
        tensor([0, 1, 2])
        >>> assign_by_intensity(torch.tensor([-30.0, -10.0]), torch.tensor([5.0, 80.0]),
        ...     source_classes=torch.tensor([1, 2]), instance_classes=torch.tensor([1, 1]))
        tensor([ 1, -1])
    """
    if (source_classes is None) != (instance_classes is None):
        raise ValueError("give both source_classes and instance_classes, or neither")
    single = intensities.ndim == 1
    levels = intensities.unsqueeze(0) if single else intensities  # (B, N)
    sizes = instance_sizes.unsqueeze(0) if instance_sizes.ndim == 1 else instance_sizes  # (B, M)
    if levels.ndim != 2 or sizes.ndim != 2 or levels.shape[0] != sizes.shape[0]:
        raise ValueError(
            f"expected intensities (B, N) and instance_sizes (B, M), got {tuple(intensities.shape)} "
            f"and {tuple(instance_sizes.shape)}"
        )
    if source_classes is None or instance_classes is None:
        src_cls = torch.zeros(levels.shape, dtype=torch.long)
        ins_cls = torch.zeros(sizes.shape, dtype=torch.long)
    else:
        src_cls = source_classes.reshape(levels.shape).long().cpu()
        ins_cls = instance_classes.reshape(sizes.shape).long().cpu()
    levels, sizes = levels.detach().cpu(), sizes.detach().cpu()
    out = torch.full(levels.shape, -1, dtype=torch.long)
    for b in range(levels.shape[0]):
        for cls in sorted(set(src_cls[b].tolist())):
            sources = (src_cls[b] == cls).nonzero().flatten()
            instances = (ins_cls[b] == cls).nonzero().flatten()
            loud = sources[torch.sort(levels[b, sources], descending=True, stable=True).indices]
            large = instances[torch.sort(sizes[b, instances], descending=True, stable=True).indices]
            count = min(len(loud), len(large))
            out[b, loud[:count]] = large[:count]
    out = out.to(intensities.device)
    return out[0] if single else out


def scale_attention(maps: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Scale each source's attention map by its intensity weight (before LoGAN pools them).

    Args:
        maps: One attention map per source.
        weights: One weight per source, e.g. a frame of `intensity_weights`.

    Shape:
        maps: (B, N, H, W) (any trailing dims).
        weights: (B, N).
        output: like `maps`.

    Example:
        >>> scaled = scale_attention(torch.ones(1, 2, 3, 3), torch.tensor([[0.9, 0.1]]))
        >>> tuple(scaled.shape), scaled[0, :, 0, 0].round(decimals=3).tolist()
        ((1, 2, 3, 3), [0.9, 0.1])
    """
    if weights.shape != maps.shape[:2]:
        raise ValueError(
            f"weights {tuple(weights.shape)} must be (B, N) of maps {tuple(maps.shape)}"
        )
    return maps * weights.reshape(*weights.shape, *([1] * (maps.ndim - 2)))
