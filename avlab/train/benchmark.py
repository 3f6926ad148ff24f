"""Train and score every system on a generated SynthAV, from the command line, in minutes on a CPU.

Generates SynthAV (mixtures and solo clips), optionally fine-tunes the visual backbone end to
end first (FINDINGS.md's two-stage pipeline), caches the features (with flipped views of the
training frames), trains each system with `fit`, and prints one table: mIoU, accuracy at IoU
0.75, and SDR / SIR / SAR / NSDR on fixed mixtures of validation solo clips (Sound of Pixels
protocol). Results also go to ``{root}/results.json``.

Run::

    python -m avlab.train.benchmark --root scratch/bench --num-videos 32 --size 64 --epochs 6

Example:
    >>> from avlab.train.benchmark import format_table
    >>> print(format_table([{"system": "visual_only", "seconds": 1.0, "val/miou": 0.5}]))
    | system | train s | mIoU | acc@0.75 | SDR | SIR | SAR | NSDR | SDR mix |
    |---|---|---|---|---|---|---|---|---|
    | visual_only | 1 | 0.500 | - | - | - | - | - | - |
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
from avlab.train.finetune import finetune_backbone
from avlab.train.fit import fit

__all__ = ["format_table", "main", "run_benchmark"]

_COLUMNS = (  # metric, header, format
    ("val/miou", "mIoU", "{:.3f}"),
    ("val/acc_iou75", "acc@0.75", "{:.3f}"),
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
            the bundle's random weights).
        separation_eval_items: Validation solo mixtures scored for separation.
        seed: Seed of the data and of every run.
        progress: Progress bars.
    """
    root = Path(root)
    synth = root / "synth"
    if not (synth / "dataset_card.json").is_file():
        generate(synth, num_videos={"train": num_videos, "val": max(2, num_videos // 4)}, size=size, fps=fps,
                 seconds=seconds, renderer="additive", splits=["train", "val"], seed=seed,
                 num_solo={"train": num_videos, "val": max(2, num_videos // 4)}, progress=progress)
    solo = load_synth(synth, split=["train", "val"], solo=True)
    weights = None
    rows: list[dict[str, Any]] = []
    if finetune_epochs > 0:
        started = time.perf_counter()
        tuned = finetune_backbone(synth, visual=visual, system_kwargs=system_preset("avisnet", preset), size=size,
                                  solo_source=solo, max_epochs=finetune_epochs, batch_size=batch_size, lr=lr,
                                  seed=seed, separation_eval_items=separation_eval_items, progress=progress,
                                  root_dir=root / "runs" / "finetune", output=root / f"{visual}-finetuned.pt")
        weights = tuned.weights
        rows.append({"system": f"avisnet end to end ({visual})", "seconds": time.perf_counter() - started,
                     **tuned.metrics})
    tag = "ft" if weights is not None else "random"
    options: dict[str, Any] = {"visual": visual, "size": size, "weights": weights, "progress": progress}
    mixtures = cache_features(synth, root / f"mix-{visual}-{tag}.zarr", augment=("hflip",), **options)
    solos = cache_features(solo, root / f"solo-{visual}-{tag}.zarr", augment=("hflip",), **options)
    for name in systems or list_systems():
        started = time.perf_counter()
        result = fit(mixtures, name, system_kwargs=system_preset(name, preset), solo_store=solos, max_epochs=epochs,
                     batch_size=batch_size, lr=lr, seed=seed, separation_eval_items=separation_eval_items,
                     progress=progress, root_dir=root / "runs")
        rows.append({"system": name, "seconds": time.perf_counter() - started, **result.metrics,
                     "checkpoint": str(result.checkpoint)})
    (root / "results.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: parse options, run `run_benchmark`, print the table."""
    parser = argparse.ArgumentParser(prog="python -m avlab.train.benchmark", description=__doc__.split("\n")[0])
    parser.add_argument("--root", default="scratch/bench", help="working folder (default: %(default)s)")
    parser.add_argument("--systems", default=",".join(list_systems()), help="comma-separated (default: all)")
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
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = run_benchmark(
        args.root, systems=[s for s in args.systems.split(",") if s], num_videos=args.num_videos, size=args.size,
        fps=args.fps, seconds=args.seconds, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        preset=args.preset, visual=args.visual, finetune_epochs=args.finetune_epochs,
        separation_eval_items=args.separation_eval_items, seed=args.seed, progress=not args.quiet,
    )
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
