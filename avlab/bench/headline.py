"""Benchmark "headline": `avlab ablate --preset seeds` against training the same tables end to end.

Issue 9, figure 3: the wall time of the whole seeds ablation (one caching pass: fine-tuning the
debug backbone, caching every dataset; then every run of every table for every seed) against
training the same runs end to end (decoded frames, the backbone trained with each system),
as ablations per hour; target >= 10x.

A seeds ablation takes hours, so the full figure combines what was recorded with what is
measured now, and says which is which in its details:

- read from the committed record (``benchmarks/results/ablate_synthav_cpu/runs.csv``): the
  seconds of every run and seed as `avlab ablate` timed them (51 distinct runs; rows shared
  between tables, such as AViS-Net with LoGAN in "table1" and "fusion", trained once);
- measured now, on a quarter of the preset's data (12 of 48 training clips per dataset, the
  same sizes, clip lengths and frame rates) and scaled by the number of clips: the caching
  pass, and steady-state seconds per training sample of one representative system per kind of
  run, cached and end to end, interleaved: AViS-Net on "mix" (with solo clips), AViS-Net on
  "hard", AFCV on "vis"; plus the seconds to decode a clip for end-to-end training.

The end-to-end time of a run is decoding its training clips once plus epochs x samples per
epoch x the measured seconds per sample of its kind; MaskTrack R-CNN trains end to end in the
ablation already, so its recorded seconds count on both sides.

With ``--quick`` every number is measured now: a tiny real ablation (the "quick" preset, one
seed, the "hide_and_detect" table, two clips) timed whole against `avlab.fit(end_to_end=True)`
of the same runs, interleaved.
"""

from __future__ import annotations

import csv
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from avlab.bench.harness import BenchContext, Figure, interleaved, median
from avlab.bench.training import torch_threads, warm_imports
from avlab.train.clock import EpochClock

__all__ = ["NOTES", "RECORD", "recorded_runs", "run"]

RECORD = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "ablate_synthav_cpu" / "runs.csv"

NOTES = """\
Ablations per hour (3600 / wall seconds of the whole ablation), avlab against end to end.

avlab: `avlab ablate --preset seeds` = the caching pass + every distinct run and seed. The run
seconds are read from the committed record benchmarks/results/ablate_synthav_cpu/runs.csv (51
distinct runs over 3 seeds; run on a 2-core machine as 3 processes side by side, one torch thread
each, under other load; so they include validation every epoch, checkpoints and startup). The
caching pass is not in that record, so it is measured now on a quarter of the preset's data (12 of
48 training clips and 3 of 12 validation clips per dataset, same sizes) and multiplied by 4: caching
"mix", its solo clips and "hard" with the debug backbone at 64 px (flipped views), and "vis" with
ResNet-18 at 128 px; the fine-tuning of the debug backbone (3 end-to-end epochs of AViS-Net on
"mix") is estimated as 3 epochs x its samples x the end-to-end seconds per sample measured for the
"mix" kind, plus decoding. Data generation is left out of both sides (both need the clips).

End to end: every run of the record trained with `avlab.fit(end_to_end=True)` on decoded frames
(the debug backbone at 64 px for "mix" and "hard", ResNet-18 at 128 px for "vis", random weights,
trainable). Per kind of run, one representative system is measured now, interleaved with the same
system trained from the cache, on the quarter data: AViS-Net on "mix" (mix-and-separate with the
solo clips), AViS-Net on "hard", AFCV on "vis" ("cpu" sizes, the preset's batch sizes); steady
state (one untimed epoch of 2 batches, then one timed epoch of 2 batches; medians of up to 3
interleaved repetitions). A run's end-to-end seconds = decoding
its training clips once + its epochs x samples per epoch x that seconds per sample. This leaves out
validation, checkpoints and startup, which the recorded avlab seconds include, so it favours the
end-to-end side. MaskTrack R-CNN (end to end in the ablation too) counts its recorded seconds on
both sides. The details also give an all-measured-now comparison ("all_measured_now"): the avlab
runs estimated the same way as the end-to-end ones, from the cached seconds per sample measured in
the same repetitions. It is the like-for-like ratio: the headline ratio sets seconds recorded under
one machine's conditions against seconds measured under today's.

--quick: a real tiny ablation ("quick" preset, seed 0, table hide_and_detect: two AViS-Net runs on
two clips at 32 px, tiny sizes, one epoch, caching included, data generated beforehand), its wall
time against fit(end_to_end=True) of the same two runs with the same options, interleaved.
"""

