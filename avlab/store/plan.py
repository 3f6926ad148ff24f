"""Planning a store before anything is decoded: sizes per video, and who each source file is.

Zarr arrays have fixed shapes, so the driver works out every video's extent (frames, STFT
frames, samples, instances, sources) from the manifest and cheap header reads, then creates
the arrays once. Each video is identified by the content of its files (size plus hashes of the
first and last MiB), so a changed file is re-extracted and a moved one is not.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avlab.datasets.manifest import VideoRecord
from avlab.errors import AvlabError
from avlab.media import probe

__all__ = ["VideoPlan", "file_identity", "plan_video"]

_MIB = 1 << 20


def file_identity(paths: list[Path]) -> str:
    """A short content hash of files: each one's size and first and last MiB.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.bin"; _ = p.write_bytes(b"abc")
        >>> len(file_identity([p]))
        32
    """
    digest = hashlib.sha256()
    for path in paths:
        try:
            size = os.path.getsize(path)
            with open(path, "rb") as file:
                head = file.read(_MIB)
                if size > 2 * _MIB:
                    file.seek(-_MIB, os.SEEK_END)
                tail = file.read(_MIB) if size > _MIB else b""
        except OSError:
            size, head, tail = -1, b"", b""  # a missing file: the extraction reports it
        digest.update(f"{Path(path).name}:{size}:".encode())
        digest.update(hashlib.sha256(head).digest())
        digest.update(hashlib.sha256(tail).digest())
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class VideoPlan:
    """The planned extent of one video in the store.

    Attributes:
        num_frames: Frames to cache (dataset frames, or ``duration * fps``).
        duration: Seconds of the clip.
        num_instances: Annotated instances (0 without instance masks).
        num_sources: Ground-truth sources (0 without).
        source_hash: `file_identity` of the video's files.
    """

    num_frames: int
    duration: float
    num_instances: int
    num_sources: int
    source_hash: str


def _files_of(record: VideoRecord) -> list[Path]:
    files = [record.video_path] if record.video_path else list(record.frame_paths or ())
    if record.audio_path is not None and record.audio_path != record.video_path:
        files.append(record.audio_path)
    return [Path(f) for f in files if f is not None]


def plan_video(record: VideoRecord, *, fps: float | None) -> VideoPlan:
    """Work out a video's extent from its record and its container's header.

    A file that cannot even be probed is planned at zero frames; its extraction fails later
    with the reason, and the other videos are unaffected.
    """
    times = record.frame_times
    duration = record.duration
    if duration is None:
        if times is not None and len(times) > 1:
            duration = float(times[-1] + np.median(np.diff(times)))
        elif record.video_path is not None:
            try:
                duration = probe(record.video_path, count_frames=False).duration
            except AvlabError:
                duration = 0.0
        else:
            duration = float(len(record.frame_paths or ()))
    if fps is not None:
        start = float(times[0]) if times is not None and len(times) else 0.0
        num_frames = max(0, math.ceil((duration - start) * fps - 1e-6))
    elif times is not None:
        num_frames = len(times)
    elif record.frame_paths:
        num_frames = len(record.frame_paths)
    else:
        num_frames = _count_frames(record)
    instance_ids = record.extra.get("instance_ids")
    return VideoPlan(
        num_frames=int(num_frames),
        duration=float(duration),
        num_instances=len(instance_ids) if instance_ids is not None else 0,
        num_sources=len(record.sources),
        source_hash=file_identity(_files_of(record)),
    )


def _count_frames(record: VideoRecord) -> int:
    try:
        return probe(record.video_path).num_frames  # type: ignore[arg-type]
    except AvlabError:
        return 0
