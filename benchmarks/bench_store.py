"""The feature store's two figures (issue: feature store), each against its baseline, interleaved.

1. Caching throughput: `cache_features` (decode, backbone, STFT and log-mel, ground truth,
   zstd, shard writes, commits, sealing) against the bare backbone forward on the same frames
   already decoded in memory, in frames/s. Target >= 0.85x.
2. Training reads: random 8-frame clips/s of one level's features through avlab's
   `ClipDataset` (direct shard engine, zarr engine, in-memory) against one memory-mapped .npy
   per video (the video_features layout), h5py with one chunk per frame, and naive zarr
   indexing of the same arrays. Target: faster than all three baselines.

Usage: python benchmarks/bench_store.py [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import interleaved, median, record  # noqa: E402

from avlab.backbones import visual_bundle  # noqa: E402
from avlab.datasets.synth import generate, load_synth  # noqa: E402
from avlab.store import ClipDataset, cache_features  # noqa: E402

CLIP = 8


def caching_figure(root: Path, work: Path, *, visual: str, size: int, repeats: int) -> dict:
    manifest = load_synth(root, split="train")
    frames = np.concatenate([r.load_frames(size=size).frames for r in manifest])  # (N, H, W, 3)
    model = visual_bundle(visual).load(None)
    batch = 32

    def bare() -> None:
        with torch.inference_mode():
            for start in range(0, len(frames), batch):
                images = torch.from_numpy(frames[start : start + batch]).permute(0, 3, 1, 2).float().div_(255)
                model(images)

    counter = iter(range(10**6))

    def cache() -> None:
        store = work / f"cache-{next(counter)}.zarr"
        cache_features(root, store, visual=visual, size=size, batch_size=batch, progress=False)
        shutil.rmtree(store)

    cache()  # warm: imports, soundfont, model construction
    times = interleaved({"bare backbone forward": bare, "cache_features": cache}, repeats)
    bare_fps = len(frames) / median(times["bare backbone forward"])
    cache_fps = len(frames) / median(times["cache_features"])
    return {"figure": f"caching {visual} @ {size} px, {len(manifest)} videos, {len(frames)} frames",
            "baseline frames/s": bare_fps, "avlab frames/s": cache_fps, "ratio": cache_fps / bare_fps,
            "target": ">= 0.85"}


def read_figures(root: Path, work: Path, *, visual: str, size: int, num_reads: int, repeats: int) -> list[dict]:
    """Every reader hands back the same thing: a float32 torch tensor (8, C, H, W) per clip."""
    import h5py
    import zarr

    level = "visual_c3"
    stores = {}
    for compression in ("zstd", None):
        stores[compression] = work / f"reads-{compression}.zarr"
        ds = cache_features(root, stores[compression], visual=visual, size=size, progress=False, audio=(),
                            ground_truth=False, compression=compression)
    counts = ds.num_frames.values.astype(int)
    values = [ds[level][v, 0, : counts[v]].values for v in range(len(counts))]  # (T, C, H, W) each
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
        # The conversion avlab's reader uses, so the figures compare data access only.
        return torch.from_numpy(np.asarray(array).astype(np.float32))

    def npy() -> None:  # video_features' layout and loaders: np.load per item
        for v, s in requests:
            tensor(np.load(npy_dir / f"{v}.npy", mmap_mode="r")[s : s + CLIP])

    h5 = h5py.File(work / "features.h5", "r")

    def hdf5() -> None:
        for v, s in requests:
            tensor(h5[str(v)][s : s + CLIP])

    naive = zarr.open_array(stores["zstd"], path=level, mode="r")

    def zarr_naive() -> None:
        for v, s in requests:
            tensor(naive[v, 0, s : s + CLIP])

    def reader(store: Path, engine: str, in_memory: bool = False):  # type: ignore[no-untyped-def]
        clips = ClipDataset(store, clip_length=CLIP, levels=["c3"], include=[], engine=engine, in_memory=in_memory)
        position = {(v, s): k for k, (v, s) in enumerate(clips.items)}
        for v, s in requests:  # every requested clip must be an item: add the starts it lacks
            if (v, s) not in position:
                clips.items.append((v, s))
                position[(v, s)] = len(clips.items) - 1
        indices = [position[r] for r in requests]

        def run() -> None:
            for k in indices:
                clips[k]

        return run

    cases = {"npy memmap per video": npy, "h5py chunked": hdf5, "zarr naive": zarr_naive,
             "avlab direct, zstd store": reader(stores["zstd"], "direct"),
             "avlab direct, uncompressed store": reader(stores[None], "direct"),
             "avlab zarr engine, zstd store": reader(stores["zstd"], "zarr"),
             "avlab in-memory": reader(stores["zstd"], "zarr", in_memory=True)}
    for case in cases.values():
        case()  # warm the page cache, shard indexes and memory mode alike
    times = interleaved(cases, repeats)
    rates = {name: num_reads / median(t) for name, t in times.items()}
    best_baseline = max(rates[n] for n in ("npy memmap per video", "h5py chunked", "zarr naive"))
    shape = values[0].shape[1:]
    return [{"figure": f"random {CLIP}-frame clips of {level} {shape} float16 -> float32 tensors", "reader": name,
             "clips/s": rate, "vs best baseline": rate / best_baseline} for name, rate in rates.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data, few repetitions")
    args = parser.parse_args()
    num_videos, repeats, reads = (8, 3, 200) if args.quick else (24, 5, 1000)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        root = generate(work / "synth", num_videos=num_videos, size=128, seconds=2.0, splits=["train"], num_solo=0)
        figures = [caching_figure(root, work, visual="resnet18", size=128, repeats=repeats)]
        if not args.quick:  # the seeds' backbone and input size, on fewer videos
            small = generate(work / "synth224", num_videos=6, size=224, seconds=2.0, splits=["train"], num_solo=0)
            figures.append(caching_figure(small, work, visual="resnet50", size=224, repeats=3))
        figures += read_figures(root, work, visual="resnet18", size=128, num_reads=reads, repeats=repeats)
    path = record("bench_store", figures, quick=args.quick,
                  notes="Medians of interleaved repetitions; ratios are against baselines run in the same process.")
    print(path.read_text())


if __name__ == "__main__":
    main()
