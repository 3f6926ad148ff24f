"""What every viewer shares: its ipywidgets container, shown when the viewer is displayed."""

from __future__ import annotations

from typing import Any

import ipywidgets


class Viewer:
    """Base of the viewers: ``viewer.widget`` is the container; displaying the viewer shows it."""

    widget: ipywidgets.Widget

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
