"""AVE (Audio-Visual Event localisation): 10 s YouTube clips with one labelled event interval."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Literal, NamedTuple

from avlab.datasets._video_files import describe_problems
from avlab.datasets.manifest import Manifest, VideoRecord
from avlab.errors import AvlabWarning, DatasetError

__all__ = ["AveEvent", "load_ave", "read_ave_annotations"]

HEADER = "Category&VideoID&Quality&StartTime&EndTime"
SPLIT_FILES = {"train": "trainSet.txt", "val": "valSet.txt", "test": "testSet.txt"}


class AveEvent(NamedTuple):
    """One row of an AVE annotation file.

    Attributes:
        category: The event's class name (``"Church bell"``).
        video_id: The YouTube id; the video is ``AVE/{video_id}.mp4``.
        quality: The annotators' quality flag (``"good"``).
        start: Seconds from the start of the clip at which the event starts.
        end: Seconds at which it ends.
    """

    category: str
    video_id: str
    quality: str
    start: float
    end: float


def read_ave_annotations(path: str | os.PathLike[str]) -> list[AveEvent]:
    """Read an AVE annotation file (``Annotations.txt`` or a split file), one event per row.

    Rows are ``Category&VideoID&Quality&StartTime&EndTime``; the header line of that form is
    optional, blank lines are skipped, and a byte-order mark is tolerated.

    Raises:
        DatasetError: The file is missing, or a row has the wrong number of fields, a time that
            is not a number, or an end before its start (the message gives the line).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "Annotations.txt"
        >>> _ = path.write_text(HEADER + "\\nChurch bell&RUhOCu3LNXM&good&0&10\\n")
        >>> read_ave_annotations(path)
        [AveEvent(category='Church bell', video_id='RUhOCu3LNXM', quality='good', start=0.0, end=10.0)]
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise DatasetError(path, "AVE annotation file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(path, f"cannot read AVE annotation file ({error})") from error
    events = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or (number == 1 and line.strip().lower() == HEADER.lower()):
            continue
        fields = [field.strip() for field in line.split("&")]
        if len(fields) != 5:
            raise DatasetError(path, f"line {number}: expected 5 '&'-separated fields ({HEADER}), "
                                     f"got {len(fields)}: {line!r}")
        category, video_id, quality, start, end = fields
        try:
            event = AveEvent(category, video_id, quality, float(start), float(end))
        except ValueError:
            raise DatasetError(path, f"line {number}: start and end must be seconds, got {start!r}, {end!r}") from None
        if not event.video_id or event.end < event.start:
            raise DatasetError(path, f"line {number}: empty video id or end before start: {line!r}")
        events.append(event)
    return events


def load_ave(
    root: str | os.PathLike[str], *, on_missing: Literal["warn", "error"] = "warn"
) -> Manifest:
    """The AVE dataset: ``Annotations.txt`` plus the videos in ``AVE/{VideoID}.mp4``.

    Every video of ``Annotations.txt`` becomes a record, in the file's order; its sound is the
    video's own audio track. A video with several rows (several events) is one record.
    ``extra["events"]`` holds its `AveEvent`s (start and end seconds, quality) and
    ``extra["quality"]`` the first one's quality; the record's category is its first event's.
    The optional ``trainSet.txt``, ``valSet.txt`` and ``testSet.txt`` (same row format) give
    the splits; without them every split is None. Manifest categories are sorted by name.

    Args:
        root: The folder holding ``Annotations.txt`` and ``AVE/``.
        on_missing: What to do with videos listed in ``Annotations.txt`` but absent from
            ``AVE/`` (re-downloads from YouTube often lack some): ``"warn"`` leaves them out
            and emits one `AvlabWarning` listing them; ``"error"`` raises.

    Returns:
        A `Manifest` named ``"ave"``.

    Raises:
        DatasetError: ``Annotations.txt`` or ``AVE/`` is missing, a row is malformed, a split
            file names a video absent from ``Annotations.txt`` or a video is in two split
            files, or (with ``on_missing="error"``) a listed video is missing.

    Example:
        >>> import tempfile
        >>> from avlab.testing.layouts import write_ave
        >>> ave = load_ave(write_ave(tempfile.mkdtemp(), num_videos=3))
        >>> ave.ids, ave.splits
        (['ave000', 'ave001', 'ave002'], ['train', 'val', 'test'])
        >>> clip = ave["ave001"]
        >>> clip.category, clip.extra["quality"], [(e.start, e.end) for e in clip.extra["events"]]
        ('Bark', 'good', [(1.0, 6.0)])
    """
    if on_missing not in ("warn", "error"):
        raise ValueError(f"on_missing must be 'warn' or 'error', got {on_missing!r}")
    base = Path(root)
    video_dir = base / "AVE"
    events = read_ave_annotations(base / "Annotations.txt")
    if not video_dir.is_dir():
        raise DatasetError(video_dir, "AVE video folder not found (expected AVE/{VideoID}.mp4)")

    by_video: dict[str, list[AveEvent]] = {}
    for event in events:
        by_video.setdefault(event.video_id, []).append(event)
    splits = _read_splits(base, by_video)

    present = set(os.listdir(video_dir))  # one listing rather than a stat per video
    records, missing = [], []
    for video_id, video_events in by_video.items():
        video = video_dir / f"{video_id}.mp4"
        if video.name not in present:
            missing.append((video, "listed in Annotations.txt but not found"))
            continue
        records.append(VideoRecord(
            video_id, split=splits.get(video_id), video_path=video, audio_path=video,
            category=video_events[0].category,
            extra={"events": tuple(video_events), "quality": video_events[0].quality},
        ))
    if missing and on_missing == "error":
        raise DatasetError(missing[0][0], f"video listed in Annotations.txt not found "
                                          f"({len(missing)} of {len(by_video)} videos missing)")
    if missing:
        # stacklevel=1: attributed to avlab, so the test suite's warning filter applies.
        warnings.warn(f"{base}: {len(missing)} of {len(by_video)} AVE videos are missing and left out:\n"
                      f"{describe_problems(missing)}", AvlabWarning, stacklevel=1)
    categories = sorted({event.category for event in events})
    return Manifest(records, name="ave", root=base, categories=categories)


def _read_splits(base: Path, by_video: dict[str, list[AveEvent]]) -> dict[str, str]:
    split_of: dict[str, str] = {}
    for split, name in SPLIT_FILES.items():
        path = base / name
        if not path.is_file():
            continue
        for event in read_ave_annotations(path):
            if event.video_id not in by_video:
                raise DatasetError(path, f"video {event.video_id!r} is not in Annotations.txt")
            if split_of.setdefault(event.video_id, split) != split:
                raise DatasetError(path, f"video {event.video_id!r} is also in the "
                                         f"{split_of[event.video_id]} split")
    return split_of
