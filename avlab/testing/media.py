"""Small media files with known content, encoded by real encoders."""

from __future__ import annotations

import numpy as np

from avlab.media._open import PathLike
from avlab.media.write import write_video

__all__ = ["sine", "test_pattern", "write_test_video"]


def test_pattern(num_frames: int, height: int = 64, width: int = 64) -> np.ndarray:
    """Frames whose mean brightness encodes the frame index: frame k is grey level 8 + 16 * (k % 15).

    Lossy codecs keep a flat grey level within a few units, so `frame_index_of` recovers k.

    Returns:
        (T, H, W, 3) uint8.
    """
    levels = 8 + 16 * (np.arange(num_frames) % 15)
    return np.broadcast_to(levels[:, None, None, None], (num_frames, height, width, 3)).astype(np.uint8)


def frame_index_of(frames: np.ndarray) -> np.ndarray:
    """Invert `test_pattern` (modulo 15): (T, H, W, 3) -> (T,) frame indices."""
    return np.round((frames.reshape(len(frames), -1).mean(axis=1) - 8) / 16).astype(int)


def sine(seconds: float, sample_rate: int, *, frequency: float = 440.0, channels: int = 1,
         amplitude: float = 0.5) -> np.ndarray:
    """A sine tone, (S,) for one channel, else (C, S) with channel c at `frequency` * (c + 1)."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    tones = np.stack([amplitude * np.sin(2 * np.pi * frequency * (c + 1) * t) for c in range(channels)])
    return (tones[0] if channels == 1 else tones).astype(np.float32)


def write_test_video(
    path: PathLike,
    *,
    num_frames: int = 16,
    fps: float = 8.0,
    height: int = 64,
    width: int = 64,
    times: np.ndarray | None = None,
    audio_seconds: float | None = None,
    sample_rate: int | None = 16000,
    channels: int = 1,
    video_codec: str = "libx264",
    audio_codec: str = "aac",
    pixel_format: str = "yuv420p",
) -> str:
    """Write a `test_pattern` video with a sine soundtrack as long as the video by default.

    Args:
        path: Output file; its extension picks the container.
        num_frames: Frames to write.
        fps: Nominal frame rate.
        height: Frame height.
        width: Frame width.
        times: (T,) timestamps for variable frame rate.
        audio_seconds: Soundtrack length (default: the video's duration).
        sample_rate: Soundtrack rate, or None for no audio track.
        channels: Soundtrack channels (1, 2 or 6).
        video_codec: FFmpeg video encoder.
        audio_codec: FFmpeg audio encoder.
        pixel_format: Encoded pixel format.

    Returns:
        The path written.
    """
    frames = test_pattern(num_frames, height, width)
    audio = None
    if sample_rate is not None:
        seconds = audio_seconds if audio_seconds is not None else num_frames / fps
        audio = sine(seconds, sample_rate, channels=channels)
    return write_video(
        path, frames, fps=fps, times=times, audio=audio, sample_rate=sample_rate,
        video_codec=video_codec, audio_codec=audio_codec, pixel_format=pixel_format,
    )
