"""What a media file holds, read from its container without decoding pictures."""

from __future__ import annotations

from dataclasses import dataclass

import av

from avlab.media._open import PathLike, audio_seconds, open_container, video_stream

__all__ = ["AudioStreamInfo", "MediaInfo", "probe"]


@dataclass(frozen=True)
class AudioStreamInfo:
    """One audio stream of a container.

    Attributes:
        index: Position among the container's audio streams.
        codec: FFmpeg codec name (``"aac"``, ``"opus"``, ``"mp3"``, ``"pcm_s16le"``, ...), not
            the decoder's (``"mp3float"``).
        channels: Number of channels.
        sample_rate: Samples per second.
        duration: Seconds of signal, without the codec's priming, or None when the container
            does not say (webm, avi). Raw ADTS ``.aac`` has no header: FFmpeg estimates it.
    """

    index: int
    codec: str
    channels: int
    sample_rate: int
    duration: float | None


@dataclass(frozen=True)
class MediaInfo:
    """A media file's streams, as `probe` reads them.

    Attributes:
        path: The file.
        duration: Seconds: the video stream's when there is one (measured from its packets when
            the header does not say and `count_frames` is set), else the first audio stream's,
            else the container's (the longest of its streams).
        fps: Average frame rate of the video stream (None without video). Variable frame rate
            files report their average; `read_video` gives the true timestamps.
        num_frames: Number of video frames, counted from the packets when the header lacks it.
        width: Frame width in pixels (0 without video).
        height: Frame height in pixels (0 without video).
        video_codec: FFmpeg codec name (``"h264"``, ``"vp9"``, ...), or None without video.
        audio: The audio streams, first one first.
    """

    path: str
    duration: float
    fps: float | None
    num_frames: int
    width: int
    height: int
    video_codec: str | None
    audio: tuple[AudioStreamInfo, ...]

    @property
    def has_video(self) -> bool:
        return self.video_codec is not None

    @property
    def has_audio(self) -> bool:
        return len(self.audio) > 0


def probe(path: PathLike, *, count_frames: bool = True) -> MediaInfo:
    """Read the streams of a media file.

    Args:
        path: A video or audio file.
        count_frames: Count video packets when the header has no frame count or duration (webm,
            mkv, some avi); reads the file but decodes nothing.

    Raises:
        MediaError: The file is missing, empty, or not a media file FFmpeg can read.

    Example:
        >>> import tempfile, pathlib
        >>> from avlab.testing import write_test_video
        >>> path = write_test_video(pathlib.Path(tempfile.mkdtemp()) / "a.mp4", num_frames=8, fps=8)
        >>> info = probe(path)
        >>> info.num_frames, info.fps, (info.height, info.width), info.audio[0].sample_rate
        (8, 8.0, (64, 64), 16000)
    """
    with open_container(path) as container:
        audio = tuple(
            AudioStreamInfo(
                index=i,
                codec=stream.codec_context.codec.canonical_name,
                channels=stream.codec_context.channels,
                sample_rate=stream.codec_context.sample_rate,
                duration=audio_seconds(container, stream),
            )
            for i, stream in enumerate(container.streams.audio)
        )
        container_seconds = (
            container.duration / av.time_base if container.duration is not None else 0.0
        )
        stream = video_stream(container)
        if stream is None:
            seconds = audio[0].duration if audio else None
            return MediaInfo(
                path=str(path), duration=seconds or container_seconds, fps=None, num_frames=0,
                width=0, height=0, video_codec=None, audio=audio,
            )
        num_frames, seconds = stream.frames, _stream_seconds(stream)
        if (num_frames <= 0 or seconds is None) and count_frames:
            num_frames, seconds = _count_packets(container, stream)
        rate = stream.average_rate or stream.guessed_rate
        return MediaInfo(
            path=str(path),
            duration=seconds or container_seconds,
            fps=float(rate) if rate else None,
            num_frames=int(num_frames),
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            video_codec=stream.codec_context.codec.canonical_name,
            audio=audio,
        )


def _stream_seconds(stream: av.stream.Stream) -> float | None:
    if not stream.duration or stream.time_base is None:
        return None
    return float(stream.duration * stream.time_base)


def _count_packets(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> tuple[int, float | None]:
    """Frames and seconds of a video stream whose header lacks them (webm, mkv), from its packets."""
    count, first, last = 0, None, None
    for packet in container.demux(stream):
        if packet.size == 0 or packet.pts is None:
            continue
        count += 1
        shown_until = packet.pts + (packet.duration or 0)
        first = packet.pts if first is None else min(first, packet.pts)
        last = shown_until if last is None else max(last, shown_until)
    if first is None or last is None or stream.time_base is None:
        return count, None
    # From the stream's start, as the header's duration would count.
    origin = stream.start_time if stream.start_time is not None else first
    return count, float((last - origin) * stream.time_base) or None
