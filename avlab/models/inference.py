"""From separation logits to waveforms, by PixelPlayer's inference protocol (SPEC section 6).

Unwarp the predicted masks to the STFT's bins, threshold at 0.5, keep the mixture where the
mask is on (``|S_n| = |X| * mask`` with the mixture's phase, which is ``X * mask``), invert the
STFT and clip to [-1, 1].

Example:
    >>> import torch
    >>> from avlab.backbones import SeparationSTFT
    >>> stft = SeparationSTFT()
    >>> mixture = torch.from_numpy(stft(np.random.default_rng(0).standard_normal(4096).astype(np.float32) * 0.1))
    >>> logits = torch.full((1, 2, 256, mixture.shape[-1]), 5.0)  # both sources take everything
    >>> waves = separate_waveforms(logits, mixture.unsqueeze(0))
    >>> waves.shape, bool(np.allclose(waves[0, 0], stft.inverse(mixture.numpy(), waves.shape[-1]), atol=1e-6))
    ((1, 2, 4096), True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from avlab.backbones import SeparationSTFT
from avlab.heads import unwarp_frequency

__all__ = ["separate_waveforms", "spectrogram_masks", "waveforms"]


def spectrogram_masks(separation_logits: torch.Tensor, *, bins: int = 512, threshold: float | None = 0.5) -> torch.Tensor:
    """Masks on the STFT's bins: sigmoid, unwarp, then binary at `threshold` (None: soft).

    Shape:
        separation_logits: (B, N, rows, T).
        output: (B, N, bins, T) float.

    Example:
        >>> spectrogram_masks(torch.zeros(1, 1, 256, 3), threshold=None).unique().tolist()
        [0.5]
    """
    masks = unwarp_frequency(torch.sigmoid(separation_logits.detach().float()), bins=bins)
    return masks if threshold is None else (masks > threshold).float()


def waveforms(
    spectrograms: torch.Tensor | np.ndarray,
    lengths: Sequence[int] | None = None,
    *,
    stft: SeparationSTFT | None = None,
) -> np.ndarray:
    """Invert complex spectrograms, keeping the first `lengths[b]` STFT frames of sample b.

    A window of L centred STFT frames holds ``(L - 1) * hop`` samples; samples whose frames
    are shorter are zero-padded to the longest.

    Shape:
        spectrograms: (B, ..., F, T) complex.
        output: (B, ..., samples) float32.

    Example:
        >>> waveforms(np.zeros((2, 512, 5), np.complex64), [5, 3]).shape
        (2, 1024)
    """
    stft = stft or SeparationSTFT()
    specs = spectrograms.detach().cpu().numpy() if isinstance(spectrograms, torch.Tensor) else np.asarray(spectrograms)
    frames = [specs.shape[-1]] * len(specs) if lengths is None else [int(n) for n in lengths]
    samples = (max(frames) - 1) * stft.hop_length
    out = np.zeros((*specs.shape[:-2], samples), np.float32)
    for b, count in enumerate(frames):
        length = (count - 1) * stft.hop_length
        if length > 0:
            out[b, ..., :length] = stft.inverse(specs[b, ..., :count], length)
    return out


def separate_waveforms(
    separation_logits: torch.Tensor,
    mixture_stft: torch.Tensor,
    lengths: Sequence[int] | None = None,
    *,
    threshold: float = 0.5,
    stft: SeparationSTFT | None = None,
) -> np.ndarray:
    """The separated sources' waveforms: binary unwarped masks on the mixture, inverse STFT, clip.

    Args:
        separation_logits: The system's "separation_logits".
        mixture_stft: The mixture's complex STFT window (the batch's "mixture_stft").
        lengths: STFT frames holding audio per sample (the batch's "stft_length"); None: all.
        threshold: Binary threshold of the unwarped mask probabilities.
        stft: The STFT to invert (default: `SeparationSTFT()`, 11025 Hz, 1022 / 256).

    Shape:
        separation_logits: (B, N, rows, T).
        mixture_stft: (B, F, T) complex.
        output: (B, N, samples) float32 in [-1, 1].
    """
    if mixture_stft.ndim != 3 or separation_logits.ndim != 4:
        raise ValueError(
            f"expected logits (B, N, rows, T) and a mixture (B, F, T), got {tuple(separation_logits.shape)} "
            f"and {tuple(mixture_stft.shape)}"
        )
    masks = spectrogram_masks(separation_logits, bins=mixture_stft.shape[-2], threshold=threshold)  # (B, N, F, T)
    estimates = mixture_stft.detach().cpu().unsqueeze(1) * masks.cpu()  # X * mask = |X| mask e^{i phase X}
    return np.clip(waveforms(estimates, lengths, stft=stft), -1.0, 1.0)
