"""What a media file holds, read from its container without decoding pictures."""

from __future__ import annotations

from dataclasses import dataclass

import av

from avlab.media._open import PathLike, open_container

__all__ = ["AudioStreamInfo", "MediaInfo", "probe"]


@dataclass(frozen=True)
class AudioStreamInfo:
    """One audio stream of a container.

    Attributes:
        index: Position among the container's audio streams.
        codec: FFmpeg codec name (``"aac"``, ``"opus"``, ``"pcm_s16le"``, ...).
        channels: Number of channels.
        sample_rate: Samples per second.
        duration: Seconds, or None when the container does not say.
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
        duration: Seconds: the video stream's when there is one, else the container's.
        fps: Average frame rate of the video stream (None without video). Variable frame rate
            files report their average; `read_video` gives the true timestamps.
        num_frames: Number of video frames, counted from the packets when the header lacks it.
        width: Frame width in pixels (0 without video).
        height: Frame height in pixels (0 without video).
        video_codec: FFmpeg codec name, or None without video.
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
        count_frames: Count video packets when the header has no frame count (webm, mkv, some
            avi); reads the file but decodes nothing.

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
                codec=stream.codec_context.name,
                channels=stream.codec_context.channels,
                sample_rate=stream.codec_context.sample_rate,
                duration=_stream_seconds(stream),
            )
            for i, stream in enumerate(container.streams.audio)
        )
        container_seconds = (
            container.duration / av.time_base if container.duration is not None else 0.0
        )
        if not container.streams.video:
            return MediaInfo(
                path=str(path), duration=container_seconds, fps=None, num_frames=0,
                width=0, height=0, video_codec=None, audio=audio,
            )
        stream = container.streams.video[0]
        num_frames = stream.frames
        if num_frames <= 0 and count_frames:
            num_frames = sum(1 for packet in container.demux(stream) if packet.size > 0)
        rate = stream.average_rate or stream.guessed_rate
        return MediaInfo(
            path=str(path),
            duration=_stream_seconds(stream) or container_seconds,
            fps=float(rate) if rate else None,
            num_frames=int(num_frames),
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            video_codec=stream.codec_context.name,
            audio=audio,
        )


def _stream_seconds(stream: av.stream.Stream) -> float | None:
    if stream.duration is None or stream.time_base is None:
        return None
    return float(stream.duration * stream.time_base)
