"""`avlab bench`: every speed figure of avlab against its baseline, measured side by side.

Each benchmark is a module with ``run(context) -> list[Figure]`` and a ``NOTES`` string:

- ``store``: `cache_features` frames/s against the bare backbone forward on decoded frames;
  random clip reads through `ClipDataset` against .npy memmaps, h5py and naive zarr.
- ``training``: head training from the cache against the head's compute bound (tensors in
  memory) and against the same system trained end to end (decode + backbone forward/backward).
- ``headline``: `avlab ablate --preset seeds` wall time against training the same table end to end.
- ``scoring``: SDR/SIR/SAR against mir_eval; YouTube-VIS AP against the plain pycocotools path.
- ``scale``: caching with 1 and 2 dask workers, store bytes per frame against float32 .npy,
  caching and training time against the number of videos.

`run_bench` runs the chosen ones (all by default), writes ``{name}[_quick].json`` and ``.md``
per benchmark and ``summary[_quick].md`` into `out`, and returns the figures. Nothing here runs
in ``make test`` but the ``--quick`` smoke run.

Example:
    >>> sorted(BENCHMARKS)
    ['headline', 'scale', 'scoring', 'store', 'training']
"""

from __future__ import annotations

import importlib
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from avlab.bench.harness import BenchContext, Figure, record, summary_markdown
from avlab.environment import describe_environment

__all__ = ["BENCHMARKS", "BenchContext", "Figure", "recorded_figures", "run_bench"]

BENCHMARKS = {
    "store": "avlab.bench.store",
    "training": "avlab.bench.training",
    "headline": "avlab.bench.headline",
    "scoring": "avlab.bench.scoring",
    "scale": "avlab.bench.scale",
}


def run_bench(names: Sequence[str] | None = None, *, quick: bool = False, out: str | Path = "benchmarks/results",
              repeats: int | None = None, progress: bool = True) -> dict[str, list[Figure]]:
    """Run benchmarks and record their figures.

    Args:
        names: Benchmarks to run (default: all, in `BENCHMARKS` order).
        quick: Small data, few repetitions; results go to ``*_quick.*`` files.
        out: Folder of the results.
        repeats: Interleaved repetitions per case (default 3 quick, 5 full).
        progress: Print a line per benchmark.

    Returns:
        The figures of each benchmark.

    Raises:
        ValueError: An unknown benchmark name.
    """
    chosen = list(BENCHMARKS) if not names else list(names)
    unknown = [n for n in chosen if n not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; choose from {sorted(BENCHMARKS)}")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    environment = describe_environment()
    results: dict[str, list[Figure]] = {}
    for name in chosen:
        module = importlib.import_module(BENCHMARKS[name])
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"avlab-bench-{name}-") as work:
            context = BenchContext(quick=quick, work=Path(work), repeats=repeats or (3 if quick else 5), out=folder)
            figures = module.run(context)
        results[name] = figures
        record(name, figures, folder, notes=module.NOTES, quick=quick, environment=environment)
        if progress:
            print(f"avlab bench: {name} done in {time.perf_counter() - started:.0f} s", flush=True)
    # The summary covers every benchmark recorded in `out`, so benchmarks can be run one at a time.
    recorded = {name: recorded_figures(folder, name, quick=quick) for name in BENCHMARKS}
    summary = folder / ("summary_quick.md" if quick else "summary.md")
    summary.write_text(summary_markdown({n: f for n, f in recorded.items() if f}, environment, quick=quick))
    return results


def recorded_figures(out: str | Path, name: str, *, quick: bool = False) -> list[Figure]:
    """The figures of benchmark `name` recorded in `out` (empty when it has not run there).

    Example:
        >>> recorded_figures(tempfile.mkdtemp(), "store")
        []
    """
    path = Path(out) / (f"{name}_quick.json" if quick else f"{name}.json")
    if not path.exists():
        return []
    fields = {"name", "unit", "baseline", "baseline_rate", "rate", "target", "details"}
    return [Figure(**{k: v for k, v in f.items() if k in fields}) for f in json.loads(path.read_text())["figures"]]
