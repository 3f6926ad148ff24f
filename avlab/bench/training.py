"""Benchmark "training": head training from the cache against its compute bound and against end to end.

Two groups of figures (issue 9, figures 1 and 2), every one a rate of training samples per
second in steady state, avlab's and its baseline's measured interleaved in the same run:

1. **Data path.** A system (AViS-Net and the lighter visual-only system, "cpu" sizes) trained
   with `avlab.fit` on a feature store cached from SynthAV (its loaders read the Zarr store,
   build items, collate, and Lightning runs the task's training step), against the head's own
   compute bound: a plain loop of forward, loss, backward and AdamW step of the same task on
   the same batches, already collated in memory. Target >= 0.9x.
2. **Cache against end to end.** The same system trained with `avlab.fit` on features cached
   with a backbone, against `avlab.fit(end_to_end=True)` training that backbone with it from
   decoded frames, plus the decoding of each frame once per epoch. ResNet-18 at 128 px
   (reported) and ResNet-50 at 224 px (target >= 10x).

Steady state: `avlab.fit` runs one more epoch than is timed; the first (Lightning's set-up,
first reads of the store, allocations) is left out, and the plain loop likewise runs one
untimed pass over its batches first. An epoch is timed from Lightning's ``on_train_epoch_start``
to the end of its last batch (`EpochClock`), so it holds every read, collation and step of the
epoch, and not the epoch-end logging.

Example:
    >>> clock = EpochClock()
    >>> clock.samples_per_second(skip=1)
    0.0
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from avlab.bench.harness import BenchContext, Figure, interleaved, median
from avlab.environment import numpy_blas_threads
from avlab.train.clock import EpochClock, seed_everything
from avlab.train.fit import flush_denormals

__all__ = ["NOTES", "run", "torch_threads", "warm_imports"]

NOTES = """\
Training samples/s in steady state; medians of interleaved repetitions. Data: SynthAV (additive
renderer, 2 fps, 4 s clips). Threads: torch.set_num_threads as recorded in each figure's details;
DataLoader workers 0 (fit's default: items are read in the training process).

Data path (target >= 0.9x). avlab: `avlab.fit(store, system, solo_store=...)` as a user calls it
(checkpoint off, no validation): AVDataModule's loaders read the Zarr stores (natural mixtures and
solo clips for mix-and-separate, in memory as fit's default), build items (STFT windows, random
views and gains), collate, and Lightning runs AVSegmentationTask.training_step with AdamW.
Baseline (the head's compute bound): the same task, optimiser and batch size in a plain Python loop
(forward, loss, zero_grad, backward, step) over the same batches, collated once beforehand and held
in memory as tensors. Startup left out of both alike: fit runs E+1 epochs and the first is not
timed; the loop makes one untimed pass first. An avlab epoch is timed from Lightning's
on_train_epoch_start to its last on_train_batch_end (a callback added to fit's Trainer by this
module), so every read, collation and step is in it.

Cache against end to end (target >= 10x at ResNet-50 224 px; ResNet-18 128 px reported). avlab:
`avlab.fit` of a system ("cpu" sizes: AViS-Net, and the visual-only baseline as a light head) on the
natural mixtures of a store cached with the same backbone at the same size (cache_features, random
weights). The ratio is bounded by (decode + backbone + head) / (read + head): the details give the
head's parameter count, since AViS-Net's LoGAN convolution runs at the backbone's C5 width (3x3,
2 x 2048 -> 2048 channels at ResNet-50: 75 M parameters, more FLOPs than ResNet-50 itself). Baseline: avlab's own end-to-end path,
`avlab.fit(end_to_end=True, visual=..., size=...)`: the same system with the backbone trainable
(random weights, its own learning rate), batches of decoded frames. avlab's end-to-end path decodes
every video once when it starts (DecodedFrames: PyAV frames resized to the size, the STFT and
log-mel of the audio, masks); the baseline's rate charges that decoding once per epoch, the least a
loader that decodes per sample pays (its decoding of the split is timed in the same repetitions and
its seconds per frame added for every sample of the timed epochs). The details also give the
end-to-end rate without decoding. Both sides time E steady-state epochs after one untimed epoch;
at most 3 interleaved repetitions here (ResNet-50 end to end is slow on a CPU).
"""

# Every size of the benchmark: full and --quick.
_SIZES = {
    False: {"videos": 6, "epochs": 2, "batch": 16, "systems": ("avisnet", "visual_only"),
            "backbones": (("resnet18", 128, 4), ("resnet50", 224, 3)), "e2e_videos": 2, "e2e_batch": 4,
            "e2e_systems": ("avisnet", "visual_only")},
    True: {"videos": 2, "epochs": 1, "batch": 16, "systems": ("visual_only",),
           "backbones": (("debug", 32, 2),), "e2e_videos": 1, "e2e_batch": 4, "e2e_systems": ("visual_only",)},
}
_FPS, _SECONDS, _STFT_FRAMES = 2, 4.0, 64  # the "seeds" ablation's clips and separation windows




def warm_imports() -> None:
    """Import what training loads lazily on first use (librosa through the inverse STFT of
    validation, matplotlib for loss curves), so that neither side of a figure pays it."""
    import matplotlib.pyplot  # noqa: F401
    import numpy as np

    from avlab.backbones import SeparationSTFT

    SeparationSTFT().inverse(np.zeros((512, 4), np.complex64), 1000)


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[int]:
    """torch's intra-op threads set to `count` within the block (restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield count
    finally:
        torch.set_num_threads(before)


