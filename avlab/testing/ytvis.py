"""A tiny YouTube-VIS dataset on disk, with every segmentation form and the masks it encodes.

Two videos, three object tracks. Each track's mask is a union of axis-aligned rectangles with
integer corners, which every COCO form (compressed RLE, uncompressed RLE, polygons) encodes
exactly, so a loader's decoded masks can be compared with the drawn ones pixel for pixel.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from avlab.media.write import write_video
from avlab.testing.media import sine

__all__ = ["YtvisFixture", "write_ytvis_fixture", "uncompressed_rle"]

# Per track, per frame (cycled): how the segmentation is written.
_FORMS = {
    1: ("rle", "uncompressed", "polygon", None),
    2: ("polygon", None, "rle", "uncompressed"),
    3: ("uncompressed", "rle", "polygon", "rle"),
}
_TRACKS = ((1, "vid_a", 1), (2, "vid_a", 2), (3, "vid_b", 1))  # (annotation id, video, category)
_COLOURS = {1: (220, 40, 40), 2: (40, 200, 60)}


@dataclass(frozen=True)
class YtvisFixture:
    """What `write_ytvis_fixture` wrote.

    Attributes:
        annotations: The JSON file.
        frames_root: Folder of the ``{video}/`` frame folders or ``{video}.mp4`` files.
        audio_root: Folder of ``{video}.wav`` files, or None.
        masks: Video folder -> (I, T, H, W) uint8 masks drawn, tracks in annotation order.
        forms: Video folder -> per track, per frame: ``"rle"``, ``"uncompressed"``,
            ``"polygon"`` or None (not visible).
        sounding: Video folder -> (I, T) bool flags written, for videos that have them.
        video_ids: Video folder -> the JSON's integer video id.
        frame_times: (T,) seconds encoded by the frame names (number / 30).
    """

    annotations: Path
    frames_root: Path
    audio_root: Path | None
    masks: dict[str, np.ndarray]
    forms: dict[str, list[list[str | None]]]
    sounding: dict[str, np.ndarray]
    video_ids: dict[str, int]
    frame_times: np.ndarray


def write_ytvis_fixture(
    root: str | os.PathLike[str],
    *,
    frames: Literal["jpeg", "video"] = "jpeg",
    audio: bool = False,
    annotated: bool = True,
    num_frames: int = 4,
    height: int = 48,
    width: int = 64,
    frame_step: int = 5,
    sample_rate: int = 16000,
) -> YtvisFixture:
    """Write a two-video YouTube-VIS dataset under `root`.

    Frames are named like YouTube-VIS's (``00000.jpg``, ``00005.jpg``, ... for `frame_step`
    5), so frame k is shown at ``k * frame_step / 30`` s. Track 3 (video ``vid_b``) carries
    avlab's per-frame ``sounding`` flags.

    Args:
        root: Output folder (created).
        frames: ``"jpeg"``: ``JPEGImages/{video}/{number:05d}.jpg``; ``"video"``:
            ``videos/{video}.mp4`` (H.264, with a sine soundtrack when `audio`).
        audio: Also write sound: ``audio/{video}.wav`` for jpeg frames, the mp4's own track
            for video frames.
        annotated: False writes a test-split JSON (``"annotations": null``).
        num_frames: Frames per video (the forms cycle with period 4).
        height: Frame height (even).
        width: Frame width (even).
        frame_step: Frame number increment between annotated frames.
        sample_rate: Rate of the audio written.

    Returns:
        A `YtvisFixture` with the paths and the masks drawn.

    Example:
        >>> import tempfile
        >>> fx = write_ytvis_fixture(tempfile.mkdtemp())
        >>> fx.masks["vid_a"].shape, fx.forms["vid_a"][0]
        ((2, 4, 48, 64), ['rle', 'uncompressed', 'polygon', None])
    """
    from pycocotools import mask as coco

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    frames_root = root / ("JPEGImages" if frames == "jpeg" else "videos")
    audio_root = root / "audio" if audio and frames == "jpeg" else None
    times = np.arange(num_frames) * frame_step / 30.0
    names = {v: [f"{v}/{k * frame_step:05d}.jpg" for k in range(num_frames)] for v in ("vid_a", "vid_b")}
    video_ids = {"vid_a": 1, "vid_b": 2}

    masks: dict[str, list[np.ndarray]] = {"vid_a": [], "vid_b": []}
    forms: dict[str, list[list[str | None]]] = {"vid_a": [], "vid_b": []}
    sounding: dict[str, np.ndarray] = {}
    annotations = []
    for track, video, category in _TRACKS:
        rectangles = [_rectangles(track, t, height, width) for t in range(num_frames)]
        track_forms = [_FORMS[track][t % 4] for t in range(num_frames)]
        drawn = np.zeros((num_frames, height, width), np.uint8)
        segmentations: list[object] = []
        for t, (boxes, form) in enumerate(zip(rectangles, track_forms, strict=True)):
            if form is None:
                segmentations.append(None)
                continue
            for x0, y0, x1, y1 in boxes:
                drawn[t, y0:y1, x0:x1] = 1
            if form == "polygon":
                segmentations.append([[x0, y0, x1, y0, x1, y1, x0, y1] for x0, y0, x1, y1 in boxes])
            elif form == "uncompressed":
                segmentations.append(uncompressed_rle(drawn[t]))
            else:
                rle = coco.encode(np.asfortranarray(drawn[t]))
                segmentations.append({"size": [height, width], "counts": rle["counts"].decode("ascii")})
        areas = [int(m.sum()) if f is not None else None for m, f in zip(drawn, track_forms, strict=True)]
        annotation: dict[str, object] = {
            "id": track, "video_id": video_ids[video], "category_id": category, "iscrowd": 0,
            "height": height, "width": width, "length": 1, "segmentations": segmentations,
            "areas": areas, "bboxes": [_bbox(m) if f is not None else None for m, f in zip(drawn, track_forms, strict=True)],
        }
        if video == "vid_b":
            flags = np.arange(num_frames) % 3 != 1
            annotation["sounding"] = flags.tolist()
            sounding[video] = flags[None]
        annotations.append(annotation)
        masks[video].append(drawn)
        forms[video].append(track_forms)

    stacked = {v: np.stack(m) for v, m in masks.items()}
    for video, tracks in stacked.items():
        categories = [c for _, v, c in _TRACKS if v == video]
        pictures = np.full((num_frames, height, width, 3), 30, np.uint8)
        for drawn, category in zip(tracks, categories, strict=True):
            pictures[drawn.astype(bool)] = _COLOURS[category]
        if frames == "jpeg":
            for name, picture in zip(names[video], pictures, strict=True):
                (frames_root / name).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(picture).save(frames_root / name, quality=95)
        else:
            frames_root.mkdir(parents=True, exist_ok=True)
            sound = _tone(video, num_frames * frame_step / 30.0, sample_rate) if audio else None
            write_video(frames_root / f"{video}.mp4", pictures, fps=30.0 / frame_step, times=times,
                        audio=sound, sample_rate=sample_rate if audio else None)
        if audio_root is not None:
            import soundfile

            audio_root.mkdir(parents=True, exist_ok=True)
            soundfile.write(audio_root / f"{video}.wav", _tone(video, num_frames * frame_step / 30.0, sample_rate), sample_rate)

    document = {
        "info": {"description": "avlab YouTube-VIS test fixture"},
        "licenses": [],
        "videos": [
            {"id": video_ids[v], "width": width, "height": height, "length": num_frames, "file_names": names[v]}
            for v in ("vid_a", "vid_b")
        ],
        "annotations": annotations if annotated else None,
        "categories": [
            {"id": 1, "name": "drum", "supercategory": "instrument"},
            {"id": 2, "name": "guitar", "supercategory": "instrument"},
        ],
    }
    path = root / "instances.json"
    path.write_text(json.dumps(document))
    return YtvisFixture(path, frames_root, audio_root, stacked, forms, sounding, video_ids, times)


def uncompressed_rle(mask: np.ndarray) -> dict[str, object]:
    """COCO uncompressed RLE of a (H, W) mask: column-major run lengths, background first.

    Example:
        >>> uncompressed_rle(np.array([[0, 1], [0, 1]], np.uint8))
        {'size': [2, 2], 'counts': [2, 2]}
    """
    flat = (np.asarray(mask).T.reshape(-1) > 0).astype(np.int8)  # column-major order
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0] == 1:
        counts = [0, *counts]
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def _rectangles(track: int, t: int, height: int, width: int) -> list[tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) boxes, integer corners, covering rows y0:y1 and columns x0:x1."""
    shift = 2 * t
    if track == 1:
        return [(2 + shift, 3, min(width, 14 + shift), 15)]
    if track == 2:
        # Two disjoint parts: a multi-polygon segmentation.
        return [(width - 16, height - 14, width - 4, height - 8), (width - 14 - shift, 4, width - 8 - shift, 12)]
    return [(6, 8 + shift, 20, min(height, 26 + shift))]


def _bbox(mask: np.ndarray) -> list[int]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


def _tone(video: str, seconds: float, sample_rate: int) -> np.ndarray:
    return sine(seconds, sample_rate, frequency=440.0 if video == "vid_a" else 660.0)
