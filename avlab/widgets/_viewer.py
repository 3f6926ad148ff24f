"""What every viewer shares: its ipywidgets container, shown when the viewer is displayed, and
the picture widget its images go in."""

from __future__ import annotations

from typing import Any

import ipywidgets

# Frames are small (SynthAV: 64-128 px): shown at this width, they are big enough to read.
FRAME_WIDTH = 320


class Viewer:
    """Base of the viewers: ``viewer.widget`` is the container; displaying the viewer shows it."""

    widget: ipywidgets.Widget

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def picture(width: int | None = FRAME_WIDTH) -> ipywidgets.Image:
    """An empty PNG Image widget `width` pixels wide (None: the PNG's own size), never stretched.

    A box stretches its children to its width by default, which blows a 64-pixel frame up to
    the whole output area; a fixed width, ``align_self`` and ``object_fit`` keep it as set.

    Example:
        >>> picture(200).layout.width, picture(None).layout.width
        ('200px', 'auto')
    """
    return ipywidgets.Image(format="png", layout=ipywidgets.Layout(
        width="auto" if width is None else f"{width}px", height="auto", align_self="flex-start",
        object_fit="contain"))
