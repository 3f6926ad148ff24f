"""Dataset loaders: each reads one format and returns a `Manifest` of lazy `VideoRecord`s.

| loader | format |
|---|---|
| `load_avsbench` | AVSBench S4, MS3 and AVSS folders |
| `load_youtube_vis` | YouTube-VIS JSON with JPEG frames or video files |
| `load_music` | MUSIC-style solo / duet instrument videos |
| `load_ave` | AVE: videos plus ``Annotations.txt`` |
| `load_folder` | any folder of video files |
| `load_synth` | SynthAV, the generated benchmark (`avlab.datasets.synth.generate`) |
"""

from __future__ import annotations

from avlab.datasets.ave import load_ave
from avlab.datasets.avsbench import load_avsbench, load_avsbench_log_mel
from avlab.datasets.folder import load_folder
from avlab.datasets.manifest import Manifest, VideoRecord
from avlab.datasets.masks import Masks, MaskSource, PngMasks
from avlab.datasets.music import load_music
from avlab.datasets.stats import describe_manifest
from avlab.datasets.synth import generate as generate_synth
from avlab.datasets.synth import load_synth
from avlab.datasets.youtube_vis import load_youtube_vis

__all__ = [
    "Manifest",
    "MaskSource",
    "Masks",
    "PngMasks",
    "VideoRecord",
    "describe_manifest",
    "generate_synth",
    "load_ave",
    "load_avsbench",
    "load_avsbench_log_mel",
    "load_folder",
    "load_music",
    "load_synth",
    "load_youtube_vis",
]
