"""`AttentionViewer`: AViS-Net's attention and LoGAN maps over the frames, one frame at a time.

Example:
    >>> import numpy as np
    >>> from avlab.testing.examples import synthetic_segmentation_examples
    >>> viewer = AttentionViewer(synthetic_segmentation_examples(num=2, num_queries=2))
    >>> viewer.maps.options
    ('LoGAN M', 'query 1', 'query 2')
    >>> viewer.frame.value = 1
    >>> viewer.image.shape
    (16, 16, 3)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets
import numpy as np

from avlab.widgets._viewer import Viewer, picture
from avlab.widgets.render import attention_overlay, figure_png, png_bytes, waveform_figure

if TYPE_CHECKING:
    from avlab.report.examples import SegmentationExamples

__all__ = ["AttentionViewer"]

LOGAN = "LoGAN M"


class AttentionViewer(Viewer):
    """A frame slider, a map selector and an opacity slider over `SegmentationExamples`.

    The chosen map ("LoGAN M", or "query q" for AViS-Net's q-th attention map) is drawn over
    the frame by `avlab.widgets.render.attention_overlay` and shown as a PNG. With `audio`,
    a waveform below marks the frame's time (``examples.frame_times``) with a playhead.

    Args:
        examples: Frames and maps (`avlab.report.segmentation_examples`); it needs
            ``attention`` or ``logan_map``.
        audio: Mono samples whose time axis is the frames' ``frame_times``, or None.
        sample_rate: Hz of `audio` (required with it).
        opacity: Initial opacity of the map.

    Shape:
        examples.frames: (N, H, W, 3) uint8.
        examples.attention: (N, Q, h, w).
        examples.logan_map: (N, h, w).
        audio: (S,).

    Attributes:
        widget: The ipywidgets container (displaying the viewer displays it).
        frame: IntSlider over the N frames.
        maps: Dropdown of the maps.
        opacity: FloatSlider of the map's opacity.
        picture: Image widget showing `image`.
        caption: Label with the frame's video, time and IoU.
        waveform: Image widget of the waveform and playhead (None without audio).

    Raises:
        ValueError: The examples hold no maps, or `audio` comes without `sample_rate`.

    Example:
        >>> from avlab.testing.examples import synthetic_segmentation_examples
        >>> viewer = AttentionViewer(synthetic_segmentation_examples(num=2), audio=np.zeros(800),
        ...                          sample_rate=400)
        >>> viewer.maps.value = "query 1"
        >>> viewer.opacity.value = 0.0
        >>> bool((viewer.image == viewer.examples.frames[0]).all())
        True
    """

    def __init__(self, examples: SegmentationExamples, *, audio: np.ndarray | None = None,
                 sample_rate: int | None = None, opacity: float = 0.6) -> None:
        self.examples = examples
        options: list[str] = []
        if examples.logan_map is not None:
            options.append(LOGAN)
        if examples.attention is not None:
            options += [f"query {q + 1}" for q in range(examples.attention.shape[1])]
        if not options:
            raise ValueError("the examples hold no attention maps (attention and logan_map are None): "
                             "AttentionViewer needs an AViS-Net system's outputs")
        if audio is not None and sample_rate is None:
            raise ValueError("audio needs its sample_rate")
        self.audio = None if audio is None else np.asarray(audio)
        self.sample_rate = sample_rate
        count = len(examples.frames)
        self.frame = ipywidgets.IntSlider(value=0, min=0, max=count - 1, description="frame",
                                          disabled=count == 1)
        self.maps = ipywidgets.Dropdown(options=options, value=options[0], description="map")
        self.opacity = ipywidgets.FloatSlider(value=opacity, min=0.0, max=1.0, step=0.05, description="opacity")
        self.picture = picture()
        self.caption = ipywidgets.Label()
        self.waveform = None if self.audio is None else picture(None)
        self._image = np.zeros((0, 0, 3), np.uint8)
        for control in (self.frame, self.maps, self.opacity):
            control.observe(self._changed, names="value")
        rows: list[ipywidgets.Widget] = [ipywidgets.HBox([self.frame, self.maps, self.opacity]), self.caption,
                                         self.picture]
        if self.waveform is not None:
            rows.append(self.waveform)
        self.widget = ipywidgets.VBox(rows)
        self.render()

    @property
    def image(self) -> np.ndarray:
        """The picture shown now, (H, W, 3) uint8."""
        return self._image

    def heat(self) -> np.ndarray:
        """The chosen map of the chosen frame, (h, w)."""
        index = int(self.frame.value)
        name = str(self.maps.value)
        if name == LOGAN:
            assert self.examples.logan_map is not None
            return np.asarray(self.examples.logan_map[index])
        assert self.examples.attention is not None
        return np.asarray(self.examples.attention[index, int(name.removeprefix("query ")) - 1])

    def render(self) -> np.ndarray:
        """Redraw from the controls' values; returns the new `image`."""
        index = int(self.frame.value)
        self._image = attention_overlay(self.examples.frames[index], self.heat(), opacity=float(self.opacity.value))
        self.picture.value = png_bytes(self._image)
        time = float(self.examples.frame_times[index])
        self.caption.value = (f"{self.examples.video_ids[index]} @ {time:.2f} s, "
                              f"IoU {float(self.examples.ious[index]):.2f}")
        if self.waveform is not None and self.audio is not None and self.sample_rate is not None:
            self.waveform.value = figure_png(waveform_figure(self.audio, self.sample_rate, time=time))
        return self._image

    def _changed(self, change: Any) -> None:
        self.render()