def run(context: BenchContext) -> list[Figure]:
    """Both groups of figures: data path against compute bound, cache against end to end."""
    sizes = _SIZES[context.quick]
    threads = min(2, torch.get_num_threads())
    warm_imports()
    with torch_threads(threads):
        figures = _data_path_figures(context, sizes, threads)
        figures += _end_to_end_figures(context, sizes, threads)
    return figures


# Figure 1: the data path against the head's compute bound.

def _fit_options(batch_size: int, seed: int = 0) -> dict[str, Any]:
    """`avlab.fit` options shared by every timed run: no validation, checkpoint or progress."""
    return {"val_split": None, "batch_size": batch_size, "num_stft_frames": _STFT_FRAMES, "checkpoint": False,
            "progress": False, "seed": seed}


def _data_path_figures(context: BenchContext, sizes: Mapping[str, Any], threads: int) -> list[Figure]:
    from avlab.datasets.synth import generate, load_synth
    from avlab.store import cache_features

    size, videos = 64, sizes["videos"]
    synth = generate(context.work / "synth64", num_videos={"train": videos}, size=size, fps=_FPS, seconds=_SECONDS,
                     renderer="additive", splits=["train"], num_solo={"train": videos})
    options: dict[str, Any] = {"visual": "debug", "size": size, "augment": ("hflip",), "progress": False}
    store = cache_features(synth, context.work / "mix-debug.zarr", **options)
    solo = cache_features(load_synth(synth, split="train", solo=True), context.work / "solo-debug.zarr", **options)
    return [_data_path_figure(context, system, store, solo, sizes=sizes, threads=threads, size=size)
            for system in sizes["systems"]]


def _data_path_figure(context: BenchContext, system: str, store: Any, solo: Any, *, sizes: Mapping[str, Any],
                      threads: int, size: int) -> Figure:
    from avlab.models import system_preset
    from avlab.train import AVDataModule, AVSegmentationTask, fit

    epochs, batch_size = sizes["epochs"], sizes["batch"]
    kwargs = system_preset(system, "cpu")
    runs = context.work / "runs"
    # One step of fit gives the task's full hyperparameters (the sizes fit reads from the store).
    first = fit(store, system, system_kwargs=kwargs, solo_store=solo, max_epochs=1, max_steps=1, root_dir=runs,
                **_fit_options(batch_size))
    hparams = dict(first.task.hparams)
    data = AVDataModule(store, solo_store=solo, val_split=None, batch_size=batch_size, num_stft_frames=_STFT_FRAMES)
    data.setup("fit")
    data.set_epoch(0)
    batches = list(data.train_dataloader())  # collated once, held as tensors
    samples_per_pass = sum(int(b["logmel"].shape[0]) for b in batches)

    def plain_loop() -> float:
        seed_everything(0)
        task = AVSegmentationTask(**hparams).train()
        optimiser = task.configure_optimizers()

        def one_pass() -> None:
            for batch in batches:
                loss = task.losses(batch, task(batch))["loss"]
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()

        with flush_denormals(), numpy_blas_threads(1):  # as fit trains
            one_pass()  # startup, as fit's first epoch
            started = time.perf_counter()
            for _ in range(epochs):
                one_pass()
            return time.perf_counter() - started

    rates: dict[str, list[float]] = {"avlab": []}

    def avlab_fit() -> float:
        clock = EpochClock()
        fit(store, system, system_kwargs=kwargs, solo_store=solo, max_epochs=epochs + 1, root_dir=runs,
            **_fit_options(batch_size), callbacks=[clock])
        rates["avlab"].append(clock.samples_per_second(skip=1))
        return clock.timed(skip=1)[0]

    times = interleaved({"plain loop": plain_loop, "avlab.fit": avlab_fit}, context.repeats)
    loop_rates = [epochs * samples_per_pass / t for t in times["plain loop"]]
    return Figure(
        name=f"head training from the cache, {system} (cpu sizes), debug features @ {size} px",
        unit="samples/s",
        baseline="same task, same batches collated in memory, plain forward/backward/AdamW loop",
        baseline_rate=median(loop_rates),
        rate=median(rates["avlab"]),
        target=0.9,
        details={"system": system, "system_preset": "cpu", "batch_size": batch_size, "timed_epochs": epochs,
                 "samples_per_epoch": samples_per_pass, "batches_per_epoch": len(batches),
                 "videos": sizes["videos"], "solo_clips": sizes["videos"],
                 "num_stft_frames": _STFT_FRAMES, "solo_store": True, "torch_threads": threads,
                 "repeats": context.repeats, "baseline_rates": loop_rates, "avlab_rates": rates["avlab"]},
    )


