"""`SeparationViewer`: listen to a mixture and its separated sources, see their spectrograms and scores,
and click a pixel of a source's frame to hear that pixel's sound.

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

from avlab.backbones import SeparationSTFT
from avlab.widgets._viewer import Viewer, picture
from avlab.widgets.render import (
    figure_png,
    pixel_energy,
    pixel_picker_image,
    pixel_waveform,
    png_bytes,
    separation_table_html,
    wav_bytes,
)

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

    Pixel-wise sound (PixelPlayer's demo), when the example has ``pixel_masks``
    (`separation_examples` with a `source` dataset): each source's frame is shown with the
    share of the mixture each pixel's sound keeps (`avlab.widgets.render.pixel_energy`);
    clicking a pixel (an `ipyevents.Event` on the picture) selects its cell of the feature
    grid, outlines it and loads its sound, the mixture under that pixel's binary mask
    (`avlab.widgets.render.pixel_waveform`), into the pixel player. `select_pixel` does the
    same from code. The loudest pixel of the first frame is selected at the start.

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
        pictures: Image widgets of the sources' frames to click (empty without pixel masks).
        clicks: The `ipyevents.Event` of each picture.
        pixel_player: Audio widget of the selected pixel's sound (None without pixel masks).
        pixel_caption: Label of the selected pixel (None without pixel masks).
        pixel: (frame, row, column) of the selected pixel on the feature grid, or None.

    Example:
        >>> from avlab.testing.examples import synthetic_separation_example
        >>> viewer = SeparationViewer(synthetic_separation_example(2))
        >>> len(viewer.figure().axes)  # mixture, true and separated, colour bar
        4
        >>> viewer = SeparationViewer(synthetic_separation_example(2, pixels=True))
        >>> viewer.pixel  # source 1's object, the loudest pixel of its frame
        (0, 0, 0)
        >>> viewer.select_pixel(1, 1, 1)
        >>> viewer.pixel_caption.value
        "source 2's frame, pixel (1, 1): keeps 55 % of the mixture"
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
        self.spectrogram = picture(None)
        self.table = ipywidgets.HTML()
        self.source.observe(self._changed, names="value")
        title = "" if example.scored else " (not scored: validation skips this mixture)"
        children: list[ipywidgets.Widget] = [
            ipywidgets.HBox([ipywidgets.Label("mixture" + title), self.mixture_player]),
            self.source,
            ipywidgets.HBox([ipywidgets.Label("separated"), self.estimate_player,
                             ipywidgets.Label("true"), self.reference_player]),
            self.table,
            self.spectrogram,
        ]
        self.pictures: list[ipywidgets.Image] = []
        self.clicks: list[Any] = []
        self.pixel_player: ipywidgets.Audio | None = None
        self.pixel_caption: ipywidgets.Label | None = None
        self.pixel: tuple[int, int, int] | None = None
        if example.pixel_masks is not None and example.frames is not None and example.mixture_stft is not None:
            children.append(self._pixel_section())
        self.widget = ipywidgets.VBox(children)
        self.render()

    def _pixel_section(self) -> ipywidgets.Widget:
        from ipyevents import Event

        example = self.example
        assert example.pixel_masks is not None and example.frames is not None and example.mixture_stft is not None
        bins = example.mixture_stft.shape[0]
        self._stft = SeparationSTFT(sample_rate=int(example.sample_rate), n_fft=2 * (bins - 1),
                                    hop_length=int(example.hop_length))
        self.energy = pixel_energy(example.pixel_masks, np.abs(example.mixture_stft))  # (K, h, w)
        self._scale = max(1, 256 // max(example.frames.shape[1:3]))  # about 256 pixels across
        self.pixel_player = ipywidgets.Audio(format="wav", autoplay=False, loop=False)
        self.pixel_caption = ipywidgets.Label()
        columns = []
        for k, label in enumerate(self.labels):
            image = picture(None)  # enlarged by pixel_picker_image already
            click = Event(source=image, watched_events=["click"])
            click.on_dom_event(lambda event, k=k: self._clicked(k, event))
            self.pictures.append(image)
            self.clicks.append(click)
            columns.append(ipywidgets.VBox([ipywidgets.Label(f"{label}'s frame"), image]))
        first = np.unravel_index(int(np.argmax(self.energy[0])), self.energy.shape[1:])
        self.select_pixel(0, int(first[0]), int(first[1]))
        return ipywidgets.VBox([
            ipywidgets.HTML("<b>Pixel-wise sound</b>: click a pixel to hear it (brighter: its sound keeps more "
                            "of the mixture)"),
            ipywidgets.HBox(columns),
            ipywidgets.HBox([self.pixel_caption, self.pixel_player]),
        ])

    def select_pixel(self, frame: int, row: int, column: int) -> None:
        """Select cell (`row`, `column`) of source `frame`'s feature grid: outline it and load its sound.

        Raises:
            ValueError: The example has no pixel masks, or the cell is off the grid.
        """
        example = self.example
        if example.pixel_masks is None or example.mixture_stft is None or self.pixel_player is None:
            raise ValueError("this example has no pixel masks: make it with separation_examples(..., source=...)")
        k, h, w = example.pixel_masks.shape[:3]
        if not (0 <= frame < k and 0 <= row < h and 0 <= column < w):
            raise ValueError(f"pixel ({frame}, {row}, {column}) is off the grid of {k} frames of {h} x {w}")
        previous = self.pixel
        self.pixel = (frame, row, column)
        wave = pixel_waveform(example.pixel_masks[frame, row, column], example.mixture_stft, stft=self._stft)
        self.pixel_player.value = wav_bytes(wave, int(example.sample_rate))
        assert self.pixel_caption is not None
        share = float(self.energy[frame, row, column])
        self.pixel_caption.value = (f"{self.labels[frame]}'s frame, pixel ({row}, {column}): "
                                    f"keeps {100 * share:.0f} % of the mixture")
        stale = range(k) if previous is None else {previous[0], frame}  # only outlines move
        for view in stale:
            self.pictures[view].value = png_bytes(self.picture(view, (row, column) if view == frame else None))

    def picture(self, frame: int, selected: tuple[int, int] | None = None) -> np.ndarray:
        """Source `frame`'s frame with its pixels' energies, enlarged, `selected` cell outlined: (H', W', 3) uint8."""
        assert self.example.frames is not None
        return pixel_picker_image(self.example.frames[frame], self.energy[frame], selected=selected,
                                  scale=self._scale)

    def _clicked(self, frame: int, event: dict[str, Any]) -> None:
        # ipyevents gives an Image's click in the PNG's own pixels (dataX, dataY).
        assert self.example.pixel_masks is not None and self.example.frames is not None
        h, w = self.example.pixel_masks.shape[1:3]
        height, width = (s * self._scale for s in self.example.frames.shape[1:3])
        row = min(h - 1, max(0, int(float(event["dataY"]) * h // height)))
        column = min(w - 1, max(0, int(float(event["dataX"]) * w // width)))
        self.select_pixel(frame, row, column)

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
