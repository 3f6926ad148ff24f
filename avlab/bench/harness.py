"""What every benchmark shares: interleaved repetitions, medians, ratios, and recorded results.

A figure is a rate of avlab against the rate of its baseline measured in the same run, the two
interleaved (baseline, avlab, baseline, avlab, ...) so that drift on a shared machine hits both
alike; the median of the repetitions is reported. Every figure is a throughput (things per
second, higher is better: a scoring time becomes mixtures/s), so a ratio above 1 always means
avlab is faster and a target is a lowest acceptable ratio. Results are written with the machine
that produced them (`avlab.environment.describe_environment`).

Example:
    >>> figure = Figure("toy", unit="items/s", baseline="a loop", baseline_rate=10.0, rate=25.0, target=2.0)
    >>> figure.ratio, figure.met
    (2.5, True)
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from avlab.environment import describe_environment

__all__ = ["BenchContext", "Figure", "interleaved", "median", "record", "summary_markdown"]


@dataclass
class Figure:
    """One measured figure: avlab's rate against its baseline's, with the target ratio.

    Attributes:
        name: What is measured, with its sizes (e.g. "caching resnet18 @ 128 px, 384 frames").
        unit: The rates' unit (e.g. "frames/s").
        baseline: What avlab is compared with.
        baseline_rate: The baseline's median rate.
        rate: avlab's median rate.
        target: Lowest acceptable ``rate / baseline_rate``, or None (reported only).
        details: Anything else worth recording (repetitions, sizes, agreement in dB, ...).
    """

    name: str
    unit: str
    baseline: str
    baseline_rate: float
    rate: float
    target: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """``rate / baseline_rate`` (inf when the baseline's rate is 0)."""
        return self.rate / self.baseline_rate if self.baseline_rate > 0 else float("inf")

    @property
    def met(self) -> bool | None:
        """Whether the ratio reaches the target (None without one)."""
        return None if self.target is None else self.ratio >= self.target

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "met": self.met}


@dataclass(frozen=True)
class BenchContext:
    """What a benchmark is given: the size of the run and a scratch folder of its own.

    Attributes:
        quick: Small data and few repetitions (the smoke run of CI).
        work: An empty scratch folder, deleted after the run.
        repeats: Interleaved repetitions of each case.
        out: The results folder, for artifacts worth keeping (plots), named
            ``{benchmark}_...[_quick].png``.
    """

    quick: bool
    work: Path
    repeats: int
    out: Path


def interleaved(cases: Mapping[str, Callable[[], float | None]], repeats: int) -> dict[str, list[float]]:
    """Run each case `repeats` times, round-robin; a case returns its own seconds or None (timed here).

    Example:
        >>> times = interleaved({"a": lambda: 1.0, "b": lambda: None}, repeats=2)
        >>> times["a"], len(times["b"])
        ([1.0, 1.0], 2)
    """
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, case in cases.items():
            started = time.perf_counter()
            own = case()
            times[name].append(own if own is not None else time.perf_counter() - started)
    return times


def median(values: Sequence[float]) -> float:
    """The median, as a float."""
    return float(statistics.median(values))


def record(name: str, figures: Sequence[Figure], out: Path, *, notes: str = "", quick: bool = False,
           environment: Mapping[str, Any] | None = None) -> Path:
    """Write ``{out}/{name}[_quick].json`` and ``.md`` (a table of `figures`, with the machine).

    Returns:
        The markdown file.
    """
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{name}_quick" if quick else name
    machine = dict(environment or describe_environment())
    (out / f"{stem}.json").write_text(json.dumps(
        {"benchmark": name, "quick": quick, "notes": notes, "figures": [f.as_dict() for f in figures],
         "environment": machine}, indent=2) + "\n")
    lines = [f"# {name}{' (quick)' if quick else ''}", "", notes, "", *table(figures), "", machine_line(machine), ""]
    (out / f"{stem}.md").write_text("\n".join(lines))
    return out / f"{stem}.md"


def table(figures: Sequence[Figure]) -> list[str]:
    """The markdown table of `figures`: rates, ratio, target and whether it is met."""
    lines = ["| figure | baseline | baseline rate | avlab rate | unit | ratio | target | met |",
             "|---|---|---|---|---|---|---|---|"]
    for f in figures:
        target = "-" if f.target is None else f">= {f.target:g}x"
        met = "-" if f.met is None else ("yes" if f.met else "**no**")
        lines.append(f"| {f.name} | {f.baseline} | {_number(f.baseline_rate)} | {_number(f.rate)} | {f.unit} | "
                     f"{f.ratio:.3g}x | {target} | {met} |")
    return lines


def machine_line(environment: Mapping[str, Any]) -> str:
    """One line naming the machine and the library versions."""
    libraries = ", ".join(f"{k} {v}" for k, v in environment.get("libraries", {}).items() if v)
    gpus = ", ".join(environment.get("gpus", [])) or "none"
    return (f"Machine: {environment.get('cpu')}, {environment.get('cores')} cores, "
            f"{environment.get('memory_gib')} GiB, GPUs: {gpus}; {libraries}")


def summary_markdown(results: Mapping[str, Sequence[Figure]], environment: Mapping[str, Any], *,
                     quick: bool = False) -> str:
    """Every benchmark's figures in one table, the targets beside them."""
    lines = [f"# avlab bench{' --quick' if quick else ''}: every figure against its baseline", "",
             "Medians of interleaved repetitions; each ratio is avlab's rate over its baseline's, measured "
             "side by side in the same run.", ""]
    for name, figures in results.items():
        lines += [f"## {name}", "", *table(figures), ""]
    lines += [machine_line(environment), ""]
    return "\n".join(lines)


def _number(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
