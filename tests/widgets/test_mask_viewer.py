from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from avlab.testing.examples import synthetic_segmentation_examples
from avlab.widgets import MaskViewer
from avlab.widgets.render import instance_colors, overlay_masks, truth_and_prediction


def decoded(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def frames_and_masks() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    frames = np.full((3, 8, 8, 3), 60, np.uint8)
    truth = np.zeros((3, 8, 8), bool)
    truth[:, 2:6, 2:6] = True  # 16 pixels
    predicted = np.zeros((3, 8, 8), np.float32)
    predicted[1, 2:6, 2:4] = 0.9  # half of the truth: IoU 0.5
    predicted[2, 2:6, 2:6] = 0.8  # all of it
    return frames, truth, predicted


def test_slider_shows_that_frames_truth_beside_its_prediction() -> None:
    frames, truth, predicted = frames_and_masks()
    viewer = MaskViewer(frames, truth, predicted, sounding=[False, True, True], titles=["a", "b", "c"])
    assert viewer.caption.value == "a, silent: IoU 0.00"
    viewer.frame.value = 1
    left, right = truth_and_prediction(frames[1], truth[1], predicted[1])
    assert (viewer.images[0] == left).all() and (viewer.images[1] == right).all()
    assert (decoded(viewer.truth_picture.value) == left).all()
    assert (decoded(viewer.predicted_picture.value) == right).all()
    assert viewer.caption.value == "b, sounding: IoU 0.50"
    viewer.frame.value = 2
    assert viewer.caption.value == "c, sounding: IoU 1.00"


def test_pictures_reuse_the_overlay_colours_and_outline_the_truth() -> None:
    frames, truth, predicted = frames_and_masks()
    left, right = truth_and_prediction(frames[1], truth[1], predicted[1])
    truth_color, predicted_color = instance_colors(2)
    assert (left == overlay_masks(frames[1], truth[1][None], colors=truth_color[None])).all()
    assert right[2, 2].tolist() == [255, 255, 255]  # the truth's outline
    inside = overlay_masks(frames[1], (predicted[1] > 0.5)[None], colors=predicted_color[None])
    assert (right[3, 3] == inside[3, 3]).all()  # predicted, off the outline
    assert (right[3, 4] == frames[1, 3, 4]).all()  # truth only: untinted


def test_from_examples_uses_their_titles_and_probabilities() -> None:
    examples = synthetic_segmentation_examples(2)
    viewer = MaskViewer.from_examples(examples)
    viewer.frame.value = 1
    assert viewer.caption.value.startswith("video1 @ 0.75 s: IoU ")
    assert (viewer.images[1] == truth_and_prediction(examples.frames[1], examples.truth[1],
                                                     examples.probabilities[1])[1]).all()


def test_mismatched_shapes_are_refused() -> None:
    frames, truth, predicted = frames_and_masks()
    with pytest.raises(ValueError, match="expected frames"):
        MaskViewer(frames, truth[:2], predicted)
    with pytest.raises(ValueError, match="sounding"):
        MaskViewer(frames, truth, predicted, sounding=[True])
