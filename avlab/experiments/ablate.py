"""`avlab ablate`: the seed papers' tables reproduced on SynthAV, over seeds, as CSV, markdown and plots.

Six tables, each a set of rows; a row is one training run (system and options on one dataset)
repeated over the preset's seeds and summarised as mean and standard deviation:

- ``table1``: AViS-Net's Table 1: audio only, visual only, co-segmentation, PixelPlayer, AViS-Net
  (SDR, SIR, SAR, accuracy at IoU 0.75, mIoU);
- ``fusion``: AViS-Net with each fusion head: EM (mul), EA (add), concat, LoGAN, TPAVI;
- ``vis``: AFCV's Table 1: MaskTrack R-CNN, CondInst-VIS, CrossVIS, AFCV (YouTube-VIS AP / AR);
- ``crossover``: crossover learning removed, with and without audio;
- ``hide_and_detect``: AViS-Net with and without hide-and-detect on occluded scenes;
- ``intensity``: AViS-Net with and without the audio-intensity cue on scenes with same-class
  duplicates.

Rows that are the same run (AViS-Net with LoGAN in ``table1`` and ``fusion``) train once. Data
are generated once (SynthAV: "mix" with solo clips for mix-and-separate, "hard" where every
further object crosses an earlier one and clips with two performers repeat a class, "vis" at the
VIS frame size); the seeds vary the training (initialisation, batches, mixtures), not the data.
With ``finetune_epochs`` the debug backbone is fine-tuned once end to end (FINDINGS.md) and every
frame-level system starts from the fine-tuned system's matching weights.

Each finished run is a JSON file under ``{root}/runs/``, so an interrupted ablation resumes
where it stopped, and processes given different ``seeds`` can run side by side once the data
are prepared. The outputs: ``runs.csv`` (one line per run and seed), ``summary.csv`` (mean, std,
seeds per row), ``tables.md`` (with the papers' figures as other data), ``summary.json`` and
``plots/{table}.png``.

Example:
    >>> sorted(TABLES)
    ['crossover', 'fusion', 'hide_and_detect', 'intensity', 'table1', 'vis']
    >>> [row.label for row in TABLES["fusion"]]
    ['EM (mul)', 'EA (add)', 'concat', 'LoGAN', 'TPAVI']
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from avlab.experiments.paper import PAPER, PAPER_SOURCES

__all__ = ["PRESETS", "TABLES", "AblationPreset", "AblationResult", "Row", "Run", "run_ablation", "summarize"]


@dataclass(frozen=True)
class Run:
    """One training configuration: a system with options on one of the prepared datasets.

    Attributes:
        system: Registered system name, or "masktrack_rcnn" (trained end to end on frames).
        data: "mix", "hard" or "vis".
        options: Keyword options over the preset's for the system.
    """

    system: str
    data: str = "mix"
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def key(self) -> str:
        """A file-name-safe name, e.g. ``mix-avisnet-fusion=mul``."""
        parts = [self.data, self.system, *(f"{k}={v}" for k, v in self.options)]
        return "-".join(str(p).replace(" ", "") for p in parts)


@dataclass(frozen=True)
class Row:
    """A row of a table: its key (as in `avlab.experiments.paper.PAPER`), label and run."""

    key: str
    label: str
    run: Run


def _avisnet(data: str = "mix", **options: Any) -> Run:
    return Run("avisnet", data, tuple(sorted(options.items())))


TABLES: dict[str, tuple[Row, ...]] = {
    "table1": (
        Row("audio_only", "audio only", Run("audio_only")),
        Row("visual_only", "visual only", Run("visual_only")),
        Row("coseg", "co-segmentation (Rouditchenko et al.)", Run("coseg")),
        Row("pixelplayer", "PixelPlayer", Run("pixelplayer")),
        Row("avisnet", "AViS-Net", _avisnet()),
    ),
    "fusion": (
        Row("mul", "EM (mul)", _avisnet(fusion="mul")),
        Row("add", "EA (add)", _avisnet(fusion="add")),
        Row("concat", "concat", _avisnet(fusion="concat")),
        Row("logan", "LoGAN", _avisnet()),  # AViS-Net's default: the same run as table1's
        Row("tpavi", "TPAVI", _avisnet(fusion="tpavi")),
    ),
    "vis": (
        Row("masktrack_rcnn", "MaskTrack R-CNN", Run("masktrack_rcnn", "vis")),
        Row("condinst_vis", "CondInst-VIS", Run("condinst_vis", "vis")),
        Row("crossvis", "CrossVIS", Run("crossvis", "vis")),
        Row("afcv", "AFCV", Run("afcv", "vis")),
    ),
    "crossover": (
        Row("condinst_vis", "no audio, no crossover (CondInst-VIS)", Run("condinst_vis", "vis")),
        Row("crossvis", "no audio, crossover (CrossVIS)", Run("crossvis", "vis")),
        Row("afcv_no_crossover", "audio, no crossover", Run("afcv", "vis", (("crossover", False),))),
        Row("afcv", "audio, crossover (AFCV)", Run("afcv", "vis")),
    ),
    "hide_and_detect": (
        Row("off", "AViS-Net", _avisnet("hard")),
        Row("on", "AViS-Net + hide-and-detect", _avisnet("hard", hide_and_detect=True)),
    ),
    "intensity": (
        Row("off", "AViS-Net", _avisnet("hard")),
        Row("on", "AViS-Net + intensity cue", _avisnet("hard", intensity=True)),
    ),
}

# Metric, header, scale (fractions are shown in percent, as the papers do), format.
_SEGMENTATION = (("sdr", "SDR", 1.0, "{:.2f}"), ("sir", "SIR", 1.0, "{:.2f}"), ("sar", "SAR", 1.0, "{:.2f}"),
                 ("acc_iou75", "acc@0.75 %", 100.0, "{:.1f}"), ("miou", "mIoU %", 100.0, "{:.1f}"))
_VIS = (("ap", "AP %", 100.0, "{:.1f}"), ("ap50", "AP50 %", 100.0, "{:.1f}"), ("ap75", "AP75 %", 100.0, "{:.1f}"),
        ("ar1", "AR1 %", 100.0, "{:.1f}"), ("ar10", "AR10 %", 100.0, "{:.1f}"))
METRICS = {"table1": _SEGMENTATION, "fusion": _SEGMENTATION, "hide_and_detect": _SEGMENTATION,
           "intensity": _SEGMENTATION, "vis": _VIS, "crossover": _VIS}
_TITLES = {
    "table1": "AViS-Net's Table 1: separation and segmentation",
    "fusion": "Fusion of audio and visual features (AViS-Net's Table 2)",
    "vis": "Video instance segmentation (AFCV's Table 1)",
    "crossover": "Crossover learning removed",
    "hide_and_detect": "Hide-and-detect on occluded scenes",
    "intensity": "Audio-intensity cue on scenes with same-class duplicates",
}


@dataclass(frozen=True)
class AblationPreset:
    """The sizes of an ablation: data, backbones, epochs and seeds.

    Attributes:
        seeds: Training seeds; each row is trained once per seed.
        num_videos: Training clips of each dataset (validation gets a quarter, at least 2).
        size: Frame size of "mix" and "hard" (the frame-level systems).
        fps, seconds: SynthAV's frame rate and clip length.
        visual: Backbone bundle cached for the frame-level systems.
        finetune_epochs: End-to-end epochs of that backbone before caching (0: its random weights).
        system_preset: Size preset of the systems (`avlab.models.PRESETS`).
        epochs: Training epochs of each frame-level run.
        batch_size: Frames per batch.
        num_stft_frames: Separation window in STFT frames (None: the whole clip).
        separation_eval_items: Fixed validation solo mixtures scored for separation.
        vis_size, vis_visual, vis_epochs, vis_batch_size: The same for video instance segmentation.
        masktrack_epochs: MaskTrack R-CNN's epochs (trained end to end on frames).
        masktrack_model: Its model options (`avlab.models.MaskTrackRCNN`).
    """

    seeds: tuple[int, ...]
    num_videos: int
    size: int
    fps: float
    seconds: float
    visual: str
    finetune_epochs: int
    system_preset: str
    epochs: int
    batch_size: int
    num_stft_frames: int | None
    separation_eval_items: int
    vis_size: int
    vis_visual: str
    vis_epochs: int
    vis_batch_size: int
    masktrack_epochs: int
    masktrack_model: Mapping[str, Any] = field(default_factory=dict)


# MaskTrack R-CNN at the frame size (torchvision's transform would otherwise upscale to 360 px)
# with heads narrowed like the other systems' "cpu" preset.
_SMALL_MASKTRACK = {"backbone": "resnet18", "fpn_channels": 64, "box_head_dim": 256, "mask_head_dim": 64,
                    "track_fc_dim": 256, "embedding_dim": 128}

PRESETS: dict[str, AblationPreset] = {
    # Minutes on a CPU: tiny systems for one epoch on a handful of clips; checks the pipeline.
    "quick": AblationPreset(
        seeds=(0, 1), num_videos=4, size=32, fps=2, seconds=2.0, visual="debug", finetune_epochs=0,
        system_preset="tiny", epochs=1, batch_size=8, num_stft_frames=None, separation_eval_items=2,
        vis_size=32, vis_visual="debug", vis_epochs=1, vis_batch_size=4, masktrack_epochs=1,
        masktrack_model={**_SMALL_MASKTRACK, "min_size": 32, "max_size": 32, "anchor_sizes": (8, 16, 32, 64, 128)},
    ),
    # The closing note's tables: about an hour per seed on one CPU core.
    "seeds": AblationPreset(
        seeds=(0, 1, 2), num_videos=48, size=64, fps=2, seconds=4.0, visual="debug", finetune_epochs=3,
        system_preset="cpu", epochs=5, batch_size=16, num_stft_frames=64, separation_eval_items=8,
        vis_size=128, vis_visual="resnet18", vis_epochs=6, vis_batch_size=8, masktrack_epochs=4,
        masktrack_model={**_SMALL_MASKTRACK, "min_size": 128, "max_size": 128,
                         "anchor_sizes": (16, 32, 64, 128, 256)},
    ),
    # For a GPU: four times the data, ResNet-18 features at 128 px, longer training.
    "gpu": AblationPreset(
        seeds=(0, 1, 2), num_videos=256, size=128, fps=4, seconds=4.0, visual="resnet18", finetune_epochs=6,
        system_preset="cpu", epochs=20, batch_size=32, num_stft_frames=64, separation_eval_items=32,
        vis_size=128, vis_visual="resnet18", vis_epochs=20, vis_batch_size=16, masktrack_epochs=12,
        masktrack_model={"backbone": "resnet18", "min_size": 128, "max_size": 128,
                         "anchor_sizes": (16, 32, 64, 128, 256)},
    ),
}


@dataclass
class AblationResult:
    """What `run_ablation` wrote.

    Attributes:
        root: The working folder.
        runs: One dict per run and seed (row key, label, table, seed, seconds, metrics).
        summary: Per table, one dict per row: label, "<metric>" mean, "<metric>_std", "seeds".
        files: Output files by role: "runs_csv", "summary_csv", "tables", "summary_json",
            and "plot_{table}".
    """

    root: Path
    runs: list[dict[str, Any]]
    summary: dict[str, list[dict[str, Any]]]
    files: dict[str, Path]


def run_ablation(
    root: str | Path = "reports/ablate",
    preset: str | AblationPreset = "quick",
    *,
    tables: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    progress: bool = True,
) -> AblationResult:
    """Prepare the data, train every row's run for every seed (skipping finished ones), write the tables.

    Args:
        root: Working folder: ``data/``, ``featurestore/``, ``runs/`` and the outputs.
        preset: A name of `PRESETS` or an `AblationPreset`.
        tables: Tables to run (default: all six, `TABLES`).
        seeds: Seeds to run (default: the preset's). The tables summarise every finished seed.
        progress: Progress bars and a line per run.

    Returns:
        An `AblationResult`; the files are also under `root`.
    """
    root = Path(root)
    if isinstance(preset, str) and preset not in PRESETS:
        raise ValueError(f"unknown ablation preset {preset!r}; presets: {sorted(PRESETS)}")
    chosen = PRESETS[preset] if isinstance(preset, str) else preset
    names = list(tables or TABLES)
    unknown = sorted(set(names) - set(TABLES))
    if unknown:
        raise ValueError(f"unknown tables {unknown}; tables: {sorted(TABLES)}")
    if seeds is not None:
        chosen = replace(chosen, seeds=tuple(int(s) for s in seeds))
    runs = list(dict.fromkeys(row.run for name in names for row in TABLES[name]))
    data = _Data(root, chosen, progress=progress)
    for name in dict.fromkeys(run.data for run in runs):  # all data first: seeds may then run side by side
        if any(r.data == name and r.system != "masktrack_rcnn" for r in runs):
            data.stores(name)
        else:
            data.synth(name)
    todo = [(run, seed) for seed in chosen.seeds for run in runs if not _record_path(root, run, seed).is_file()]
    for done, (run, seed) in enumerate(todo, 1):
        if progress:
            print(f"[ablate {done}/{len(todo)}] {run.key} seed {seed}", flush=True)
        record = _train(run, seed, data)
        path = _record_path(root, run, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    return write_outputs(root, names)


def _record_path(root: Path, run: Run, seed: int) -> Path:
    return root / "runs" / f"{run.key}-seed{seed}.json"


class _Data:
    """The ablation's datasets and feature stores, made on first use and reused after."""

    def __init__(self, root: Path, preset: AblationPreset, *, progress: bool) -> None:
        self.root, self.preset, self.progress = root, preset, progress
        self._stores: dict[str, tuple[Any, Any]] = {}
        self._init_from: Path | None = None
        self._weights: Path | None = None
        self._tuned = False

    def synth(self, name: str) -> Path:
        """SynthAV ``data/{name}``: "mix" and "hard" with solo clips, "vis" at the VIS frame size."""
        from avlab.datasets.synth import generate

        p = self.preset
        path = self.root / "data" / name
        if not (path / "dataset_card.json").is_file():
            counts = {"train": p.num_videos, "val": max(2, p.num_videos // 4)}
            hard: dict[str, Any] = {"occlusion": 1.0, "duplicates": 1.0} if name == "hard" else {}
            generate(path, num_videos=counts, splits=["train", "val"], size=p.vis_size if name == "vis" else p.size,
                     fps=p.fps, seconds=p.seconds, renderer="additive", num_solo=counts if name == "mix" else 0,
                     seed=0, progress=self.progress, **hard)
        return path

    def backbone(self) -> tuple[Path | None, Path | None]:
        """The fine-tuned backbone weights and system checkpoint (None, None without fine-tuning)."""
        if self._tuned or self.preset.finetune_epochs <= 0:
            return self._weights, self._init_from
        from avlab.datasets.synth import load_synth
        from avlab.models import system_preset
        from avlab.train import finetune_once

        p = self.preset
        synth = self.synth("mix")
        tuned = finetune_once(
            self.root / "finetune.json", synth, visual=p.visual, system_kwargs=system_preset("avisnet", p.system_preset),
            size=p.size, solo_source=load_synth(synth, split=["train", "val"], solo=True),
            max_epochs=p.finetune_epochs, batch_size=p.batch_size, seed=p.seeds[0],
            separation_eval_items=p.separation_eval_items, num_stft_frames=p.num_stft_frames, progress=self.progress,
            root_dir=self.root / "runs" / "finetune", output=self.root / f"{p.visual}-finetuned.pt")
        self._weights, self._init_from, self._tuned = tuned.weights, tuned.checkpoint, True
        return self._weights, self._init_from

    def stores(self, name: str) -> tuple[Any, Any]:
        """The feature store of ``data/{name}`` and of its solo clips (None but for "mix").

        "hard" has no solo clips on purpose: its runs train on natural mixtures only, whose
        sources share the frame, which is where hide-and-detect and the intensity cue act (a
        batch that mixes in solo clips gives each source its own frame).
        """
        if name in self._stores:
            return self._stores[name]
        from avlab.datasets.synth import load_synth
        from avlab.store import cache_features

        p = self.preset
        synth = self.synth(name)
        folder = self.root / "featurestore"
        if name == "vis":
            store = cache_features(synth, folder / f"vis-{p.vis_visual}.zarr", visual=p.vis_visual, size=p.vis_size,
                                   augment=("hflip",), progress=self.progress)
            self._stores[name] = (store, None)
        else:
            weights, _ = self.backbone()
            tag = "finetuned" if weights is not None else "random"
            options: dict[str, Any] = {"visual": p.visual, "size": p.size, "weights": weights,
                                       "augment": ("hflip",), "progress": self.progress}
            store = cache_features(synth, folder / f"{name}-{p.visual}-{tag}.zarr", **options)
            solo = None
            if name == "mix":
                solo_clips = load_synth(synth, split=["train", "val"], solo=True)
                solo = cache_features(solo_clips, folder / f"{name}-solo-{p.visual}-{tag}.zarr", **options)
            self._stores[name] = (store, solo)
        return self._stores[name]


def _train(run: Run, seed: int, data: _Data) -> dict[str, Any]:
    """Train `run` once with `seed`; its record (key, seed, seconds, metrics without the "val/" prefix)."""
    from avlab.models import system_preset
    from avlab.train import fit

    p = data.preset
    started = time.perf_counter()
    checkpoint: Path | None
    runs_dir = data.root / "runs" / run.key / f"seed{seed}"
    if run.system == "masktrack_rcnn":
        from avlab.train.masktrack import fit_masktrack

        result = fit_masktrack(data.synth("vis"), split="train", val_split="val", epochs=p.masktrack_epochs,
                               size=p.vis_size, batch_size=p.vis_batch_size, model_kwargs=dict(p.masktrack_model),
                               seed=seed, root_dir=runs_dir, progress=data.progress)
        # The evaluator names figures "val/AP"; -1 means nothing to measure.
        metrics = {k[4:].lower(): v for k, v in result.metrics.items() if k.startswith("val/") and v >= 0}
        checkpoint = result.checkpoint
    else:
        store, solo = data.stores(run.data)
        options = {**system_preset(run.system, p.system_preset), **dict(run.options)}
        if run.data == "vis":
            fitted = fit(store, run.system, system_kwargs=options, max_epochs=p.vis_epochs, batch_size=p.vis_batch_size,
                         seed=seed, progress=data.progress, root_dir=runs_dir)
        else:
            _, init_from = data.backbone()
            fitted = fit(store, run.system, system_kwargs=options, solo_store=solo, max_epochs=p.epochs,
                         batch_size=p.batch_size, num_stft_frames=p.num_stft_frames, init_from=init_from,
                         separation_eval_items=p.separation_eval_items, seed=seed, progress=data.progress,
                         root_dir=runs_dir)
        metrics = {k[4:]: v for k, v in fitted.metrics.items() if k.startswith("val/")}
        checkpoint = fitted.checkpoint
    return {"run": run.key, "system": run.system, "data": run.data, "options": dict(run.options), "seed": seed,
            "seconds": time.perf_counter() - started, "checkpoint": str(checkpoint), "metrics": metrics,
            "preset": asdict(p)}


def summarize(records: Sequence[Mapping[str, Any]], tables: Sequence[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Mean and sample standard deviation over seeds of each table's rows, in the tables' units.

    Args:
        records: Run records (``{"run": key, "seed": s, "metrics": {...}}``, as in ``runs/``).
        tables: Tables to summarise (default: all).

    Returns:
        Per table, one dict per row with a finished run: "key", "label", "seeds", and per
        metric its mean and "<metric>_std" (0 with one seed), scaled as the table shows it
        (percent for accuracies, mIoU, AP and AR).

    Example:
        >>> records = [{"run": "mix-visual_only", "seed": s, "metrics": {"miou": m, "acc_iou75": 0.5}}
        ...            for s, m in ((0, 0.4), (1, 0.6))]
        >>> row = summarize(records, ["table1"])["table1"][0]
        >>> row["label"], row["seeds"], round(row["miou"], 1), round(row["miou_std"], 2), "sdr" in row
        ('visual only', 2, 50.0, 14.14, False)
    """
    by_run: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        by_run.setdefault(record["run"], []).append(record)
    summary: dict[str, list[dict[str, Any]]] = {}
    for name in tables or TABLES:
        rows = []
        for row in TABLES[name]:
            found = by_run.get(row.run.key, [])
            if not found:
                continue
            entry: dict[str, Any] = {"key": row.key, "label": row.label, "seeds": len(found)}
            for metric, _, scale, _ in METRICS[name]:
                values = [float(r["metrics"][metric]) * scale for r in found
                          if metric in r["metrics"] and math.isfinite(float(r["metrics"][metric]))]
                if values:
                    mean = sum(values) / len(values)
                    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
                    entry[metric], entry[f"{metric}_std"] = mean, math.sqrt(variance)
            rows.append(entry)
        summary[name] = rows
    return summary


def format_markdown(summary: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """The tables as markdown: ours as "mean ± std" over seeds, then the paper's rows as other data.

    Example:
        >>> print(format_markdown({"vis": [{"key": "afcv", "label": "AFCV", "seeds": 1, "ap": 20.0, "ap_std": 0.0}]}))
        ... # doctest: +NORMALIZE_WHITESPACE
        ## Video instance segmentation (AFCV's Table 1)
        <BLANKLINE>
        | row | seeds | AP % | AP50 % | AP75 % | AR1 % | AR10 % |
        |---|---|---|---|---|---|---|
        | AFCV | 1 | 20.0 ± 0.0 | - | - | - | - |
        | *paper: MaskTrack R-CNN* | other data | *30.3* | - | - | - | - |
        | *paper: CondInst-VIS* | other data | *32.1* | - | - | - | - |
        | *paper: CrossVIS* | other data | *34.8* | - | - | - | - |
        | *paper: AFCV* | other data | *34.9* | - | - | - | - |
        <BLANKLINE>
        Paper rows: Zheng, Shen and Ren, Object Segmentation with Audio Context, Table 1 (YouTube-VIS, ResNet-50).
        <BLANKLINE>
    """
    blocks = []
    for name, rows in summary.items():
        metrics = METRICS[name]
        lines = [f"## {_TITLES[name]}", "", "| row | seeds | " + " | ".join(h for _, h, _, _ in metrics) + " |",
                 "|---|---|" + "---|" * len(metrics)]
        for row in rows:
            cells = [f"{fmt.format(row[m])} ± {fmt.format(row[m + '_std'])}" if m in row else "-"
                     for m, _, _, fmt in metrics]
            lines.append(f"| {row['label']} | {row['seeds']} | " + " | ".join(cells) + " |")
        labels = {row.key: row.label for row in TABLES[name]}
        for key, figures in PAPER.get(name, {}).items():
            cells = [f"*{figures[m]:g}*" if m in figures else "-" for m, _, _, _ in metrics]  # as printed
            lines.append(f"| *paper: {labels.get(key, key)}* | other data | " + " | ".join(cells) + " |")
        lines += ["", f"Paper rows: {PAPER_SOURCES[name]}."]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def write_outputs(root: str | Path, tables: Sequence[str] | None = None) -> AblationResult:
    """Summarise every finished run under ``{root}/runs/`` and write the CSV, markdown, JSON and plots."""
    from avlab.report import metric_bars

    root = Path(root)
    names = list(tables or TABLES)
    records = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((root / "runs").glob("*-seed*.json"))]
    summary = summarize(records, names)
    files = {"runs_csv": root / "runs.csv", "summary_csv": root / "summary.csv", "tables": root / "tables.md",
             "summary_json": root / "summary.json"}
    root.mkdir(parents=True, exist_ok=True)
    metric_names = sorted({m for r in records for m in r["metrics"]})
    with files["runs_csv"].open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["table", "row", "run", "seed", "seconds", *metric_names])
        for name in names:
            for row in TABLES[name]:
                for record in (r for r in records if r["run"] == row.run.key):
                    writer.writerow([name, row.label, row.run.key, record["seed"], f"{record['seconds']:.1f}",
                                     *[record["metrics"].get(m, "") for m in metric_names]])
    with files["summary_csv"].open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["table", "row", "seeds", "metric", "mean", "std", "unit"])
        for name, rows in summary.items():
            for entry in rows:
                for metric, header, _, _ in METRICS[name]:
                    if metric in entry:
                        unit = "%" if "%" in header else "dB"
                        writer.writerow([name, entry["label"], entry["seeds"], metric, f"{entry[metric]:.4f}",
                                         f"{entry[metric + '_std']:.4f}", unit])
    files["tables"].write_text(format_markdown(summary), encoding="utf-8")
    files["summary_json"].write_text(json.dumps({"summary": summary, "paper": PAPER, "paper_sources": PAPER_SOURCES},
                                                indent=2) + "\n", encoding="utf-8")
    plots = root / "plots"
    plots.mkdir(exist_ok=True)
    for name, rows in summary.items():
        if not rows:
            continue
        labels = {row.key: row.label for row in TABLES[name]}
        paper = {labels[k]: v for k, v in PAPER.get(name, {}).items() if k in labels}
        shown = [m for m, _, _, _ in METRICS[name] if any(m in r for r in rows)]
        figure = metric_bars(rows, shown, paper=paper, title=_TITLES[name])
        files[f"plot_{name}"] = plots / f"{name}.png"
        figure.savefig(files[f"plot_{name}"], dpi=100)
    return AblationResult(root=root, runs=records, summary=summary, files=files)
