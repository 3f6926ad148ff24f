"""`avlab demo` (what `make demo` runs): from nothing to a report a newcomer can open.

Seven steps, each reusing what an earlier run left:

1. SynthAV: generate mixtures (and solo clips for mix-and-separate) under `data_root`;
2. backbone: ImageNet weights when the torch hub cache has them, else a brief end-to-end
   fine-tuning of the preset's backbone on the training split (FINDINGS.md: a random frozen
   backbone is a weak default);
3. cache: backbone features with flipped views, audio features and ground truth into
   ``featurestore/`` (Zarr);
4. train from the cache: AViS-Net (LoGAN) with separation, PixelPlayer and visual-only; AFCV
   and CrossVIS for video instance segmentation;
5. evaluate: each run's validation figures (mIoU, accuracy at IoU 0.75, SDR / SIR / SAR,
   YouTube-VIS AP / AR) as ``metrics.csv`` and ``metrics.json``;
6. figures: attention maps and LoGAN's map M over frames, predicted against true masks,
   separated spectrograms with their SDR, VIS tracks with their ids, loss curves;
7. ``report.md`` and a self-contained ``report.html``.

The preset is "cpu" (about 10 minutes on 2 cores), or "gpu" when CUDA is available; "tiny" is
for tests. Runs are kept under ``{runs_root}/{preset}-{key}`` and stores are named with the
same key, a hash of the preset and the seed: a second run with the same settings retrains
nothing, and one with other settings starts afresh beside the first, which it leaves alone.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from avlab.datasets.manifest import Manifest
from avlab.datasets.stats import describe_manifest
from avlab.environment import describe_environment
from avlab.widgets.render import ContactRow, contact_sheet, pixel_energy

__all__ = ["DEMO_PRESETS", "DemoPreset", "DemoResult", "run_demo"]

SEGMENTATION_SYSTEMS = ("avisnet", "pixelplayer", "visual_only")
VIS_SYSTEMS = ("afcv", "crossvis")


@dataclass(frozen=True)
class DemoPreset:
    """The demo's sizes.

    Attributes:
        num_videos: Training clips (validation gets a quarter, at least 2; as many solo clips).
        size: Frame size in pixels.
        fps, seconds: SynthAV's frame rate and clip length.
        visual: Backbone bundle.
        finetune_epochs: Epochs of end-to-end fine-tuning when no ImageNet weights are cached.
        system_preset: Size preset of the systems (`avlab.models.PRESETS`).
        epochs: Training epochs of each frame-level system.
        vis_epochs: Training epochs of each video instance segmentation system.
        batch_size: Frames per batch (frame pairs for VIS: half).
        num_stft_frames: Separation window in STFT frames (None: the whole clip).
        separation_eval_items: Validation solo mixtures scored for separation.
    """

    num_videos: int
    size: int
    fps: float
    seconds: float
    visual: str
    finetune_epochs: int
    system_preset: str
    epochs: int
    vis_epochs: int
    batch_size: int
    num_stft_frames: int | None
    separation_eval_items: int


DEMO_PRESETS: dict[str, DemoPreset] = {
    "tiny": DemoPreset(num_videos=4, size=32, fps=2, seconds=2.0, visual="debug", finetune_epochs=1,
                       system_preset="tiny", epochs=1, vis_epochs=1, batch_size=8, num_stft_frames=None,
                       separation_eval_items=2),
    "cpu": DemoPreset(num_videos=24, size=64, fps=2, seconds=4.0, visual="debug", finetune_epochs=2,
                      system_preset="cpu", epochs=5, vis_epochs=5, batch_size=16, num_stft_frames=64,
                      separation_eval_items=8),
    "gpu": DemoPreset(num_videos=256, size=128, fps=4, seconds=4.0, visual="resnet18", finetune_epochs=6,
                      system_preset="cpu", epochs=20, vis_epochs=20, batch_size=32, num_stft_frames=64,
                      separation_eval_items=32),
}


@dataclass
class DemoResult:
    """What `run_demo` produced.

    Attributes:
        data_root: The SynthAV root.
        out: The report folder.
        summary: Everything the report says, JSON-ready (also ``summary.json``).
        files: The report's files by role ("report", "html", "metrics_csv", "metrics_json",
            "summary", "contact_sheet", and one per figure).
    """

    data_root: Path
    out: Path
    summary: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)

    def summary_text(self) -> str:
        """A few lines for the terminal: what ran, the headline figures, where the report is."""
        lines = [f"SynthAV in {self.data_root} ({'reused' if self.summary['reused_data'] else 'generated'}), "
                 f"preset {self.summary['preset_name']}, {self.summary['total_s']:.0f} s"]
        for row in self.summary["metrics"]:
            figures = ", ".join(f"{_HEADERS[k]} {row[k]:.3f}" for k in _HEADERS if k in row and k in _HEADLINE)
            lines.append(f"  {row['system']:<12} {figures}")
        lines += [f"report: {self.files['report']}", f"html:   {self.files['html']}"]
        return "\n".join(lines)


_HEADERS = {"val/miou": "mIoU", "val/acc_iou75": "acc@0.75", "val/acc_iou75_silent": "acc@0.75 silent",
            "val/sdr": "SDR", "val/sir": "SIR", "val/sar": "SAR", "val/separation_skipped": "mixtures skipped", "val/ap": "AP", "val/ap50": "AP50",
            "val/ap75": "AP75", "val/ar1": "AR1", "val/ar10": "AR10", "val/ap_sounding": "AP sounding"}
_HEADLINE = ("val/miou", "val/acc_iou75", "val/sdr", "val/ap", "val/ar10")


def run_demo(
    *,
    data_root: str | os.PathLike[str] = "data/synthav",
    out: str | os.PathLike[str] = "reports/demo",
    store_root: str | os.PathLike[str] = "featurestore",
    runs_root: str | os.PathLike[str] = "runs/demo",
    preset: str | DemoPreset | None = None,
    seed: int = 0,
    progress: bool = True,
    num_examples: int = 4,
) -> DemoResult:
    """Generate, fine-tune, cache, train, evaluate and write the report; reuse what is there.

    Args:
        data_root: Where SynthAV lives; generated when missing or made with other settings.
        out: Report folder.
        store_root: Folder of the feature stores.
        runs_root: Folder of the training runs (checkpoints, logs, ``result.json``).
        preset: A name of `DEMO_PRESETS` or a `DemoPreset`; None: "gpu" when CUDA is
            available, else "cpu".
        seed: Seed of the data and of every run.
        progress: Progress bars and a line per step.
        num_examples: Frames (and mixtures, videos) shown in the figures.

    Returns:
        A `DemoResult` naming the files written.
    """
    import torch

    if isinstance(preset, str) and preset not in DEMO_PRESETS:
        raise ValueError(f"unknown demo preset {preset!r}; presets: {sorted(DEMO_PRESETS)}")
    name = preset if isinstance(preset, str) else ("gpu" if torch.cuda.is_available() else "cpu")
    chosen = preset if isinstance(preset, DemoPreset) else DEMO_PRESETS[name]
    name = name if not isinstance(preset, DemoPreset) else "custom"
    pipeline = _Pipeline(Path(data_root), Path(out), Path(store_root), Path(runs_root), chosen, name=name, seed=seed,
                         progress=progress, num_examples=num_examples)
    started = time.perf_counter()
    summary = pipeline.run()
    summary.update(preset_name=name, preset=asdict(chosen),
                   total_s=time.perf_counter() - started)
    files = pipeline.write(summary)
    return DemoResult(data_root=Path(data_root), out=Path(out), summary=summary, files=files)


class _Pipeline:
    """The demo's steps, sharing the paths and the preset."""

    def __init__(self, data_root: Path, out: Path, store_root: Path, runs_root: Path, preset: DemoPreset, *,
                 name: str, seed: int, progress: bool, num_examples: int) -> None:
        key = hashlib.sha256(json.dumps([asdict(preset), seed], sort_keys=True).encode()).hexdigest()[:8]
        self.key = f"{name}-{key}"
        self.data_root, self.out, self.store_root = data_root, out, store_root
        self.runs_root = runs_root / self.key
        self.preset, self.seed, self.progress, self.num_examples = preset, seed, progress, num_examples
        self.timings: dict[str, float] = {}
        self.figures: dict[str, Path] = {}
        self.reused: list[str] = []  # what an earlier run left and this one took
        self._step = 0

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time a step and announce it."""
        self._step += 1
        if self.progress:
            print(f"[demo {self._step}/7] {name}", flush=True)
        started = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - started

    def run(self) -> dict[str, Any]:
        self.out.mkdir(parents=True, exist_ok=True)
        with self.step("SynthAV"):
            card, reused = self.synthav()
        with self.step("backbone"):
            weights, init_from, backbone = self.backbone()
        with self.step("cache features"):
            store, solo = self.cache(weights)
        with self.step("train"):
            results = {system: self.train_segmentation(system, store, solo, init_from) for system in SEGMENTATION_SYSTEMS}
            results.update({system: self.train_vis(system, store) for system in VIS_SYSTEMS})
        with self.step("evaluate"):
            metrics = [{"system": system, "task": r["task"], "train_s": r["seconds"], **r["metrics"]}
                       for system, r in results.items()]
        with self.step("figures"):
            self.draw(card, store, solo, results)
        return {
            "data_root": str(self.data_root), "reused_data": reused, "card": card,
            "splits": {split: describe_manifest(m) for split, m in self.manifests().items()},
            "backbone": backbone, "store": str(store), "solo_store": str(solo), "metrics": metrics,
            "runs": {system: {k: v for k, v in r.items() if k != "metrics"} for system, r in results.items()},
            "timings_s": self.timings, "reused": (["SynthAV"] if reused else []) + self.reused,
            "environment": describe_environment(),
        }

    # 1. Data.

    def synthav(self) -> tuple[dict[str, Any], bool]:
        from avlab.datasets.synth import generate, read_card

        p = self.preset
        counts = {"train": p.num_videos, "val": max(2, p.num_videos // 4)}
        wanted: dict[str, Any] = {"num_videos": counts, "size": p.size, "fps": p.fps, "seconds": p.seconds, "seed": self.seed}
        card = read_card(self.data_root) if (self.data_root / "dataset_card.json").exists() else None
        reused = card is not None and all(card["parameters"].get(k) == v for k, v in wanted.items())
        if not reused:
            # Replace only a SynthAV dataset (one with a card); anything else at data_root is an error.
            generate(self.data_root, splits=["train", "val"], overwrite=card is not None, progress=self.progress,
                     **wanted)
            card = read_card(self.data_root)
        assert card is not None
        return card, reused

    def manifests(self) -> dict[str, Manifest]:
        from avlab.datasets.synth import load_synth

        return {split: load_synth(self.data_root, split=split) for split in ("train", "val")}

    # 2. Backbone.

    def backbone(self) -> tuple[Any, Path | None, dict[str, Any]]:
        """Weights to cache with, the checkpoint heads start from, and what the report says of them."""
        from avlab.backbones import visual_bundle
        from avlab.datasets.synth import load_synth
        from avlab.models import system_preset
        from avlab.train import finetune_once

        p = self.preset
        hub = visual_bundle(p.visual).imagenet
        if hub is not None and hub.path.is_file():
            return "imagenet", None, {"visual": p.visual, "weights": f"ImageNet ({hub.path})"}
        tuned = finetune_once(
            self.runs_root / "finetune.json", self.data_root, visual=p.visual,
            system_kwargs=system_preset("avisnet", p.system_preset), size=p.size,
            solo_source=load_synth(self.data_root, split=["train", "val"], solo=True), max_epochs=p.finetune_epochs,
            batch_size=p.batch_size, seed=self.seed, separation_eval_items=p.separation_eval_items,
            num_stft_frames=p.num_stft_frames, progress=self.progress, root_dir=self.runs_root / "finetune",
            output=self.runs_root / f"{p.visual}-finetuned.pt")
        if tuned.reused:
            self.reused.append("fine-tuned backbone")
        return tuned.weights, tuned.checkpoint, {
            "visual": p.visual, "weights": f"fine-tuned end to end ({p.finetune_epochs} epochs, {tuned.weights})",
            "finetune_metrics": tuned.metrics, "finetune_log_dir": str(tuned.log_dir)}

    # 3. Cache.

    def cache(self, weights: Any) -> tuple[Path, Path]:
        from avlab.datasets.synth import load_synth
        from avlab.store import cache_features

        p = self.preset
        tag = "imagenet" if weights == "imagenet" else "finetuned"
        store = self.store_root / f"synthav-{p.visual}-{tag}-{self.key}.zarr"
        solo = self.store_root / f"synthav-solo-{p.visual}-{tag}-{self.key}.zarr"
        options: dict[str, Any] = {"visual": p.visual, "size": p.size, "weights": weights, "augment": ("hflip",),
                                   "progress": self.progress}
        cache_features(self.data_root, store, **options)
        cache_features(load_synth(self.data_root, split=["train", "val"], solo=True), solo, **options)
        return store, solo

    # 4. Train.

    def _reuse_or_train(self, system: str, task: str, train: Callable[[Path], Any]) -> dict[str, Any]:
        folder = self.runs_root / system
        record = folder / "result.json"
        if record.is_file():
            self.reused.append(system)
            return dict(json.loads(record.read_text(encoding="utf-8")))
        started = time.perf_counter()
        result = train(folder)
        done = {"task": task, "seconds": time.perf_counter() - started, "checkpoint": str(result.checkpoint),
                "log_dir": str(result.log_dir), "metrics": {k: v for k, v in result.metrics.items()
                                                            if k.startswith("val/") or k == "train/loss_epoch"}}
        record.write_text(json.dumps(done, indent=2) + "\n", encoding="utf-8")
        return done

    def train_segmentation(self, system: str, store: Path, solo: Path, init_from: Path | None) -> dict[str, Any]:
        from avlab.models import system_preset
        from avlab.train import fit

        p = self.preset
        return self._reuse_or_train(system, "segmentation", lambda folder: fit(
            store, system, system_kwargs=system_preset(system, p.system_preset), solo_store=solo,
            max_epochs=p.epochs, batch_size=p.batch_size, num_stft_frames=p.num_stft_frames, init_from=init_from,
            separation_eval_items=p.separation_eval_items, seed=self.seed, progress=self.progress, root_dir=folder))

    def train_vis(self, system: str, store: Path) -> dict[str, Any]:
        from avlab.models import system_preset
        from avlab.train import fit

        p = self.preset
        return self._reuse_or_train(system, "vis", lambda folder: fit(
            store, system, system_kwargs=system_preset(system, p.system_preset), max_epochs=p.vis_epochs,
            batch_size=max(2, p.batch_size // 2), seed=self.seed, progress=self.progress, root_dir=folder))

    # 6. Figures.

    def draw(self, card: dict[str, Any], store: Path, solo: Path, results: Mapping[str, Mapping[str, Any]]) -> None:
        from avlab.datasets.synth import load_synth
        from avlab.models import load_system
        from avlab.report import (
            attention_figure,
            loss_curves_figure,
            mask_figure,
            pixel_sound_figure,
            segmentation_examples,
            separation_examples,
            separation_figure,
            tracks_figure,
            vis_examples,
        )

        def save(role: str, figure: Any) -> None:
            path = self.out / f"{role}.png"
            figure.savefig(path, dpi=100)
            self.figures[role] = path

        manifests = self.manifests()
        save("contact_sheet", contact_sheet(_contact_rows(manifests["train"], self.num_examples, card)))
        avisnet = load_system(results["avisnet"]["checkpoint"])
        seen = segmentation_examples(store, avisnet, source=self.data_root, num=self.num_examples, seed=self.seed)
        titles = [f"{v} t={t:.1f}s" for v, t in zip(seen.video_ids, seen.frame_times, strict=True)]
        if seen.attention is not None and seen.logan_map is not None:
            save("attention", attention_figure(seen.frames, seen.attention, seen.logan_map, titles=titles))
        save("masks_avisnet", mask_figure(seen.frames, seen.probabilities, seen.truth, titles=titles, ious=seen.ious))
        baseline = segmentation_examples(store, load_system(results["visual_only"]["checkpoint"]),
                                         source=self.data_root, num=self.num_examples, seed=self.seed)
        save("masks_visual_only", mask_figure(baseline.frames, baseline.probabilities, baseline.truth,
                                              titles=titles, ious=baseline.ious))
        solo_clips = load_synth(self.data_root, split="val", solo=True)
        for i, example in enumerate(separation_examples(store, solo, avisnet, num=2, seed=self.seed,
                                                        source=solo_clips)):
            save(f"separation_{i}", separation_figure(example.mixture, example.estimates, example.references,
                                                      sdr=example.sdr, labels=example.labels))
            if example.frames is not None and example.pixel_masks is not None:
                energy = pixel_energy(example.pixel_masks, example.mixture)
                save(f"pixels_{i}", pixel_sound_figure(example.frames, energy, labels=example.labels))
        tracks = vis_examples(Path(results["afcv"]["log_dir"]) / "ytvis_results.json", self.data_root,
                              num_videos=2)
        for i, video in enumerate(v for v in tracks if v.tracks):
            save(f"tracks_{i}", tracks_figure(video.frames, video.tracks, labels=video.labels, scores=video.scores))
        runs = {system: Path(r["log_dir"]) / "metrics.csv" for system, r in results.items()}
        save("loss_curves", loss_curves_figure(runs))

    # 5 and 7. Metrics and report.

    def write(self, summary: dict[str, Any]) -> dict[str, Path]:
        from avlab.report import markdown_to_html

        files = {"summary": self.out / "summary.json", "report": self.out / "report.md",
                 "html": self.out / "report.html", "metrics_csv": self.out / "metrics.csv",
                 "metrics_json": self.out / "metrics.json", **self.figures}
        names = sorted({k for row in summary["metrics"] for k in row} - {"system", "task", "train_s"})
        with files["metrics_csv"].open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["system", "task", "train_s", *names])
            for row in summary["metrics"]:
                writer.writerow([row["system"], row["task"], f"{row['train_s']:.1f}", *[row.get(k, "") for k in names]])
        files["metrics_json"].write_text(json.dumps(summary["metrics"], indent=2) + "\n", encoding="utf-8")
        files["summary"].write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
        text = report_markdown(summary, {role: path.name for role, path in self.figures.items()})
        files["report"].write_text(text, encoding="utf-8")
        files["html"].write_text(markdown_to_html(text, base=self.out, title="avlab demo report"), encoding="utf-8")
        return files


def _contact_rows(manifest: Manifest, count: int, card: dict[str, Any]) -> list[ContactRow]:
    names = manifest.categories or []
    rows = []
    for record in list(manifest)[:count]:
        frames, _ = record.load_frames()
        masks = record.load_masks()
        labels = [names[c] if 0 <= c < len(names) else str(c) for c in masks.category_ids.tolist()] \
            if masks.category_ids is not None else None
        sample_rate = int(card["parameters"]["sample_rate"])
        rows.append(ContactRow(
            title=record.video_id, frames=frames, masks=masks.data, sounding=masks.sounding,
            audio=record.load_audio(sample_rate), sample_rate=sample_rate, labels=labels,
        ))
    return rows


def _table(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[str]:
    shown = [k for k in keys if any(k in row for row in rows)]
    lines = ["| system | train s | " + " | ".join(_HEADERS[k] for k in shown) + " |", "|---|---|" + "---|" * len(shown)]
    for row in rows:
        cells = [(f"{row[k]:.0f}" if k.endswith("skipped") else f"{row[k]:.3f}") if k in row else "-" for k in shown]
        lines.append(f"| {row['system']} | {row['train_s']:.0f} | " + " | ".join(cells) + " |")
    return lines


def report_markdown(summary: Mapping[str, Any], figures: Mapping[str, str]) -> str:
    """The demo report as markdown; `figures` maps a figure's role to its file name."""
    card, environment = summary["card"], summary["environment"]
    parameters = card["parameters"]
    segmentation = [r for r in summary["metrics"] if r["task"] == "segmentation"]
    vis = [r for r in summary["metrics"] if r["task"] == "vis"]

    def figure(role: str, caption: str) -> list[str]:
        return [f"![{caption}]({figures[role]})", ""] if role in figures else []

    lines = [
        "# avlab demo report",
        "",
        f"SynthAV in `{summary['data_root']}` ("
        + ("reused from an earlier run" if summary["reused_data"] else "generated by this run")
        + f"), preset `{summary['preset_name']}`, this run {summary['total_s']:.0f} s"
        + (f" (reused from earlier runs: {', '.join(summary['reused'])}; their training times are theirs)"
           if summary["reused"] else "") + ". Backbone "
        f"`{summary['backbone']['visual']}`: {summary['backbone']['weights']}. Features cached in "
        f"`{summary['store']}` (solo clips: `{summary['solo_store']}`). All figures are on the validation split.",
        "",
        "## Segmentation and separation",
        "",
        "mIoU and accuracy at IoU 0.75 over annotated validation frames (\"silent\": frames that show a silent "
        "object); SDR / SIR / SAR in dB on fixed mixtures of validation solo clips (Sound of Pixels protocol); "
        "a mixture is skipped, as mir_eval must, when a separated source is silent.",
        "",
        *_table(segmentation, ("val/miou", "val/acc_iou75", "val/acc_iou75_silent", "val/sdr", "val/sir",
                               "val/sar", "val/separation_skipped")),
        "",
        "## Video instance segmentation",
        "",
        "YouTube-VIS AP / AR of the online tracks over the validation videos (AP sounding: only the "
        "instances while they sound).",
        "",
        *_table(vis, ("val/ap", "val/ap50", "val/ap75", "val/ar1", "val/ar10", "val/ap_sounding")),
        "",
        "Raw figures: `metrics.csv`, `metrics.json`; everything this report says: `summary.json`.",
        "",
        "## What AViS-Net looks at",
        "",
        "Each row: a validation frame, AViS-Net's attention maps (one per transformer query) over it, and "
        "LoGAN's map M of those maps.",
        "",
        *figure("attention", "attention maps and LoGAN map"),
        "## Masks: predicted against true",
        "",
        "Ground truth (sounding objects) and the prediction, AViS-Net then the visual-only baseline, IoU in "
        "the titles.",
        "",
        *figure("masks_avisnet", "AViS-Net masks"),
        *figure("masks_visual_only", "visual-only masks"),
        "## Separated sounds",
        "",
        "The mixture of two validation solo clips, and for each source its true spectrogram beside AViS-Net's "
        "separation (binary mask on the mixture), with its SDR.",
        "",
        *[line for role in sorted(r for r in figures if r.startswith("separation_"))
          for line in figure(role, "separated spectrograms")],
        *(["Where each source's frame sounds: every pixel's sound is a mask of the mixture "
           "(PixelPlayer's pixel-wise separation); bright pixels keep most of it. `SeparationViewer` plays "
           "the sound of a clicked pixel.", ""] if any(r.startswith("pixels_") for r in figures) else []),
        *[line for role in sorted(r for r in figures if r.startswith("pixels_"))
          for line in figure(role, "pixel-wise sound")],
        "## Tracks",
        "",
        "AFCV's online tracks on validation videos: each id keeps its colour across frames.",
        "",
        *([line for role in sorted(r for r in figures if r.startswith("tracks_")) for line in figure(role, "tracks")]
          or ["No track of AFCV scored above the display threshold (0.3) on these videos.", ""]),
        "## Loss curves",
        "",
        *figure("loss_curves", "loss curves"),
        "## The data",
        "",
        "| split | videos | frames | instances | sounding fraction | occluded fraction |",
        "|---|---|---|---|---|---|",
        *[f"| {name} | {s['num_videos']} | {s['num_frames']} | {s.get('num_instances', 0)} | "
          f"{s.get('sounding_fraction', 0):.2f} | {s.get('occluded_fraction', 0):.2f} |"
          for name, s in summary["splits"].items()],
        "",
        "Frames with instance masks (sounding objects outlined in white) and the soundtrack's spectrogram; the "
        "bands along its top mark when each object sounds.",
        "",
        *figure("contact_sheet", "contact sheet"),
        "| parameter | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in parameters.items()],
        "",
        "## Timings and machine",
        "",
        *[f"- {k}: {v:.1f} s" for k, v in summary["timings_s"].items()],
        *[f"- train {r['system']}: {r['train_s']:.1f} s" for r in summary["metrics"]],
        f"- machine: {environment['cpu']}, {environment['cores']} cores, {environment['memory_gib']} GiB, "
        f"GPUs: {', '.join(environment['gpus']) or 'none'}",
        f"- libraries: {', '.join(f'{k} {v}' for k, v in environment['libraries'].items() if v)}",
        "",
    ]
    return "\n".join(lines)
