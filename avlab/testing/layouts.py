"""Tiny datasets on disk in exactly the layouts avlab's loaders read, for tests, doctests and notebooks.

Every file is written by a real encoder (PIL for PNG and JPEG, soundfile for wav, PyAV through
`avlab.media.write_video` for video files) and the content is known, so a test can check what a
loader decodes:

- `fixture_frame`: frame ``i`` of video ``v`` is one flat colour ``(8 + 16 i, 8 + 16 (v % 15), 128)``.
- `fixture_mask`: the mask of frame ``i`` covers the top ``2 (i + 1)`` rows.
- AVSS: that region has class `avss_class` ``(v, i)``, painted in the AVSBench palette colour.
- Audio: a sine at ``220 (v + 1)`` Hz, as long as the clip (one second per frame for AVSBench).

Each writer returns the dataset root, ready to pass to its loader.
"""

from __future__ import annotations

import csv
import json
import os
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image

from avlab.datasets.avsbench import AVSS_NUM_CLASSES, avsbench_palette
from avlab.testing.media import sine, write_test_video

__all__ = [
    "avss_class",
    "fixture_frame",
    "fixture_mask",
    "write_ave",
    "write_avsbench_ms3",
    "write_avsbench_s4",
    "write_avss",
    "write_music",
    "write_video_folder",
]

PathLike = str | os.PathLike[str]
_SPLITS = ("train", "val", "test")
# Codecs a container can hold, chosen so every extension the folder loader reads gets a real file.
_CODECS = {
    ".mp4": ("libx264", "aac"), ".m4v": ("libx264", "aac"), ".mov": ("libx264", "aac"),
    ".mkv": ("libx264", "aac"), ".webm": ("libvpx-vp9", "libopus"), ".avi": ("mpeg4", "libmp3lame"),
}


def fixture_frame(video: int, frame: int, size: int = 32) -> np.ndarray:
    """The picture the writers store for frame `frame` of video `video`: one flat colour.

    Returns:
        (size, size, 3) uint8.

    Example:
        >>> fixture_frame(1, 2)[0, 0].tolist()
        [40, 24, 128]
    """
    colour = np.array([8 + 16 * (frame % 15), 8 + 16 * (video % 15), 128], dtype=np.uint8)
    return np.broadcast_to(colour, (size, size, 3)).copy()


def fixture_mask(frame: int, size: int = 32) -> np.ndarray:
    """The foreground the writers store for frame `frame`: the top ``2 (frame + 1)`` rows.

    Returns:
        (size, size) uint8, 0/1.

    Example:
        >>> int(fixture_mask(0).sum()), int(fixture_mask(1, size=8).sum())
        (64, 32)
    """
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[: 2 * (frame + 1)] = 1
    return mask


def avss_class(video: int, frame: int, num_classes: int = AVSS_NUM_CLASSES) -> int:
    """The class id `write_avss` paints into the foreground of frame `frame` of video `video`.

    Example:
        >>> avss_class(0, 0), avss_class(3, 69)
        (1, 3)
    """
    return 1 + (video + frame) % (num_classes - 1)


def write_avsbench_s4(
    root: PathLike,
    *,
    num_videos: int = 3,
    categories: Sequence[str] = ("dog_barking", "playing_violin"),
    splits: Sequence[str] = _SPLITS,
    size: int = 32,
    sample_rate: int = 16000,
    wav: bool = True,
    log_mel: bool = False,
    header: bool = True,
) -> Path:
    """Write an AVSBench S4 subset: ``s4_meta_data.csv`` and ``s4_data/``.

    Video ``v`` is named ``s4vid-{v}``, in split ``splits[v % len(splits)]`` and category
    ``categories[v % len(categories)]``, with 5 PNG frames, a 5 s wav, and binary ("L", 0/255)
    masks: only ``_1`` in the train split, ``_1`` to ``_5`` otherwise.

    Args:
        root: Folder to write into (created if needed).
        num_videos: Number of clips.
        categories: Category names to cycle through.
        splits: Split names to cycle through.
        size: Frame and mask height and width.
        sample_rate: Wav sample rate.
        wav: Write ``audio_wav/.../{video}.wav``.
        log_mel: Write ``audio_log_mel/.../{video}.pkl``: a pickled float32 (5, 1, 96, 64)
            array filled with ``v`` (AVSBench pickles torch tensors of that shape).
        header: Give the csv a header line (``name,start,category,split``).

    Returns:
        `root`, as a Path.

    Example:
        >>> import tempfile
        >>> root = write_avsbench_s4(tempfile.mkdtemp(), num_videos=1)
        >>> sorted(p.name for p in (root / "s4_data/gt_masks/train/dog_barking/s4vid-0").iterdir())
        ['s4vid-0_1.png']
    """
    base = Path(root)
    data = base / "s4_data"
    rows = []
    for v in range(num_videos):
        name, split, category = f"s4vid-{v}", splits[v % len(splits)], categories[v % len(categories)]
        rows.append([name, str(v), category, split])
        for i in range(5):
            _save_image(fixture_frame(v, i, size), data / "visual_frames" / split / category / name / f"{name}_{i + 1}.png")
        for i in [0] if split == "train" else range(5):
            _save_image(fixture_mask(i, size) * 255, data / "gt_masks" / split / category / name / f"{name}_{i + 1}.png")
        if wav:
            _write_wav(data / "audio_wav" / split / category / f"{name}.wav", v, 5.0, sample_rate)
        if log_mel:
            _write_log_mel(data / "audio_log_mel" / split / category / f"{name}.pkl", v, 5)
    _write_csv(base / "s4_meta_data.csv", ["name", "start", "category", "split"] if header else None, rows)
    return base


