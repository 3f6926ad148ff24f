"""Tiny factories for tests, doctests and notebooks: media files and dataset layouts on disk."""

from __future__ import annotations

from avlab.testing.media import sine, test_pattern, write_test_video

__all__ = ["sine", "test_pattern", "write_test_video"]
