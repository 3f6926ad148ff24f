"""avlab: audio-visual segmentation research, from real media to cached features to heads.

The notebook verbs live here; everything else is one import away in the subpackages
(`avlab.media`, `avlab.datasets`, ...).

Example:
    >>> import avlab
    >>> sorted(avlab.__all__)[:3]
    ['AudioStreamInfo', 'AvlabError', 'DatasetError']
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from avlab.datasets import (
    Manifest,
    Masks,
    VideoRecord,
    load_ave,
    load_avsbench,
    load_folder,
    load_music,
    load_synth,
    load_youtube_vis,
)
from avlab.errors import AvlabError, DatasetError, MediaError, MissingAudioError
from avlab.media import (
    AudioStreamInfo,
    MediaInfo,
    VideoFrames,
    frame_audio_windows,
    probe,
    read_audio,
    read_video,
)

try:
    __version__ = version("avlab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    # media: decode with real timestamps
    "AudioStreamInfo",
    "MediaInfo",
    "VideoFrames",
    "frame_audio_windows",
    "probe",
    "read_audio",
    "read_video",
    # datasets: manifests from the field's formats
    "Manifest",
    "Masks",
    "VideoRecord",
    "load_ave",
    "load_avsbench",
    "load_folder",
    "load_music",
    "load_synth",
    "load_youtube_vis",
    # errors
    "AvlabError",
    "DatasetError",
    "MediaError",
    "MissingAudioError",
]
