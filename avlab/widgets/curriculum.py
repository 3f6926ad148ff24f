"""`CurriculumViewer`: AViS-Net's hide-and-detect stages over epochs, and the mask under that occlusion.

Example:
    >>> from avlab.testing.examples import synthetic_curriculum_examples
    >>> viewer = CurriculumViewer(synthetic_curriculum_examples(2, epochs=(0, 1)))
    >>> viewer.epoch.value = 1
    >>> viewer.caption.value.split(" · ")[0]
    'epoch 1: stage 1, g = 2 (2 x 2 cells of the box)'
    >>> viewer.image.shape
    (16, 16, 3)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets
import numpy as np

from avlab.widgets._viewer import Viewer, picture
from avlab.widgets.render import (
    curriculum_iou_figure,
    figure_png,
    occlusion_overlay,
    png_bytes,
    truth_and_prediction,
)

if TYPE_CHECKING:
    from avlab.report.curriculum import CurriculumExamples

__all__ = ["CurriculumViewer"]


class CurriculumViewer(Viewer):
    """An epoch slider and a frame slider over `CurriculumExamples`.

    The picture is `avlab.widgets.render.occlusion_overlay` of the chosen frame at the chosen
    epoch: the region hide-and-detect hides then (darkened, outlined in red), the mask the
    system predicts under that occlusion (tinted) and the truth (outlined in white). Beside it,
    the unoccluded prediction as `avlab.widgets.render.truth_and_prediction` draws it. The
    caption names the epoch's stage and grid size g and compares the IoU under occlusion with
    the unoccluded IoU; below, `avlab.widgets.render.curriculum_iou_figure` plots the frame's
    IoU over the epochs, the chosen one marked.

    Args:
        examples: The curriculum on validation frames (`avlab.report.curriculum_examples`).
        threshold: Probability above which a pixel is predicted foreground.
        darken: Fraction of brightness the hidden pixels lose.

    Shape:
        examples.frames: (N, H, W, 3) uint8.
        examples.hidden: (E, N, H, W) bool.
        examples.occluded_probabilities: (E, N, H, W).
        examples.occluded_ious: (E, N).

    Attributes:
        widget: The ipywidgets container (displaying the viewer displays it).
        epoch: SelectionSlider over the E epochs (labels: the epochs; values: their indices).
        frame: IntSlider over the N frames.
        picture: Image widget showing `image`.
        unoccluded_picture: Image widget of the unoccluded prediction.
        caption: Label with the epoch's stage and g, the frame, and the two IoUs.
        iou_strip: Image widget of the frame's IoU over the epochs.

    Example:
        >>> from avlab.testing.examples import synthetic_curriculum_examples
        >>> examples = synthetic_curriculum_examples(3)
        >>> viewer = CurriculumViewer(examples)
        >>> viewer.frame.value = 2
        >>> viewer.epoch.value = 2
        >>> bool((viewer.hidden() == examples.hidden[2, 2]).all())
        True
    """

    def __init__(self, examples: CurriculumExamples, *, threshold: float = 0.5, darken: float = 0.6) -> None:
        self.examples = examples
        self.threshold = threshold
        self.darken = darken
        count = len(examples.frames)
        epochs = [int(e) for e in examples.epochs]
        if examples.hidden.shape[:2] != (len(epochs), count):
            raise ValueError(f"expected hidden masks (E={len(epochs)}, N={count}, H, W), got {examples.hidden.shape}")
        self.epoch = ipywidgets.SelectionSlider(options=[(str(e), k) for k, e in enumerate(epochs)], value=0,
                                                description="epoch", disabled=len(epochs) == 1)
        self.frame = ipywidgets.IntSlider(value=0, min=0, max=count - 1, description="frame", disabled=count == 1)
        self.picture = picture()
        self.unoccluded_picture = picture()
        self.caption = ipywidgets.Label()
        self.iou_strip = picture(None)
        self._image = np.zeros((0, 0, 3), np.uint8)
        for control in (self.epoch, self.frame):
            control.observe(self._changed, names="value")
        pictures = ipywidgets.HBox([
            ipywidgets.VBox([ipywidgets.Label("under occlusion"), self.picture]),
            ipywidgets.VBox([ipywidgets.Label("unoccluded"), self.unoccluded_picture]),
        ])
        self.widget = ipywidgets.VBox([ipywidgets.HBox([self.epoch, self.frame]), self.caption, pictures,
                                       self.iou_strip])
        self.render()

    @property
    def image(self) -> np.ndarray:
        """The picture under occlusion shown now, (H, W, 3) uint8."""
        return self._image

    def hidden(self) -> np.ndarray:
        """The hidden region of the chosen frame at the chosen epoch, (H, W) bool."""
        return np.asarray(self.examples.hidden[int(self.epoch.value), int(self.frame.value)], bool)

    def render(self) -> np.ndarray:
        """Redraw from the sliders' values; returns the new `image`."""
        e, n = int(self.epoch.value), int(self.frame.value)
        examples = self.examples
        frame, truth = examples.frames[n], examples.truth[n]
        self._image = occlusion_overlay(frame, self.hidden(), examples.occluded_probabilities[e, n], truth,
                                        threshold=self.threshold, darken=self.darken)
        self.picture.value = png_bytes(self._image)
        unoccluded = truth_and_prediction(frame, truth, examples.probabilities[n], threshold=self.threshold)[1]
        self.unoccluded_picture.value = png_bytes(unoccluded)
        g = int(examples.grid_sizes[e])
        what = "the whole region" if g == 0 else f"{g} x {g} cells of the box"
        self.caption.value = (f"epoch {int(examples.epochs[e])}: stage {int(examples.stages[e])}, g = {g} ({what}) · "
                              f"{examples.titles[n]} · {float(self.hidden().mean()):.0%} of the frame hidden · "
                              f"IoU {float(examples.occluded_ious[e, n]):.2f} occluded vs "
                              f"{float(examples.ious[n]):.2f} unoccluded")
        figure = curriculum_iou_figure(examples.epochs, examples.occluded_ious[:, n], float(examples.ious[n]),
                                       current=e)
        self.iou_strip.value = figure_png(figure)
        return self._image

    def _changed(self, change: Any) -> None:
        self.render()
