"""YouTube-VIS: video instance segmentation annotations (JSON) with frames as images or videos.

The JSON holds ``videos`` (id, file_names, width, height, length), ``annotations`` (one per
object track: video_id, category_id, id, and per-frame ``segmentations`` as compressed RLE,
uncompressed RLE, polygons or null where the object is not visible) and ``categories``.
Validation and test JSONs have no annotations.

avlab reads three optional extensions of the format, which SynthAV writes: a video's ``fps``
(frame k is shown at k / fps), ``duration`` (seconds of the clip) and ``sample_rate``, and an
annotation's ``sounding`` list (per frame, whether the object is heard), the ground truth of
audio-visual instance segmentation.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avlab.datasets.manifest import Manifest, VideoRecord
from avlab.datasets.masks import Masks
from avlab.errors import DatasetError, MediaError
from avlab.media import probe

__all__ = ["YOUTUBE_VIS_FPS", "YtvisMasks", "decode_segmentation", "load_youtube_vis", "segmentation_rle"]

#: Frame rate of the source videos: YouTube-VIS names each frame by its index at this rate.
YOUTUBE_VIS_FPS = 30.0

VIDEO_EXTENSIONS = ("mp4", "webm", "mkv", "mov", "avi")
AUDIO_EXTENSIONS = ("wav", "flac", "mp3", "m4a", "aac", "ogg", "opus", "mp4", "mkv", "webm", "mov", "avi")


def load_youtube_vis(
    annotations: str | os.PathLike[str],
    frames_root: str | os.PathLike[str],
    *,
    audio_root: str | os.PathLike[str] | None = None,
    split: str | None = None,
    fps: float | None = None,
) -> Manifest:
    """Read a YouTube-VIS annotation file into a `Manifest`.

    Frames of the video whose file names are ``"{dir}/{frame}.jpg"`` are read from the image
    folder ``frames_root/{dir}/`` (the ``JPEGImages`` layout); when that folder is absent, from
    a video file ``frames_root/{dir}.{mp4,webm,mkv,mov,avi}``, sampled at the frame times.

    Frame times, first rule that applies: the video entry's own ``fps`` field gives k / fps;
    the `fps` argument gives k / fps; numeric file names (``00000.jpg``, ``00005.jpg``, ...)
    are frame indices of the 30 fps source, so a frame is shown at number / 30 s; otherwise
    image frames get no times (`VideoRecord.load_frames` numbers them 0, 1, ...), and frames
    from a video file are an error.

    Audio: ``audio_root/{dir}.{wav,flac,mp3,m4a,...,mp4,...}`` when such a file exists, else
    the soundtrack of the video file the frames come from (if it has one), else None.

    Args:
        annotations: The JSON file (``train.json``, ``valid.json``, ``instances.json``).
        frames_root: Folder holding the per-video frame folders or video files.
        audio_root: Folder of per-video audio files, if any.
        split: Split name given to every record.
        fps: Frame rate of the annotated frames, for JSONs whose videos give none.

    Returns:
        A `Manifest` named ``"youtube-vis"``; record ids are the frame folder names, and
        ``record.extra`` holds ``ytvis_id`` (the JSON's integer video id, needed to write
        results), ``width``, ``height``, and, when the JSON is annotated, ``instance_ids`` and
        ``category_ids`` of the video's tracks; ``audio_note`` says why a record has no audio,
        and ``error`` why its video file could not be read (the record is kept). A video
        entry's ``fps`` and ``sample_rate`` are copied too. `Manifest.categories` lists the names by
        category id (a missing id 0 is ``"background"``). Records of a JSON without
        annotations have no masks; the others have `YtvisMasks`.

    Raises:
        DatasetError: The file is not a YouTube-VIS JSON (the message names the missing or
            malformed field), or a video has neither a frame folder nor a video file.

    Example:
        >>> import tempfile
        >>> from avlab.testing.ytvis import write_ytvis_fixture
        >>> fx = write_ytvis_fixture(tempfile.mkdtemp())
        >>> manifest = load_youtube_vis(fx.annotations, fx.frames_root, split="train")
        >>> record = manifest["vid_a"]
        >>> record.frame_times.tolist(), record.extra["ytvis_id"]
        ([0.0, 0.16666666666666666, 0.3333333333333333, 0.5], 1)
        >>> masks = record.load_masks()
        >>> masks.data.shape, masks.instance_ids.tolist(), manifest.categories
        ((2, 4, 48, 64), [1, 2], ['background', 'drum', 'guitar'])
    """
    path = Path(annotations)
    frames_root = Path(frames_root)
    audio_root = None if audio_root is None else Path(audio_root)
    data = _read_json(path)
    videos = _require(data, "videos", path, "the file")
    if not isinstance(videos, list):
        raise DatasetError(path, "field 'videos' must be a list")
    categories = _category_names(_require(data, "categories", path, "the file"), path)
    first_position: dict[int | str, int] = {}
    for position, video in enumerate(videos):
        where = f"videos[{position}]"
        for name in ("id", "file_names", "width", "height"):
            _require(video, name, path, where)
        video_id = _id_field(video, "id", path, where)
        if video_id in first_position:
            raise DatasetError(path, f"{where} repeats the id {video_id!r} of videos[{first_position[video_id]}]")
        first_position[video_id] = position
    raw_annotations = data.get("annotations")
    annotated = raw_annotations is not None
    tracks: dict[int, list[Mapping[str, Any]]] = {}
    if annotated:
        if not isinstance(raw_annotations, list):
            raise DatasetError(path, "field 'annotations' must be a list or null")
        for position, annotation in enumerate(raw_annotations):
            where = f"annotations[{position}]"
            for name in ("id", "video_id", "category_id", "segmentations"):
                _require(annotation, name, path, where)
            for name in ("id", "video_id", "category_id"):
                _id_field(annotation, name, path, where)
            if annotation["video_id"] not in first_position:
                raise DatasetError(path, f"{where} refers to video_id {annotation['video_id']!r}, which is not in 'videos'")
            tracks.setdefault(annotation["video_id"], []).append(annotation)
    records = [
        _record(video, position, path, frames_root, audio_root, split, fps, tracks.get(video["id"], []) if annotated else None)
        for position, video in enumerate(videos)
    ]
    return Manifest(records, name="youtube-vis", root=frames_root, categories=categories)


@dataclass(frozen=True, eq=False)
class YtvisMasks:
    """Lazy instance masks of one YouTube-VIS video, decoded with pycocotools when loaded.

    Attributes:
        path: The JSON they come from (for error messages).
        height: Frame height in pixels.
        width: Frame width in pixels.
        length: Number of annotated frames.
        annotations: The video's annotation dicts, as in the JSON.

    Shape:
        `load()` gives data (I, T, H, W) uint8 0/1 (an empty mask where a segmentation is
        null), instance_ids and category_ids (I,), sounding (I, T) bool or None.
    """

    path: Path
    height: int
    width: int
    length: int
    annotations: tuple[Mapping[str, Any], ...]

    def load(self) -> Masks:
        """Decode every track's per-frame segmentation into instance `Masks`.

        Raises:
            DatasetError: A malformed segmentation, a wrong number of frames, or sounding
                flags on only some of the video's tracks.
        """
        data = np.zeros((len(self.annotations), self.length, self.height, self.width), np.uint8)
        for i, annotation in enumerate(self.annotations):
            where = f"annotation {annotation['id']}"
            segmentations = annotation["segmentations"]
            if not isinstance(segmentations, list) or len(segmentations) != self.length:
                raise DatasetError(self.path, f"{where}: 'segmentations' must be a list of {self.length} entries (one per frame)")
            for t, segmentation in enumerate(segmentations):
                if segmentation is not None:
                    data[i, t] = decode_segmentation(segmentation, self.height, self.width, path=self.path, where=f"{where}, frame {t}")
        flags = [a.get("sounding") for a in self.annotations]
        sounding = None
        if any(f is not None for f in flags):
            if any(f is None or not isinstance(f, list) or len(f) != self.length for f in flags):
                raise DatasetError(self.path, f"'sounding' must be given for every annotation of a video, "
                                              f"as a list of {self.length} flags")
            sounding = np.array([[bool(x) for x in f or ()] for f in flags], dtype=np.bool_).reshape(len(flags), self.length)
        return Masks(
            "instance",
            data,
            np.arange(self.length, dtype=np.int64),
            instance_ids=np.array([a["id"] for a in self.annotations], dtype=np.int64),
            category_ids=np.array([a["category_id"] for a in self.annotations], dtype=np.int64),
            sounding=sounding,
        )


def decode_segmentation(
    segmentation: Mapping[str, Any] | Sequence[Sequence[float]],
    height: int,
    width: int,
    *,
    path: str | os.PathLike[str] = "<segmentation>",
    where: str = "segmentation",
) -> np.ndarray:
    """Decode one COCO-style segmentation: compressed RLE, uncompressed RLE, or polygons.

    Args:
        segmentation: ``{"size": [h, w], "counts": str}`` (compressed RLE),
            ``{"size": [h, w], "counts": [int, ...]}`` (uncompressed RLE, column-major runs
            starting with background), or a list of polygons ``[[x0, y0, x1, y1, ...], ...]``
            whose union is the mask.
        height: Mask height.
        width: Mask width.
        path: File named in errors.
        where: Position named in errors.

    Returns:
        (H, W) uint8 0/1.

    Raises:
        DatasetError: Malformed segmentation, or an RLE whose size is not (height, width).

    Example:
        >>> decode_segmentation([[1, 1, 3, 1, 3, 2, 1, 2]], 3, 4)
        array([[0, 0, 0, 0],
               [0, 1, 1, 0],
               [0, 0, 0, 0]], dtype=uint8)
    """
    rle = segmentation_rle(segmentation, height, width, path=path, where=where)
    try:
        return _decode_rle(rle)
    except (ValueError, TypeError) as error:
        raise DatasetError(path, f"{where}: cannot decode RLE ({error})") from error


def segmentation_rle(
    segmentation: Mapping[str, Any] | Sequence[Sequence[float]],
    height: int,
    width: int,
    *,
    path: str | os.PathLike[str] = "<segmentation>",
    where: str = "segmentation",
) -> dict[str, Any]:
    """One COCO-style segmentation as pycocotools' compressed RLE, without decoding it to pixels.

    The forms of `decode_segmentation`, checked the same way (a compressed RLE's string is
    taken as it is, as pycocotools and the official APIs take it). Scoring works on RLEs: a
    decoded 360 x 640 frame costs far more than the RLE arithmetic itself.

    Returns:
        ``{"size": [height, width], "counts": bytes}``.

    Raises:
        DatasetError: As `decode_segmentation`.

    Example:
        >>> from pycocotools import mask
        >>> rle = segmentation_rle({"size": [3, 4], "counts": [4, 1, 2, 1, 4]}, 3, 4)
        >>> int(mask.area(rle)), rle["size"]
        (2, [3, 4])
    """
    from pycocotools import mask as coco

    if isinstance(segmentation, Mapping):
        if "counts" not in segmentation or "size" not in segmentation:
            raise DatasetError(path, f"{where}: an RLE needs 'size' and 'counts'")
        size = segmentation["size"]
        if not isinstance(size, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in size):
            raise DatasetError(path, f"{where}: RLE 'size' must be [height, width], got {size!r:.40}")
        if size != [height, width]:
            raise DatasetError(path, f"{where}: RLE size {size} differs from the video's {[height, width]}")
        counts = segmentation["counts"]
        if isinstance(counts, list):
            try:
                runs = np.asarray(counts, dtype=np.int64)
            except (TypeError, ValueError, OverflowError):
                raise DatasetError(path, f"{where}: uncompressed RLE counts must be integers") from None
            if runs.ndim != 1 or int(runs.sum()) != height * width:
                raise DatasetError(path, f"{where}: uncompressed RLE counts do not add up to {height} x {width}")
            return dict(coco.frPyObjects({"size": size, "counts": runs.tolist()}, height, width))
        if isinstance(counts, str) and not counts.isascii():
            raise DatasetError(path, f"{where}: compressed RLE 'counts' must be ASCII")
        if isinstance(counts, str | bytes):
            return {"size": size, "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
        raise DatasetError(path, f"{where}: RLE 'counts' must be a string or a list of ints")
    if not isinstance(segmentation, list) or not all(isinstance(p, list) for p in segmentation):
        raise DatasetError(path, f"{where}: a segmentation must be an RLE dict, a list of polygons, or null")
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for p in segmentation for x in p):
        raise DatasetError(path, f"{where}: polygon coordinates must be numbers")
    polygons = [[float(x) for x in p] for p in segmentation]
    if not all(np.isfinite(polygons[i]).all() for i in range(len(polygons))):
        raise DatasetError(path, f"{where}: polygon coordinates must be finite")
    if any(len(p) < 6 or len(p) % 2 for p in polygons):
        raise DatasetError(path, f"{where}: each polygon needs an even number (>= 6) of coordinates")
    if not polygons:
        return dict(coco.encode(np.zeros((height, width), np.uint8, order="F")))
    return dict(coco.merge(coco.frPyObjects(polygons, height, width)))


def _decode_rle(rle: Mapping[str, Any]) -> np.ndarray:
    from pycocotools import mask as coco

    with warnings.catch_warnings():
        # pycocotools' decoder trips numpy 2's copy-keyword deprecation; its fallback is right.
        warnings.filterwarnings("ignore", message=r"__array__ implementation doesn't accept a copy keyword",
                                category=DeprecationWarning)
        return np.ascontiguousarray(coco.decode([rle])[:, :, 0], dtype=np.uint8)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except FileNotFoundError:
        raise DatasetError(path, "annotation file not found") from None
    except (OSError, ValueError) as error:
        raise DatasetError(path, f"cannot read annotation JSON ({error})") from error
    if not isinstance(data, dict):
        raise DatasetError(path, "a YouTube-VIS JSON must be an object with 'videos' and 'categories'")
    return data


def _require(container: Any, name: str, path: Path, where: str) -> Any:
    if not isinstance(container, Mapping):
        raise DatasetError(path, f"{where} must be an object")
    if container.get(name) is None:
        raise DatasetError(path, f"{where} has no '{name}' field")
    return container[name]


def _id_field(container: Mapping[str, Any], name: str, path: Path, where: str) -> int | str:
    """An id field: an integer or a string (JSON ids must be hashable and comparable)."""
    value = container[name]
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise DatasetError(path, f"{where}: '{name}' must be an integer or a string, got {value!r:.40}")
    return value


def _number_field(container: Mapping[str, Any], name: str, path: Path, where: str, *, integer: bool) -> Any:
    """A positive number field (an int when `integer`), or None when absent or null."""
    value = container.get(name)
    if value is None:
        return None
    kinds = int if integer else int | float
    if isinstance(value, bool) or not isinstance(value, kinds) or not 0 < value < float("inf"):
        kind = "a positive integer" if integer else "a positive number"
        raise DatasetError(path, f"{where}: '{name}' must be {kind}, got {value!r:.40}")
    return value


# Category ids index `Manifest.categories`: a list, so they must be small.
_MAX_CATEGORY_ID = 1 << 16


def _category_names(categories: Any, path: Path) -> list[str]:
    if not isinstance(categories, list):
        raise DatasetError(path, "field 'categories' must be a list")
    by_id: dict[int, str] = {}
    for position, category in enumerate(categories):
        where = f"categories[{position}]"
        _require(category, "id", path, where)
        identifier = category["id"]
        if isinstance(identifier, bool) or not isinstance(identifier, int) or not 0 <= identifier <= _MAX_CATEGORY_ID:
            raise DatasetError(path, f"{where}: 'id' must be an integer in [0, {_MAX_CATEGORY_ID}], got {identifier!r:.40}")
        by_id[identifier] = str(_require(category, "name", path, where))
    if not by_id:
        return []
    names = [by_id.get(i, f"<unused {i}>") for i in range(max(by_id) + 1)]
    if 0 not in by_id:
        names[0] = "background"
    return names


def _record(
    video: Any,
    position: int,
    path: Path,
    frames_root: Path,
    audio_root: Path | None,
    split: str | None,
    fps: float | None,
    annotations: list[Mapping[str, Any]] | None,
) -> VideoRecord:
    where = f"videos[{position}]"
    names = video["file_names"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise DatasetError(path, f"{where}: 'file_names' must be a non-empty list of non-empty strings")
    for name in names:
        if "\0" in name or Path(name).is_absolute() or ".." in Path(name).parts:
            raise DatasetError(path, f"{where}: file name {name!r:.80} must be a relative path inside the "
                                     "frames folder (no '..', no absolute path)")
    for name in ("height", "width", "length"):
        _number_field(video, name, path, where, integer=True)
    for name in ("fps", "duration", "sample_rate"):
        _number_field(video, name, path, where, integer=False)
    length = len(names) if video.get("length") is None else int(video["length"])
    if length != len(names):
        raise DatasetError(path, f"{where}: 'length' is {length} but there are {len(names)} file names")
    folder = Path(names[0]).parent.as_posix()
    video_dir = folder if folder != "." else str(video["id"])
    if "\0" in video_dir or Path(video_dir).is_absolute() or ".." in Path(video_dir).parts:
        raise DatasetError(path, f"{where}: video folder {video_dir!r:.80} must be a relative path inside the "
                                 "frames folder (no '..', no absolute path)")
    times = _frame_times(video, names, fps)

    frame_paths: tuple[Path, ...] | None = None
    video_path: Path | None = None
    try:
        is_frame_folder = (frames_root / video_dir).is_dir()
    except OSError as error:  # a name too long for the file system
        raise DatasetError(path, f"{where}: cannot look for frames of {video_dir!r:.80} ({error.strerror})") from None
    if is_frame_folder:
        frame_paths = tuple(frames_root / n for n in names)
    else:
        video_path = _first_file(frames_root, video_dir, VIDEO_EXTENSIONS)
        if video_path is None:
            raise DatasetError(frames_root, f"video {video_dir!r}: neither a frame folder '{video_dir}/' nor a "
                                            f"video file '{video_dir}.{{{','.join(VIDEO_EXTENSIONS)}}}'")
        if times is None:
            raise DatasetError(path, f"{where}: frames come from {video_path.name} but their times are unknown "
                                     "(no 'fps' in the video entry, names are not frame numbers); pass fps=")

    height, width = int(video["height"]), int(video["width"])
    extra: dict[str, Any] = {"ytvis_id": video["id"], "width": width, "height": height}
    audio_path = None if audio_root is None else _first_file(audio_root, video_dir, AUDIO_EXTENSIONS)
    if audio_path is None and video_path is not None:
        try:
            audio_path = video_path if probe(video_path).audio else None
        except MediaError as error:
            extra["error"] = error.reason
    if audio_path is None:
        looked = f"no {video_dir}.{{{','.join(AUDIO_EXTENSIONS[:4])},...}} in {audio_root}" if audio_root else "no audio_root given"
        soundtrack = f", and {video_path.name} has no soundtrack" if video_path is not None else ""
        extra["audio_note"] = f"{looked}{soundtrack}; pass audio_root= with one audio file (or source video) per video"
    for name in ("fps", "sample_rate"):
        if video.get(name) is not None:
            extra[name] = video[name]
    masks = None
    if annotations is not None:
        extra["instance_ids"] = tuple(a["id"] for a in annotations)
        extra["category_ids"] = tuple(a["category_id"] for a in annotations)
        masks = YtvisMasks(path, height, width, length, tuple(annotations))
    duration = video.get("duration")
    return VideoRecord(
        video_id=video_dir,
        split=split,
        video_path=video_path,
        frame_paths=frame_paths,
        frame_times=times,
        audio_path=audio_path,
        duration=None if duration is None else float(duration),
        masks=masks,
        extra=extra,
    )


def _frame_times(video: Mapping[str, Any], names: list[str], fps: float | None) -> np.ndarray | None:
    rate = video.get("fps") or fps
    if rate:
        return np.arange(len(names), dtype=np.float64) / float(rate)
    stems = [Path(n).stem for n in names]
    if all(s.isdigit() for s in stems):
        numbers = np.array([int(s) for s in stems], dtype=np.float64)
        if np.all(np.diff(numbers) > 0):
            return numbers / YOUTUBE_VIS_FPS
    return None


def _first_file(folder: Path, stem: str, extensions: Sequence[str]) -> Path | None:
    for extension in extensions:
        candidate = folder / f"{stem}.{extension}"
        try:
            if candidate.is_file():
                return candidate
        except OSError:  # a name too long for the file system: no such file
            continue
    return None
