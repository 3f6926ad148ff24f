"""The `avlab` command line: one subcommand per verb, arguments turned into keyword arguments.

This is the only place where command-line text becomes library calls; each subcommand is a
thin wrapper over a public function, so everything here can also be done from a notebook.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from avlab.errors import AvlabError

__all__ = ["main"]

Handler = Callable[[argparse.Namespace], int]


def _demo(args: argparse.Namespace) -> int:
    from avlab.experiments import run_demo

    result = run_demo(data_root=args.data, out=args.out, store_root=args.store_root, runs_root=args.runs,
                      preset=args.preset, seed=args.seed, progress=not args.no_progress)
    print(result.summary_text())
    return 0


def _bench(args: argparse.Namespace) -> int:
    from avlab.bench import run_bench

    names = [n for n in args.only.split(",") if n] if args.only else None
    try:
        run_bench(names, quick=args.quick, out=args.out, repeats=args.repeats)
    except ValueError as error:
        print(f"avlab bench: error: {error}", file=sys.stderr)
        return 2
    summary = args.out / ("summary_quick.md" if args.quick else "summary.md")
    print(summary.read_text())
    return 0


def _ablate(args: argparse.Namespace) -> int:
    from avlab.experiments import run_ablation

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    tables = [t for t in args.tables.split(",") if t] if args.tables else None
    seeds = [int(s) for s in args.seeds.split(",") if s] if args.seeds else None
    result = run_ablation(args.root, args.preset, tables=tables, seeds=seeds, progress=not args.no_progress)
    print(result.files["tables"].read_text(encoding="utf-8"))
    print("written: " + ", ".join(str(p) for p in result.files.values()))
    return 0


def _synth(args: argparse.Namespace) -> int:
    from avlab.datasets.synth import generate

    generate(
        args.root, num_videos=args.num_videos, size=args.size, fps=args.fps, seconds=args.seconds,
        sample_rate=args.sample_rate, num_classes=args.num_classes, max_objects=args.max_objects,
        seed=args.seed, overwrite=args.overwrite, progress=not args.no_progress,
    )
    print(f"SynthAV written to {args.root}")
    return 0


def _cache(args: argparse.Namespace) -> int:
    from avlab.store import cache_features

    client = None
    if args.workers:
        from distributed import Client, LocalCluster

        client = Client(LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None))
    try:
        ds = cache_features(
            args.source, args.store, visual=args.visual, layers=tuple(args.layers), weights=args.weights,
            size=args.size, fps=args.fps, audio=tuple(args.audio), ground_truth=not args.no_ground_truth,
            augment=tuple(args.augment), client=client, device=args.device, batch_size=args.batch_size,
            overwrite=args.overwrite, retry_failed=args.retry_failed, progress=not args.no_progress,
        )
    finally:
        if client is not None:
            client.close()
    status = ds.avlab.status.value_counts().to_dict()
    print(f"{args.store}: " + ", ".join(f"{count} {name}" for name, count in status.items()))
    for video, reason in ds.avlab.failures.items():
        print(f"  failed {video}: {reason}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from avlab.models import system_preset
    from avlab.train import fit

    kwargs = {**(system_preset(args.system, args.preset) if args.preset else {}), **(args.system_options or {})}
    result = fit(
        args.store, args.system, system_kwargs=kwargs, solo_store=args.solo_store,
        val_split=None if args.val_split == "none" else args.val_split, vis_options=args.vis_options,
        max_epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, seed=args.seed, precision=args.precision, accelerator=args.accelerator, devices=args.devices,
        strategy=args.strategy, root_dir=args.runs, progress=not args.no_progress,
        checkpoint_every_n_steps=args.checkpoint_every, resume=args.resume,
    )
    print(json.dumps({"checkpoint": str(result.checkpoint), "metrics": result.metrics}, indent=2, default=str))
    return 0


def _finetune(args: argparse.Namespace) -> int:
    from avlab.train import finetune_backbone

    result = finetune_backbone(args.source, visual=args.visual, output=args.output, system=args.system,
                               size=args.size, max_epochs=args.epochs, progress=not args.no_progress)
    print(f"fine-tuned backbone: {result.weights} (cache it with --weights {result.weights})")
    return 0


def _probe(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from avlab.media import probe

    status = 0
    for path in args.paths:
        try:
            print(json.dumps(asdict(probe(path)), indent=2))
        except AvlabError as error:
            print(f"error: {error}", file=sys.stderr)
            status = 1
    return status


def _info(args: argparse.Namespace) -> int:
    from avlab.environment import describe_environment

    print(json.dumps(describe_environment(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `avlab` command (exposed for docs and tests)."""
    from avlab import __version__

    parser = argparse.ArgumentParser(
        prog="avlab",
        description="Audio-visual segmentation research: media, datasets, SynthAV, features, heads.",
    )
    parser.add_argument("--version", action="version", version=f"avlab {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser("demo", help="SynthAV to a report: fine-tune, cache, train, evaluate (`make demo`)")
    demo.add_argument("--data", type=Path, default=Path("data/synthav"), help="SynthAV root (default: %(default)s)")
    demo.add_argument("--out", type=Path, default=Path("reports/demo"), help="report folder (default: %(default)s)")
    demo.add_argument("--store-root", type=Path, default=Path("featurestore"), help="feature stores (default: %(default)s)")
    demo.add_argument("--runs", type=Path, default=Path("runs/demo"), help="training runs (default: %(default)s)")
    demo.add_argument("--preset", default=None, help="tiny, cpu or gpu (default: gpu with CUDA, else cpu)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    demo.set_defaults(handler=_demo)

    ablate = commands.add_parser("ablate", help="the seed papers' tables on SynthAV over seeds (CSV, markdown, plots)")
    ablate.add_argument("--preset", default="quick", help="quick (minutes), seeds (the full tables), gpu")
    ablate.add_argument("--root", type=Path, default=Path("reports/ablate"), help="working folder (default: %(default)s)")
    ablate.add_argument("--tables", default=None,
                        help="comma-separated: table1,fusion,vis,crossover,hide_and_detect,intensity (default: all)")
    ablate.add_argument("--seeds", default=None, help="comma-separated seeds (default: the preset's)")
    ablate.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ablate.add_argument("--no-progress", action="store_true")
    ablate.set_defaults(handler=_ablate)

    bench = commands.add_parser("bench", help="speed figures against their baselines, side by side (`make bench`)")
    bench.add_argument("--quick", action="store_true", help="small data, few repetitions (*_quick.* results)")
    bench.add_argument("--only", default=None,
                       help="comma-separated: store,training,headline,scoring,scale (default: all)")
    bench.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="results (default: %(default)s)")
    bench.add_argument("--repeats", type=int, default=None, help="interleaved repetitions (default: 3 quick, 5)")
    bench.set_defaults(handler=_bench)

    synth = commands.add_parser("synth", help="generate a SynthAV benchmark")
    synth.add_argument("root", type=Path, help="output folder")
    synth.add_argument("--num-videos", type=int, default=24, help="training videos; val and test get a quarter each")
    synth.add_argument("--size", type=int, default=128)
    synth.add_argument("--fps", type=float, default=8.0)
    synth.add_argument("--seconds", type=float, default=2.0)
    synth.add_argument("--sample-rate", type=int, default=11025)
    synth.add_argument("--num-classes", type=int, default=8)
    synth.add_argument("--max-objects", type=int, default=3)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--overwrite", action="store_true")
    synth.add_argument("--no-progress", action="store_true")
    synth.set_defaults(handler=_synth)

    cache = commands.add_parser("cache", help="cache backbone features, audio features and ground truth into a store")
    cache.add_argument("source", type=Path, help="a dataset folder (SynthAV, AVSBench, AVE, MUSIC, any videos)")
    cache.add_argument("store", help="store path or fsspec URL, e.g. featurestore/synthav.zarr")
    cache.add_argument("--visual", default="resnet18", help="backbone bundle (default: %(default)s)")
    cache.add_argument("--layers", nargs="+", default=["c3", "c4", "c5"])
    cache.add_argument("--weights", default=None, help="'imagenet' or a checkpoint path (default: random)")
    cache.add_argument("--size", type=int, default=224)
    cache.add_argument("--fps", type=float, default=None, help="sampling rate (default: the dataset's frames)")
    cache.add_argument("--audio", nargs="*", default=["stft", "logmel_frames"])
    cache.add_argument("--augment", nargs="*", default=[], help="extra views of training frames: hflip, zoom")
    cache.add_argument("--no-ground-truth", action="store_true")
    cache.add_argument("--device", default="auto")
    cache.add_argument("--batch-size", type=int, default=32)
    cache.add_argument("--workers", type=int, default=0, help="dask LocalCluster workers (default: none, threads)")
    cache.add_argument("--overwrite", action="store_true")
    cache.add_argument("--retry-failed", action="store_true")
    cache.add_argument("--no-progress", action="store_true")
    cache.set_defaults(handler=_cache)

    train = commands.add_parser("train", help="train a system on a feature store (avlab.fit)")
    train.add_argument("store", help="the feature store to train from")
    train.add_argument("--system", default="avisnet",
                       help="system name, e.g. avisnet, pixelplayer, afcv, crossvis (default: %(default)s)")
    train.add_argument("--preset", default=None, help="system sizes: tiny or cpu (default: the papers')")
    train.add_argument("--system-options", type=json.loads, default=None,
                       help='JSON options of the system, e.g. \'{"fusion": "mul"}\'')
    train.add_argument("--vis-options", type=json.loads, default=None,
                       help='JSON options of video instance segmentation training, e.g. \'{"max_offset": 5}\'')
    train.add_argument("--solo-store", default=None, help="store of solo clips for mix-and-separate")
    train.add_argument("--val-split", default="val", help="validation split, or 'none' (default: %(default)s)")
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--batch-size", type=int, default=16)
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--precision", default="32-true", help="e.g. bf16-mixed on a GPU")
    train.add_argument("--accelerator", default="auto")
    train.add_argument("--devices", default=1)
    train.add_argument("--strategy", default="auto", help="e.g. ddp")
    train.add_argument("--runs", type=Path, default=Path("runs"), help="where runs go (default: %(default)s)")
    train.add_argument("--no-progress", action="store_true")
    train.add_argument("--checkpoint-every", type=int, default=None, metavar="STEPS",
                       help="also checkpoint every STEPS optimiser steps (default: at epoch ends only)")
    train.add_argument("--resume", default=None, metavar="RUN",
                       help="continue a killed run: 'last', a run folder (version_k) or its checkpoint")
    train.set_defaults(handler=_train)

    finetune = commands.add_parser("finetune", help="fine-tune a backbone end to end, for caching")
    finetune.add_argument("source", type=Path, help="a raw dataset folder with a train split")
    finetune.add_argument("--visual", default="resnet18")
    finetune.add_argument("--system", default="avisnet")
    finetune.add_argument("--size", type=int, default=128)
    finetune.add_argument("--epochs", type=int, default=5)
    finetune.add_argument("--output", type=Path, default=None)
    finetune.add_argument("--no-progress", action="store_true")
    finetune.set_defaults(handler=_finetune)

    probe = commands.add_parser("probe", help="print the streams of media files as JSON")
    probe.add_argument("paths", nargs="+", type=Path)
    probe.set_defaults(handler=_probe)

    info = commands.add_parser("info", help="library versions, devices and machine, as JSON")
    info.set_defaults(handler=_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `avlab` command; returns the exit status.

    Errors avlab raises on purpose (a corrupt file, a bad dataset layout) print one line naming
    the file and the reason, without a traceback.

    Example:
        >>> main(["probe", "no/such/file.mp4"])
        1
    """
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except AvlabError as error:
        print(f"avlab {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
