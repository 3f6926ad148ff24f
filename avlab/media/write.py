"""Encoding video (with an optional soundtrack) and audio files with PyAV.

SynthAV writes its benchmark with these, and the tests write their fixtures with them, so the
decoders are always checked against files a real encoder produced.
"""

from __future__ import annotations

from fractions import Fraction
from typing import cast

import av
import numpy as np

from avlab.errors import MediaError
from avlab.media._open import PathLike

__all__ = ["write_video", "write_audio"]

# Ticks per second of the video stream clock for variable frame rate timestamps. Constant frame
# rate streams tick once per frame instead: AVI stores one packet per tick, so a finer clock
# there fills the gaps with empty packets that inflate the header's frame count.
_VIDEO_CLOCK = 90_000
_CHUNK = 4096  # audio samples handed to the encoder at a time
_OPUS_RATES = {8000, 12000, 16000, 24000, 48000}
_LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1"}


def write_video(
    path: PathLike,
    frames: np.ndarray,
    *,
    fps: float,
    times: np.ndarray | None = None,
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
    audio_start: float = 0.0,
    video_codec: str = "libx264",
    audio_codec: str = "aac",
    pixel_format: str = "yuv420p",
    options: dict[str, str] | None = None,
) -> str:
    """Encode RGB frames, and optionally a soundtrack, into one container.

    Args:
        path: Output file; the extension picks the container (mp4, webm, avi, mkv, mov).
        frames: (T, H, W, 3) uint8 RGB. H and W must be even for yuv420p.
        fps: Nominal frame rate (the stream's declared rate; timestamps are ``k / fps``).
        times: (T,) increasing seconds to give frames other timestamps (variable frame rate).
        audio: float samples in [-1, 1], (S,) or (C, S) with C in {1, 2, 6}.
        sample_rate: Rate of `audio` in Hz; required with `audio`.
        audio_start: Seconds on the video's clock at which the soundtrack begins. mp4, mkv and
            webm record it (webm to the millisecond); avi cannot and starts it at zero.
        video_codec: FFmpeg encoder ("libx264", "libvpx-vp9", "mjpeg", ...).
        audio_codec: FFmpeg encoder ("aac", "libopus", "pcm_s16le", "libmp3lame", ...).
        pixel_format: Encoded pixel format ("yuv420p"; "yuvj420p" for mjpeg).
        options: Encoder options, e.g. ``{"crf": "18"}``.

    Returns:
        The path written, as a string.

    Example:
        >>> import tempfile, pathlib
        >>> frames = np.zeros((4, 32, 32, 3), np.uint8)
        >>> path = write_video(pathlib.Path(tempfile.mkdtemp()) / "black.mp4", frames, fps=4)
        >>> from avlab.media import probe
        >>> probe(path).num_frames
        4
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    if times is not None:
        times = np.asarray(times, dtype=np.float64)
        if times.shape != (len(frames),) or np.any(np.diff(times) <= 0):
            raise ValueError("times must be (T,) and strictly increasing")
    if audio is not None and sample_rate is None:
        raise ValueError("sample_rate is required with audio")
    path = str(path)
    with av.open(path, mode="w") as container:
        rate = Fraction(fps).limit_denominator(100_000)
        clock = 1 / rate if times is None else Fraction(1, _VIDEO_CLOCK)
        video = cast(av.VideoStream, container.add_stream(video_codec, rate=rate))
        video.width, video.height = frames.shape[2], frames.shape[1]
        video.pix_fmt = pixel_format
        video.time_base = clock
        video.codec_context.time_base = clock
        if options:
            video.options = dict(options)
        sound = None
        if audio is not None:
            audio = _as_channels(audio)
            sound = cast(av.AudioStream, container.add_stream(audio_codec, rate=int(sample_rate)))  # type: ignore[arg-type]
            sound.layout = _LAYOUTS[audio.shape[0]]
        for k, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = k if times is None else int(round(times[k] * _VIDEO_CLOCK))
            if times is not None:
                # Each frame is shown until the next (the last for one nominal period); without
                # this the encoder spaces durations evenly and the header's length comes out wrong.
                shown_until = times[k + 1] if k + 1 < len(times) else times[k] + 1 / fps
                frame.duration = int(round(shown_until * _VIDEO_CLOCK)) - frame.pts
            # Not `video.time_base`: the muxer may change it when it writes the header.
            frame.time_base = clock
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None and audio is not None:
            first = int(round(audio_start * sample_rate))  # type: ignore[operator]
            _encode_audio(container, sound, audio, int(sample_rate), first)  # type: ignore[arg-type]
    return path


def write_audio(path: PathLike, audio: np.ndarray, sample_rate: int, *, codec: str | None = None) -> str:
    """Encode float samples in [-1, 1] to an audio file (wav, flac, mp3, ogg/opus, m4a).

    Lossless ground truth is better written with soundfile; this covers the lossy formats.

    Args:
        path: Output file; the extension picks the container.
        audio: (S,) or (C, S) float samples.
        sample_rate: Hz.
        codec: FFmpeg encoder; by default chosen from the extension.

    Returns:
        The path written, as a string.
    """
    path = str(path)
    suffix = path.rsplit(".", 1)[-1].lower()
    encoders = {"wav": "pcm_s16le", "flac": "flac", "mp3": "libmp3lame", "ogg": "libopus",
                "opus": "libopus", "m4a": "aac", "aac": "aac"}
    if codec is None and suffix not in encoders:
        raise ValueError(f"no default audio encoder for .{suffix}: pass codec=")
    codec = codec or encoders[suffix]
    audio = _as_channels(audio)
    if codec == "libopus" and int(sample_rate) not in _OPUS_RATES:
        raise ValueError(f"Opus encodes only at {sorted(_OPUS_RATES)} Hz, not {sample_rate}: resample first")
    try:
        with av.open(path, mode="w") as container:
            sound = cast(av.AudioStream, container.add_stream(codec, rate=int(sample_rate)))
            sound.layout = _LAYOUTS[audio.shape[0]]
            _encode_audio(container, sound, audio, int(sample_rate))
    except av.FFmpegError as error:
        raise MediaError(path, f"encoding with {codec} failed ({error})") from error
    return path


def _as_channels(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    audio = audio[None] if audio.ndim == 1 else audio
    if audio.ndim != 2 or audio.shape[0] not in _LAYOUTS:
        raise ValueError(f"audio must be (S,) or (C, S) with C in {sorted(_LAYOUTS)}, got {audio.shape}")
    return np.clip(audio, -1.0, 1.0)


def _encode_audio(container, stream, audio: np.ndarray, sample_rate: int, first: int = 0) -> None:  # type: ignore[no-untyped-def]
    layout = _LAYOUTS[audio.shape[0]]
    for offset in range(0, audio.shape[1], _CHUNK):
        chunk = np.ascontiguousarray(audio[:, offset : offset + _CHUNK])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = first + offset
        frame.time_base = Fraction(1, sample_rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
