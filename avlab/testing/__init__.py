"""Tiny factories for tests, doctests and notebooks: media files and dataset layouts on disk.

The fixtures here are written by real encoders in the real layouts, so whatever reads them is
tested on the same bytes a user's data would have.
"""

from __future__ import annotations

from avlab.testing.layouts import (
    write_ave,
    write_avsbench_ms3,
    write_avsbench_s4,
    write_avss,
    write_music,
    write_video_folder,
)
from avlab.testing.media import frame_index_of, sine, test_pattern, tone_burst, write_test_video
from avlab.testing.store import tiny_store
from avlab.testing.ytvis import write_ytvis_fixture

__all__ = [
    "frame_index_of",
    "sine",
    "test_pattern",
    "tiny_store",
    "tone_burst",
    "write_ave",
    "write_avsbench_ms3",
    "write_avsbench_s4",
    "write_avss",
    "write_music",
    "write_test_video",
    "write_video_folder",
    "write_ytvis_fixture",
]
