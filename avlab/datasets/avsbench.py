"""AVSBench: S4 (single source), MS3 (multiple sources) and AVSS (semantic) subsets.

AVSBench ships one frame per second of a 5 s clip (10 s for AVSS ``v2``), a 16 kHz wav per
clip and, from the original release, VGGish log-mel features as Python pickles. Pickles can
run arbitrary code when loaded, so nothing here unpickles a file unless the caller opts in.
"""

from __future__ import annotations

import csv
import json
import os
import pickle
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from avlab.datasets._video_files import describe_problems
from avlab.datasets.manifest import Manifest, VideoRecord
from avlab.datasets.masks import PngMasks
from avlab.errors import AvlabWarning, DatasetError

__all__ = ["AVSS_NUM_CLASSES", "avsbench_palette", "load_avsbench", "load_avsbench_log_mel"]

AVSS_NUM_CLASSES = 71  # 70 sounding-object classes + background, the same for v1 and v2
_SPLITS = ("train", "val", "test")
_AVSS_FRAMES = {"v1s": 5, "v1m": 5, "v2": 10}
# Header names under which AVSBench's csv files (and their re-exports) store each field.
_NAME_COLUMNS = ("name", "video_name", "video", "video_id", "vid", "uid")


def avsbench_palette(num_classes: int = AVSS_NUM_CLASSES) -> np.ndarray:
    """The colours of AVSS's colour masks: the PASCAL VOC bit-shift colormap.

    Class k's colour spreads the bits of k over the high bits of red, green and blue, as
    AVSBench's ``get_v2_pallete`` does; class 0 (background) is black.

    Returns:
        (num_classes, 3) uint8.

    Example:
        >>> avsbench_palette()[:4].tolist()
        [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
    """
    palette = np.zeros((num_classes, 3), dtype=np.uint8)
    for k in range(num_classes):
        label, shift = k, 7
        while label > 0:
            for channel in range(3):
                palette[k, channel] |= ((label >> channel) & 1) << shift
            label >>= 3
            shift -= 1
    return palette