def write_avsbench_ms3(
    root: PathLike,
    *,
    num_videos: int = 3,
    splits: Sequence[str] = _SPLITS,
    size: int = 32,
    sample_rate: int = 16000,
    wav: bool = True,
    log_mel: bool = False,
) -> Path:
    """Write an AVSBench MS3 subset: ``ms3_meta_data.csv`` and ``ms3_data/``.

    Video ``v`` is named ``ms3vid-{v}``, in split ``splits[v % len(splits)]``, with 5 PNG
    frames ``visual_frames/{video}/{video}.mp4_{i}.png`` (no split level), a 5 s wav, and 5
    palette ("P") masks whose foreground has index ``1 + i % 2``, as MS3's multi-colour masks do.

    Args:
        root: Folder to write into (created if needed).
        num_videos: Number of clips.
        splits: Split names to cycle through.
        size: Frame and mask height and width.
        sample_rate: Wav sample rate.
        wav: Write ``audio_wav/{split}/{video}.wav``.
        log_mel: Write ``audio_log_mel/{split}/{video}.pkl`` (see `write_avsbench_s4`).

    Returns:
        `root`, as a Path.

    Example:
        >>> import tempfile
        >>> root = write_avsbench_ms3(tempfile.mkdtemp(), num_videos=1)
        >>> sorted(p.name for p in (root / "ms3_data/visual_frames/ms3vid-0").iterdir())[:2]
        ['ms3vid-0.mp4_1.png', 'ms3vid-0.mp4_2.png']
    """
    base = Path(root)
    data = base / "ms3_data"
    palette = avsbench_palette(4).tobytes()
    rows = []
    for v in range(num_videos):
        name, split = f"ms3vid-{v}", splits[v % len(splits)]
        rows.append([name, str(v), split])
        for i in range(5):
            _save_image(fixture_frame(v, i, size), data / "visual_frames" / name / f"{name}.mp4_{i + 1}.png")
            mask = Image.frombytes("P", (size, size), (fixture_mask(i, size) * (1 + i % 2)).tobytes())
            mask.putpalette(palette)
            _save_image(mask, data / "gt_masks" / split / name / f"{name}_{i + 1}.png")
        if wav:
            _write_wav(data / "audio_wav" / split / f"{name}.wav", v, 5.0, sample_rate)
        if log_mel:
            _write_log_mel(data / "audio_log_mel" / split / f"{name}.pkl", v, 5)
    _write_csv(base / "ms3_meta_data.csv", ["video_id", "start", "split"], rows)
    return base


