"""Decoding audio from audio files or video containers, resampled with soxr."""

from __future__ import annotations

import math
from fractions import Fraction

import av
import numpy as np
import soxr

from avlab.errors import MediaError, MissingAudioError
from avlab.media._open import PathLike, audio_seconds, open_container, video_stream

__all__ = ["read_audio"]

# Seconds decoded before `start` after a seek and then dropped: MDCT codecs (AAC, MP3) rebuild a
# frame from its predecessor, MP3 frames borrow bits from earlier ones, Opus asks for 80 ms.
_PREROLL = 0.2
# Matroska and WebM stamp packets in whole milliseconds, coarser than a sample, so a position
# found by seeking can be off by half a millisecond. Starts earlier than this are reached by
# decoding from the beginning and counting samples, which is exact.
_COARSE_CLOCK_SEEK_AFTER = 30.0
# Seconds of real signal fed to soxr on each side of [start, end), so the resampled edges match
# a resampling of the whole stream instead of assuming silence beyond them.
_RESAMPLER_MARGIN = 0.02


def read_audio(
    path: PathLike,
    *,
    sample_rate: int,
    mono: bool = True,
    start: float | None = None,
    end: float | None = None,
) -> np.ndarray:
    """Decode the first audio stream of an audio file or a video container.

    Sample ``i`` of the result is heard at time ``start + i / sample_rate`` on the file's clock.
    In a video container that is the clock of `read_video`'s timestamps: a soundtrack that starts
    late is padded with leading zeros. An audio file's clock starts at its first sample. Encoder
    priming (the silence AAC, MP3 and Opus encoders put before the signal) is dropped and so is
    the padding after it, wherever the file says how long they are: mp4/m4a (edit lists), ogg and
    webm (Opus pre-skip and end trimming), mp3 (the LAME header). Raw ADTS ``.aac`` streams do
    not say, so their result starts with the encoder's priming, 1024 samples at the native rate.

    Timing is exact to the sample, except past 30 s into a Matroska/WebM file, whose
    millisecond timestamps put a seek within half a millisecond.

    Resampling uses soxr's high-quality filter, never sample dropping; with `start` or `end` it
    is fed a little of the signal beyond them, so a window matches the same samples cut from the
    whole resampled stream. With `end` (or a declared stream end) the result has exactly
    ``round((end - start) * sample_rate)`` samples.

    Args:
        path: wav, flac, mp3, ogg/opus, aac/m4a, or any video container with an audio stream.
        sample_rate: Output rate in Hz.
        mono: Average the channels into one.
        start: First time to return, seconds (default 0).
        end: Time to stop before, seconds (default: the end of the stream). The result is
            shorter when the stream ends first.

    Returns:
        float32 samples, (S,) when `mono`, else (C, S).

    Shape:
        (S,) or (C, S), S = ``round((end - start) * sample_rate)``.

    Raises:
        MissingAudioError: The file has no audio stream.
        MediaError: Missing, empty or corrupt file, or no audio in ``[start, end)``.

    Example:
        >>> import tempfile, pathlib
        >>> from avlab.testing import write_test_video
        >>> path = write_test_video(pathlib.Path(tempfile.mkdtemp()) / "a.mp4", num_frames=8, fps=8)
        >>> read_audio(path, sample_rate=8000).shape
        (8000,)
        >>> read_audio(path, sample_rate=8000, start=0.25, end=0.75).shape
        (4000,)
        >>> read_audio(path, sample_rate=8000, mono=False).shape
        (1, 8000)
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
        native_rate, base = stream.codec_context.sample_rate, stream.time_base
        if not native_rate or base is None:
            raise MediaError(path, "audio stream has no sample rate or time base")
        # mp3 demuxers put the first sample after the priming, not at zero: an audio file's
        # clock starts at its stream's start.
        origin = 0.0
        if video_stream(container) is None and stream.start_time is not None:
            origin = float(stream.start_time * base)
        # Lossy codecs pad their last frame; the container's declared duration says where the
        # real signal ends (mp4, ogg and wav declare it, webm and avi often do not).
        seconds = audio_seconds(container, stream)
        stream_end = None
        if seconds is not None:
            stream_end = float((stream.start_time or 0) * base) - origin + seconds
            if start >= stream_end:
                raise MediaError(path, f"audio stream ends at {stream_end:.3f} s, before {start:.3f} s")
            end = stream_end if end is None else min(end, stream_end)
        margin = _margin_seconds(native_rate, sample_rate)
        block_start = start - margin
        seek_to = block_start - _PREROLL - stream.codec_context.frame_size / native_rate
        coarse_clock = base > Fraction(1, native_rate)
        if seek_to > (_COARSE_CLOCK_SEEK_AFTER if coarse_clock else 0.0):
            container.seek(int((seek_to + origin) / base), stream=stream, backward=True)
        block, data_end = _decode_block(
            container, stream, native_rate, origin, block_start,
            None if end is None else end + margin, stream_end,
        )
    if not np.all(np.isfinite(block)):
        raise MediaError(path, "audio contains NaN or infinite samples")
    if mono:
        block = block.mean(axis=0, keepdims=True)
    if native_rate != sample_rate:
        # soxr works on (S, C); its "HQ" filter is librosa's default "soxr_hq".
        block = soxr.resample(block.T, native_rate, sample_rate, quality="HQ").T
    lead = int(round(margin * sample_rate))
    stop = data_end if end is None else min(end, data_end)
    samples = block[:, lead : lead + max(0, int(round((stop - start) * sample_rate)))]
    if samples.shape[1] == 0:
        raise MediaError(path, f"audio stream has no samples in [{start:.3f}, {'end' if end is None else f'{end:.3f}'})")
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    return samples[0] if mono else samples


def _margin_seconds(native_rate: int, sample_rate: int) -> float:
    """At least `_RESAMPLER_MARGIN`, and a whole number of samples at both rates."""
    if native_rate == sample_rate:
        return 0.0
    common = math.gcd(native_rate, sample_rate)  # 1 / common seconds is a whole number of both
    return math.ceil(_RESAMPLER_MARGIN * common) / common


def _decode_block(container, stream, rate, origin, block_start, block_end, signal_end):  # type: ignore[no-untyped-def]
    """Decode (C, N) float32 at the native rate, sample 0 at `block_start` seconds.

    Before the stream's first sample, and from `signal_end` (the declared end of the stream, or
    None) up to `block_end`, the block holds zeros. Returns the block and the time where the
    decoded signal really ends.
    """
    to_float = av.AudioResampler(format="fltp")
    chunks: list[np.ndarray] = []
    first_time: float | None = None
    collected = 0
    for frame in container.decode(stream):
        if first_time is None:
            first_time = float(frame.pts * frame.time_base) - origin if frame.pts is not None else 0.0
        for converted in to_float.resample(frame):
            chunks.append(converted.to_ndarray())
            collected += chunks[-1].shape[1]
        if block_end is not None and first_time + collected / rate > block_end:
            break
    for converted in to_float.resample(None):
        chunks.append(converted.to_ndarray())
    channels = stream.codec_context.channels or 1
    if chunks:
        samples = np.concatenate([c.reshape(c.shape[0], -1) for c in chunks], axis=1)  # (C, N)
    else:
        samples = np.zeros((channels, 0), np.float32)
    first_time = 0.0 if first_time is None else first_time
    data_end = first_time + samples.shape[1] / rate
    if signal_end is not None and data_end > signal_end:
        samples = samples[:, : max(0, int(round((signal_end - first_time) * rate)))]
        data_end = signal_end
    # Align sample 0 with `block_start`: pad a late stream, drop what precedes it.
    offset = int(round((first_time - block_start) * rate))
    if offset > 0:
        samples = np.pad(samples, ((0, 0), (offset, 0)))
    elif offset < 0:
        samples = samples[:, -offset:]
    if block_end is not None:
        length = int(round((block_end - block_start) * rate))
        samples = samples[:, :length]
        samples = np.pad(samples, ((0, 0), (0, length - samples.shape[1])))
    return samples.astype(np.float32, copy=False), data_end
