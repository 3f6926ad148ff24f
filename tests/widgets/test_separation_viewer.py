from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import soundfile

from avlab.testing.examples import synthetic_separation_example
from avlab.widgets import SeparationViewer
from avlab.widgets.render import separation_table_html


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