def write_avss(
    root: PathLike,
    *,
    num_videos: int = 6,
    labels: Sequence[str] = ("v1s", "v1m", "v2"),
    splits: Sequence[str] = _SPLITS,
    size: int = 32,
    sample_rate: int = 16000,
    label2idx: bool = True,
) -> Path:
    """Write an AVSBench-semantic (AVSS) release: ``metadata.csv``, ``label2idx.json`` and
    ``{label}/{uid}/{frames,labels_rgb,audio.wav}``.

    Video ``v`` has uid ``avss-{v}``, label ``labels[v % len(labels)]`` and split
    ``splits[(v // len(labels)) % len(splits)]``; 5 frames (10 for ``v2``) as JPEG
    ``frames/{i}.jpg``, a wav as long, and RGB colour masks ``labels_rgb/{i}.png`` whose
    foreground (`fixture_mask`) has class `avss_class` ``(v, i)`` in `avsbench_palette`
    colours. A ``v1s`` video in the train split has only ``0.png``.

    Args:
        root: Folder to write into (created if needed).
        num_videos: Number of clips.
        labels: AVSS subsets (``v1s``, ``v1m``, ``v2``) to cycle through.
        splits: Split names, each taken for ``len(labels)`` videos in turn.
        size: Frame and mask height and width.
        sample_rate: Wav sample rate.
        label2idx: Write ``label2idx.json`` naming the 71 classes ``background``,
            ``class_01``, ..., ``class_70``.

    Returns:
        `root`, as a Path.

    Example:
        >>> import tempfile
        >>> root = write_avss(tempfile.mkdtemp(), num_videos=3)
        >>> len(list((root / "v2/avss-2/frames").iterdir())), len(list((root / "v1s/avss-0/labels_rgb").iterdir()))
        (10, 1)
    """
    base = Path(root)
    palette = avsbench_palette(AVSS_NUM_CLASSES)
    rows = []
    for v in range(num_videos):
        uid, label = f"avss-{v}", labels[v % len(labels)]
        split = splits[(v // len(labels)) % len(splits)]
        count = 10 if label == "v2" else 5
        rows.append([f"yt{v}", uid, "0", str(v), "", split, label])
        folder = base / label / uid
        for i in range(count):
            _save_image(fixture_frame(v, i, size), folder / "frames" / f"{i}.jpg")
        for i in [0] if (label == "v1s" and split == "train") else range(count):
            colour_ids = fixture_mask(i, size) * avss_class(v, i)
            _save_image(palette[colour_ids], folder / "labels_rgb" / f"{i}.png")
        _write_wav(folder / "audio.wav", v, float(count), sample_rate)
    _write_csv(base / "metadata.csv", ["vid", "uid", "s_min", "s_sec", "a_obj", "split", "label"], rows)
    if label2idx:
        names = ["background"] + [f"class_{k:02d}" for k in range(1, AVSS_NUM_CLASSES)]
        (base / "label2idx.json").write_text(json.dumps({n: k for k, n in enumerate(names)}, indent=1))
    return base


def write_music(
    root: PathLike,
    *,
    solo: Mapping[str, int] | None = None,
    duet: Mapping[str, int] | None = None,
    flat: bool = False,
    seconds: float = 1.0,
    fps: float = 4.0,
    size: int = 32,
    sample_rate: int | None = 16000,
    extension: str = ".mp4",
) -> Path:
    """Write a MUSIC-style dataset: ``solo/{instrument}/`` and ``duet/{a b}/`` video files.

    Solo videos of an instrument are named ``{instrument}_{k}``, duet videos ``duet_{k}``; each
    is a `write_test_video` with a sine soundtrack.

    Args:
        root: Folder to write into (created if needed).
        solo: Number of videos per instrument; default ``{"violin": 2, "flute": 1}``.
        duet: Number of videos per duet folder name; default
            ``{"acoustic_guitar violin": 1}`` (none when `flat`).
        flat: Write ``root/{instrument}/`` without the ``solo/`` level (and no duets).
        seconds: Length of each video.
        fps: Frame rate.
        size: Frame height and width.
        sample_rate: Soundtrack rate, or None for silent videos.
        extension: Container, e.g. ``".mp4"`` or ``".webm"``.

    Returns:
        `root`, as a Path.

    Example:
        >>> import tempfile
        >>> root = write_music(tempfile.mkdtemp())
        >>> sorted(p.name for p in (root / "solo").iterdir()), sorted(p.name for p in (root / "duet").iterdir())
        (['flute', 'violin'], ['acoustic_guitar violin'])
    """
    base = Path(root)
    solo = {"violin": 2, "flute": 1} if solo is None else solo
    duet = ({} if flat else {"acoustic_guitar violin": 1}) if duet is None else duet
    if flat and duet:
        raise ValueError("a flat MUSIC layout has no duets")
    groups = [(base if flat else base / "solo", solo, None), (base / "duet", duet, "duet")]
    for folder, counts, prefix in groups:
        for category, count in counts.items():
            for k in range(count):
                path = folder / category / f"{prefix or category}_{k}{extension}"
                _write_video(path, num_frames=round(seconds * fps), fps=fps, size=size, sample_rate=sample_rate)
    return base


def write_ave(
    root: PathLike,
    *,
    num_videos: int = 4,
    categories: Sequence[str] = ("Church bell", "Bark", "Male speech, man speaking"),
    split_files: bool = True,
    missing: int = 0,
    seconds: float = 1.0,
    fps: float = 4.0,
    size: int = 32,
    sample_rate: int = 16000,
) -> Path:
    """Write an AVE-style dataset: ``Annotations.txt``, split files and ``AVE/{VideoID}.mp4``.

    Video ``v`` has id ``ave{v:03d}``, category ``categories[v % len(categories)]``, quality
    ``good``, one event from ``v % 5`` to ``v % 5 + 5`` seconds, and split
    ``("train", "val", "test")[v % 3]``.

    Args:
        root: Folder to write into (created if needed).
        num_videos: Number of videos listed.
        categories: Event categories to cycle through.
        split_files: Write ``trainSet.txt``, ``valSet.txt`` and ``testSet.txt``.
        missing: Leave out the last `missing` listed videos' files, as a partial download does.
        seconds: Length of each video (real AVE clips are 10 s).
        fps: Frame rate.
        size: Frame height and width.
        sample_rate: Soundtrack rate.

    Returns:
        `root`, as a Path.

    Example:
        >>> import tempfile
        >>> root = write_ave(tempfile.mkdtemp(), num_videos=2)
        >>> (root / "Annotations.txt").read_text().splitlines()[:2]
        ['Category&VideoID&Quality&StartTime&EndTime', 'Church bell&ave000&good&0&5']
    """
    base = Path(root)
    header = "Category&VideoID&Quality&StartTime&EndTime"
    rows: dict[str, list[str]] = {split: [] for split in _SPLITS}
    lines = [header]
    for v in range(num_videos):
        video_id = f"ave{v:03d}"
        line = f"{categories[v % len(categories)]}&{video_id}&good&{v % 5}&{v % 5 + 5}"
        lines.append(line)
        rows[_SPLITS[v % 3]].append(line)
        if v < num_videos - missing:
            _write_video(base / "AVE" / f"{video_id}.mp4", num_frames=round(seconds * fps), fps=fps,
                         size=size, sample_rate=sample_rate)
    (base / "AVE").mkdir(parents=True, exist_ok=True)
    (base / "Annotations.txt").write_text("\n".join(lines) + "\n")
    if split_files:
        for split, name in zip(_SPLITS, ("trainSet.txt", "valSet.txt", "testSet.txt"), strict=True):
            (base / name).write_text("\n".join([header, *rows[split]]) + "\n")
    return base


def write_video_folder(
    root: PathLike,
    *,
    files: Sequence[str] = ("a.mp4", "b.mkv", "sub/c.webm", "sub/d.mov", "sub/deeper/e.avi"),
    silent: Sequence[str] = (),
    broken: Sequence[str] = (),
    num_frames: int = 4,
    fps: float = 4.0,
    size: int = 32,
    sample_rate: int = 16000,
) -> Path:
    """Write a folder of video files in several containers and codecs.

    mp4, m4v, mov and mkv get H.264 + AAC, webm VP9 + Opus, avi MPEG-4 + MP3; each is a
    `write_test_video` of `num_frames` frames with a sine soundtrack.

    Args:
        root: Folder to write into (created if needed).
        files: Relative paths of the videos to write.
        silent: Those of `files` to write without an audio track.
        broken: Extra relative paths to fill with bytes that are not a media file.
        num_frames: Frames per video.
        fps: Frame rate.
        size: Frame height and width.
        sample_rate: Soundtrack rate.

    Returns:
        `root`, as a Path.

    Example:
        >>> import tempfile
        >>> root = write_video_folder(tempfile.mkdtemp(), files=("x.mp4",), broken=("y.mkv",))
        >>> sorted(p.name for p in root.iterdir())
        ['x.mp4', 'y.mkv']
    """
    base = Path(root)
    for name in files:
        _write_video(base / name, num_frames=num_frames, fps=fps, size=size,
                     sample_rate=None if name in silent else sample_rate)
    for name in broken:
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"this is not a media file\n" * 8)
    return base


def _write_video(path: Path, *, num_frames: int, fps: float, size: int, sample_rate: int | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    video_codec, audio_codec = _CODECS[path.suffix.lower()]
    write_test_video(path, num_frames=num_frames, fps=fps, height=size, width=size, sample_rate=sample_rate,
                     video_codec=video_codec, audio_codec=audio_codec)


def _save_image(image: np.ndarray | Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))
    if path.suffix == ".jpg":
        picture.save(path, quality=95)
    else:
        picture.save(path)


def _write_wav(path: Path, video: int, seconds: float, sample_rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, sine(seconds, sample_rate, frequency=220.0 * (video + 1)), sample_rate, subtype="PCM_16")


def _write_log_mel(path: Path, video: int, num_seconds: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as file:
        pickle.dump(np.full((num_seconds, 1, 96, 64), video, dtype=np.float32), file)


def _write_csv(path: Path, header: list[str] | None, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
