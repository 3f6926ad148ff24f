"""Source separation scores: BSS Eval v3 (SDR, SIR, SAR), SI-SDR, and the Sound of Pixels protocol.

`bss_eval` computes mir_eval's ``bss_eval_sources`` figures, by default with avlab's own
implementation (`avlab.eval._bss_v3`: the references' Gram matrices built and factorised once
and shared by every estimate, permutation and the mixture, where mir_eval recomputes them for
each pair), or by calling mir_eval itself (``backend="mir_eval"``), kept as the reference.
fast_bss_eval is not used: its iterative solver is wrong on tonal signals.
"""

from __future__ import annotations

import contextlib
import itertools
import warnings
from typing import Any, Literal

import numpy as np

from avlab.eval._arrays import to_numpy
from avlab.eval._bss_v3 import ReferenceSpace

__all__ = ["SILENCE_THRESHOLD", "SeparationMeter", "bss_eval", "one_blas_thread", "si_sdr"]


def one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """A context in which BLAS uses one thread (threadpoolctl), for scoring next to training.

    BSS Eval factorises matrices of 1024 x 1024 (2 sources x 512 taps): measured 1.8 s per
    mixture with OpenBLAS's threads on a busy 2-core machine, 0.05 s with one thread.

    Example:
        >>> with one_blas_thread():
        ...     pass
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")

Backend = Literal["fast", "mir_eval"]

#: Sound of Pixels skips a sample when any reference or estimate has sum |x| at most this.
SILENCE_THRESHOLD = 1e-5


def bss_eval(
    references: Any,
    estimates: Any,
    *,
    compute_permutation: bool = False,
    backend: Backend = "fast",
) -> dict[str, np.ndarray]:
    """BSS Eval v3 source-to-distortion, -interference and -artifact ratios, in dB.

    The figures of ``mir_eval.separation.bss_eval_sources``: each estimate is decomposed by
    least squares on the references delayed by 0 to 511 samples. With `compute_permutation`,
    every estimate is scored against every reference and the assignment with the best mean SIR
    is kept (exhaustive search over N! orders, as mir_eval); without it estimate n is scored
    against reference n (the Sound of Pixels protocol). A single source has SIR = +inf.

    Args:
        references: The true sources; none may be all zeros.
        estimates: The estimated sources, in the same order; none may be all zeros.
        compute_permutation: Search the best assignment of estimates to references.
        backend: ``"fast"`` (avlab's implementation, same figures to round-off) or
            ``"mir_eval"`` (mir_eval itself, as the reference).

    Returns:
        ``sdr``, ``sir``, ``sar``: one value per reference, float64; with
        `compute_permutation`, also ``perm``: ``perm[j]`` is the estimate matched to reference j.

    Raises:
        ValueError: Shapes differ, are empty or not (N, T), or a source is all zeros.

    Shape:
        references: (N, T), or (T,) for one source.
        estimates: same as `references`.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> references = rng.standard_normal((2, 2000))
        >>> estimates = references[::-1] + 0.1 * rng.standard_normal((2, 2000))
        >>> scores = bss_eval(references, estimates, compute_permutation=True)
        >>> scores["perm"].tolist(), [round(float(x), 1) for x in scores["sdr"]]
        ([1, 0], [20.9, 21.2])
    """
    refs, ests = _sources(references, estimates)
    if backend == "mir_eval":
        sdr, sir, sar, perm = _mir_eval_sources(refs, ests, compute_permutation)
    elif backend == "fast":
        space = ReferenceSpace(refs)
        n = len(refs)
        if compute_permutation:
            pairs = [(k, j) for k in range(n) for j in range(n)]
            sdr, sir, sar = (x.reshape(n, n) for x in space.criteria(ests, pairs))  # [estimate, reference]
            # mir_eval's search: the first permutation (lexicographic order) with the best mean SIR.
            orders = list(itertools.permutations(range(n)))
            columns = np.arange(n)
            best = int(np.argmax([np.mean(sir[order, columns]) for order in orders]))
            perm = np.asarray(orders[best])
            sdr, sir, sar = sdr[perm, columns], sir[perm, columns], sar[perm, columns]
        else:
            sdr, sir, sar = space.criteria(ests, [(j, j) for j in range(n)])
            perm = np.arange(n)
    else:
        raise ValueError(f"backend must be 'fast' or 'mir_eval', not {backend!r}")
    scores = {"sdr": sdr, "sir": sir, "sar": sar}
    if compute_permutation:
        scores["perm"] = perm
    return scores


def si_sdr(reference: Any, estimate: Any, *, zero_mean: bool = False) -> float | np.ndarray:
    """Scale-invariant SDR in dB, per signal.

    alpha = <s_hat, s> / ||s||^2 and SI-SDR = 10 log10(||alpha s||^2 / ||alpha s - s_hat||^2).
    Zero-mean convention: by default no mean is removed, the definition as written (and
    torchmetrics' default). ``zero_mean=True`` first subtracts each signal's mean, as Le Roux et
    al. (2019, "SDR - half-baked or well done?") and asteroid do. A perfect estimate scores +inf,
    one with no component along the reference (a silent one included) -inf.
    Written here rather than taken from torchmetrics, which adds its float epsilon to both
    ratios (so a perfect estimate scores a finite value) and needs tensors.

    Args:
        reference: The true signal(s); none may be all zeros (after mean removal).
        estimate: The estimate(s), same shape.
        zero_mean: Remove each signal's mean first.

    Returns:
        A float for 1-D signals, else an array of the leading shape.

    Raises:
        ValueError: Shapes differ, or a reference is all zeros.

    Shape:
        reference: (..., T).
        estimate: (..., T).

    Example:
        >>> round(si_sdr([1.0, 0.0], [1.0, 0.5]), 4)
        6.0206
        >>> si_sdr([1.0, 2.0], [2.0, 4.0])
        inf
    """
    s = to_numpy(reference).astype(np.float64)
    s_hat = to_numpy(estimate).astype(np.float64)
    if s.shape != s_hat.shape or s.ndim == 0 or s.shape[-1] == 0:
        raise ValueError(f"reference and estimate must have the same non-empty (..., T) shape, not {s.shape} and {s_hat.shape}")
    if zero_mean:
        s = s - s.mean(axis=-1, keepdims=True)
        s_hat = s_hat - s_hat.mean(axis=-1, keepdims=True)
    energy = np.sum(s**2, axis=-1, keepdims=True)
    if np.any(energy == 0):
        raise ValueError("a reference is all zeros: SI-SDR is undefined")
    target = np.sum(s_hat * s, axis=-1, keepdims=True) / energy * s
    target_energy = np.sum(target**2, axis=-1)
    noise = np.sum((target - s_hat) ** 2, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = 10 * np.log10(target_energy / noise)
    ratio = np.where(target_energy == 0, -np.inf, np.where(noise == 0, np.inf, ratio))
    return float(ratio) if ratio.ndim == 0 else ratio


class SeparationMeter:
    """SDR, SIR, SAR, mixture SDR and NSDR over a test set, by the Sound of Pixels protocol.

    Per sample: skipped when any reference or estimate has sum |x| <= `SILENCE_THRESHOLD`;
    otherwise BSS Eval v3 without permutation search (estimate n against reference n), and
    the SDR of the mixture itself (the mixture as the estimate of every source). Each figure is
    the mean over a sample's sources, then the mean over the samples scored; NSDR = SDR -
    SDR_mix.

    Args:
        backend: ``"fast"`` or ``"mir_eval"``, as in `bss_eval`. The fast backend factorises a
            sample's references once for its estimates and its mixture.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> references = rng.standard_normal((2, 2000))
        >>> meter = SeparationMeter()
        >>> meter.update(references, references + 0.1 * references[::-1], references.sum(0))
        >>> meter.update(references, np.zeros((2, 2000)), references.sum(0))  # silent: skipped
        >>> scores = meter.compute()
        >>> round(scores["sdr"], 1), round(scores["sdr_mix"], 1), scores["num_skipped"]
        (21.0, 1.6, 1)
    """

    def __init__(self, *, backend: Backend = "fast") -> None:
        if backend not in ("fast", "mir_eval"):
            raise ValueError(f"backend must be 'fast' or 'mir_eval', not {backend!r}")
        self.backend = backend
        self.reset()

    def reset(self) -> None:
        """Forget every sample seen."""
        self._sums = {"sdr": 0.0, "sir": 0.0, "sar": 0.0, "sdr_mix": 0.0}
        self._num_samples = 0
        self._num_skipped = 0

    def update(self, references: Any, estimates: Any, mixture: Any) -> None:
        """Score one sample, or a batch of samples.

        Args:
            references: The true sources of each sample.
            estimates: The separated sources, in the order of `references`.
            mixture: The mixture the estimates were separated from.

        Raises:
            ValueError: Shapes do not match, or a mixture is all zeros.

        Shape:
            references: (N, T) for one sample or (B, N, T) for a batch.
            estimates: same as `references`.
            mixture: (T,) or (B, T).
        """
        refs = to_numpy(references).astype(np.float64)
        ests = to_numpy(estimates).astype(np.float64)
        mix = to_numpy(mixture).astype(np.float64)
        if refs.ndim == 2:
            refs, ests, mix = refs[None], ests[None], mix[None]
        if refs.ndim != 3 or ests.shape != refs.shape or mix.shape != (refs.shape[0], refs.shape[2]):
            raise ValueError(
                "expected references and estimates of shape (N, T) or (B, N, T) and a mixture of "
                f"shape (T,) or (B, T); got {to_numpy(references).shape}, {to_numpy(estimates).shape} "
                f"and {to_numpy(mixture).shape}"
            )
        if not np.all(np.any(mix != 0, axis=1)):
            raise ValueError("a mixture is all zeros: its SDR is undefined")
        for sample_refs, sample_ests, sample_mix in zip(refs, ests, mix, strict=True):
            silent = np.sum(np.abs(sample_refs), axis=1) <= SILENCE_THRESHOLD
            silent |= np.sum(np.abs(sample_ests), axis=1) <= SILENCE_THRESHOLD
            if silent.any():
                self._num_skipped += 1
                continue
            sdr, sir, sar, sdr_mix = self._score(sample_refs, sample_ests, sample_mix)
            self._sums["sdr"] += float(np.mean(sdr))
            self._sums["sir"] += float(np.mean(sir))
            self._sums["sar"] += float(np.mean(sar))
            self._sums["sdr_mix"] += float(np.mean(sdr_mix))
            self._num_samples += 1

    def compute(self) -> dict[str, float]:
        """The means over the samples scored so far.

        Returns:
            ``sdr``, ``sir``, ``sar``, ``sdr_mix``, ``nsdr`` (dB; NaN before any sample is
            scored), ``num_samples`` (scored) and ``num_skipped`` (silent).
        """
        count = self._num_samples
        scores = {name: total / count if count else float("nan") for name, total in self._sums.items()}
        scores["nsdr"] = scores["sdr"] - scores["sdr_mix"]
        scores["num_samples"] = count
        scores["num_skipped"] = self._num_skipped
        return scores

    def _score(self, refs: np.ndarray, ests: np.ndarray, mix: np.ndarray) -> tuple[np.ndarray, ...]:
        n = len(refs)
        if self.backend == "mir_eval":
            sdr, sir, sar, _ = _mir_eval_sources(refs, ests, False)
            sdr_mix = _mir_eval_sources(refs, np.repeat(mix[None], n, axis=0), False)[0]
            return sdr, sir, sar, sdr_mix
        space = ReferenceSpace(refs)
        sdr, sir, sar = space.criteria(ests, [(j, j) for j in range(n)])
        sdr_mix = space.criteria(mix[None], [(0, j) for j in range(n)])[0]
        return sdr, sir, sar, sdr_mix


def _sources(references: Any, estimates: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both as float64 (N, T), checked as mir_eval's ``validate`` does."""
    refs = to_numpy(references).astype(np.float64)
    ests = to_numpy(estimates).astype(np.float64)
    refs, ests = np.atleast_2d(refs), np.atleast_2d(ests)
    if refs.shape != ests.shape or refs.ndim != 2 or refs.size == 0:
        raise ValueError(
            f"references and estimates must have the same non-empty (N, T) shape, not "
            f"{to_numpy(references).shape} and {to_numpy(estimates).shape}"
        )
    for name, sources in (("reference", refs), ("estimate", ests)):
        silent = np.flatnonzero(~np.any(sources != 0, axis=1))
        if silent.size:
            raise ValueError(f"{name} source(s) {silent.tolist()} are all zeros: BSS Eval is undefined for silent sources")
    return refs, ests


def _mir_eval_sources(refs: np.ndarray, ests: np.ndarray, compute_permutation: bool) -> tuple[np.ndarray, ...]:
    import mir_eval.separation

    with warnings.catch_warnings():
        # mir_eval 0.8 deprecates its separation module (it stays the reference until 0.9).
        warnings.filterwarnings("ignore", message=r"mir_eval\.separation\.bss_eval_sources", category=FutureWarning)
        return mir_eval.separation.bss_eval_sources(refs, ests, compute_permutation=compute_permutation)
