from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from avlab.testing.examples import synthetic_segmentation_examples
from avlab.widgets import AttentionViewer
from avlab.widgets.render import attention_overlay, upsample_bilinear


def decoded(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_moving_the_controls_shows_that_frame_and_map_at_that_opacity() -> None:
    examples = synthetic_segmentation_examples(3, num_queries=2)
    viewer = AttentionViewer(examples)
    assert viewer.maps.options == ("LoGAN M", "query 1", "query 2")
    assert viewer.frame.max == 2
    expected = attention_overlay(examples.frames[0], examples.logan_map[0], opacity=0.6)
    assert (viewer.image == expected).all()

    viewer.frame.value = 2
    viewer.maps.value = "query 2"
    viewer.opacity.value = 0.3
    expected = attention_overlay(examples.frames[2], examples.attention[2, 1], opacity=0.3)
    assert (viewer.image == expected).all()
    assert (decoded(viewer.picture.value) == expected).all()  # the PNG shown is the image
    assert viewer.caption.value.startswith("video2 @ 1.25 s, IoU ")


def test_overlay_upsamples_the_map_bilinearly_and_blends_by_opacity() -> None:
    frame = np.full((4, 4, 3), 200, np.uint8)
    heat = np.array([[0.0, 1.0]])
    out = attention_overlay(frame, heat, opacity=0.5, cmap="gray")
    ramp = upsample_bilinear(heat, (4, 4))[0]  # 0, 0.25, 0.75, 1
    assert ramp.tolist() == [0.0, 0.25, 0.75, 1.0]
    assert out[2, :, 0].tolist() == [100, 132, 196, 228]  # 0.5 * 200 + 0.5 * 255 * ramp
    assert (attention_overlay(frame, heat, opacity=0.0) == frame).all()


def test_waveform_playhead_follows_the_frame() -> None:
    examples = synthetic_segmentation_examples(2)
    viewer = AttentionViewer(examples, audio=np.sin(np.arange(400) / 5.0), sample_rate=200)
    assert viewer.waveform is not None
    first = viewer.waveform.value
    viewer.frame.value = 1
    assert viewer.waveform.value != first
    viewer.frame.value = 0
    assert viewer.waveform.value == first  # redrawn identically: only the playhead moved


def test_without_maps_or_sample_rate_it_refuses() -> None:
    examples = synthetic_segmentation_examples(1)
    from dataclasses import replace

    with pytest.raises(ValueError, match="no attention maps"):
        AttentionViewer(replace(examples, attention=None, logan_map=None))
    with pytest.raises(ValueError, match="sample_rate"):
        AttentionViewer(examples, audio=np.zeros(10))
    only_logan = AttentionViewer(replace(examples, attention=None))
    assert only_logan.maps.options == ("LoGAN M",)


def test_displaying_the_viewer_displays_its_widget() -> None:
    viewer = AttentionViewer(synthetic_segmentation_examples(1))
    bundle = viewer._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == viewer.widget.model_id
