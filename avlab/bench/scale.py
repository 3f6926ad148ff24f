"""Scale (issue 9, figure 7): caching on dask workers, store size, and growth with the number of videos.

1. `cache_features` with its ``client`` on a dask LocalCluster of 2 worker processes (one
   thread each: one task per video, as ``avlab cache --workers 2``) against 1 worker, and
   against the threaded default (no client: a loader thread decoding ahead, torch's default
   threads for the backbone, a writer thread), in frames/s. The clusters are started and
   warmed (every worker imports torch and loads the backbone once) before timing; their
   start-up is recorded, not counted. Quick runs leave out the 1-worker cluster. Reported
   only (no target).
2. Store size: bytes on disk (``du``: allocated blocks) per cached frame of every visual level
   as `cache_features` stores them (float16, zstd, shards, plus the store's metadata and
   commit records) against the same features as float32 .npy files, one per video and level
   (the video_features layout). As a throughput: frames per MiB. Reported only.
3. Growth: `cache_features` frames/s and training samples/s (`avlab.train.fit` of
   ``visual_only``, "cpu" preset, from the cache) at increasing numbers of videos; the rate at
   the most videos against the rate at the fewest, and a plot of seconds and rates against
   the number of videos (``scale_growth[_quick].png`` in the results folder). Reported only.

Example:
    >>> from avlab.bench.scale import NOTES, disk_bytes
    >>> "LocalCluster" in NOTES
    True
    >>> import tempfile
    >>> disk_bytes(tempfile.mkdtemp())
    0
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from avlab.bench.harness import BenchContext, Figure, interleaved, median
from avlab.bench.store import caching_case

if TYPE_CHECKING:
    from avlab.datasets.manifest import Manifest

__all__ = ["NOTES", "disk_bytes", "run"]

NOTES = (
    "SynthAV videos at 8 fps, cached by resnet18 (random weights) at 128 px (quick: 64 px), levels c3-c5, "
    "with the default audio features and ground truth unless said otherwise. Workers: `cache_features(client=...)` "
    "on a dask LocalCluster of 1 or 2 worker processes with one thread each (as `avlab cache --workers N`), "
    "against the threaded default in one process (torch's default threads); clusters are started and warmed "
    "before timing, stores deleted between repetitions untimed. Store size: `du` of a store caching only the "
    "visual levels (no audio, no ground truth; metadata and commit records included) against the same values "
    "as float32 .npy files, one per video and level. Growth: caching (default recipe) and training "
    "(`fit` of visual_only, cpu preset, batch 16, no validation, no checkpoint; Lightning's set-up included) "
    "timed at each number of videos, the sizes interleaved."
)

VISUAL = "resnet18"
SYSTEM, PRESET = "visual_only", "cpu"


def run(context: BenchContext) -> list[Figure]:
    """The worker figures, the store-size figure and the growth figures (with their plot)."""
    from avlab.datasets.synth import generate, load_synth

    size, seconds, counts = (64, 1.0, (2, 4)) if context.quick else (128, 2.0, (4, 8, 16))
    root = generate(context.work / "synth", num_videos=max(counts), size=size, seconds=seconds, splits=["train"],
                    num_solo=0, progress=False)
    manifest = load_synth(root, split="train")
    # Quick runs skip the 1-worker cluster: each worker process spends seconds importing torch.
    figures = workers(manifest, context.work, size=size, repeats=context.repeats,
                      cluster_sizes=(2,) if context.quick else (1, 2))
    figures.append(store_size(manifest, context.work, size=size))
    plot = context.out / ("scale_growth_quick.png" if context.quick else "scale_growth.png")
    figures += growth({n: manifest[:n] for n in counts}, context.work, size=size,
                      repeats=1 if context.quick else min(3, context.repeats), epochs=1 if context.quick else 2,
                      plot=plot)
    return figures


def disk_bytes(folder: str | os.PathLike[str]) -> int:
    """Bytes allocated on disk to the files under `folder` (what ``du`` counts)."""
    return sum(os.stat(os.path.join(top, name)).st_blocks * 512
               for top, _, names in os.walk(folder) for name in names)


def _apparent_bytes(folder: str | os.PathLike[str]) -> int:
    return sum(os.path.getsize(os.path.join(top, name)) for top, _, names in os.walk(folder) for name in names)


def _num_frames(manifest: Manifest) -> int:
    """Frames of every video of `manifest`, counted by decoding them small."""
    return sum(len(record.load_frames(size=16).frames) for record in manifest)


def workers(manifest: Manifest, work: Path, *, size: int, repeats: int, cluster_sizes: Sequence[int]) -> list[Figure]:
    """Caching frames/s on the largest dask cluster against each smaller one and the threaded default."""
    from distributed import Client, LocalCluster

    videos, frames = len(manifest), _num_frames(manifest)
    options = {"threads_per_worker": 1, "processes": True, "dashboard_address": ":0", "silence_logs": logging.ERROR}
    names = {n: f"dask LocalCluster, {n} worker{'s' if n > 1 else ''}" for n in cluster_sizes}
    with contextlib.ExitStack() as stack:
        started = time.perf_counter()
        clients = {n: stack.enter_context(Client(stack.enter_context(LocalCluster(n_workers=n, **options))))
                   for n in cluster_sizes}
        cluster_seconds = time.perf_counter() - started
        cases = {"threads": caching_case(manifest, work, "threads", visual=VISUAL, size=size),
                 **{names[n]: caching_case(manifest, work, f"dask{n}", visual=VISUAL, size=size,
                                                 client=clients[n]) for n in cluster_sizes}}
        started = time.perf_counter()
        warm = {name: case() for name, case in cases.items()}  # imports, backbone, soundfont on every worker
        warm_seconds = time.perf_counter() - started
        threads = {"threads": torch.get_num_threads(),
                   **{names[n]: list(clients[n].run(torch.get_num_threads).values()) for n in cluster_sizes}}
        times = interleaved(cases, repeats)
    rates = {name: frames / median(t) for name, t in times.items()}
    details = {"videos": videos, "frames": frames, "size": size, "repeats": repeats, "torch_threads": threads,
               "rates": rates, "seconds": times, "first_run_seconds": warm,
               "cluster_start_seconds": cluster_seconds, "warm_up_seconds": warm_seconds}
    largest = names[max(cluster_sizes)]
    what = f"caching {VISUAL} @ {size} px, {videos} videos, {frames} frames: {largest}"
    baselines = [names[n] for n in sorted(cluster_sizes)[:-1]] + ["threads"]
    return [Figure(what, unit="frames/s", baseline="threaded default (no dask)" if b == "threads" else b,
                   baseline_rate=rates[b], rate=rates[largest], target=None, details=details) for b in baselines]


def store_size(manifest: Manifest, work: Path, *, size: int) -> Figure:
    """Frames per MiB on disk: the store's visual levels against float32 .npy per video and level."""
    from avlab.store import cache_features

    store = work / "size.zarr"
    ds = cache_features(manifest, store, visual=VISUAL, size=size, audio=(), ground_truth=False, progress=False)
    counts = ds.num_frames.values.astype(int)
    levels = [str(name) for name in ds.data_vars if str(name).startswith("visual_")]
    npy = work / "npy"
    npy.mkdir()
    for level in levels:
        for v, count in enumerate(counts):
            values = ds[level][v, 0, :count].values.astype(np.float32)  # (T, C, H, W)
            np.save(npy / f"{v}-{level}.npy", values)
    frames = int(counts.sum())
    store_bytes, npy_bytes = disk_bytes(store), disk_bytes(npy)
    per_level = {}
    for level in levels:
        level_bytes = disk_bytes(store / level)
        per_level[level] = {"store_bytes_per_frame": level_bytes / frames,
                            "npy_bytes_per_frame": sum(_file_bytes(npy / f"{v}-{level}.npy")
                                                       for v in range(len(counts))) / frames}
    default = work / "size-default.zarr"
    cache_features(manifest, default, visual=VISUAL, size=size, progress=False)
    mib = 2**20
    return Figure(
        f"store size, {VISUAL} @ {size} px levels {', '.join(level.removeprefix('visual_') for level in levels)}, "
        f"{frames} frames: float16 + zstd store", unit="frames/MiB", baseline="float32 .npy per video and level",
        baseline_rate=frames * mib / npy_bytes, rate=frames * mib / store_bytes, target=None,
        details={"store_bytes_per_frame": store_bytes / frames, "npy_bytes_per_frame": npy_bytes / frames,
                 "store_apparent_bytes_per_frame": _apparent_bytes(store) / frames,
                 "npy_apparent_bytes_per_frame": _apparent_bytes(npy) / frames, "levels": per_level,
                 "default_recipe_store_bytes_per_frame": disk_bytes(default) / frames,
                 "default_recipe_includes": "stft, logmel_frames, masks, instance masks, per-source STFTs"})


