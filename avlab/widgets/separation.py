"""`SeparationViewer`: listen to a mixture and its separated sources, see their spectrograms and scores.

Example:
    >>> from avlab.testing.examples import synthetic_separation_example
    >>> viewer = SeparationViewer(synthetic_separation_example(2))
    >>> viewer.source.options
    ('source 1', 'source 2')
    >>> viewer.source.value = "source 2"
    >>> viewer.selected
    1
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets
import numpy as np

from avlab.widgets._viewer import Viewer
from avlab.widgets.render import figure_png, separation_table_html, wav_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from avlab.report.examples import SeparationExample

__all__ = ["SeparationViewer"]


class SeparationViewer(Viewer):
    """Players, spectrograms and SDR/SIR/SAR of one `SeparationExample`, one source at a time.

    The mixture's player is always there; the source selector picks which source's separated
    and true waveforms the two other players hold, and which source's spectrograms (true and
    separated, under the mixture's: `avlab.report.separation_figure`) are shown. The table
    lists every source's scores, the selected one in bold. Players hold 32-bit float WAV
    files (`avlab.widgets.render.wav_bytes`).

    Args:
        example: One separated mixture (`avlab.report.separation_examples`).

    Shape:
        example.mixture: (F, T).
        example.estimates: (K, F, T).
        example.estimate_waveforms: (K, S).

    Attributes:
        widget: The ipywidgets container (displaying the viewer displays it).
        source: Dropdown of the sources' labels.
        mixture_player: Audio widget of the mixture.
        estimate_player: Audio widget of the selected source, separated.
        reference_player: Audio widget of the selected source, true.
        spectrogram: Image widget of the spectrograms.
        table: HTML widget of the scores.

    Example:
        >>> from avlab.testing.examples import synthetic_separation_example
        >>> viewer = SeparationViewer(synthetic_separation_example(2))
        >>> len(viewer.figure().axes)  # mixture, true and separated, colour bar
        4
    """

    def __init__(self, example: SeparationExample) -> None:
        self.example = example
        labels = [str(label) for label in example.labels]
        if len(set(labels)) != len(labels):  # the dropdown's values must tell sources apart
            labels = [f"{k + 1}: {label}" for k, label in enumerate(labels)]
        self.labels = labels
        rate = int(example.sample_rate)
        self.source = ipywidgets.Dropdown(options=labels, value=labels[0], description="source")
        self.mixture_player = ipywidgets.Audio(value=wav_bytes(example.mixture_waveform, rate), format="wav",
                                               autoplay=False, loop=False)
        self.estimate_player = ipywidgets.Audio(format="wav", autoplay=False, loop=False)
        self.reference_player = ipywidgets.Audio(format="wav", autoplay=False, loop=False)
        self.spectrogram = ipywidgets.Image(format="png")
        self.table = ipywidgets.HTML()
        self.source.observe(self._changed, names="value")
        title = "" if example.scored else " (not scored: validation skips this mixture)"
        self.widget = ipywidgets.VBox([
            ipywidgets.HBox([ipywidgets.Label("mixture" + title), self.mixture_player]),
            self.source,
            ipywidgets.HBox([ipywidgets.Label("separated"), self.estimate_player,
                             ipywidgets.Label("true"), self.reference_player]),
            self.table,
            self.spectrogram,
        ])
        self.render()

    @property
    def selected(self) -> int:
        """Index of the selected source."""
        return self.labels.index(str(self.source.value))

    def figure(self) -> Figure:
        """The selected source's spectrograms under the mixture's (`avlab.report.separation_figure`)."""
        from avlab.report.figures import separation_figure

        k = self.selected
        example = self.example
        return separation_figure(example.mixture, example.estimates[k:k + 1], example.references[k:k + 1],
                                 sdr=np.asarray(example.sdr)[k:k + 1], labels=[self.labels[k]],
                                 sample_rate=int(example.sample_rate), hop_length=int(example.hop_length))

    def render(self) -> None:
        """Redraw from the selector's value: the source's players, spectrograms and the table."""
        k = self.selected
        example = self.example
        rate = int(example.sample_rate)
        self.estimate_player.value = wav_bytes(example.estimate_waveforms[k], rate)
        self.reference_player.value = wav_bytes(example.reference_waveforms[k], rate)
        self.spectrogram.value = figure_png(self.figure())
        self.table.value = separation_table_html(self.labels, example.sdr, example.sir, example.sar, selected=k)

    def _changed(self, change: Any) -> None:
        self.render()
