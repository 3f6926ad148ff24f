"""Media I/O: probe containers, decode video frames with timestamps and audio, cut per-frame windows.

Everything decodes with PyAV (FFmpeg) and reports failures as `avlab.errors.MediaError` naming
the file.
"""

from __future__ import annotations

from avlab.media.audio import read_audio
from avlab.media.probe import AudioStreamInfo, MediaInfo, probe
from avlab.media.video import VideoFrames, read_video
from avlab.media.windows import frame_audio_windows, window_samples
from avlab.media.write import write_audio, write_video

__all__ = [
    "AudioStreamInfo",
    "MediaInfo",
    "VideoFrames",
    "frame_audio_windows",
    "probe",
    "read_audio",
    "read_video",
    "window_samples",
    "write_audio",
    "write_video",
]