# Figure 2: head training from the cache against training end to end.

def _end_to_end_figures(context: BenchContext, sizes: Mapping[str, Any], threads: int) -> list[Figure]:
    from avlab.datasets.synth import generate

    largest = max(size for _, size, _ in sizes["backbones"])
    synth = generate(context.work / f"synth-e2e{largest}", num_videos={"train": sizes["e2e_videos"]}, size=largest,
                     fps=_FPS, seconds=_SECONDS, renderer="additive", splits=["train"])
    return [_end_to_end_figure(context, synth, visual, size, batches, system, sizes=sizes, threads=threads)
            for visual, size, batches in sizes["backbones"] for system in sizes["e2e_systems"]]


def _end_to_end_figure(context: BenchContext, synth: Path, visual: str, size: int, num_batches: int, system: str, *,
                       sizes: Mapping[str, Any], threads: int) -> Figure:
    from avlab.models import system_preset
    from avlab.store import cache_features
    from avlab.train import DecodedFrames, fit

    epochs, batch_size = sizes["epochs"], sizes["e2e_batch"]
    kwargs = system_preset(system, "cpu")
    path = context.work / f"{visual}-{size}.zarr"
    store = cache_features(synth, path, visual=visual, size=size, progress=False)  # a no-op once cached
    runs = context.work / "runs"
    common = {**_fit_options(batch_size), "limit_train_batches": num_batches, "root_dir": runs}
    measured: dict[str, list[Any]] = {"cache": [], "e2e": [], "decode": []}

    def decode() -> None:
        frames = DecodedFrames(synth, split="train", size=size)
        measured["decode"].append(len(frames))

    def end_to_end() -> float:
        clock = EpochClock()
        fit(synth, system, system_kwargs=kwargs, end_to_end=True, visual=visual, size=size,
            max_epochs=epochs + 1, **common, callbacks=[clock])
        measured["e2e"].append(clock.timed(skip=1))
        return clock.timed(skip=1)[0]

    def from_cache() -> float:
        clock = EpochClock()
        result = fit(store, system, system_kwargs=kwargs, max_epochs=epochs + 1, **common, callbacks=[clock])
        measured["cache"].append(clock.timed(skip=1))
        measured["head_parameters"] = [sum(p.numel() for p in result.task.system.parameters())]
        return clock.timed(skip=1)[0]

    # At most 3 repetitions: ResNet-50 trained end to end on two cores takes most of a minute a fit.
    repeats = min(context.repeats, 3)
    times = interleaved({"decode": decode, "end to end": end_to_end, "from the cache": from_cache}, repeats)
    decode_per_frame = median([t / n for t, n in zip(times["decode"], measured["decode"], strict=True)])
    e2e_train = [n / s for s, n in measured["e2e"]]
    e2e_rates = [n / (s + decode_per_frame * n) for s, n in measured["e2e"]]
    cache_rates = [n / s for s, n in measured["cache"]]
    return Figure(
        name=f"head training from the cache vs end to end, {visual} @ {size} px, {system} (cpu sizes)",
        unit="samples/s",
        baseline=f"avlab.fit(end_to_end=True): decode + {visual} forward/backward + the same head",
        baseline_rate=median(e2e_rates),
        rate=median(cache_rates),
        target=10.0 if visual == "resnet50" else None,
        details={"visual": visual, "size": size, "system": system, "system_preset": "cpu", "batch_size": batch_size,
                 "batches_per_epoch": num_batches, "timed_epochs": epochs, "weights": "random",
                 "decode_seconds_per_frame": decode_per_frame, "head_parameters": measured["head_parameters"][0],
                 "end_to_end_rate_without_decoding": median(e2e_train), "torch_threads": threads,
                 "repeats": repeats, "baseline_rates": e2e_rates, "avlab_rates": cache_rates},
    )