def load_avsbench(
    root: str | os.PathLike[str],
    *,
    subset: Literal["s4", "ms3", "avss"] = "s4",
    split: str | None = None,
    allow_pickle: bool = False,
    palette: np.ndarray | None = None,
) -> Manifest:
    """One AVSBench subset, as released.

    Layouts (``root`` is the subset's folder; for S4 and MS3 the release's parent folder also
    works, through its ``Single-source/`` or ``Multi-sources/``):

    - ``s4``: ``s4_meta_data.csv``; ``s4_data/visual_frames/{split}/{category}/{video}/
      {video}_{1..5}.png``; ``s4_data/audio_wav/{split}/{category}/{video}.wav`` and/or
      ``s4_data/audio_log_mel/{split}/{category}/{video}.pkl``;
      ``s4_data/gt_masks/{split}/{category}/{video}/{video}_{1..5}.png``. Binary masks; the
      train split annotates only the first frame (``Masks.frame_index == [0]``).
    - ``ms3``: ``ms3_meta_data.csv``; ``ms3_data/visual_frames/{video}/{video}.mp4_{1..5}.png``
      (no split level); ``ms3_data/audio_wav/{split}/{video}.wav`` and/or
      ``ms3_data/audio_log_mel/{split}/{video}.pkl``;
      ``ms3_data/gt_masks/{split}/{video}/{video}_{1..5}.png``: palette images, any non-zero
      index is foreground. All five frames are annotated in every split.
    - ``avss``: ``metadata.csv`` (``uid``, ``label`` in v1s/v1m/v2, ``split``, ...);
      ``{label}/{uid}/frames/{0..n-1}.jpg``, ``{label}/{uid}/audio.wav`` and
      ``{label}/{uid}/labels_rgb/{0..n-1}.png`` colour masks, decoded to class ids (kind
      ``"semantic"``, 0 = background) through `palette`. n is 5 for v1s/v1m and 10 for v2; v1s
      train annotates only the first frame. Class names come from ``label2idx.json`` in the
      root when present.

    The S4/MS3 csv files are read by their header names (``name``/``video_id``/...,
    ``category``, ``split``; AVSBench's own dataloaders read these columns); a csv without a
    header is read by position as (name, start, category, split). Other columns go to
    ``extra`` as strings, under their header names (``"start"`` without a header: where the
    clip starts in its YouTube video).

    Time: AVSBench keeps one frame per second and pairs frame i with the i-th one-second audio
    segment (its VGGish example). Frame i is therefore placed at ``frame_times[i] = i + 0.5``
    s, the centre of that segment, and ``duration`` is the number of frames in seconds, so
    `VideoRecord.load_audio` returns the whole clip and a window centred on a frame time covers
    that frame's second. (AVSBench's extraction script actually grabs the frame 15/16 of the
    way through each second; the centre is the convention that keeps audio windows symmetric.)

    Pickles: without `allow_pickle`, no file is ever unpickled. A clip with a log-mel pickle
    has its path in ``extra["log_mel_path"]``; a clip with only the pickle and no wav gets
    ``audio_path`` None. `load_avsbench_log_mel` reads the pickle once the caller opts in, here
    (recorded as ``extra["allow_pickle"]``) or in that call.

    Args:
        root: The subset's folder.
        subset: ``"s4"``, ``"ms3"`` or ``"avss"``.
        split: Keep only ``"train"``, ``"val"`` or ``"test"``; None keeps all. The manifest's
            categories still cover every split, so category ids agree between splits.
        allow_pickle: Consent to unpickling this dataset's log-mel files later.
        palette: (K, 3) uint8 colours of the AVSS masks, colour k = class k; default
            `avsbench_palette` with one colour per ``label2idx.json`` entry (71 without it).

    Returns:
        A `Manifest` named ``"avsbench-{subset}"``, records in csv order.

    Raises:
        DatasetError: The csv is missing or malformed (the message names the line), a video id
            repeats, or ``label2idx.json`` is malformed.
        ValueError: Unknown `subset` or `split`, or a `palette` that is not (K, 3).

    Example:
        >>> import tempfile
        >>> from avlab.testing.layouts import write_avsbench_s4
        >>> s4 = load_avsbench(write_avsbench_s4(tempfile.mkdtemp(), num_videos=3))
        >>> s4, s4.categories
        (<Manifest 'avsbench-s4': 3 videos (train: 1, val: 1, test: 1)>, ['dog_barking', 'playing_violin'])
        >>> clip = s4["s4vid-1"]
        >>> clip.frame_times.tolist(), clip.load_frames().frames.shape, clip.load_audio(16000).shape
        ([0.5, 1.5, 2.5, 3.5, 4.5], (5, 32, 32, 3), (80000,))
        >>> masks = s4["s4vid-0"].load_masks()
        >>> masks.kind, masks.data.shape, masks.frame_index.tolist()
        ('binary', (1, 32, 32), [0])
    """
    if subset not in ("s4", "ms3", "avss"):
        raise ValueError(f"subset must be 's4', 'ms3' or 'avss', got {subset!r}")
    if split is not None and split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS} or None, got {split!r}")
    base = Path(root)
    if subset == "avss":
        records, categories = _avss_records(base, palette, split)
    else:
        records, categories = _v1_records(base, subset, allow_pickle, split)
    return Manifest(records, name=f"avsbench-{subset}", root=base, categories=categories)


def load_avsbench_log_mel(record: VideoRecord, *, allow_pickle: bool = False) -> np.ndarray:
    """Read the VGGish log-mel examples AVSBench stored for a clip as a pickle.

    Unpickling runs whatever code the file asks for, so this refuses unless the caller opted in:
    here with ``allow_pickle=True`` or when loading the manifest
    (``load_avsbench(..., allow_pickle=True)``). Only do so for files you trust.

    Returns:
        float32 (T, 1, 96, 64) as stored: one 0.96 s log-mel example per second.

    Raises:
        DatasetError: The record has no log-mel pickle, the caller did not opt in, or the file
            cannot be unpickled.

    Example:
        >>> import tempfile
        >>> from avlab.testing.layouts import write_avsbench_s4
        >>> root = write_avsbench_s4(tempfile.mkdtemp(), num_videos=1, wav=False, log_mel=True)
        >>> clip = load_avsbench(root, allow_pickle=True)[0]
        >>> clip.has_audio, load_avsbench_log_mel(clip).shape
        (False, (5, 1, 96, 64))
    """
    where = record.frame_paths[0].parent if record.frame_paths else record.video_path or record.video_id
    path = record.extra.get("log_mel_path")
    if path is None:
        raise DatasetError(where, f"video {record.video_id!r} has no log-mel pickle")
    if not (allow_pickle or record.extra.get("allow_pickle", False)):
        raise DatasetError(path, "refusing to unpickle: a pickle can run arbitrary code; pass "
                                 "allow_pickle=True (here or to load_avsbench) if you trust this file")
    try:
        with open(path, "rb") as file:
            value = pickle.load(file)  # noqa: S301 - the caller opted in above
    except FileNotFoundError:
        raise DatasetError(path, "log-mel pickle not found") from None
    except Exception as error:  # unpickling can raise anything the file's code raises
        raise DatasetError(path, f"cannot unpickle log-mel ({type(error).__name__}: {error})") from error
    if hasattr(value, "detach"):  # AVSBench pickled torch tensors
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise DatasetError(path, f"log-mel pickle holds {type(value).__name__}, not an array") from error