def _file_bytes(path: Path) -> int:
    """Bytes allocated on disk to one file."""
    return os.stat(path).st_blocks * 512


def growth(manifests: Mapping[int, Manifest], work: Path, *, size: int, repeats: int, epochs: int, plot: Path) -> list[Figure]:
    """Caching and training rates at each number of videos, the sizes interleaved, and their plot."""
    from avlab.models import system_preset
    from avlab.store import cache_features
    from avlab.train.fit import fit

    counts = sorted(manifests)
    frames = {n: _num_frames(manifests[n]) for n in counts}
    stores = {n: work / f"growth-{n}.zarr" for n in counts}

    def cache(n: int) -> Callable[[], float]:
        def case() -> float:
            if stores[n].exists():
                shutil.rmtree(stores[n])
            started = time.perf_counter()
            cache_features(manifests[n], stores[n], visual=VISUAL, size=size, progress=False)
            return time.perf_counter() - started

        return case

    def train(n: int) -> Callable[[], None]:
        def case() -> None:
            fit(stores[n], SYSTEM, system_kwargs=system_preset(SYSTEM, PRESET), val_split=None, max_epochs=epochs,
                batch_size=16, checkpoint=False, progress=False, root_dir=work / "runs")

        return case

    cache(counts[0])()  # warm (caching was warmed by the figures before) and a store for the training warm-up
    train(counts[0])()  # warm: Lightning's imports
    cases: dict[str, Callable[[], float | None]] = {}
    for n in counts:  # training n reads the store that caching n has just written
        cases[f"cache {n}"] = cache(n)
        cases[f"train {n}"] = train(n)
    times = interleaved(cases, repeats)
    seconds = {kind: {n: median(times[f"{kind} {n}"]) for n in counts} for kind in ("cache", "train")}
    caching_rates = {n: frames[n] / seconds["cache"][n] for n in counts}
    training_rates = {n: frames[n] * epochs / seconds["train"][n] for n in counts}
    _plot_growth(plot, counts, seconds, {"caching (frames/s)": caching_rates, "training (samples/s)": training_rates})
    details = {"videos": counts, "frames": [frames[n] for n in counts], "epochs": epochs, "repeats": repeats,
               "median_seconds": {k: {str(n): s for n, s in v.items()} for k, v in seconds.items()},
               "torch_threads": torch.get_num_threads(), "plot": plot.name}
    small, large = counts[0], counts[-1]
    return [
        Figure(f"growth: cache_features {VISUAL} @ {size} px, {large} videos ({frames[large]} frames)",
               unit="frames/s", baseline=f"the same at {small} videos ({frames[small]} frames)",
               baseline_rate=caching_rates[small], rate=caching_rates[large], target=None,
               details={**details, "rates": {str(n): r for n, r in caching_rates.items()}}),
        Figure(f"growth: training {SYSTEM} ({PRESET}) from the cache, {large} videos, {epochs} epoch(s)",
               unit="samples/s", baseline=f"the same at {small} videos",
               baseline_rate=training_rates[small], rate=training_rates[large], target=None,
               details={**details, "rates": {str(n): r for n, r in training_rates.items()}}),
    ]


