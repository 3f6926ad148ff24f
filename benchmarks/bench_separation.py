"""Separation scoring time: avlab's BSS Eval v3 against mir_eval, on 6 s, 11025 Hz, 2-source mixtures.

Each mixture is the mean of two instrument-like sources (harmonic notes with vibrato and a
-40 dB noise floor); the estimates are what an ideal binary STFT mask recovers from the mixture
(the Sound of Pixels masks, SPEC section 6), so they carry the artifacts and leakage of a real
separator. Three workloads are timed, each with both backends run side by side and interleaved:

- ``protocol``: one `SeparationMeter.update` (SDR/SIR/SAR of the estimates and SDR of the mixture).
- ``bss_eval``: `bss_eval` without permutation search.
- ``bss_eval_perm``: `bss_eval` with permutation search.

Reported: the median time per mixture of each backend, their ratio, and the largest absolute
difference of any figure (dB). BLAS runs on one thread by default (``--threads``; 0 leaves the
library default): both backends are dominated by dense factorisations of at most 1024 x 1024,
which OpenBLAS's worker threads slow down on a small machine shared with other work, and one
thread per process is also how a test set is scored in parallel. Results go to
benchmarks/results/bench_separation.{json,md} (``--quick``: fewer repetitions, ``*_quick.*``).

Usage: python benchmarks/bench_separation.py [--quick] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import scipy.signal

from avlab.environment import describe_environment
from avlab.eval import SeparationMeter, bss_eval

SAMPLE_RATE = 11025
SECONDS = 6.0
RESULTS = Path(__file__).resolve().parent / "results"


def instrument(rng: np.random.Generator, num_samples: int) -> np.ndarray:
    """Legato pentatonic notes of a harmonic tone with vibrato, plus a -40 dB noise floor."""
    t = np.arange(num_samples) / SAMPLE_RATE
    root = rng.uniform(110.0, 440.0)
    signal = np.zeros(num_samples)
    bounds = np.linspace(0, num_samples, 13).astype(int)
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        frequency = root * 2 ** (rng.choice([0, 2, 4, 7, 9, 12]) / 12)
        phase = 2 * np.pi * frequency * t[start:stop] + 0.3 * np.sin(2 * np.pi * 5.0 * t[start:stop])
        decay = np.exp(-3.0 * (t[start:stop] - t[start]))
        signal[start:stop] = decay * sum(np.sin(h * phase) / h**1.5 for h in range(1, 9))
    signal /= np.sqrt(np.mean(signal**2))
    return signal + 0.01 * rng.standard_normal(num_samples)


def sample(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(references (2, T), ideal-binary-mask estimates (2, T), mixture (T,))."""
    num_samples = int(SECONDS * SAMPLE_RATE)
    references = np.stack([instrument(rng, num_samples) for _ in range(2)]) * rng.uniform(0.5, 1.5, (2, 1))
    mixture = references.mean(axis=0)
    stft = lambda x: scipy.signal.stft(x, nperseg=1022, noverlap=1022 - 256)[2]  # noqa: E731
    spectra, mixture_spectrum = stft(references / 2), stft(mixture)
    masks = np.abs(spectra) > 0.5 * np.abs(mixture_spectrum)
    estimates = scipy.signal.istft(masks * mixture_spectrum, nperseg=1022, noverlap=1022 - 256)[1][:, :num_samples]
    return references, estimates, mixture


def protocol(backend: str, references: np.ndarray, estimates: np.ndarray, mixture: np.ndarray) -> np.ndarray:
    meter = SeparationMeter(backend=backend)
    meter.update(references, estimates, mixture)
    scores = meter.compute()
    return np.array([scores["sdr"], scores["sir"], scores["sar"], scores["sdr_mix"]])


def plain(permute: bool):
    def run(backend: str, references: np.ndarray, estimates: np.ndarray, mixture: np.ndarray) -> np.ndarray:
        scores = bss_eval(references, estimates, compute_permutation=permute, backend=backend)
        return np.concatenate([scores["sdr"], scores["sir"], scores["sar"]])

    return run


