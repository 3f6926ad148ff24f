"""Train and score every system on a generated SynthAV, from the command line, in minutes on a CPU.

Generates SynthAV (mixtures and solo clips), optionally fine-tunes the visual backbone end to
end first (FINDINGS.md's two-stage pipeline), caches the features (with flipped views of the
training frames), trains each system with `fit`, and prints one table: mIoU, accuracy at IoU
0.75, and SDR / SIR / SAR / NSDR on fixed mixtures of validation solo clips (Sound of Pixels
protocol). Results also go to ``{root}/results.json``.

Run::

    python -m avlab.train.benchmark --root scratch/bench --num-videos 32 --size 64 --epochs 6
    python -m avlab.train.benchmark --task vis --root scratch/vis --num-videos 32 --masktrack-epochs 4

``--task vis`` trains AFCV, CrossVIS and CondInst-VIS (and MaskTrack R-CNN end to end) and
prints YouTube-VIS AP/AR over all instances and over sounding instances (``vis_results.json``).

Example:
    >>> from avlab.train.benchmark import format_table
    >>> print(format_table([{"system": "visual_only", "seconds": 1.0, "val/miou": 0.5}]))
    | system | train s | mIoU | acc@0.75 | mIoU silent | acc@0.75 silent | SDR | SIR | SAR | NSDR | SDR mix |
    |---|---|---|---|---|---|---|---|---|---|---|
    | visual_only | 1 | 0.500 | - | - | - | - | - | - | - | - |
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from avlab.datasets.synth import generate, load_synth
from avlab.models import list_systems, system_preset
from avlab.store import cache_features
from avlab.train.finetune import finetune_once
from avlab.train.fit import fit

__all__ = ["format_table", "format_vis_table", "main", "run_benchmark", "run_vis_benchmark"]

_COLUMNS = (  # metric, header, format
    ("val/miou", "mIoU", "{:.3f}"),
    ("val/acc_iou75", "acc@0.75", "{:.3f}"),
    ("val/miou_silent", "mIoU silent", "{:.3f}"),
    ("val/acc_iou75_silent", "acc@0.75 silent", "{:.3f}"),
    ("val/sdr", "SDR", "{:.2f}"),
    ("val/sir", "SIR", "{:.2f}"),
    ("val/sar", "SAR", "{:.2f}"),
    ("val/nsdr", "NSDR", "{:.2f}"),
    ("val/sdr_mix", "SDR mix", "{:.2f}"),
)


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A markdown table of benchmark rows ("-" where a figure is missing)."""
    lines = ["| system | train s | " + " | ".join(h for _, h, _ in _COLUMNS) + " |",
             "|---|---|" + "---|" * len(_COLUMNS)]
    for row in rows:
        cells = [fmt.format(row[key]) if key in row else "-" for key, _, fmt in _COLUMNS]
        lines.append(f"| {row['system']} | {row['seconds']:.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _synth(root: Path, num_videos: int, *, size: int, fps: float, seconds: float, seed: int, solo: bool,
           progress: bool) -> Path:
    """SynthAV under ``root/synth`` (reused when there): train and val (a quarter), solo clips if `solo`."""
    synth = root / "synth"
    if not (synth / "dataset_card.json").is_file():
        counts = {"train": num_videos, "val": max(2, num_videos // 4)}
        generate(synth, num_videos=counts, size=size, fps=fps, seconds=seconds, renderer="additive",
                 splits=["train", "val"], seed=seed, num_solo=counts if solo else 0, progress=progress)
    return synth


def run_benchmark(
    root: str | Path,
    *,
    systems: Sequence[str] | None = None,
    num_videos: int = 32,
    size: int = 64,
    fps: float = 4,
    seconds: float = 2.0,
    epochs: int = 6,
    batch_size: int = 16,
    lr: float = 1e-3,
    preset: str = "cpu",
    visual: str = "debug",
    finetune_epochs: int = 0,
    separation_eval_items: int = 8,
    num_stft_frames: int | None = None,
    system_options: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Generate, cache, train and score; returns one row of figures per system.

    Args:
        root: Working folder (data, stores, runs, results.json).
        systems: Systems to train (default: all registered).
        num_videos: Training clips (and as many solo clips); validation gets a quarter.
        size: Frame size.
        fps: Frame rate.
        seconds: Clip length.
        epochs: Training epochs per system.
        batch_size: Frames per batch.
        lr: Learning rate.
        preset: System size preset (`avlab.models.PRESETS`).
        visual: Backbone bundle.
        finetune_epochs: Epochs of end-to-end backbone fine-tuning before caching (0: cache
            the bundle's random weights); every system then starts from the fine-tuned
            system's matching weights (the audio encoder). Reused from ``finetune.json``.
        separation_eval_items: Validation solo mixtures scored for separation.
        num_stft_frames: T of the separation windows (None: the whole clip, rounded up).
        system_options: Per system, keyword options over the preset's (e.g. ``{"avisnet":
            {"fusion_levels": ["c3", "c4", "c5"]}}``).
        seed: Seed of the data and of every run.
        progress: Progress bars.
    """
    root = Path(root)
    synth = _synth(root, num_videos, size=size, fps=fps, seconds=seconds, seed=seed, solo=True, progress=progress)
    solo = load_synth(synth, split=["train", "val"], solo=True)
    weights = init_from = None
    rows: list[dict[str, Any]] = []
    if finetune_epochs > 0:  # a finished fine-tuning is reused on a rerun
        tuned_kwargs = {**system_preset("avisnet", preset), **dict((system_options or {}).get("avisnet", {}))}
        tuned = finetune_once(root / "finetune.json", synth, visual=visual, system_kwargs=tuned_kwargs, size=size,
                              solo_source=solo, max_epochs=finetune_epochs, batch_size=batch_size, lr=lr, seed=seed,
                              separation_eval_items=separation_eval_items, progress=progress,
                              num_stft_frames=num_stft_frames, root_dir=root / "runs" / "finetune",
                              output=root / f"{visual}-finetuned.pt")
        # Heads start from the fine-tuned system's matching weights (its audio encoder above all).
        weights, init_from = tuned.weights, tuned.checkpoint
        rows.append({"system": f"avisnet end to end ({visual})", "seconds": tuned.seconds, **tuned.metrics})
    tag = "ft" if weights is not None else "random"
    options: dict[str, Any] = {"visual": visual, "size": size, "weights": weights, "progress": progress}
    mixtures = cache_features(synth, root / f"mix-{visual}-{tag}.zarr", augment=("hflip",), **options)
    solos = cache_features(solo, root / f"solo-{visual}-{tag}.zarr", augment=("hflip",), **options)
    overrides = {name: dict(options) for name, options in (system_options or {}).items()}
    for name in systems or list_systems("segmentation"):
        started = time.perf_counter()
        kwargs = {**system_preset(name, preset), **overrides.get(name, {})}
        result = fit(mixtures, name, system_kwargs=kwargs, solo_store=solos, max_epochs=epochs,
                     num_stft_frames=num_stft_frames, init_from=init_from,
                     batch_size=batch_size, lr=lr, seed=seed, separation_eval_items=separation_eval_items,
                     progress=progress, root_dir=root / "runs")
        rows.append({"system": name, "seconds": time.perf_counter() - started, **result.metrics,
                     "checkpoint": str(result.checkpoint)})
    (root / "results.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return rows


_VIS_COLUMNS = (  # metric, header
    ("val/ap", "AP"), ("val/ap50", "AP50"), ("val/ap75", "AP75"), ("val/ar1", "AR1"), ("val/ar10", "AR10"),
    ("val/ap_sounding", "AP sounding"), ("val/ar10_sounding", "AR10 sounding"),
)


def format_vis_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A markdown table of video instance segmentation rows ("-" where a figure is missing).

    Example:
        >>> print(format_vis_table([{"system": "crossvis", "seconds": 2.0, "val/ap": 0.25}]))
        | system | train s | AP | AP50 | AP75 | AR1 | AR10 | AP sounding | AR10 sounding |
        |---|---|---|---|---|---|---|---|---|
        | crossvis | 2 | 0.250 | - | - | - | - | - | - |
    """
    lines = ["| system | train s | " + " | ".join(h for _, h in _VIS_COLUMNS) + " |",
             "|---|---|" + "---|" * len(_VIS_COLUMNS)]
    for row in rows:
        cells = [f"{row[key]:.3f}" if key in row else "-" for key, _ in _VIS_COLUMNS]
        lines.append(f"| {row['system']} | {row['seconds']:.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_vis_benchmark(
    root: str | Path,
    *,
    systems: Sequence[str] | None = None,
    num_videos: int = 32,
    size: int = 64,
    fps: float = 4,
    seconds: float = 2.0,
    epochs: int = 6,
    batch_size: int = 8,
    lr: float = 1e-3,
    preset: str = "cpu",
    visual: str = "debug",
    weights: str | Path | None = None,
    masktrack_epochs: int = 0,
    seed: int = 0,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Video instance segmentation on SynthAV: AFCV and its baselines, YouTube-VIS AP/AR per system.

    Args:
        root: Working folder (data, store, runs, vis_results.json).
        systems: VIS systems to train (default: all, `avlab.models.list_systems("vis")`).
        num_videos: Training clips; validation gets a quarter.
        size, fps, seconds: SynthAV's frames.
        epochs: Training epochs per system.
        batch_size: Frame pairs per batch.
        lr: Learning rate.
        preset: System size preset.
        visual: Backbone bundle of the cache.
        weights: Backbone weights to cache with (None: the bundle's random weights).
        masktrack_epochs: Epochs of the MaskTrack R-CNN baseline trained end to end (0: skip).
        seed: Seed of the data and every run.
        progress: Progress bars.
    """
    root = Path(root)
    synth = _synth(root, num_videos, size=size, fps=fps, seconds=seconds, seed=seed, solo=False, progress=progress)
    store = cache_features(synth, root / f"vis-{visual}.zarr", visual=visual, size=size, weights=weights,
                           augment=("hflip",), progress=progress)
    rows: list[dict[str, Any]] = []
    for name in systems or list_systems("vis"):
        started = time.perf_counter()
        result = fit(store, name, system_kwargs=system_preset(name, preset), max_epochs=epochs, batch_size=batch_size,
                     lr=lr, seed=seed, progress=progress, root_dir=root / "runs")
        rows.append({"system": name, "seconds": time.perf_counter() - started, **result.metrics,
                     "checkpoint": str(result.checkpoint)})
    if masktrack_epochs > 0:
        rows.append(_masktrack_row(synth, root, epochs=masktrack_epochs, size=size, seed=seed, progress=progress))
    (root / "vis_results.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return rows


def _masktrack_row(synth: Path, root: Path, *, epochs: int, size: int, seed: int, progress: bool) -> dict[str, Any]:
    """Train MaskTrack R-CNN (ResNet-18 FPN, end to end) on the same SynthAV; its row of figures."""
    from avlab.train.masktrack import fit_masktrack

    started = time.perf_counter()
    result = fit_masktrack(synth, split="train", val_split="val", epochs=epochs, size=size,
                           model_kwargs={"backbone": "resnet18"}, seed=seed, root_dir=root / "runs" / "masktrack",
                           progress=progress)
    # Its figures are named as the evaluator's ("val/AP"); -1 means nothing to measure.
    figures = {key.lower(): value for key, value in result.metrics.items() if key.startswith("val/") and value >= 0}
    return {"system": "masktrack_rcnn", "seconds": time.perf_counter() - started, **figures,
            "checkpoint": str(result.checkpoint)}


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: parse options, run `run_benchmark`, print the table."""
    parser = argparse.ArgumentParser(prog="python -m avlab.train.benchmark", description=__doc__.split("\n")[0])
    parser.add_argument("--root", default="scratch/bench", help="working folder (default: %(default)s)")
    parser.add_argument("--task", default="segmentation", choices=("segmentation", "vis"),
                        help="segmentation and separation systems, or video instance segmentation")
    parser.add_argument("--systems", default=None, help="comma-separated (default: every system of the task)")
    parser.add_argument("--num-videos", type=int, default=32)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--fps", type=float, default=4)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--preset", default="cpu", help="system sizes: cpu or tiny")
    parser.add_argument("--visual", default="debug", help="backbone bundle (default: %(default)s)")
    parser.add_argument("--finetune-epochs", type=int, default=0, help="end-to-end backbone epochs first")
    parser.add_argument("--separation-eval-items", type=int, default=8)
    parser.add_argument("--num-stft-frames", type=int, default=None,
                        help="separation window in STFT frames (default: the whole clip)")
    parser.add_argument("--masktrack-epochs", type=int, default=0, help="vis: MaskTrack R-CNN epochs (0: skip)")
    parser.add_argument("--system-options", type=json.loads, default=None,
                        help='JSON: per system, options over the preset, e.g. \'{"avisnet": {"fusion": "mul"}}\'')
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    systems = [s for s in args.systems.split(",") if s] if args.systems else None
    if args.task == "vis":
        vis_rows = run_vis_benchmark(
            args.root, systems=systems, num_videos=args.num_videos, size=args.size, fps=args.fps,
            seconds=args.seconds, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, preset=args.preset,
            visual=args.visual, masktrack_epochs=args.masktrack_epochs, seed=args.seed, progress=not args.quiet,
        )
        print(format_vis_table(vis_rows))
        return 0
    rows = run_benchmark(
        args.root, systems=systems, num_videos=args.num_videos, size=args.size,
        fps=args.fps, seconds=args.seconds, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        preset=args.preset, visual=args.visual, finetune_epochs=args.finetune_epochs,
        separation_eval_items=args.separation_eval_items, num_stft_frames=args.num_stft_frames,
        system_options=args.system_options, seed=args.seed,
        progress=not args.quiet,
    )
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
