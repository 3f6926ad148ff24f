"""Any folder of video files as a dataset: one record per file, sound from the file itself."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from avlab.datasets._video_files import (
    VIDEO_EXTENSIONS,
    describe_problems,
    probe_all,
    safe_id_part,
    walk_video_files,
)
from avlab.datasets.manifest import Manifest, VideoRecord
from avlab.errors import AvlabWarning, DatasetError
from avlab.media import MediaInfo

__all__ = ["load_folder", "video_id_from_path"]


def video_id_from_path(relative: str | os.PathLike[str]) -> str:
    """The video id of a file at `relative` (a path below the dataset root).

    The id is the path without its extension, with ``/`` between folders; within each part,
    runs of characters other than letters, digits, ``_``, ``.`` and ``-`` become ``_``, so ids
    are safe as file names and store keys on every platform.

    Example:
        >>> video_id_from_path("Guitar solos/take 1 (live).mp4")
        'Guitar_solos/take_1_live_'
    """
    parts = Path(relative).with_suffix("").parts
    return "/".join(safe_id_part(part) for part in parts)


def load_folder(path: str | os.PathLike[str], *, probe: bool = True) -> Manifest:
    """Every video file under a folder, searched recursively.

    Files with the extensions mp4, mkv, webm, mov, avi and m4v (any case) are read; hidden files
    and folders are skipped. Records come in the order of their relative paths, and their ids
    follow `video_id_from_path`. There are no splits and no categories; each record's sound is
    the file's own audio track.

    Probing reads each file's header (no decoding), so that `VideoRecord.has_audio` is true
    only for files that have an audio stream, and ``extra["info"]`` holds the `MediaInfo`. A
    file that cannot be probed (corrupt, truncated, no video stream) stays in the manifest with
    no audio and the reason in ``extra["error"]``, and one `AvlabWarning` lists every such
    file; the others load normally.

    Args:
        path: The folder.
        probe: Read each file's header. False skips that (faster for very large folders on slow
            disks) and assumes every file has audio.

    Returns:
        A `Manifest` named after the folder.

    Raises:
        DatasetError: The folder is missing, is not a folder, holds no video files, or two files
            map to the same id (``clip.mp4`` and ``clip.mkv``).

    Example:
        >>> import tempfile
        >>> from avlab.testing.layouts import write_video_folder
        >>> root = write_video_folder(tempfile.mkdtemp(), files=("a.mp4", "sub/b.webm"), silent=("sub/b.webm",))
        >>> videos = load_folder(root)
        >>> videos.ids, [r.has_audio for r in videos]
        (['a', 'sub/b'], [True, False])
        >>> videos["a"].load_frames().frames.shape
        (4, 32, 32, 3)
    """
    root = Path(path)
    if not root.exists():
        raise DatasetError(root, "folder not found")
    if not root.is_dir():
        raise DatasetError(root, "not a folder")
    files = sorted(walk_video_files(root), key=lambda p: p.relative_to(root).as_posix())
    if not files:
        raise DatasetError(root, f"no video files ({', '.join(e[1:] for e in VIDEO_EXTENSIONS)}) found")

    owner: dict[str, Path] = {}
    for file in files:
        video_id = video_id_from_path(file.relative_to(root))
        if video_id in owner:
            raise DatasetError(root, f"files {owner[video_id]} and {file} both give video id "
                                     f"{video_id!r}; rename one of them")
        owner[video_id] = file

    infos: list[MediaInfo | str | None] = list(probe_all(files)) if probe else [None] * len(files)
    records = []
    problems = []
    for (video_id, file), info in zip(owner.items(), infos, strict=True):
        if isinstance(info, str):
            problems.append((file, info))
            records.append(VideoRecord(video_id, video_path=file, extra={"error": info}))
        elif info is None:
            records.append(VideoRecord(video_id, video_path=file, audio_path=file))
        else:
            records.append(VideoRecord(video_id, video_path=file, audio_path=file if info.has_audio else None,
                                       extra={"info": info}))
    if problems:
        warnings.warn(f"{root}: {len(problems)} of {len(files)} video files cannot be read and are "
                      f"kept without audio (reason in record.extra['error']):\n"
                      f"{describe_problems(problems)}", AvlabWarning, stacklevel=1)
    return Manifest(records, name=root.resolve().name or "folder", root=root)
