"""Media fixtures, encoded once per session by real encoders (PyAV / FFmpeg).

Every file is tiny (48 x 64 pixels, at most 1.5 s) so the whole suite stays fast. Durations
and burst times are whole numbers of samples at every rate used, so lengths can be compared
exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from media_cases import BURST_AT, CONTAINERS, FPS, HEIGHT, NUM_FRAMES, WIDTH

from avlab.media import write_audio, write_video
from avlab.testing.media import sine, test_pattern, tone_burst, write_test_video


class MediaFiles:
    """Writes each named fixture file once and hands back its path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made: dict[str, str] = {}

    def make(self, name: str, write: Callable[[Path], str]) -> str:
        if name not in self._made:
            self._made[name] = write(self.root / name)
        return self._made[name]

    def video(self, name: str, **options: object) -> str:
        """A `write_test_video` file: 8 frames of `test_pattern` at 8 fps, sine soundtrack."""
        options = {"num_frames": NUM_FRAMES, "fps": FPS, "height": HEIGHT, "width": WIDTH, **options}
        return self.make(name, lambda path: write_test_video(path, **options))  # type: ignore[arg-type]

    def container(self, extension: str, **options: object) -> str:
        """The standard test video in one of `CONTAINERS`, with `options` overriding."""
        tag = "".join(f"_{k}{v}" for k, v in sorted(options.items()))
        return self.video(f"clip{tag}.{extension}", **{**CONTAINERS[extension], **options})

    def audio(self, name: str, signal: np.ndarray, sample_rate: int) -> str:
        return self.make(name, lambda path: write_audio(path, signal, sample_rate))

    def burst_video(self, extension: str) -> str:
        """`test_pattern` video whose soundtrack is silence with a tone burst at `BURST_AT`."""
        spec = CONTAINERS[extension]
        rate = int(spec["sample_rate"])  # type: ignore[call-overload]
        burst = tone_burst(NUM_FRAMES / FPS, rate, at=BURST_AT)
        frames = test_pattern(NUM_FRAMES, HEIGHT, WIDTH)
        return self.make(f"burst.{extension}", lambda path: write_video(
            path, frames, fps=FPS, audio=burst, sample_rate=rate,
            video_codec=str(spec["video_codec"]), audio_codec=str(spec["audio_codec"]),
            pixel_format=str(spec.get("pixel_format", "yuv420p")),
        ))


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> MediaFiles:
    return MediaFiles(tmp_path_factory.mktemp("media"))


@pytest.fixture(scope="session", params=sorted(CONTAINERS))
def container_ext(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def clip(media: MediaFiles, container_ext: str) -> str:
    """The standard test video in each container: 8 frames at 8 fps, 48 x 64, 1 s of 440 Hz."""
    return media.container(container_ext)


@pytest.fixture(scope="session")
def tone() -> Callable[[int], np.ndarray]:
    """0.75 s of 440 Hz at a given rate: 0.75 s is whole samples at 8, 16, 44.1 and 48 kHz."""
    return lambda rate: sine(0.75, rate, frequency=440.0)