_FRACTION = 4  # the quarter of the preset's clips measured now
_MEASURED_BATCHES = 2  # timed batches per epoch of each rate measurement


def recorded_runs(path: str | os.PathLike[str] = RECORD) -> dict[tuple[str, int], float]:
    """Seconds of every distinct (run key, seed) of a recorded ablation's ``runs.csv``.

    Rows shared between tables name the same run and seed: they count once, as they trained once.
    """
    runs: dict[tuple[str, int], float] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for line in csv.DictReader(f):
            runs[(line["run"], int(line["seed"]))] = float(line["seconds"])
    return runs


def run(context: BenchContext) -> list[Figure]:
    """The headline figure: the seeds ablation (full) or a tiny real ablation (quick)."""
    threads = min(2, torch.get_num_threads())
    warm_imports()
    with torch_threads(threads):
        if context.quick:
            return [_tiny_ablation_figure(context, threads)]
        return [_seeds_figure(context, threads)]


def _kind(run_key: str) -> str:
    """"mix", "hard", "vis", or "masktrack" (end to end on both sides)."""
    data, system = run_key.split("-")[:2]
    return "masktrack" if system == "masktrack_rcnn" else data


# The full figure: the recorded seeds ablation against end-to-end estimates measured now.

def _seeds_figure(context: BenchContext, threads: int) -> Figure:
    from avlab.experiments.ablate import PRESETS

    preset = PRESETS["seeds"]
    record = recorded_runs()
    counts: dict[str, int] = {}
    for key, _ in record:
        counts[_kind(key)] = counts.get(_kind(key), 0) + 1
    masktrack_seconds = sum(s for (key, _), s in record.items() if _kind(key) == "masktrack")

    small = replace(preset, num_videos=preset.num_videos // _FRACTION)
    data = _generate(context.work / "data", small, ("mix", "hard", "vis"))
    started = time.perf_counter()
    stores = _cache_all(context.work / "featurestore", data, small)
    caching_measured = time.perf_counter() - started

    per_kind = {
        "mix": _kind_rates(context, "avisnet", data["mix"], stores["mix"], small, visual=preset.visual,
                           size=preset.size, solo=True),
        "hard": _kind_rates(context, "avisnet", data["hard"], stores["hard"], small, visual=preset.visual,
                            size=preset.size, solo=False),
        "vis": _kind_rates(context, "afcv", data["vis"], stores["vis"], small, visual=preset.vis_visual,
                           size=preset.vis_size, solo=False),
    }
    epochs = {"mix": preset.epochs, "hard": preset.epochs, "vis": preset.vis_epochs}
    for kind, rates in per_kind.items():
        samples = rates["samples_per_epoch_measured_data"] * _FRACTION
        rates["samples_per_epoch"] = samples
        rates["epochs"] = epochs[kind]
        rates["end_to_end_run_seconds"] = (rates["decode_seconds_per_clip"] * preset.num_videos
                                           + epochs[kind] * samples * rates["end_to_end_seconds_per_sample"])
        rates["cached_run_seconds"] = epochs[kind] * samples * rates["cached_seconds_per_sample"]
        rates["runs"] = counts.get(kind, 0)
    mix = per_kind["mix"]
    finetune = (mix["decode_seconds_per_clip"] * preset.num_videos
                + preset.finetune_epochs * mix["samples_per_epoch"] * mix["end_to_end_seconds_per_sample"])
    caching = caching_measured * _FRACTION + finetune

    avlab_seconds = caching + sum(record.values())
    e2e_seconds = masktrack_seconds + sum(r["runs"] * r["end_to_end_run_seconds"] for r in per_kind.values())
    now_only = caching + masktrack_seconds + sum(r["runs"] * r["cached_run_seconds"] for r in per_kind.values())
    return Figure(
        name=f"avlab ablate --preset seeds: {len(record)} runs ({len(preset.seeds)} seeds), caching pass included",
        unit="ablations/h",
        baseline="the same runs trained end to end (decode + backbone forward/backward + head), per-run times x runs",
        baseline_rate=3600 / e2e_seconds,
        rate=3600 / avlab_seconds,
        target=10.0,
        details={
            "record": str(RECORD.relative_to(RECORD.parents[3])),
            "read_from_record": {"run_seconds_total": sum(record.values()), "runs": len(record),
                                 "runs_per_kind": counts, "masktrack_seconds_total": masktrack_seconds},
            "measured_now": {
                "fraction_of_clips": 1 / _FRACTION,
                "caching_seconds_measured": caching_measured,
                "caching_seconds_scaled": caching_measured * _FRACTION,
                "finetune_seconds_estimated": finetune,
                "per_kind": per_kind,
            },
            "runs": {kind: r["runs"] for kind, r in per_kind.items()} | {"masktrack": counts.get("masktrack", 0)},
            "avlab_seconds": avlab_seconds,
            "end_to_end_seconds": e2e_seconds,
            "all_measured_now": {"avlab_seconds": now_only, "ratio": e2e_seconds / now_only},
            "torch_threads": threads,
            "repeats": min(context.repeats, 3),
        },
    )


def _generate(root: Path, preset: Any, names: Sequence[str]) -> dict[str, Path]:
    """SynthAV datasets as `avlab ablate` makes them ("mix" with solo clips, "hard", "vis")."""
    from avlab.datasets.synth import generate

    paths = {}
    for name in names:
        counts = {"train": preset.num_videos, "val": max(2, preset.num_videos // 4)}
        hard: dict[str, Any] = {"occlusion": 1.0, "duplicates": 1.0} if name == "hard" else {}
        paths[name] = generate(root / name, num_videos=counts, splits=["train", "val"],
                               size=preset.vis_size if name == "vis" else preset.size, fps=preset.fps,
                               seconds=preset.seconds, renderer="additive",
                               num_solo=counts if name == "mix" else 0, seed=0, **hard)
    return paths


def _cache_all(folder: Path, data: Mapping[str, Path], preset: Any) -> dict[str, tuple[Any, Any]]:
    """The ablation's caching pass (random debug weights stand in for the fine-tuned ones)."""
    from avlab.datasets.synth import load_synth
    from avlab.store import cache_features

    options: dict[str, Any] = {"visual": preset.visual, "size": preset.size, "augment": ("hflip",), "progress": False}
    solo = load_synth(data["mix"], split=["train", "val"], solo=True)
    return {
        "mix": (cache_features(data["mix"], folder / "mix.zarr", **options),
                cache_features(solo, folder / "mix-solo.zarr", **options)),
        "hard": (cache_features(data["hard"], folder / "hard.zarr", **options), None),
        "vis": (cache_features(data["vis"], folder / "vis.zarr", visual=preset.vis_visual, size=preset.vis_size,
                               augment=("hflip",), progress=False), None),
    }


def _kind_rates(context: BenchContext, system: str, synth: Path, stores: tuple[Any, Any], preset: Any, *,
                visual: str, size: int, solo: bool) -> dict[str, Any]:
    """Seconds per training sample of `system`, cached and end to end; decoding seconds per clip."""
    from avlab.datasets.synth import load_synth
    from avlab.models import system_preset
    from avlab.train import AVDataModule, DecodedFrames, VISDataModule, fit

    store, solo_store = stores
    vis = system == "afcv"
    batch_size = preset.vis_batch_size if vis else preset.batch_size
    raw_solo = load_synth(synth, split="train", solo=True) if solo else None
    common: dict[str, Any] = {"system_kwargs": system_preset(system, preset.system_preset), "val_split": None,
                              "batch_size": batch_size, "checkpoint": False, "progress": False, "seed": 0,
                              "max_epochs": 2, "limit_train_batches": _MEASURED_BATCHES,
                              "root_dir": context.work / "runs"}
    if not vis:
        common["num_stft_frames"] = preset.num_stft_frames
    measured: dict[str, list[float]] = {"cached": [], "end to end": [], "decode": []}

    def clocked(source: Any, **options: Any) -> float:
        clock = EpochClock()
        fit(source, system, **common, **options, callbacks=[clock])
        seconds, samples = clock.timed(skip=1)
        return seconds / samples

    def cached() -> None:
        measured["cached"].append(clocked(store, solo_store=solo_store))

    def end_to_end() -> None:
        measured["end to end"].append(clocked(synth, solo_store=raw_solo, end_to_end=True, visual=visual, size=size))

    def decode() -> float:
        started = time.perf_counter()
        DecodedFrames(synth, split="train", size=size)
        if raw_solo is not None:
            DecodedFrames(raw_solo, size=size)
        measured["decode"].append((time.perf_counter() - started) / preset.num_videos)
        return time.perf_counter() - started

    # At most 3 repetitions per kind: three kinds of nine fits each keep the figure within minutes.
    interleaved({"cached": cached, "end to end": end_to_end, "decode": decode}, min(context.repeats, 3))
    if vis:
        vis_data = VISDataModule(store, val_split=None, batch_size=batch_size)
        vis_data.setup("fit")
        samples = len(vis_data.train_set)
    else:
        frames = AVDataModule(store, solo_store=solo_store, val_split=None, batch_size=batch_size,
                              num_stft_frames=preset.num_stft_frames)
        frames.setup("fit")
        samples = sum(len(d) for d in frames.train_sets)  # type: ignore[misc, arg-type]
    return {"system": system, "visual": visual, "size": size, "batch_size": batch_size, "solo_clips": solo,
            "cached_seconds_per_sample": median(measured["cached"]),
            "end_to_end_seconds_per_sample": median(measured["end to end"]),
            "decode_seconds_per_clip": median(measured["decode"]),
            "samples_per_epoch_measured_data": samples,
            "cached_repeats": measured["cached"], "end_to_end_repeats": measured["end to end"]}


# The quick figure: a tiny real ablation, timed whole, against the same runs end to end.

def _tiny_ablation_figure(context: BenchContext, threads: int) -> Figure:
    from avlab.experiments.ablate import PRESETS, TABLES, run_ablation
    from avlab.models import system_preset
    from avlab.train import fit

    table = "hide_and_detect"
    preset = replace(PRESETS["quick"], seeds=(0,), num_videos=2)
    runs = list(dict.fromkeys(row.run for row in TABLES[table]))
    data = _generate(context.work / "data", preset, ("hard",))
    counter = iter(range(10**6))

    def ablate() -> float:
        root = context.work / f"ablate-{next(counter)}"
        (root / "data").mkdir(parents=True)
        (root / "data" / "hard").symlink_to(data["hard"], target_is_directory=True)
        started = time.perf_counter()
        run_ablation(root, preset, tables=[table], progress=False)
        elapsed = time.perf_counter() - started
        shutil.rmtree(root)
        return elapsed

    def end_to_end() -> float:
        started = time.perf_counter()
        for one in runs:
            # The ablation's fit call for the run, with end_to_end=True.
            fit(data[one.data], one.system, system_kwargs={**system_preset(one.system, preset.system_preset),
                                                           **dict(one.options)},
                max_epochs=preset.epochs, batch_size=preset.batch_size, num_stft_frames=preset.num_stft_frames,
                separation_eval_items=preset.separation_eval_items, seed=0, progress=False,
                root_dir=context.work / "e2e-runs", end_to_end=True, visual=preset.visual, size=preset.size)
        return time.perf_counter() - started

    times = interleaved({"end to end": end_to_end, "avlab ablate": ablate}, context.repeats)
    return Figure(
        name=f"tiny ablation (quick preset, {table}, {len(runs)} runs, 1 seed, 2 clips), caching included",
        unit="ablations/h",
        baseline="the same runs trained end to end with avlab.fit(end_to_end=True)",
        baseline_rate=3600 / median(times["end to end"]),
        rate=3600 / median(times["avlab ablate"]),
        target=10.0,
        details={"runs": [r.key for r in runs], "measured_now": True, "avlab_seconds": times["avlab ablate"],
                 "end_to_end_seconds": times["end to end"], "torch_threads": threads, "repeats": context.repeats,
                 "preset": "quick", "num_videos": preset.num_videos, "size": preset.size, "visual": preset.visual},
    )
