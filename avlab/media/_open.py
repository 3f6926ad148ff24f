"""Opening containers with PyAV, with every failure turned into a `MediaError` naming the file."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import av

from avlab.errors import MediaError

PathLike = str | os.PathLike[str]


def check_readable(path: PathLike) -> str:
    """Return `path` as a string after checking it is an existing, non-empty regular file.

    Raises:
        MediaError: The path is missing, a folder, or an empty file.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise MediaError(path, "file not found")
    if not os.path.isfile(path):
        raise MediaError(path, "not a regular file")
    if os.path.getsize(path) == 0:
        raise MediaError(path, "empty file (0 bytes)")
    return path


@contextlib.contextmanager
def open_container(path: PathLike) -> Iterator[av.container.InputContainer]:
    """Open `path` for reading; PyAV's errors inside the block become `MediaError`.

    Errors raised inside the `with` block by PyAV (a corrupt packet, a truncated stream) are
    translated too, so callers never see a raw traceback from inside FFmpeg.
    """
    path = check_readable(path)
    try:
        container = av.open(path, mode="r", metadata_errors="ignore")
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as error:
        raise MediaError(path, f"not a readable media file ({_describe(error)})") from error
    try:
        for stream in (*container.streams.video, *container.streams.audio):
            if stream.codec_context is None:
                raise MediaError(path, f"truncated or corrupt: {stream.type} stream {stream.index} has no "
                                       "codec parameters")
        yield container
    except MediaError:
        raise
    except (av.FFmpegError, OSError) as error:
        raise MediaError(path, f"decoding failed ({_describe(error)})") from error
    finally:
        container.close()


def _describe(error: BaseException) -> str:
    message = getattr(error, "strerror", None) or str(error)
    # PyAV repeats the path in its messages; the MediaError already names it.
    return message.replace(f": '{getattr(error, 'filename', '')}'", "").strip() or type(error).__name__


def video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream | None:
    """The first video stream that is a moving picture, not an attached cover image (mp3, m4a)."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def audio_seconds(
    container: av.container.InputContainer, stream: av.audio.stream.AudioStream
) -> float | None:
    """Length of an audio stream from its header, without codec priming; None when undeclared."""
    if not stream.duration or stream.time_base is None:
        return None
    seconds = float(stream.duration * stream.time_base)
    if container.format.name == "ogg":
        # Ogg's duration is the last granule position, which counts the Opus pre-skip.
        seconds -= (stream.codec_context.delay or 0) / stream.codec_context.sample_rate
    return seconds