WORKLOADS = {"protocol": protocol, "bss_eval": plain(False), "bss_eval_perm": plain(True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 mixtures x 2 repetitions instead of 4 x 5")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (0: the library's default)")
    args = parser.parse_args()
    if args.threads:
        # threadpoolctl comes with scikit-learn, a librosa dependency.
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=args.threads, user_api="blas")
    num_mixtures, repetitions = (2, 2) if args.quick else (4, 5)
    rng = np.random.default_rng(0)
    mixtures = [sample(rng) for _ in range(num_mixtures)]
    load_before = os.getloadavg()[0]  # other work on the machine, for reading the figures

    rows = []
    for name, workload in WORKLOADS.items():
        times: dict[str, list[float]] = {"fast": [], "mir_eval": []}
        difference = 0.0
        for repetition in range(repetitions):
            for index, arrays in enumerate(mixtures):
                # Alternate which backend goes first, so neither always runs on a warm cache.
                order = ("fast", "mir_eval") if (repetition + index) % 2 == 0 else ("mir_eval", "fast")
                figures = {}
                for backend in order:
                    start = time.perf_counter()
                    figures[backend] = workload(backend, *arrays)
                    times[backend].append(time.perf_counter() - start)
                difference = max(difference, float(np.max(np.abs(figures["fast"] - figures["mir_eval"]))))
        fast, reference = float(np.median(times["fast"])), float(np.median(times["mir_eval"]))
        rows.append({
            "workload": name,
            "fast_s": fast,
            "mir_eval_s": reference,
            "speedup": reference / fast,
            "max_abs_diff_db": difference,
            "runs_per_backend": len(times["fast"]),
        })
        print(f"{name:14s} fast {fast * 1e3:8.1f} ms  mir_eval {reference * 1e3:8.1f} ms  "
              f"speedup {reference / fast:5.1f}x  max |diff| {difference:.1e} dB", flush=True)

    environment = describe_environment()
    suffix = ("_quick" if args.quick else "") + (f"_threads{args.threads}" if args.threads != 1 else "")
    RESULTS.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": "bench_separation",
        "command": "python benchmarks/bench_separation.py" + (" --quick" if args.quick else "")
        + (f" --threads {args.threads}" if args.threads != 1 else ""),
        "signals": {"seconds": SECONDS, "sample_rate": SAMPLE_RATE, "sources": 2, "mixtures": num_mixtures,
                    "repetitions": repetitions},
        "blas_threads": args.threads or "default",
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
        "results": rows,
        "environment": environment,
    }
    (RESULTS / f"bench_separation{suffix}.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        "# Separation scoring: avlab fast BSS Eval v3 vs mir_eval",
        "",
        f"`{record['command']}`: {num_mixtures} mixtures x {repetitions} repetitions, "
        f"{SECONDS:g} s at {SAMPLE_RATE} Hz, 2 sources; median time per mixture; BLAS threads: "
        f"{record['blas_threads']}; 1-minute load average {load_before:.1f} before, "
        f"{record['load_average_1min']['after']:.1f} after.",
        "",
        "Workloads: `protocol` = one `SeparationMeter.update` (SDR/SIR/SAR of the estimates and SDR "
        "of the mixture); `bss_eval` = `bss_eval` without permutation search; `bss_eval_perm` = with it.",
        "",
        "| workload | fast (ms) | mir_eval (ms) | speedup | max abs diff (dB) |",
        "|---|---:|---:|---:|---:|",
        *(f"| {r['workload']} | {r['fast_s'] * 1e3:.1f} | {r['mir_eval_s'] * 1e3:.1f} | {r['speedup']:.1f}x | "
          f"{r['max_abs_diff_db']:.1e} |" for r in rows),
        "",
        f"Machine: {environment['cpu']}, {environment['cores']} cores, {environment['memory_gib']} GiB, "
        f"{environment['platform']}, Python {environment['python']}, numpy "
        f"{environment['libraries'].get('numpy')}.",
        "",
    ]
    (RESULTS / f"bench_separation{suffix}.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
