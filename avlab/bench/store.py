"""The feature store's speed: caching against the bare backbone, and training reads against the usual layouts.

1. Caching (issue 9, figure 4): `cache_features` (decode, backbone, STFT and log-mel, ground
   truth, compression, shard writes, commits, sealing) against the bare backbone forward on
   the same frames already decoded into memory, in frames/s. Target >= 0.85x. Deleting the
   store between repetitions is not timed.
2. Training reads (figure 5): random 8-frame clips/s of one level's features, handed back as
   float32 torch tensors, through avlab's `ClipDataset` (direct shard engine on the default
   zstd store and on an uncompressed one, zarr engine, in-memory) against one memory-mapped
   .npy per video (the video_features layout), h5py with one chunk per frame, and naive zarr
   indexing of the default store. Every reader converts with the same function
   (`avlab.store.reader.to_tensor`), so the figures compare data access. Target: faster than
   each of the three baselines.

Example:
    >>> from avlab.bench.store import NOTES
    >>> "bare backbone forward" in NOTES
    True
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avlab.bench.harness import BenchContext, Figure, interleaved, median

__all__ = ["NOTES", "run"]

NOTES = (
    "Caching: `cache_features` from the mp4 files to a sealed store against the bare backbone forward "
    "(inference mode, batches of 32) on the same frames already decoded into memory; the store's deletion "
    "between repetitions is not timed. Reads: random 8-frame clips of `visual_c3` as float32 tensors; "
    "every reader reads the same clips in the same order, after one warm pass (page cache, shard indexes)."
)

CLIP = 8
BATCH = 32


def run(context: BenchContext) -> list[Figure]:
    """The caching figures (resnet18 @ 128 px; full runs add resnet50 @ 224 px) and the read figures."""
    from avlab.datasets.synth import generate

    num_videos, seconds = (4, 1.0) if context.quick else (24, 2.0)
    root = generate(context.work / "synth", num_videos=num_videos, size=128, seconds=seconds, splits=["train"],
                    num_solo=0, progress=False)
    figures = [caching(root, context.work, visual="resnet18", size=128, repeats=context.repeats)]
    if not context.quick:  # the seeds' backbone and input size, on fewer videos
        small = generate(context.work / "synth224", num_videos=6, size=224, seconds=2.0, splits=["train"],
                         num_solo=0, progress=False)
        figures.append(caching(small, context.work, visual="resnet50", size=224, repeats=3))
    figures += reads(root, context.work, visual="resnet18", size=128, num_reads=100 if context.quick else 1000,
                     repeats=context.repeats)
    return figures


def caching(root: Path, work: Path, *, visual: str, size: int, repeats: int) -> Figure:
    """`cache_features` frames/s against the bare backbone forward on decoded frames."""
    from avlab.backbones import visual_bundle
    from avlab.datasets.synth import load_synth

    manifest = load_synth(root, split="train")
    frames = np.concatenate([r.load_frames(size=size).frames for r in manifest])  # (N, H, W, 3) uint8
    model = visual_bundle(visual).load(None)

    def bare() -> None:
        with torch.inference_mode():
            for start in range(0, len(frames), BATCH):
                model(torch.from_numpy(frames[start:start + BATCH]).permute(0, 3, 1, 2).float().div_(255))

    cache = caching_case(root, work, "cache", visual=visual, size=size, batch_size=BATCH)
    cache()  # warm: imports, soundfont, model construction
    times = interleaved({"bare": bare, "cache": cache}, repeats)
    return Figure(f"caching {visual} @ {size} px, {len(manifest)} videos, {len(frames)} frames", unit="frames/s",
                  baseline="bare backbone forward on decoded frames",
                  baseline_rate=len(frames) / median(times["bare"]), rate=len(frames) / median(times["cache"]),
                  target=0.85, details={"repeats": repeats, "torch_threads": torch.get_num_threads(),
                                        "seconds": times})


def caching_case(source: Any, work: Path, tag: str, **options: Any) -> Callable[[], float]:
    """A case: cache `source` into a fresh store under `work`, return the seconds of `cache_features` alone.

    The store is deleted after each call, untimed.
    """
    from avlab.store import cache_features

    counter = iter(range(10**6))

    def case() -> float:
        store = work / f"{tag}-{next(counter)}.zarr"
        started = time.perf_counter()
        cache_features(source, store, progress=False, **options)
        seconds = time.perf_counter() - started
        shutil.rmtree(store)
        return seconds

    return case


def reads(root: Path, work: Path, *, visual: str, size: int, num_reads: int, repeats: int) -> list[Figure]:
    """Random clip reads/s of avlab's readers against each baseline layout."""
    import h5py
    import zarr

    from avlab.store import ClipDataset, cache_features
    from avlab.store.reader import to_tensor

    level = "visual_c3"
    store, plain = work / "reads.zarr", work / "reads-uncompressed.zarr"
    ds = cache_features(root, store, visual=visual, size=size, progress=False, audio=(), ground_truth=False)
    cache_features(root, plain, visual=visual, size=size, progress=False, audio=(), ground_truth=False,
                   compression=None)
    counts = ds.num_frames.values.astype(int)
    values = [ds[level][v, 0, :counts[v]].values for v in range(len(counts))]  # (T, C, H, W) each
    npy_dir = work / "npy"
    npy_dir.mkdir()
    for v, array in enumerate(values):
        np.save(npy_dir / f"{v}.npy", array)
    with h5py.File(work / "features.h5", "w") as h5:
        for v, array in enumerate(values):
            h5.create_dataset(str(v), data=array, chunks=(1, *array.shape[1:]))
    rng = np.random.default_rng(0)
    requests = [(int(v), int(rng.integers(0, counts[v] - CLIP + 1))) for v in rng.integers(0, len(counts), num_reads)]

    def tensor(array: np.ndarray) -> torch.Tensor:
        return to_tensor(np.asarray(array))  # the conversion avlab's reader does: figures compare access

    def npy() -> None:  # video_features' layout and loaders: np.load per item
        for v, s in requests:
            tensor(np.load(npy_dir / f"{v}.npy", mmap_mode="r")[s:s + CLIP])

    h5 = h5py.File(work / "features.h5", "r")

    def hdf5() -> None:
        for v, s in requests:
            tensor(h5[str(v)][s:s + CLIP])

    naive = zarr.open_array(store, path=level, mode="r")

    def zarr_naive() -> None:
        for v, s in requests:
            tensor(np.asarray(naive[v, 0, s:s + CLIP]))

    def reader(engine: str, in_memory: bool = False, path: Path = store) -> Callable[[], None]:
        clips = ClipDataset(path, clip_length=CLIP, levels=["c3"], include=[], engine=engine, in_memory=in_memory)
        position = {(v, s): k for k, (v, s) in enumerate(clips.items)}
        for v, s in requests:  # every requested clip must be an item: add the starts it lacks
            if (v, s) not in position:
                clips.items.append((v, s))
                position[(v, s)] = len(clips.items) - 1
        indices = [position[r] for r in requests]

        def read() -> None:
            for k in indices:
                clips[k]

        return read

    baselines = {"npy memmap per video": npy, "h5py, a chunk per frame": hdf5, "naive zarr indexing": zarr_naive}
    readers = {"ClipDataset, direct shard engine, zstd store (default)": reader("direct"),
               "ClipDataset, direct shard engine, uncompressed store": reader("direct", path=plain),
               "ClipDataset, zarr engine, zstd store": reader("zarr"),
               "ClipDataset, in memory": reader("zarr", in_memory=True)}
    cases = {**baselines, **readers}
    for case in cases.values():
        case()  # warm the page cache, shard indexes and memory mode alike
    times = interleaved(cases, repeats)
    h5.close()
    rates = {name: num_reads / median(t) for name, t in times.items()}
    shape = values[0].shape[1:]
    what = f"random {CLIP}-frame clips of {level} {shape} float16 -> float32"
    return [Figure(f"{what}: {name}", unit="clips/s", baseline=baseline, baseline_rate=rates[baseline],
                   rate=rates[name], target=1.0, details={"reads": num_reads, "repeats": repeats})
            for name in readers for baseline in baselines]
