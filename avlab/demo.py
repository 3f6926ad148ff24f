"""The main job behind `make demo`: from nothing to a report a newcomer can open.

For now the pipeline generates SynthAV (or reuses it), describes what it holds and draws a
contact sheet; later stages (caching, training, evaluation) append to the same report.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avlab.datasets.manifest import Manifest
from avlab.datasets.stats import describe_manifest
from avlab.environment import describe_environment
from avlab.widgets.render import ContactRow, contact_sheet

__all__ = ["DemoResult", "run_demo"]


@dataclass
class DemoResult:
    """What `run_demo` produced.

    Attributes:
        data_root: The SynthAV root.
        out: The report folder.
        summary: Everything the report says, JSON-ready.
        files: The report's files by role (``"report"``, ``"contact_sheet"``, ``"summary"``).
    """

    data_root: Path
    out: Path
    summary: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)

    def summary_text(self) -> str:
        """A few lines for the terminal."""
        splits = self.summary["splits"]
        counts = ", ".join(f"{name} {s['num_videos']}" for name, s in splits.items())
        timings = self.summary["timings_s"]
        made = "reused" if self.summary["reused_data"] else f"generated in {timings['generate']:.1f} s"
        lines = [
            f"SynthAV in {self.data_root}: {counts} videos ({made})",
            f"report: {self.files['report']}",
            f"contact sheet: {self.files['contact_sheet']}",
        ]
        return "\n".join(lines)


def run_demo(
    *,
    data_root: str | os.PathLike[str] = "data/synthav",
    out: str | os.PathLike[str] = "reports/demo",
    num_videos: int = 24,
    size: int = 128,
    seed: int = 0,
    progress: bool = True,
    num_contact_rows: int = 4,
) -> DemoResult:
    """Generate (or reuse) SynthAV and write `report.md`, `contact_sheet.png`, `summary.json`.

    Args:
        data_root: Where SynthAV lives; generated when missing or made with other settings.
        out: Report folder.
        num_videos: Training videos (val and test get a quarter each).
        size: Frame size in pixels.
        seed: SynthAV seed.
        progress: Show progress bars.
        num_contact_rows: Videos on the contact sheet.

    Returns:
        A `DemoResult` naming the files written.
    """
    from avlab.datasets.synth import generate, load_synth, read_card

    data_root, out = Path(data_root), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    started = time.perf_counter()
    wanted = {"num_videos": num_videos, "size": size, "seed": seed}
    card = read_card(data_root) if (data_root / "dataset_card.json").exists() else None
    reused = card is not None and all(card["parameters"].get(k) == v for k, v in wanted.items())
    if card is None or not reused:
        # Replace only a SynthAV dataset (one with a card); anything else at data_root is an error.
        generate(data_root, num_videos=num_videos, size=size, seed=seed, overwrite=card is not None,
                 progress=progress)
        card = read_card(data_root)
    timings["generate"] = time.perf_counter() - started

    started = time.perf_counter()
    manifests = {split: load_synth(data_root, split=split) for split in card["splits"]}
    splits = {split: describe_manifest(m) for split, m in manifests.items()}
    timings["describe"] = time.perf_counter() - started

    started = time.perf_counter()
    sheet = out / "contact_sheet.png"
    train = manifests.get("train") or next(iter(manifests.values()))
    contact_sheet(_contact_rows(train, num_contact_rows, card)).savefig(sheet)
    timings["contact_sheet"] = time.perf_counter() - started

    summary = {
        "data_root": str(data_root),
        "reused_data": reused,
        "card": card,
        "splits": splits,
        "timings_s": timings,
        "environment": describe_environment(),
    }
    files = {"summary": out / "summary.json", "report": out / "report.md", "contact_sheet": sheet}
    files["summary"].write_text(json.dumps(summary, indent=2, default=str))
    files["report"].write_text(_report_markdown(summary, sheet.name))
    return DemoResult(data_root=data_root, out=out, summary=summary, files=files)


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


def _report_markdown(summary: dict[str, Any], sheet_name: str) -> str:
    card = summary["card"]
    parameters = card["parameters"]
    lines = [
        "# avlab demo report",
        "",
        f"SynthAV in `{summary['data_root']}`"
        + (" (reused from an earlier run)." if summary["reused_data"] else " (generated by this run)."),
        "",
        "## Parameters",
        "",
        "| parameter | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in parameters.items()],
        "",
        "## Splits",
        "",
        "| split | videos | frames | instances | instances / video | sounding fraction | occluded fraction | mean area |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in summary["splits"].items():
        lines.append(
            f"| {name} | {s['num_videos']} | {s['num_frames']} | {s.get('num_instances', 0)} | "
            f"{s.get('instances_per_video', 0):.2f} | {s.get('sounding_fraction', 0):.2f} | "
            f"{s.get('occluded_fraction', 0):.2f} | {s.get('mean_area_fraction', 0):.3f} |"
        )
    classes = card.get("classes", [])
    if classes:
        lines += ["", "## Classes", "", "| id | name | shape | fill | colour | instrument (GM program) |",
                  "|---|---|---|---|---|---|"]
        for c in classes:
            lines.append(f"| {c['id']} | {c['name']} | {c['shape']} | {c['fill']} | {c['colour_name']} | "
                         f"{c['instrument']} ({c['program']}) |")
    environment = summary["environment"]
    lines += [
        "",
        "## Contact sheet",
        "",
        "Frames with instance masks (sounding objects outlined in white) and the spectrogram of the",
        "soundtrack; the bands along its top mark when each object sounds, in its mask's colour.",
        "",
        f"![contact sheet]({sheet_name})",
        "",
        "## Timings and machine",
        "",
        *[f"- {k}: {v:.2f} s" for k, v in summary["timings_s"].items()],
        f"- machine: {environment['cpu']}, {environment['cores']} cores, "
        f"{environment['memory_gib']} GiB, GPUs: {', '.join(environment['gpus']) or 'none'}",
        f"- libraries: {', '.join(f'{k} {v}' for k, v in environment['libraries'].items() if v)}",
        "",
    ]
    return "\n".join(lines)

