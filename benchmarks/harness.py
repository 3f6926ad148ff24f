"""What every benchmark shares: interleaved repetitions, medians, ratios, and recorded results.

A figure is a ratio of a candidate against its baseline measured in the same process, the two
interleaved (baseline, candidate, baseline, candidate, ...) so drift on a shared machine hits
both alike. Results are written with the machine that produced them.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from avlab.environment import describe_environment

RESULTS = Path(__file__).resolve().parent / "results"


def interleaved(cases: dict[str, Callable[[], float | None]], repeats: int) -> dict[str, list[float]]:
    """Run each case `repeats` times, round-robin; a case returns its own seconds or None (timed here)."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, case in cases.items():
            started = time.perf_counter()
            own = case()
            times[name].append(own if own is not None else time.perf_counter() - started)
    return times


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def record(name: str, figures: list[dict[str, Any]], *, notes: str = "", quick: bool = False) -> Path:
    """Write ``results/{name}[_quick].json`` and ``.md`` (a table of `figures`), with the machine."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = f"{name}_quick" if quick else name
    environment = describe_environment()
    (RESULTS / f"{stem}.json").write_text(json.dumps({"figures": figures, "notes": notes,
                                                       "environment": environment}, indent=2))
    columns = list(dict.fromkeys(key for figure in figures for key in figure))
    lines = [f"# {name}", "", notes, "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for figure in figures:
        lines.append("| " + " | ".join(_cell(figure.get(c)) for c in columns) + " |")
    lines += ["", f"Machine: {environment['cpu']}, {environment['cores']} cores, {environment['memory_gib']} GiB, "
              f"GPUs: {', '.join(environment['gpus']) or 'none'}; "
              + ", ".join(f"{k} {v}" for k, v in environment["libraries"].items() if v), ""]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines))
    return RESULTS / f"{stem}.md"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return "" if value is None else str(value)
