"""Pictures of what avlab sees: pure render functions now, interactive viewers on top of them.

`avlab.widgets.render` holds the pure functions (arrays in, RGB arrays or matplotlib figures
out); it never imports ipywidgets, so reports and tests use it headless.
"""

from __future__ import annotations

from avlab.widgets.render import contact_sheet, instance_colors, overlay_masks

__all__ = ["contact_sheet", "instance_colors", "overlay_masks"]
