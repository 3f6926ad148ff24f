"""SynthAV: a generated audio-visual benchmark with full ground truth.

Coloured, textured shapes (each class a shape, colour and fill) move over textured
backgrounds, occlude each other, and play their class's instrument (a General MIDI program,
or a built-in additive synthesizer) in some intervals while staying silent in others. Every
pixel mask, sounding flag and source signal is known exactly, and the files on disk look like
real data: mp4 videos with a soundtrack, wav files, PNG masks and a YouTube-VIS JSON.

Example:
    >>> import tempfile
    >>> root = generate(tempfile.mkdtemp(), num_videos=2, size=32, fps=4, seconds=1.0,
    ...                 sample_rate=8000, renderer="additive", splits=["train"], num_solo=0)
    >>> manifest = load_synth(root, split="train")
    >>> manifest
    <Manifest 'synthav': 2 videos (train: 2)>
"""

from __future__ import annotations

from avlab.datasets.synth.generate import generate
from avlab.datasets.synth.load import load_synth, read_card

__all__ = ["generate", "load_synth", "read_card"]