def _v1_records(
    base: Path, subset: str, allow_pickle: bool, keep: str | None
) -> tuple[list[VideoRecord], list[str] | None]:
    csv_name, data_name, release_folder = {
        "s4": ("s4_meta_data.csv", "s4_data", "Single-source"),
        "ms3": ("ms3_meta_data.csv", "ms3_data", "Multi-sources"),
    }[subset]
    if not (base / csv_name).is_file() and (base / release_folder / csv_name).is_file():
        base = base / release_folder
    table = base / csv_name
    data = base / data_name
    rows = _read_v1_csv(table)
    records: list[VideoRecord] = []
    audio_problems = []
    seen: dict[str, int] = {}
    all_categories: set[str] = set()
    for line, fields in rows:
        name, category, split = fields.pop("name"), fields.pop("category", None), fields.pop("split")
        if name in seen:
            raise DatasetError(table, f"line {line}: video {name!r} repeats line {seen[name]}")
        seen[name] = line
        if subset == "s4" and not category:
            raise DatasetError(table, f"line {line}: S4 video {name!r} has no category")
        if category:
            all_categories.add(category)
        if keep is not None and split != keep:
            continue
        if subset == "s4" and category:
            frames = data / "visual_frames" / split / category / name
            frame_paths = [frames / f"{name}_{i}.png" for i in range(1, 6)]
            audio_dir, mel_dir = data / "audio_wav" / split / category, data / "audio_log_mel" / split / category
            mask_dir = data / "gt_masks" / split / category / name
            annotated = [0] if split == "train" else list(range(5))
        else:
            frames = data / "visual_frames" / name
            frame_paths = [frames / f"{name}.mp4_{i}.png" for i in range(1, 6)]
            audio_dir, mel_dir = data / "audio_wav" / split, data / "audio_log_mel" / split
            mask_dir = data / "gt_masks" / split / name
            annotated = list(range(5))
        wav, mel = audio_dir / f"{name}.wav", mel_dir / f"{name}.pkl"
        extra: dict[str, object] = dict(fields)
        extra["allow_pickle"] = allow_pickle
        has_wav = wav.is_file()
        if mel.is_file():
            extra["log_mel_path"] = mel
            if not has_wav:
                extra["audio_note"] = (f"video {name!r} has no wav ({wav}), only a log-mel pickle; "
                                       f"read it with load_avsbench_log_mel(record, allow_pickle=True) "
                                       f"if you trust the file")
        elif not has_wav:
            audio_problems.append((wav, "no wav and no log-mel pickle"))
        records.append(VideoRecord(
            name, split=split, frame_paths=tuple(frame_paths), frame_times=np.arange(5) + 0.5,
            audio_path=wav if has_wav else None, duration=5.0, category=category or None,
            masks=PngMasks(tuple(mask_dir / f"{name}_{i + 1}.png" for i in annotated), annotated, "binary"),
            extra=extra,
        ))
    _warn_audio(base, audio_problems, len(records))
    return records, sorted(all_categories) or None


def _read_v1_csv(table: Path) -> list[tuple[int, dict[str, str]]]:
    """Rows as (line number, fields) with ``name``, ``split`` and maybe ``category`` keys."""
    rows = _read_csv(table)
    if not rows:
        raise DatasetError(table, "empty csv")
    header = [cell.strip().lower() for cell in rows[0]]
    if "split" in header:
        name_col = next((header.index(c) for c in _NAME_COLUMNS if c in header), 0)
        columns = {name_col: "name", header.index("split"): "split"}
        if "category" in header:
            columns[header.index("category")] = "category"
        columns.update({i: h for i, h in enumerate(header) if i not in columns and h})
        body = rows[1:]
        first = 2
    else:  # no header: AVSBench's column order
        columns = {0: "name", 1: "start", 2: "category", 3: "split"}
        body, first = rows, 1
    out = []
    for line, row in enumerate(body, start=first):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(k for k, v in columns.items() if v in ("name", "split")):
            raise DatasetError(table, f"line {line}: expected {len(columns)} columns, got {len(row)}")
        fields = {key: row[i].strip() for i, key in columns.items() if i < len(row)}
        _check_row(table, line, fields["name"], fields["split"])
        category = fields.get("category", "")
        if category in (".", "..") or "/" in category or "\\" in category:
            raise DatasetError(table, f"line {line}: category {category!r} is a path; it must be a plain name")
        out.append((line, fields))
    return out


