from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from avlab.testing import tiny_store
from avlab.widgets import StoreBrowser
from avlab.widgets.render import feature_map_image


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return tiny_store(tmp_path_factory.mktemp("store"))


def decoded(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_controls_pick_the_video_level_and_frame_drawn(store) -> None:  # type: ignore[no-untyped-def]
    browser = StoreBrowser(store, display_size=8)
    assert browser.video.options == ("train_0000", "train_0001")
    assert browser.level.options == ("c3", "c4", "c5")
    assert browser.frame.max == 3
    browser.video.value = "train_0001"
    browser.level.value = "c4"
    browser.frame.value = 2
    features = store["visual_c4"].sel(video="train_0001", view="original").isel(frame=2).values.astype(np.float32)
    assert features.shape == (16, 2, 2)
    expected = feature_map_image(features, scale=4)  # 8 pixels over the 2 x 2 grid
    assert len(np.unique(expected.reshape(-1, 3), axis=0)) > 1  # a picture, not a flat colour
    assert (browser.image == expected).all()
    assert (decoded(browser.picture.value) == expected).all()
    assert browser.caption.value == "train_0001 frame 2 @ 0.50 s: c4 (16, 2, 2)"
    assert browser.status.value == "done 2, failed 0, pending 0"


def test_recipe_is_shown_as_json(store) -> None:  # type: ignore[no-untyped-def]
    browser = StoreBrowser(store)
    text = browser.recipe.value
    assert text.startswith("<pre>") and text.endswith("</pre>")
    import html

    assert json.loads(html.unescape(text[5:-6])) == json.loads(json.dumps(store.avlab.recipe, default=str))


def test_feature_map_is_the_min_max_scaled_channel_mean() -> None:
    features = np.zeros((2, 2, 2), np.float32)
    features[0] = [[0, 1], [2, 3]]
    features[1] = [[0, 3], [6, 9]]  # channel mean 0, 2, 4, 6
    image = feature_map_image(features, cmap="gray")
    assert image[..., 0].tolist() == [[0, 85], [170, 255]]
    assert (feature_map_image(np.ones((3, 2, 2)), cmap="gray") == 0).all()  # constant: the low end
