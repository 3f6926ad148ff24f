"""SynthAV sound: class melodies, rendered from a General MIDI soundfont or additively, and gated.

Each performer plays a legato melody (no gaps between notes) in its class's pitch range for
the whole clip, starting before time zero so no attack falls inside the clip. The melody is
then gated to the display periods ``[k / fps, (k + 1) / fps)`` of the frames in which the
object sounds, with short fades inside those periods: a source is exactly zero during its
silent frames and clearly audible during its sounding ones.

Renderers: ``"soundfont"`` plays the class's General MIDI program from ``TimGM6mb.sf2`` (the
soundfont shipped inside the pretty_midi package) with tinysoundfont; ``"additive"`` sums the
class's harmonic spectrum with its attack and vibrato, and needs nothing beyond numpy.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from avlab.datasets.synth.classes import SynthClass

__all__ = [
    "Note",
    "frame_bounds",
    "gate_envelope",
    "melody",
    "mix",
    "render_notes",
    "render_source",
    "resolve_renderer",
    "soundfont_path",
]

PREROLL = 0.25  # seconds of melody rendered before time zero and dropped
FADE = 0.005  # seconds of the fades at the edges of sounding runs
TARGET_RMS = 0.1  # RMS over sounding samples of a source of loudness 1
_RELEASE = 0.04  # seconds a note of the additive synthesizer rings past its end
_VELOCITY = 100
_SCALE = (0, 2, 4, 7, 9)  # major pentatonic degrees
_LOCK = threading.Lock()  # one tinysoundfont synthesizer per process, used by one thread at a time


@dataclass(frozen=True)
class Note:
    """A note: MIDI key held from `start` to `end` seconds (clip time; may start before 0)."""

    start: float
    end: float
    key: int


def melody(rng: np.random.Generator, cls: SynthClass, start: float, stop: float) -> list[Note]:
    """A legato melody covering [start, stop): each note begins where the previous one ends.

    Keys walk by one or two steps of a major pentatonic scale rooted at the bottom of the
    class's pitch range, never repeating a key; durations are uniform in `cls.note_seconds`.

    Example:
        >>> from avlab.datasets.synth.classes import synth_classes
        >>> notes = melody(np.random.default_rng(0), synth_classes(1)[0], 0.0, 2.0)
        >>> notes[0].start, notes[-1].end >= 2.0, all(a.end == b.start for a, b in zip(notes, notes[1:]))
        (0.0, True, True)
    """
    low, high = cls.pitch_range
    keys = [low + octave * 12 + d for octave in range(0, 8) for d in _SCALE if low + octave * 12 + d <= high]
    position = int(rng.integers(len(keys)))
    notes: list[Note] = []
    time = start
    while time < stop:
        length = float(rng.uniform(*cls.note_seconds))
        notes.append(Note(time, time + length, keys[position]))
        time += length
        step = int(rng.choice((-2, -1, 1, 2)))
        position = position + step
        if position < 0 or position >= len(keys):
            position = position - 2 * step  # reflect at the ends of the range
        position = min(max(position, 0), len(keys) - 1)
    return notes


def frame_bounds(num_frames: int, fps: float, sample_rate: int) -> np.ndarray:
    """Sample index where each frame's display period starts, plus the end of the last one.

    Sample n (heard at n / sample_rate) belongs to frame k iff ``bounds[k] <= n < bounds[k + 1]``,
    i.e. iff ``k / fps <= n / sample_rate < (k + 1) / fps``, computed exactly with fractions.

    Returns:
        (T + 1,) int64.

    Example:
        >>> frame_bounds(3, 8, 11025).tolist()
        [0, 1379, 2757, 4135]
    """
    rate = Fraction(fps).limit_denominator(1_000_000)
    return np.array([-((-k * sample_rate * rate.denominator) // rate.numerator) for k in range(num_frames + 1)],
                    dtype=np.int64)


def gate_envelope(sounding: np.ndarray, fps: float, sample_rate: int, num_samples: int) -> np.ndarray:
    """1 during the display periods of sounding frames, 0 elsewhere, with fades inside runs.

    Args:
        sounding: (T,) bool per-frame flags.
        fps: Frame rate.
        sample_rate: Hz.
        num_samples: Length of the clip's audio.

    Returns:
        (S,) float32 envelope; within a run of sounding frames it rises over the first `FADE`
        seconds and falls over the last, staying strictly positive inside the run.
    """
    bounds = np.minimum(frame_bounds(len(sounding), fps, sample_rate), num_samples)
    envelope = np.zeros(num_samples, np.float32)
    flags = np.concatenate([[False], np.asarray(sounding, bool), [False]])
    starts = np.flatnonzero(~flags[:-1] & flags[1:])  # first frame of each run
    stops = np.flatnonzero(flags[:-1] & ~flags[1:])  # one past the last frame of each run
    for first, last in zip(starts, stops, strict=True):
        a, b = int(bounds[first]), int(bounds[last])
        if b <= a:
            continue
        fade = min(int(round(FADE * sample_rate)), (b - a) // 4)
        envelope[a:b] = 1.0
        if fade > 0:
            ramp = (np.arange(1, fade + 1, dtype=np.float32) / (fade + 1)).astype(np.float32)
            envelope[a : a + fade] = ramp
            envelope[b - fade : b] = ramp[::-1]
    return envelope


def resolve_renderer(renderer: str) -> str:
    """``"auto"`` -> ``"soundfont"`` when tinysoundfont and the soundfont are there, else ``"additive"``.

    Raises:
        ValueError: Unknown renderer name.
        RuntimeError: ``"soundfont"`` asked for but tinysoundfont or the soundfont is missing.
    """
    if renderer not in ("auto", "soundfont", "additive"):
        raise ValueError(f"renderer must be 'auto', 'soundfont' or 'additive', got {renderer!r}")
    if renderer == "additive":
        return renderer
    available = importlib.util.find_spec("tinysoundfont") is not None and soundfont_path() is not None
    if renderer == "soundfont" and not available:
        raise RuntimeError("renderer='soundfont' needs the tinysoundfont package (pip install --no-deps "
                           "tinysoundfont) and pretty_midi's TimGM6mb.sf2; use renderer='additive'")
    return "soundfont" if available else "additive"


def soundfont_path() -> Path | None:
    """``TimGM6mb.sf2`` in the pretty_midi package folder, or None when it is not installed."""
    spec = importlib.util.find_spec("pretty_midi")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "TimGM6mb.sf2"
    return path if path.is_file() else None


def render_notes(notes: list[Note], cls: SynthClass, num_samples: int, sample_rate: int, *,
                 renderer: str, origin: float = 0.0) -> np.ndarray:
    """Render notes to mono audio.

    Args:
        notes: The melody.
        cls: Its class (program, spectrum, attack, vibrato).
        num_samples: Output length.
        sample_rate: Hz.
        renderer: ``"soundfont"`` or ``"additive"``.
        origin: Clip time of output sample 0 (negative to render a pre-roll).

    Returns:
        (S,) float32.
    """
    if renderer == "soundfont":
        return _render_soundfont(notes, cls.program, num_samples, sample_rate, origin)
    if renderer == "additive":
        return _render_additive(notes, cls, num_samples, sample_rate, origin)
    raise ValueError(f"unknown renderer {renderer!r}")


def render_source(rng: np.random.Generator, cls: SynthClass, sounding: np.ndarray, *, fps: float,
                  sample_rate: int, num_samples: int, renderer: str, loudness: float) -> np.ndarray:
    """The sound of one performer over the clip: melody, gate, level.

    The RMS over the samples of its sounding frames is ``TARGET_RMS * loudness``.

    Returns:
        (S,) float32, exactly zero during silent frames.

    Example:
        >>> from avlab.datasets.synth.classes import synth_classes
        >>> flags = np.array([True, False, True, True])
        >>> audio = render_source(np.random.default_rng(0), synth_classes(1)[0], flags, fps=4,
        ...                       sample_rate=8000, num_samples=8000, renderer="additive", loudness=1.0)
        >>> [float(np.abs(audio[a:b]).max()) > 0 for a, b in zip(range(0, 8000, 2000), range(2000, 8001, 2000))]
        [True, False, True, True]
    """
    pre = int(round(PREROLL * sample_rate))
    notes = melody(rng, cls, -pre / sample_rate, num_samples / sample_rate)
    raw = render_notes(notes, cls, num_samples + pre, sample_rate, renderer=renderer, origin=-pre / sample_rate)[pre:]
    envelope = gate_envelope(sounding, fps, sample_rate, num_samples)
    gated = np.where(envelope > 0, raw * envelope, np.float32(0.0))  # +0.0 in silences, not -0.0
    on = gated[envelope > 0]
    rms = float(np.sqrt(np.mean(on.astype(np.float64) ** 2))) if on.size else 0.0
    if rms == 0.0:
        return gated.astype(np.float32)
    return (gated * np.float32(TARGET_RMS * loudness / rms)).astype(np.float32)


def mix(sources: list[np.ndarray], *, headroom: float = 0.9) -> tuple[list[np.ndarray], np.ndarray]:
    """Scale sources by one common factor so their sum peaks at most at `headroom`, then sum.

    The mixture is the float32 sum of the scaled sources in the given order, so summing the
    returned sources the same way reproduces it bit for bit.

    Returns:
        ``(scaled_sources, mixture)``, (S,) float32 each.

    Example:
        >>> sources, mixture = mix([np.full(4, 0.8, np.float32), np.full(4, 0.7, np.float32)])
        >>> float(mixture.max()) <= 0.9, np.array_equal(sources[0] + sources[1], mixture)
        (True, True)
    """
    total = np.sum([s.astype(np.float64) for s in sources], axis=0)
    peak = float(np.abs(total).max()) if total.size else 0.0
    scale = min(1.0, headroom / peak) if peak > 0 else 1.0
    while True:
        scaled = [(s * np.float32(scale)).astype(np.float32) for s in sources]
        mixture = np.zeros_like(scaled[0])
        for source in scaled:
            mixture += source
        # float32 rounding can overshoot the exact sum by an ulp or so: shave until it fits.
        if mixture.size == 0 or float(np.abs(mixture).max()) <= headroom:
            return scaled, mixture
        scale *= 0.9999


@functools.cache
def _soundfont_bytes() -> bytes:
    path = soundfont_path()
    if path is None:
        raise RuntimeError("pretty_midi's TimGM6mb.sf2 is not installed")
    return path.read_bytes()


@functools.cache
def _synth(sample_rate: int):  # type: ignore[no-untyped-def]
    import tinysoundfont

    synth = tinysoundfont.Synth(samplerate=sample_rate)
    return synth, synth.sfload(_soundfont_bytes())


def _render_soundfont(notes: list[Note], program: int, num_samples: int, sample_rate: int, origin: float) -> np.ndarray:
    events = []  # (sample, on, key); note-offs sort before note-ons at the same sample
    for note in notes:
        events.append((int(round((note.start - origin) * sample_rate)), 1, note.key))
        events.append((int(round((note.end - origin) * sample_rate)), 0, note.key))
    events.sort()
    stereo = np.zeros((num_samples, 2), np.float32)
    with _LOCK:
        synth, sfid = _synth(sample_rate)
        # Silence what the previous render left ringing (sounds_off fades over ~10 ms), so
        # every render starts from the same state and is reproducible.
        synth.sounds_off()
        synth.generate(int(0.1 * sample_rate))
        synth.program_select(0, sfid, 0, program)
        position = 0
        for at, on, key in events:
            at = min(max(at, 0), num_samples)
            if at > position:
                stereo[position:at] = np.frombuffer(synth.generate(at - position), np.float32).reshape(-1, 2)
                position = at
            if on:
                synth.noteon(0, key, _VELOCITY)
            else:
                synth.noteoff(0, key)
        if position < num_samples:
            stereo[position:] = np.frombuffer(synth.generate(num_samples - position), np.float32).reshape(-1, 2)
        synth.sounds_off()
    return stereo.mean(axis=1)


def _render_additive(notes: list[Note], cls: SynthClass, num_samples: int, sample_rate: int, origin: float) -> np.ndarray:
    out = np.zeros(num_samples, np.float64)
    release = int(round(_RELEASE * sample_rate))
    rate, depth = cls.vibrato
    for note in notes:
        begin = int(round((note.start - origin) * sample_rate))
        end = int(round((note.end - origin) * sample_rate)) + release
        lo, hi = max(begin, 0), min(end, num_samples)
        if hi <= lo:
            continue
        index = np.arange(lo - begin, hi - begin)  # samples since the note began
        t = index / sample_rate
        held = end - release - begin  # samples the key is held down
        attack = np.minimum(1.0, t / max(cls.attack, 1e-3))
        tail = np.clip(1.0 - (index - held) / max(release, 1), 0.0, 1.0)  # 1 while held, then a ramp to 0
        envelope = attack * tail
        f0 = 440.0 * 2.0 ** ((note.key - 69) / 12)
        frequency = f0 * 2.0 ** (depth / 1200 * np.sin(2 * np.pi * rate * t)) if depth else np.full(t.shape, f0)
        phase = 2 * np.pi * np.cumsum(frequency) / sample_rate
        tone = np.zeros(t.shape)
        for h, amplitude in enumerate(cls.harmonics, start=1):
            if amplitude and h * f0 < 0.45 * sample_rate:
                tone += amplitude * np.sin(h * phase)
        out[lo:hi] += envelope * tone
    return out.astype(np.float32)