def _avss_records(
    base: Path, palette: np.ndarray | None, keep: str | None
) -> tuple[list[VideoRecord], list[str] | None]:
    table = base / "metadata.csv"
    categories = _read_label2idx(base / "label2idx.json")
    if palette is None:
        palette = avsbench_palette(len(categories) if categories else AVSS_NUM_CLASSES)
    palette = np.asarray(palette)
    if palette.ndim != 2 or palette.shape[1] != 3:
        raise ValueError(f"palette must be (K, 3) colours, got shape {palette.shape}")
    if categories is not None and len(categories) != len(palette):
        raise ValueError(f"palette has {len(palette)} colours but label2idx.json names {len(categories)} classes")
    rows = _read_csv(table)
    if not rows:
        raise DatasetError(table, "empty csv")
    header = [cell.strip() for cell in rows[0]]
    for column in ("uid", "label", "split"):
        if column not in header:
            raise DatasetError(table, f"line 1: the header has no {column!r} column (got {header})")
    records: list[VideoRecord] = []
    audio_problems = []
    seen: dict[str, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise DatasetError(table, f"line {line}: expected {len(header)} columns, got {len(row)}")
        fields = {key: cell.strip() for key, cell in zip(header, row, strict=True)}
        uid, label, split = fields.pop("uid"), fields.pop("label"), fields.pop("split")
        _check_row(table, line, uid, split)
        if label not in _AVSS_FRAMES:
            raise DatasetError(table, f"line {line}: label must be v1s, v1m or v2, got {label!r}")
        if uid in seen:
            raise DatasetError(table, f"line {line}: video {uid!r} repeats line {seen[uid]}")
        seen[uid] = line
        if keep is not None and split != keep:
            continue
        folder = base / label / uid
        count = _AVSS_FRAMES[label]
        annotated = [0] if (label == "v1s" and split == "train") else list(range(count))
        audio = folder / "audio.wav"
        if not audio.is_file():
            audio_problems.append((audio, "not found"))
        records.append(VideoRecord(
            uid, split=split, frame_paths=tuple(folder / "frames" / f"{i}.jpg" for i in range(count)),
            frame_times=np.arange(count) + 0.5, audio_path=audio if audio.is_file() else None,
            duration=float(count),
            masks=PngMasks(tuple(folder / "labels_rgb" / f"{i}.png" for i in annotated), annotated,
                           "semantic", palette=palette),
            extra={"label": label, **fields},
        ))
    _warn_audio(base, audio_problems, len(records))
    return records, categories


def _read_label2idx(path: Path) -> list[str] | None:
    """Class names by id from AVSBench's ``{name: id}`` json, or None without the file."""
    if not path.is_file():
        return None
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetError(path, f"cannot read class names ({error})") from error
    if not isinstance(mapping, dict) or not all(isinstance(v, int) for v in mapping.values()):
        raise DatasetError(path, "expected a JSON object mapping class names to integer ids")
    if sorted(mapping.values()) != list(range(len(mapping))):
        raise DatasetError(path, f"class ids must be 0..{len(mapping) - 1}, each once")
    return sorted(mapping, key=mapping.__getitem__)


def _read_csv(table: Path) -> list[list[str]]:
    try:
        with open(table, newline="", encoding="utf-8-sig") as file:
            return list(csv.reader(file))
    except FileNotFoundError:
        raise DatasetError(table, "AVSBench metadata csv not found (is root the subset's folder?)") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(table, f"cannot read csv ({error})") from error


def _check_row(table: Path, line: int, name: str, split: str) -> None:
    if not name:
        raise DatasetError(table, f"line {line}: empty video name")
    if name in (".", "..") or "/" in name or "\\" in name:
        raise DatasetError(table, f"line {line}: video name {name!r} is a path; it must be a plain name "
                                  "(it names files inside the dataset folder)")
    if split not in _SPLITS:
        raise DatasetError(table, f"line {line}: split must be one of {_SPLITS}, got {split!r}")


def _warn_audio(base: Path, problems: Sequence[tuple[Path, str]], total: int) -> None:
    if problems:
        # stacklevel=1: attributed to avlab, so the test suite's warning filter applies.
        warnings.warn(f"{base}: {len(problems)} of {total} clips have no audio:\n"
                      f"{describe_problems(problems)}", AvlabWarning, stacklevel=1)
