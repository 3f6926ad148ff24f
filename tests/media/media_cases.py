"""Constants shared by the media tests and their fixtures (`conftest.py`)."""

from __future__ import annotations

import numpy as np

FPS = 8
NUM_FRAMES = 8  # one second of video
HEIGHT, WIDTH = 48, 64  # not square, so a swapped height and width shows

# One video container per row: its codecs and soundtrack rate.
CONTAINERS = {
    "mp4": dict(video_codec="libx264", audio_codec="aac", sample_rate=16000),
    "webm": dict(video_codec="libvpx-vp9", audio_codec="libopus", sample_rate=48000),
    "avi": dict(video_codec="mjpeg", audio_codec="pcm_s16le", sample_rate=16000, pixel_format="yuvj420p"),
}
AUDIO_CODEC_NAMES = {"mp4": "aac", "webm": "opus", "avi": "pcm_s16le"}
VIDEO_CODEC_NAMES = {"mp4": "h264", "webm": "vp9", "avi": "mjpeg"}

# Audio files: extension -> (codec name probe reports, lossless?).
AUDIO_FORMATS = {
    "wav": ("pcm_s16le", True),
    "flac": ("flac", True),
    "mp3": ("mp3", False),
    "ogg": ("opus", False),
    "m4a": ("aac", False),
}

# Irregular frame times for variable frame rate files: whole milliseconds, webm's clock.
VFR_TIMES = np.array([0.0, 0.05, 0.3, 0.32, 0.6, 0.9, 0.95])

BURST_AT = 0.375  # seconds: the time of frame 3 at 8 fps
