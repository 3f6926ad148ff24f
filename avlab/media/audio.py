"""Decoding audio from audio files or video containers, resampled with soxr."""

from __future__ import annotations

import av
import numpy as np
import soxr

from avlab.errors import MediaError, MissingAudioError
from avlab.media._open import PathLike, open_container

__all__ = ["read_audio"]


def read_audio(
    path: PathLike,
    *,
    sample_rate: int,
    mono: bool = True,
    start: float | None = None,
    end: float | None = None,
) -> np.ndarray:
    """Decode the first audio stream of an audio file or a video container.

    Sample ``i`` of the result is heard at time ``start + i / sample_rate`` on the container's
    clock (the clock of `read_video`'s timestamps): a stream that starts late is padded with
    leading zeros, and encoder priming before time zero is dropped. Resampling uses soxr's
    high-quality filter, never sample dropping.

    Args:
        path: wav, flac, mp3, ogg/opus, aac/m4a, or any video container with an audio stream.
        sample_rate: Output rate in Hz.
        mono: Average the channels into one.
        start: First time to return, seconds (default 0).
        end: Time to stop before, seconds (default: the end of the stream). The result is
            shorter when the stream ends first.

    Returns:
        float32 samples, (S,) when `mono`, else (C, S).

    Raises:
        MissingAudioError: The file has no audio stream.
        MediaError: Missing, empty or corrupt file.

    Example:
        >>> import tempfile, pathlib
        >>> from avlab.testing import write_test_video
        >>> path = write_test_video(pathlib.Path(tempfile.mkdtemp()) / "a.mp4", num_frames=8, fps=8)
        >>> read_audio(path, sample_rate=8000).shape
        (8000,)
        >>> read_audio(path, sample_rate=8000, start=0.25, end=0.75).shape
        (4000,)
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if start is not None and end is not None and end <= start:
        raise ValueError(f"end ({end}) must be after start ({start})")
    start = 0.0 if start is None else float(start)
    with open_container(path) as container:
        if not container.streams.audio:
            raise MissingAudioError(path, "no audio stream")
        stream = container.streams.audio[0]
        native_rate = stream.codec_context.sample_rate
        # Lossy codecs pad their last frame; the container's declared duration says where the
        # real signal ends (mp4 and wav declare it, webm often does not).
        stream_end = _declared_end(stream)
        if stream_end is not None:
            end = stream_end if end is None else min(end, stream_end)
            if end <= start:
                raise MediaError(path, f"audio stream ends at {stream_end:.3f} s, before {start:.3f} s")
        if start > 0:
            container.seek(int(start / stream.time_base), stream=stream, backward=True)
        samples = _decode_from(container, stream, native_rate, start, end)
    if samples.shape[1] == 0:
        raise MediaError(path, "audio stream has no samples in the requested range")
    if not np.all(np.isfinite(samples)):
        raise MediaError(path, "audio contains NaN or infinite samples")
    if mono:
        samples = samples.mean(axis=0, keepdims=True)
    if native_rate != sample_rate:
        # soxr works on (S, C); its "HQ" filter is librosa's default "soxr_hq".
        samples = soxr.resample(samples.T, native_rate, sample_rate, quality="HQ").T
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    return samples[0] if mono else samples


def _declared_end(stream) -> float | None:  # type: ignore[no-untyped-def]
    if not stream.duration or stream.time_base is None:
        return None
    return float(((stream.start_time or 0) + stream.duration) * stream.time_base)


def _decode_from(container, stream, rate: int, start: float, end: float | None) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Decode to float32 (C, S) at the native rate, sample-accurately trimmed to [start, end)."""
    to_float = av.AudioResampler(format="fltp")
    chunks: list[np.ndarray] = []
    first_time: float | None = None
    collected = 0
    for frame in container.decode(stream):
        if first_time is None:
            first_time = float(frame.pts * frame.time_base) if frame.pts is not None else 0.0
        for converted in to_float.resample(frame):
            chunks.append(converted.to_ndarray())
            collected += chunks[-1].shape[1]
        if end is not None and first_time + collected / rate > end + 0.1:
            break  # decoded past `end`, with slack for the resampler's buffering
    for converted in to_float.resample(None):
        chunks.append(converted.to_ndarray())
    channels = stream.codec_context.channels or 1
    if not chunks:
        return np.zeros((channels, 0), np.float32)
    samples = np.concatenate([c.reshape(c.shape[0], -1) for c in chunks], axis=1)
    # Align sample 0 with time `start`: pad a late stream, drop what precedes `start`.
    offset = int(round(((first_time or 0.0) - start) * rate))
    if offset > 0:
        samples = np.pad(samples, ((0, 0), (offset, 0)))
    elif offset < 0:
        samples = samples[:, -offset:]
    if end is not None:
        samples = samples[:, : int(round((end - start) * rate))]
    return samples.astype(np.float32, copy=False)
