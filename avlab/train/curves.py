"""The loss-curve figure of a run, drawn from its CSV log (Lightning's ``CSVLogger`` metrics.csv).

Drawn with matplotlib's object API on an Agg canvas: no pyplot state, no display needed.

Example:
    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> csv = os.path.join(folder, "metrics.csv")
    >>> with open(csv, "w") as f:
    ...     _ = f.write("epoch,step,train/loss_step,train/loss_epoch,val/loss\\n0,0,0.9,,\\n0,1,0.7,,\\n0,1,,0.8,0.75\\n")
    >>> os.path.basename(plot_loss_curve(csv, os.path.join(folder, "loss_curve.png")))
    'loss_curve.png'
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

__all__ = ["plot_loss_curve"]

_SERIES = (  # column, label, style
    ("train/loss_step", "train (step)", {"alpha": 0.35, "linewidth": 1.0}),
    ("train/loss_epoch", "train (epoch mean)", {"marker": "o"}),
    ("val/loss", "validation", {"marker": "s"}),
)


def plot_loss_curve(metrics_csv: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Plot training and validation losses against the optimiser step, and save a PNG.

    Args:
        metrics_csv: Lightning ``CSVLogger``'s metrics.csv.
        path: The PNG to write.

    Returns:
        `path`.

    Raises:
        FileNotFoundError: No metrics file.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    table = pd.read_csv(metrics_csv)
    figure = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for column, label, style in _SERIES:
        if column in table and "step" in table:
            rows = table[["step", column]].dropna()
            if len(rows):
                axes.plot(rows["step"], rows[column], label=label, **style)
    axes.set_xlabel("optimiser step")
    axes.set_ylabel("loss")
    axes.grid(alpha=0.3)
    if axes.lines:
        axes.legend()
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path)
    return path
