from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
import soundfile

from avlab.backbones import SeparationSTFT
from avlab.testing.examples import synthetic_separation_example
from avlab.widgets import SeparationViewer
from avlab.widgets.render import pixel_energy, pixel_picker_image, separation_table_html


def decoded(wav: bytes) -> tuple[np.ndarray, int]:
    data, rate = soundfile.read(io.BytesIO(wav), dtype="float32")
    return data, rate


def test_players_hold_the_mixture_and_the_selected_sources_waveforms() -> None:
    example = synthetic_separation_example(3)
    viewer = SeparationViewer(example)
    mixture, rate = decoded(viewer.mixture_player.value)
    assert rate == example.sample_rate
    assert np.array_equal(mixture, example.mixture_waveform)
    assert np.array_equal(decoded(viewer.estimate_player.value)[0], example.estimate_waveforms[0])

    viewer.source.value = "source 3"
    assert np.array_equal(decoded(viewer.estimate_player.value)[0], example.estimate_waveforms[2])
    assert np.array_equal(decoded(viewer.reference_player.value)[0], example.reference_waveforms[2])
    assert np.array_equal(decoded(viewer.mixture_player.value)[0], example.mixture_waveform)  # unchanged


def test_table_and_spectrograms_follow_the_selected_source() -> None:
    example = synthetic_separation_example(2)
    viewer = SeparationViewer(example)
    first = viewer.spectrogram.value
    assert viewer.spectrogram.value[:4] == b"\x89PNG"
    viewer.source.value = "source 2"
    assert viewer.table.value == separation_table_html(example.labels, example.sdr, example.sir, example.sar,
                                                       selected=1)
    assert '<tr style="font-weight: bold"><td>source 2</td><td>11.0</td><td>21.0</td><td>n/a</td></tr>' \
        in viewer.table.value
    assert [axis.get_title() for axis in viewer.figure().axes[:3]] == [
        "mixture", "source 2: true", "source 2: separated, SDR 11.0 dB"]
    assert viewer.spectrogram.value != first


def test_repeated_labels_stay_selectable() -> None:
    example = replace(synthetic_separation_example(2), labels=["violin", "violin"])
    viewer = SeparationViewer(example)
    assert viewer.source.options == ("1: violin", "2: violin")
    viewer.source.value = "2: violin"
    assert viewer.selected == 1
    assert np.array_equal(decoded(viewer.estimate_player.value)[0], example.estimate_waveforms[1])


def decoded_png(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_clicking_a_pixel_plays_the_mixture_under_that_pixels_mask() -> None:
    example = synthetic_separation_example(2, pixels=True, size=16, grid=4)
    viewer = SeparationViewer(example)
    assert len(viewer.pictures) == len(viewer.clicks) == 2
    assert viewer.pixel == (0, 0, 0)  # the loudest pixel of the first frame: source 1's square
    assert viewer.pixel_player is not None and viewer.pixel_caption is not None
    # The pictures are enlarged to about 256 pixels; a click arrives in the PNG's pixels.
    assert decoded_png(viewer.pictures[1].value).shape == (256, 256, 3)
    viewer._clicked(1, {"type": "click", "dataX": 100.0, "dataY": 90.0})  # cell (1, 1): source 2's square
    assert viewer.pixel == (1, 1, 1)
    played, rate = decoded(viewer.pixel_player.value)
    assert rate == example.sample_rate
    stft = SeparationSTFT(sample_rate=example.sample_rate, n_fft=64, hop_length=example.hop_length)
    assert example.mixture_stft is not None and example.pixel_masks is not None
    expected = stft.inverse(example.mixture_stft * (example.pixel_masks[1, 1, 1] > 0.5), len(played))
    np.testing.assert_allclose(played, np.clip(expected, -1, 1), atol=1e-6)
    # That pixel keeps the bins where source 2 is loudest: what it plays is mostly source 2.
    reference = example.reference_waveforms
    n = min(len(played), reference.shape[1])
    correlation = [abs(np.corrcoef(played[:n], reference[k, :n])[0, 1]) for k in range(2)]
    assert correlation[1] > 0.5 > correlation[0]
    assert viewer.pixel_caption.value.startswith("source 2's frame, pixel (1, 1): keeps ")


def test_the_selected_pixel_is_outlined_on_its_frame_only() -> None:
    example = synthetic_separation_example(2, pixels=True)
    viewer = SeparationViewer(example)
    viewer.select_pixel(1, 2, 3)
    energy = pixel_energy(example.pixel_masks, np.abs(example.mixture_stft))
    assert np.array_equal(decoded_png(viewer.pictures[1].value),
                          pixel_picker_image(example.frames[1], energy[1], selected=(2, 3), scale=16))
    assert np.array_equal(decoded_png(viewer.pictures[0].value),
                          pixel_picker_image(example.frames[0], energy[0], selected=None, scale=16))
    silent, _ = decoded(viewer.pixel_player.value)  # a background pixel keeps nothing
    assert not silent.any()
    with pytest.raises(ValueError, match="off the grid"):
        viewer.select_pixel(0, 4, 0)


def test_pixel_energy_is_where_the_frame_sounds() -> None:
    example = synthetic_separation_example(3, pixels=True)
    energy = pixel_energy(example.pixel_masks, np.abs(example.mixture_stft))  # (K, h, w)
    for k in range(3):
        assert np.unravel_index(int(np.argmax(energy[k])), energy.shape[1:]) == (k, k)
    assert energy[:, 0, 3].sum() == 0
    assert 0.99 < sum(energy[k, k, k] for k in range(3)) <= 1.0 + 1e-6  # the squares share the bins out


def test_examples_without_pixel_masks_have_no_pixel_section() -> None:
    viewer = SeparationViewer(synthetic_separation_example(2))
    assert viewer.pictures == [] and viewer.pixel_player is None and viewer.pixel is None
    with pytest.raises(ValueError, match="no pixel masks"):
        viewer.select_pixel(0, 0, 0)
