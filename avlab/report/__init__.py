"""The demo report's pictures: figures drawn from arrays, and the arrays trained systems give.

`avlab.report.figures` is pure plotting (numpy in, a matplotlib `Figure` out, no pyplot);
`avlab.report.examples` runs trained systems on validation items and returns those arrays
(`avlab.report.curriculum`: under the hide-and-detect curriculum's occlusion). The
examples pull in torch and the training package, so they are imported on first use.

Example:
    >>> import numpy as np
    >>> from avlab.report import mask_figure
    >>> truth = np.eye(8, dtype=bool)[None]
    >>> len(mask_figure(np.zeros((1, 8, 8, 3), np.uint8), truth, truth).axes)
    2
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from avlab.report.figures import (
    attention_figure,
    loss_curves_figure,
    mask_figure,
    metric_bars,
    pixel_sound_figure,
    separation_figure,
    tracks_figure,
)
from avlab.report.html import markdown_to_html

if TYPE_CHECKING:
    from avlab.report.curriculum import CurriculumExamples, curriculum_examples
    from avlab.report.examples import (
        SegmentationExamples,
        SeparationExample,
        TrackExample,
        segmentation_examples,
        separation_examples,
        vis_examples,
    )

_LAZY = {
    "SegmentationExamples": "avlab.report.examples",
    "SeparationExample": "avlab.report.examples",
    "TrackExample": "avlab.report.examples",
    "segmentation_examples": "avlab.report.examples",
    "separation_examples": "avlab.report.examples",
    "vis_examples": "avlab.report.examples",
    "CurriculumExamples": "avlab.report.curriculum",
    "curriculum_examples": "avlab.report.curriculum",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'avlab.report' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    # figures: arrays in, a matplotlib Figure out
    "attention_figure",
    "loss_curves_figure",
    "mask_figure",
    "metric_bars",
    "pixel_sound_figure",
    "separation_figure",
    "tracks_figure",
    # the report as one HTML file
    "markdown_to_html",
    # examples: trained systems on validation items
    "SegmentationExamples",
    "SeparationExample",
    "TrackExample",
    "segmentation_examples",
    "separation_examples",
    "vis_examples",
    # the hide-and-detect curriculum on validation frames
    "CurriculumExamples",
    "curriculum_examples",
]
