"""Small media files with known content, encoded by real encoders."""

from __future__ import annotations

import os
from fractions import Fraction

import av
import numpy as np

from avlab.media._open import PathLike
from avlab.media.write import write_video

__all__ = [
    "energy_centroid",
    "flip_bytes",
    "frame_index_of",
    "peak_frequency",
    "sine",
    "test_pattern",
    "tone_burst",
    "write_faststart",
    "write_mp3_with_cover",
    "write_test_video",
]


def test_pattern(num_frames: int, height: int = 64, width: int = 64) -> np.ndarray:
    """Frames whose mean brightness encodes the frame index: frame k is grey level 8 + 16 * (k % 15).

    Lossy codecs keep a flat grey level within a few units, so `frame_index_of` recovers k.

    Returns:
        (T, H, W, 3) uint8.
    """
    levels = 8 + 16 * (np.arange(num_frames) % 15)
    return np.broadcast_to(levels[:, None, None, None], (num_frames, height, width, 3)).astype(np.uint8)


test_pattern.__test__ = False  # type: ignore[attr-defined]  # a frame factory, not a test


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


def tone_burst(seconds: float, sample_rate: int, *, at: float, length: float = 0.05,
               frequency: float = 1000.0, amplitude: float = 0.8) -> np.ndarray:
    """Silence with one Hann-shaped tone burst centred at `at` seconds, to check alignment.

    The burst's `energy_centroid` is `at`, and stays there through lossy codecs, whose pre-echo
    spreads energy to both sides.

    Returns:
        (S,) float32, S = ``round(seconds * sample_rate)``.

    Example:
        >>> burst = tone_burst(1.0, 8000, at=0.25)
        >>> round(energy_centroid(burst, 8000), 6)
        0.25
    """
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate - at
    envelope = np.where(np.abs(t) < length / 2, np.cos(np.pi * t / length) ** 2, 0.0)
    return (amplitude * envelope * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def energy_centroid(audio: np.ndarray, sample_rate: int) -> float:
    """Seconds at the centre of mass of the squared signal, all channels together.

    Shape:
        audio: (S,) or (C, S).
    """
    energy = np.square(np.asarray(audio, dtype=np.float64)).reshape(-1, np.shape(audio)[-1]).sum(axis=0)
    return float((np.arange(len(energy)) * energy).sum() / energy.sum() / sample_rate)


def peak_frequency(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Frequency in Hz of the strongest FFT bin, per channel (Hann window, bins ``rate / S``).

    Shape:
        audio: (S,) -> a scalar array; (C, S) -> (C,).

    Example:
        >>> float(peak_frequency(sine(1.0, 8000, frequency=440.0), 8000))
        440.0
    """
    audio = np.asarray(audio, dtype=np.float64)
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.shape[-1]), axis=-1))
    return np.fft.rfftfreq(audio.shape[-1], 1 / sample_rate)[spectrum.argmax(axis=-1)]


def write_faststart(source: PathLike, path: PathLike) -> str:
    """Remux an mp4 with its index (``moov``) before the media data, as streaming sites serve it.

    Cutting such a file short keeps its index, so it still opens: the truncated download case.

    Returns:
        The path written.
    """
    with av.open(os.fspath(source)) as src, av.open(os.fspath(path), "w", options={"movflags": "faststart"}) as dst:
        streams = {stream.index: dst.add_stream_from_template(stream) for stream in src.streams}
        for packet in src.demux():
            if packet.dts is None:  # the flush packet that ends each stream
                continue
            packet.stream = streams[packet.stream.index]
            dst.mux(packet)
    return os.fspath(path)


def write_mp3_with_cover(path: PathLike, audio: np.ndarray, sample_rate: int) -> str:
    """Encode mono float samples to mp3 with an album cover, which FFmpeg lists as a video stream.

    Shape:
        audio: (S,).

    Returns:
        The path written.
    """
    with av.open(os.fspath(path), "w") as container:
        sound = container.add_stream("libmp3lame", rate=sample_rate)
        sound.layout = "mono"
        cover = container.add_stream("mjpeg", rate=1)
        cover.width = cover.height = 32
        cover.pix_fmt = "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        picture = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 200, np.uint8), format="rgb24")
        picture.pts = 0
        container.mux(cover.encode(picture))
        container.mux(cover.encode(None))
        samples = np.asarray(audio, np.float32)[None]  # (1, S)
        for offset in range(0, samples.shape[1], 4096):
            chunk = np.ascontiguousarray(samples[:, offset : offset + 4096])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = sample_rate, offset, Fraction(1, sample_rate)
            container.mux(sound.encode(frame))
        container.mux(sound.encode(None))
    return os.fspath(path)


def flip_bytes(source: PathLike, path: PathLike, *, start: int = 0, stop: int | None = None,
               step: int = 1) -> str:
    """Copy a file with the bits of every `step`-th byte in ``[start, stop)`` inverted.

    Returns:
        The path written.
    """
    with open(source, "rb") as file:
        data = bytearray(file.read())
    stop = len(data) if stop is None else stop
    data[start:stop:step] = bytes(b ^ 0xFF for b in data[start:stop:step])
    with open(path, "wb") as file:
        file.write(data)
    return os.fspath(path)
