"""SynthAV's object classes: what each looks like and what it sounds like.

The table is fixed, so class k is the same instrument, shape and colour in every SynthAV
dataset whatever its seed; ``num_classes`` takes the first classes. The first eight differ in
shape, colour and register; the next eight reuse shapes and colours in new pairings with other
fills, so telling them apart needs shape and colour together.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["COLOURS", "FILLS", "SHAPES", "SynthClass", "synth_classes"]

SHAPES = ("circle", "square", "triangle", "star", "ring", "cross", "diamond", "hexagon")
FILLS = ("solid", "striped", "checkered", "dotted")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 20),
    "yellow": (235, 215, 30),
    "green": (40, 180, 60),
    "cyan": (30, 200, 210),
    "blue": (40, 80, 230),
    "purple": (140, 60, 200),
    "magenta": (225, 50, 180),
}


@dataclass(frozen=True)
class SynthClass:
    """The visual and acoustic identity of one SynthAV class.

    Attributes:
        id: Category id in ``instances.json`` (1-based; 0 is the background).
        name: Class name, after its instrument.
        shape: One of `SHAPES`.
        fill: One of `FILLS`: the class colour alone, or alternating with a darker shade of it.
        colour_name: Key of `COLOURS`.
        colour: RGB of the class colour.
        program: General MIDI program (0-based) played from the soundfont.
        instrument: The General MIDI instrument name.
        pitch_range: Lowest and highest MIDI key of its melodies (inclusive).
        note_seconds: Shortest and longest note duration.
        harmonics: Amplitudes of harmonics 1, 2, ... for the additive synthesizer.
        attack: Attack time of a note in the additive synthesizer, seconds.
        vibrato: (rate Hz, depth cents) of the additive synthesizer.
    """

    id: int
    name: str
    shape: str
    fill: str
    colour_name: str
    colour: tuple[int, int, int]
    program: int
    instrument: str
    pitch_range: tuple[int, int]
    note_seconds: tuple[float, float]
    harmonics: tuple[float, ...]
    attack: float
    vibrato: tuple[float, float]

    def to_json(self) -> dict[str, Any]:
        """The class as a JSON-ready dict (as in ``instances.json`` and the dataset card)."""
        record = asdict(self)
        for key in ("colour", "pitch_range", "note_seconds", "harmonics", "vibrato"):
            record[key] = list(record[key])
        return record


def _spectrum(kind: str) -> tuple[float, ...]:
    """Harmonic amplitudes of an instrument family (normalised to a maximum of 1)."""
    if kind == "bowed":  # sawtooth-like
        amps = [1 / h for h in range(1, 11)]
    elif kind == "flute":
        amps = [1.0, 0.35, 0.12, 0.05]
    elif kind == "clarinet":  # odd harmonics dominate
        amps = [(1 / h if h % 2 else 0.08 / h) for h in range(1, 10)]
    elif kind == "brass":
        amps = [0.55, 0.9, 1.0, 0.85, 0.65, 0.45, 0.3, 0.2, 0.12]
    elif kind == "organ":  # drawbars at 8', 4', 2 2/3', 2'
        amps = [1.0, 0.8, 0.45, 0.6, 0.0, 0.3, 0.0, 0.4]
    elif kind == "sax":
        amps = [1 / h**0.7 for h in range(1, 13)]
    elif kind == "voice":  # a formant around the 3rd harmonic
        amps = [0.6, 0.9, 1.0, 0.7, 0.4, 0.25, 0.12, 0.06]
    elif kind == "double_reed":
        amps = [0.45, 1.0, 0.9, 0.7, 0.55, 0.35, 0.25, 0.15, 0.1]
    elif kind == "free_reed":
        amps = [1 / h**0.5 for h in range(1, 9)]
    elif kind == "tuba":
        amps = [1.0, 0.6, 0.3, 0.12]
    else:
        raise ValueError(f"unknown spectrum {kind!r}")
    top = max(amps)
    return tuple(round(a / top, 4) for a in amps)


# name, shape, fill, colour, GM program, GM name, keys, note seconds, spectrum, attack, vibrato
_TABLE = (
    ("violin", "star", "solid", "red", 40, "Violin", (67, 84), (0.18, 0.45), "bowed", 0.05, (5.5, 18.0)),
    ("flute", "circle", "striped", "cyan", 73, "Flute", (72, 91), (0.15, 0.4), "flute", 0.04, (5.0, 10.0)),
    ("cello", "square", "checkered", "blue", 42, "Cello", (41, 57), (0.3, 0.7), "bowed", 0.07, (5.0, 15.0)),
    ("trumpet", "triangle", "dotted", "yellow", 56, "Trumpet", (58, 74), (0.2, 0.5), "brass", 0.03, (0.0, 0.0)),
    ("clarinet", "diamond", "solid", "green", 71, "Clarinet", (52, 70), (0.2, 0.55), "clarinet", 0.03, (0.0, 0.0)),
    ("organ", "hexagon", "striped", "purple", 19, "Church Organ", (48, 64), (0.35, 0.8), "organ", 0.01, (0.0, 0.0)),
    ("saxophone", "ring", "checkered", "orange", 66, "Tenor Sax", (45, 62), (0.2, 0.5), "sax", 0.03, (4.5, 20.0)),
    ("choir", "cross", "dotted", "magenta", 52, "Choir Aahs", (60, 76), (0.4, 0.9), "voice", 0.09, (4.0, 12.0)),
    ("tuba", "circle", "checkered", "orange", 58, "Tuba", (33, 48), (0.35, 0.8), "tuba", 0.05, (0.0, 0.0)),
    ("oboe", "triangle", "striped", "magenta", 68, "Oboe", (62, 79), (0.2, 0.5), "double_reed", 0.03, (5.0, 10.0)),
    ("accordion", "square", "dotted", "green", 21, "Accordion", (55, 72), (0.2, 0.5), "free_reed", 0.02, (0.0, 0.0)),
    ("harmonica", "star", "checkered", "blue", 22, "Harmonica", (60, 77), (0.15, 0.4), "free_reed", 0.02, (6.0, 15.0)),
    ("horn", "hexagon", "dotted", "yellow", 60, "French Horn", (48, 65), (0.3, 0.7), "brass", 0.05, (0.0, 0.0)),
    ("bassoon", "diamond", "striped", "red", 70, "Bassoon", (36, 53), (0.25, 0.6), "double_reed", 0.04, (0.0, 0.0)),
    ("panflute", "ring", "solid", "cyan", 75, "Pan Flute", (67, 84), (0.25, 0.6), "flute", 0.06, (4.0, 8.0)),
    ("strings", "cross", "striped", "purple", 48, "String Ensemble 1", (48, 72), (0.4, 0.9), "bowed", 0.1, (5.0, 8.0)),
)

CLASSES: tuple[SynthClass, ...] = tuple(
    SynthClass(
        id=k + 1, name=name, shape=shape, fill=fill, colour_name=colour, colour=COLOURS[colour],
        program=program, instrument=instrument, pitch_range=keys, note_seconds=seconds,
        harmonics=_spectrum(spectrum), attack=attack, vibrato=vibrato,
    )
    for k, (name, shape, fill, colour, program, instrument, keys, seconds, spectrum, attack, vibrato) in enumerate(_TABLE)
)


def synth_classes(num_classes: int) -> tuple[SynthClass, ...]:
    """The first `num_classes` SynthAV classes.

    Raises:
        ValueError: Fewer than 1 or more than 16 classes.

    Example:
        >>> [(c.id, c.name, c.shape, c.colour_name) for c in synth_classes(2)]
        [(1, 'violin', 'star', 'red'), (2, 'flute', 'circle', 'cyan')]
    """
    if not 1 <= num_classes <= len(CLASSES):
        raise ValueError(f"num_classes must be in 1..{len(CLASSES)}, got {num_classes}")
    return CLASSES[:num_classes]
