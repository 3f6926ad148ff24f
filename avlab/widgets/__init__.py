"""Pictures of what avlab sees: pure render functions and the interactive viewers on top of them.

`avlab.widgets.render` holds the pure functions (arrays in, RGB arrays, figures or encoded
bytes out); it never imports ipywidgets, so reports and tests use it headless. The viewers
(`AttentionViewer`, `CurriculumViewer`, `MaskViewer`, `SeparationViewer`, `StoreBrowser`) are
thin ipywidgets containers over those functions, imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from avlab.widgets.render import (
    attention_overlay,
    contact_sheet,
    curriculum_iou_figure,
    feature_map_image,
    instance_colors,
    occlusion_overlay,
    overlay_masks,
    pixel_energy,
    pixel_picker_image,
    pixel_waveform,
    separation_table_html,
    truth_and_prediction,
    waveform_figure,
)

if TYPE_CHECKING:
    from avlab.widgets.attention import AttentionViewer
    from avlab.widgets.curriculum import CurriculumViewer
    from avlab.widgets.masks import MaskViewer
    from avlab.widgets.separation import SeparationViewer
    from avlab.widgets.store import StoreBrowser

__all__ = [
    # viewers (ipywidgets)
    "AttentionViewer",
    "CurriculumViewer",
    "MaskViewer",
    "SeparationViewer",
    "StoreBrowser",
    # pure render functions
    "attention_overlay",
    "contact_sheet",
    "curriculum_iou_figure",
    "feature_map_image",
    "instance_colors",
    "occlusion_overlay",
    "overlay_masks",
    "pixel_energy",
    "pixel_picker_image",
    "pixel_waveform",
    "separation_table_html",
    "truth_and_prediction",
    "waveform_figure",
]

_LAZY = {
    "AttentionViewer": "avlab.widgets.attention",
    "CurriculumViewer": "avlab.widgets.curriculum",
    "MaskViewer": "avlab.widgets.masks",
    "SeparationViewer": "avlab.widgets.separation",
    "StoreBrowser": "avlab.widgets.store",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'avlab.widgets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
