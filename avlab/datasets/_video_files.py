"""Finding video files on disk and probing them, shared by the folder-style loaders."""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from avlab.errors import MediaError
from avlab.media import MediaInfo, probe

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v")

# Probing opens each file and reads its header: I/O bound, so a few threads hide the latency
# of network file systems.
_PROBE_THREADS = 8
_LISTED_PROBLEMS = 20


def is_video_file(path: Path) -> bool:
    """A visible regular file with a video extension (case-insensitive)."""
    return not path.name.startswith(".") and path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file()


def walk_video_files(root: Path) -> Iterator[Path]:
    """Every video file under `root`, following folder links once, in sorted order per folder.

    Hidden files and folders (a leading dot, e.g. macOS ``._clip.mp4`` resource forks) are
    skipped.
    """
    seen: set[str] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a link back up the tree
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(folder) / name
            if is_video_file(path):
                yield path


def safe_id_part(text: str) -> str:
    """One path component made safe for an id: NFC, and runs of characters other than word
    characters, ``.`` and ``-`` replaced by ``_``; never empty, ``.`` or ``..``."""
    part = re.sub(r"[^\w.\-]+", "_", unicodedata.normalize("NFC", text))
    return "_" if part in ("", ".", "..") else part


def probe_all(paths: Sequence[Path]) -> list[MediaInfo | str]:
    """Probe each file's header: its `MediaInfo`, or the reason it cannot be read."""

    def one(path: Path) -> MediaInfo | str:
        try:
            info = probe(path, count_frames=False)
        except MediaError as error:
            return error.reason
        return info if info.has_video else "no video stream"

    if len(paths) < 2:
        return [one(p) for p in paths]
    with ThreadPoolExecutor(max_workers=min(_PROBE_THREADS, len(paths))) as pool:
        return list(pool.map(one, paths))


def describe_problems(problems: Sequence[tuple[Path, str]]) -> str:
    """``path: reason`` lines, the first few of them, then a count of the rest."""
    lines = [f"  {path}: {reason}" for path, reason in problems[:_LISTED_PROBLEMS]]
    if len(problems) > _LISTED_PROBLEMS:
        lines.append(f"  ... and {len(problems) - _LISTED_PROBLEMS} more")
    return "\n".join(lines)
