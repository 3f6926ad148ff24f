"""MUSIC (Sound of Pixels): solo and duet instrument videos, for mix-and-separate training."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

from avlab.datasets._video_files import describe_problems, is_video_file, probe_all, safe_id_part
from avlab.datasets.manifest import Manifest, VideoRecord
from avlab.errors import AvlabWarning, DatasetError

__all__ = ["load_music", "duet_instruments"]

_KINDS = ("solo", "duet")


def duet_instruments(folder_name: str) -> tuple[str, ...]:
    """The instruments a duet folder names, split at spaces, ``+``, ``&`` or commas.

    Example:
        >>> duet_instruments("acoustic_guitar violin"), duet_instruments("flute+trumpet")
        (('acoustic_guitar', 'violin'), ('flute', 'trumpet'))
    """
    return tuple(part for part in re.split(r"[\s+&,]+", folder_name) if part)


def load_music(root: str | os.PathLike[str], *, probe: bool = True) -> Manifest:
    """A MUSIC-style folder of solo and duet instrument videos.

    Layout: ``root/solo/{instrument}/{video}.{mp4,webm,mkv,mov}`` and
    ``root/duet/{instruments}/{video}.{ext}``, where a duet folder names both instruments
    (``"acoustic_guitar violin"`` as in MUSIC's own index, or ``"acoustic_guitar+violin"``).
    Without ``solo/`` and ``duet/`` folders, ``root/{instrument}/{video}.{ext}`` is read as all
    solo. Only video files directly inside an instrument folder count.

    Each record's sound is the video's own audio track. Its category is the instrument (solo)
    or the instruments joined by ``+`` (duet); ``extra["instruments"]`` is the tuple of
    instruments and ``extra["kind"]`` is ``"solo"`` or ``"duet"``. The manifest's categories
    are all the instruments, sorted. MUSIC publishes no split files (its users draw their own
    splits), so every split is None. Ids are ``{category}/{video}``, each instrument name and
    the file name made safe as in `avlab.datasets.folder.video_id_from_path`.

    Probing reads each file's header so that `VideoRecord.has_audio` is right (many
    re-downloaded YouTube videos lost their sound); a file that cannot be probed stays in the
    manifest without audio, with the reason in ``extra["error"]``, and an `AvlabWarning` lists
    every such file.

    Args:
        root: The dataset folder.
        probe: Read each file's header. False assumes every file has audio.

    Returns:
        A `Manifest` named ``"music"``.

    Raises:
        DatasetError: The folder is missing or holds no videos in this layout, a duet folder
            names fewer than two instruments, or two files give the same id.

    Example:
        >>> import tempfile
        >>> from avlab.testing.layouts import write_music
        >>> music = load_music(write_music(tempfile.mkdtemp()))
        >>> music.ids
        ['flute/flute_0', 'violin/violin_0', 'violin/violin_1', 'acoustic_guitar+violin/duet_0']
        >>> music.categories, music["acoustic_guitar+violin/duet_0"].extra["instruments"]
        (['acoustic_guitar', 'flute', 'violin'], ('acoustic_guitar', 'violin'))
        >>> music["flute/flute_0"].load_audio(16000).shape
        (16000,)
    """
    base = Path(root)
    if not base.is_dir():
        raise DatasetError(base, "MUSIC folder not found" if not base.exists() else "not a folder")
    kinds = [(kind, base / kind) for kind in _KINDS if (base / kind).is_dir()] or [("solo", base)]

    found: list[tuple[str, str, tuple[str, ...], Path]] = []  # (id, kind, instruments, file)
    owner: dict[str, Path] = {}
    for kind, folder in kinds:
        for category_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            instruments = duet_instruments(category_dir.name) if kind == "duet" else (category_dir.name,)
            if kind == "duet" and len(instruments) < 2:
                raise DatasetError(category_dir, "a duet folder must name its instruments, e.g. "
                                                 "'acoustic_guitar violin' or 'acoustic_guitar+violin'")
            for file in sorted(p for p in category_dir.iterdir() if is_video_file(p)):
                video_id = "+".join(map(safe_id_part, instruments)) + "/" + safe_id_part(file.stem)
                if video_id in owner:
                    raise DatasetError(base, f"files {owner[video_id]} and {file} both give video id "
                                             f"{video_id!r}; rename one of them")
                owner[video_id] = file
                found.append((video_id, kind, instruments, file))
    if not found:
        raise DatasetError(base, "no videos found: expected solo/{instrument}/{video}.mp4 and "
                                 "duet/{instrument_a instrument_b}/{video}.mp4 (or {instrument}/{video}.mp4)")

    infos = probe_all([f for *_, f in found]) if probe else [None] * len(found)
    records, problems = [], []
    for (video_id, kind, instruments, file), info in zip(found, infos, strict=True):
        extra: dict[str, object] = {"kind": kind, "instruments": instruments}
        audio: Path | None = file
        if isinstance(info, str):
            problems.append((file, info))
            extra["error"], audio = info, None
        elif info is not None:
            extra["info"] = info
            audio = file if info.has_audio else None
        records.append(VideoRecord(video_id, video_path=file, audio_path=audio,
                                   category="+".join(instruments), extra=extra))
    if problems:
        # stacklevel=1: attributed to avlab, so the test suite's warning filter applies.
        warnings.warn(f"{base}: {len(problems)} of {len(found)} MUSIC videos cannot be read and are "
                      f"kept without audio (reason in record.extra['error']):\n"
                      f"{describe_problems(problems)}", AvlabWarning, stacklevel=1)
    categories = sorted({name for *_, instruments, _ in found for name in instruments})
    return Manifest(records, name="music", root=base, categories=categories)
