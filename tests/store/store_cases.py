"""Options shared by the store tests (a module with a unique name: importable from any test file)."""

from __future__ import annotations

CACHE_OPTIONS = dict(visual="debug", size=32, augment=("hflip",), audio=("stft", "logmel_frames", "raw"),
                     progress=False, batch_size=3)
