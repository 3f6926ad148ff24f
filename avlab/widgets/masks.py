"""`MaskViewer`: the ground truth beside the prediction, one frame at a time.

Example:
    >>> import numpy as np
    >>> frames = np.zeros((2, 8, 8, 3), np.uint8)
    >>> truth = np.zeros((2, 8, 8), bool); truth[:, :4] = True
    >>> viewer = MaskViewer(frames, truth, np.full((2, 8, 8), 0.7), sounding=[True, False])
    >>> viewer.frame.value = 1
    >>> viewer.caption.value
    'frame 1, silent: IoU 0.50'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets
import numpy as np

from avlab.widgets._viewer import Viewer, picture
from avlab.widgets.render import png_bytes, truth_and_prediction

if TYPE_CHECKING:
    from avlab.report.examples import SegmentationExamples

__all__ = ["MaskViewer"]


class MaskViewer(Viewer):
    """A frame slider over ground-truth and predicted sounding-object masks, shown side by side.

    Pictures come from `avlab.widgets.render.truth_and_prediction` (the colours of
    `avlab.report.mask_figure`: the prediction's picture outlines the truth in white). The
    caption gives the frame's title, whether it sounds and the IoU of the thresholded
    prediction (two empty masks score 1, as `avlab.eval.mask_iou`).

    Args:
        frames: The frames, at the masks' size.
        truth: Binary ground truth.
        predicted: Probabilities (foreground above `threshold`) or binary masks.
        sounding: Whether the object sounds in each frame, or None (not shown).
        titles: A label per frame (default "frame i").
        threshold: Probability above which a pixel is predicted foreground.

    Shape:
        frames: (N, H, W, 3) uint8.
        truth: (N, H, W).
        predicted: (N, H, W).
        sounding: (N,) bool.

    Attributes:
        widget: The ipywidgets container (displaying the viewer displays it).
        frame: IntSlider over the N frames.
        truth_picture: Image widget of the ground truth.
        predicted_picture: Image widget of the prediction.
        caption: Label with the title, the sounding flag and the IoU.

    Raises:
        ValueError: The shapes disagree.

    Example:
        >>> frames = np.zeros((3, 8, 8, 3), np.uint8)
        >>> viewer = MaskViewer(frames, np.zeros((3, 8, 8), bool), np.zeros((3, 8, 8)), titles=["a", "b", "c"])
        >>> viewer.frame.value = 2
        >>> viewer.caption.value, viewer.images[0].shape
        ('c: IoU 1.00', (8, 8, 3))
    """

    def __init__(self, frames: np.ndarray, truth: np.ndarray, predicted: np.ndarray, *,
                 sounding: Sequence[bool] | np.ndarray | None = None, titles: Sequence[str] | None = None,
                 threshold: float = 0.5) -> None:
        self.frames = np.asarray(frames)
        self.truth = np.asarray(truth).astype(bool)
        self.predicted = np.asarray(predicted)
        count = len(self.frames)
        if (self.frames.ndim != 4 or self.frames.shape[-1] != 3 or self.truth.shape != self.frames.shape[:3]
                or self.predicted.shape != self.truth.shape):
            raise ValueError(f"expected frames (N, H, W, 3) with truth and predicted (N, H, W), got "
                             f"{self.frames.shape}, {self.truth.shape} and {self.predicted.shape}")
        self.sounding = None if sounding is None else np.asarray(sounding, bool)
        if self.sounding is not None and self.sounding.shape != (count,):
            raise ValueError(f"expected sounding (N,) = ({count},), got {self.sounding.shape}")
        if titles is not None and len(titles) != count:
            raise ValueError(f"expected {count} titles, got {len(titles)}")
        self.titles = [f"frame {k}" for k in range(count)] if titles is None else [str(t) for t in titles]
        self.threshold = threshold
        self.frame = ipywidgets.IntSlider(value=0, min=0, max=max(count - 1, 0), description="frame",
                                          disabled=count <= 1)
        self.truth_picture = picture()
        self.predicted_picture = picture()
        self.caption = ipywidgets.Label()
        self._images = (np.zeros((0, 0, 3), np.uint8), np.zeros((0, 0, 3), np.uint8))
        self.frame.observe(self._changed, names="value")
        self.widget = ipywidgets.VBox([
            self.frame,
            self.caption,
            ipywidgets.HBox([
                ipywidgets.VBox([ipywidgets.Label("ground truth"), self.truth_picture]),
                ipywidgets.VBox([ipywidgets.Label("prediction"), self.predicted_picture]),
            ]),
        ])
        self.render()

    @classmethod
    def from_examples(cls, examples: SegmentationExamples, *, threshold: float = 0.5) -> MaskViewer:
        """The viewer of `avlab.report.segmentation_examples`' frames, truths and probabilities.

        Example:
            >>> from avlab.testing.examples import synthetic_segmentation_examples
            >>> MaskViewer.from_examples(synthetic_segmentation_examples(2)).caption.value[:14]
            'video0 @ 0.25 '
        """
        return cls(examples.frames, examples.truth, examples.probabilities, titles=examples.titles,
                   threshold=threshold)

    @property
    def images(self) -> tuple[np.ndarray, np.ndarray]:
        """The pictures shown now: ground truth, prediction, each (H, W, 3) uint8."""
        return self._images

    def iou(self, index: int) -> float:
        """IoU of frame `index`'s thresholded prediction with its truth (1 when both are empty)."""
        values = self.predicted[index]
        mask = values.astype(bool) if values.dtype == bool else values > self.threshold
        union = int((mask | self.truth[index]).sum())
        return 1.0 if union == 0 else int((mask & self.truth[index]).sum()) / union

    def render(self) -> tuple[np.ndarray, np.ndarray]:
        """Redraw from the slider's value; returns the new `images`."""
        index = int(self.frame.value)
        self._images = truth_and_prediction(self.frames[index], self.truth[index], self.predicted[index],
                                            threshold=self.threshold)
        self.truth_picture.value = png_bytes(self._images[0])
        self.predicted_picture.value = png_bytes(self._images[1])
        parts = [self.titles[index]]
        if self.sounding is not None:
            parts.append("sounding" if self.sounding[index] else "silent")
        self.caption.value = f"{', '.join(parts)}: IoU {self.iou(index):.2f}"
        return self._images

    def _changed(self, change: Any) -> None:
        self.render()
