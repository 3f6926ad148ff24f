"""`StoreBrowser`: a cached feature store's videos, levels and frames, and the recipe that made them."""

from __future__ import annotations

import os
from typing import Any

import ipywidgets
import numpy as np

from avlab.widgets._viewer import Viewer, picture
from avlab.widgets.render import feature_map_image, png_bytes, recipe_html

__all__ = ["StoreBrowser"]


class StoreBrowser(Viewer):
    """Dropdowns of a store's cached videos, levels and views, a frame slider, and the recipe.

    The picture is the channel mean of the chosen level's features at the chosen frame,
    min-max scaled and coloured (`avlab.widgets.render.feature_map_image`), each cell blown up
    so the grid's longer side spans about `display_size` pixels. Only videos whose status is
    ``done`` are offered; the status line counts the others.

    Args:
        store: An opened store (`avlab.open_store`, `avlab.cache_features`) or its path.
        display_size: Pixels of the picture's longer side (at least one pixel a cell).

    Shape:
        features of a level: (video, view, frame, C, h, w); the picture: (h * s, w * s, 3).

    Attributes:
        widget: The ipywidgets container (displaying the browser displays it).
        video: Dropdown of the cached video ids.
        level: Dropdown of the backbone levels (c3, c4, c5).
        view: Dropdown of the views (original and augmented copies).
        frame: IntSlider over the video's frames.
        picture: Image widget showing `image`.
        caption: Label of the frame, its time and the level's shape.
        status: Label counting the videos by status.
        recipe: HTML widget of the recipe as JSON.

    Raises:
        ValueError: The store holds no visual features or no cached video.

    Example:
        >>> import tempfile
        >>> from avlab.testing import tiny_store
        >>> browser = StoreBrowser(tiny_store(tempfile.mkdtemp()), display_size=32)
        >>> browser.video.options, browser.level.options
        (('train_0000', 'train_0001'), ('c3', 'c4', 'c5'))
        >>> browser.frame.value = 3
        >>> browser.caption.value
        'train_0000 frame 3 @ 0.75 s: c3 (8, 4, 4)'
    """

    def __init__(self, store: Any, *, display_size: int = 128) -> None:
        from avlab.store import open_store, schema

        self._schema = schema
        ds = store if hasattr(store, "avlab") else open_store(os.fspath(store))
        self.ds = ds
        self.display_size = display_size
        levels = ds.avlab.levels
        if not levels:
            raise ValueError("the store holds no visual features (no cached level)")
        statuses = np.asarray(ds[schema.STATUS].values).astype(str)
        ids = [str(v) for v in ds[schema.VIDEO].values]
        done = [v for v, s in zip(ids, statuses, strict=True) if s == schema.STATUS_DONE]
        if not done:
            raise ValueError("the store holds no cached video (none has status 'done')")
        views = [str(v) for v in ds[schema.VIEW].values] if schema.VIEW in ds.coords else ["original"]
        self.video = ipywidgets.Dropdown(options=done, value=done[0], description="video")
        self.level = ipywidgets.Dropdown(options=levels, value=levels[0], description="level")
        self.view = ipywidgets.Dropdown(options=views, value=views[0], description="view",
                                        disabled=len(views) == 1)
        self.frame = ipywidgets.IntSlider(value=0, min=0, max=0, description="frame")
        self.picture = picture(None)  # enlarged to display_size already
        self.caption = ipywidgets.Label()
        counts = {s: int((statuses == s).sum())
                  for s in (schema.STATUS_DONE, schema.STATUS_FAILED, schema.STATUS_PENDING)}
        self.status = ipywidgets.Label(", ".join(f"{status} {count}" for status, count in counts.items()))
        self.recipe = ipywidgets.HTML(recipe_html(ds.avlab.recipe))
        self._image = np.zeros((0, 0, 3), np.uint8)
        self._set_frames()
        self.video.observe(self._video_changed, names="value")
        for control in (self.level, self.view, self.frame):
            control.observe(self._changed, names="value")
        self.widget = ipywidgets.VBox([
            ipywidgets.HBox([self.video, self.level, self.view]),
            self.frame,
            self.caption,
            self.picture,
            self.status,
            ipywidgets.Accordion(children=[self.recipe], titles=("recipe",)),
        ])
        self.render()

    @property
    def image(self) -> np.ndarray:
        """The picture shown now, (h * s, w * s, 3) uint8."""
        return self._image

    def features(self) -> np.ndarray:
        """The chosen level's features of the chosen video, view and frame, (C, h, w) float32."""
        schema = self._schema
        selected = self.ds[schema.visual_var(str(self.level.value))].sel(
            {schema.VIDEO: self.video.value, schema.VIEW: self.view.value}).isel({schema.FRAME: int(self.frame.value)})
        return np.asarray(selected.values, np.float32)

    def render(self) -> np.ndarray:
        """Redraw from the controls' values; returns the new `image`."""
        features = self.features()  # (C, h, w)
        scale = max(1, self.display_size // max(features.shape[1:]))
        self._image = feature_map_image(features, scale=scale)
        self.picture.value = png_bytes(self._image)
        index = int(self.frame.value)
        text = f"{self.video.value} frame {index}"
        if self._schema.FRAME_TIME in self.ds:
            time = float(self.ds[self._schema.FRAME_TIME].sel({self._schema.VIDEO: self.video.value})
                         .isel({self._schema.FRAME: index}).values)
            text += f" @ {time:.2f} s"
        self.caption.value = f"{text}: {self.level.value} {tuple(features.shape)}"
        return self._image

    def _set_frames(self) -> None:
        """The slider spans the video's cached frames (videos have different lengths)."""
        schema = self._schema
        count = int(self.ds[schema.NUM_FRAMES].sel({schema.VIDEO: self.video.value}).values)
        self.frame.max = max(count - 1, 0)
        self.frame.disabled = count <= 1

    def _video_changed(self, change: Any) -> None:
        with self.frame.hold_trait_notifications():
            self._set_frames()
        self.render()

    def _changed(self, change: Any) -> None:
        self.render()