def _plot_growth(path: Path, counts: Sequence[int], seconds: Mapping[str, Mapping[int, float]],
                 rates: Mapping[str, Mapping[int, float]]) -> None:
    """Seconds (left, with the proportional line from the fewest videos) and rates (right) per video count."""
    from matplotlib.figure import Figure as PlotFigure

    plot = PlotFigure(figsize=(9, 3.6), layout="constrained")
    left, right = plot.subplots(1, 2)
    for (kind, label), colour in zip((("cache", "caching"), ("train", "training")), ("tab:blue", "tab:orange"),
                                     strict=True):
        timed = [seconds[kind][n] for n in counts]
        left.plot(counts, timed, "o-", color=colour, label=label)
        left.plot(counts, [timed[0] * n / counts[0] for n in counts], "--", color=colour, alpha=0.5,
                  label=f"{label}, proportional")
    left.set(xlabel="videos", ylabel="seconds (median)", title="time", xticks=list(counts))
    left.legend(fontsize="small")
    for (label, rate), colour in zip(rates.items(), ("tab:blue", "tab:orange"), strict=True):
        right.plot(counts, [rate[n] for n in counts], "o-", color=colour, label=label)
    right.set(xlabel="videos", ylabel="rate", title="throughput", xticks=list(counts), ylim=(0, None))
    right.legend(fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    plot.savefig(path, dpi=110)
