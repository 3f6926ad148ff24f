"""Writing SynthAV clips to disk: video, audio, per-source audio, masks and YouTube-VIS JSON.

Layout of one split folder (the solo clips of a split use the same layout under ``solo/``)::

    videos/{vid}.mp4              H.264 frames + AAC mixture soundtrack
    audio/{vid}.wav               the mixture, float32 wav
    sources/{vid}/{id}.wav        one float32 wav per performer (annotation id)
    masks/{vid}/{frame:05d}.png   union of the sounding objects' visible masks, 0/255
    instances.json                YouTube-VIS annotations of every object + avlab fields
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from avlab.datasets.synth.classes import SynthClass
from avlab.datasets.synth.scene import Scene
from avlab.media.write import write_video

__all__ = ["Clip", "video_entry", "write_clip", "write_float_wav", "write_instances"]

_VIDEO_OPTIONS = {"crf": "18"}  # near-transparent H.264: decoded colours stay close to the class colours


@dataclass(frozen=True, eq=False)
class Clip:
    """Everything generated for one clip.

    Attributes:
        video_id: File stem of the clip (``"train_0003"``, ``"train_solo_0003"``).
        scene: The sampled scene.
        instance_ids: (I,) annotation ids of the scene's objects, in scene order.
        frames: (T, H, W, 3) uint8 RGB.
        visible: (I, T, H, W) uint8 0/1 visible masks.
        sources: Annotation id -> (S,) float32 audio, performers only, in annotation order.
        mixture: (S,) float32, the float32 sum of `sources` in that order.
        fps: Frame rate.
        sample_rate: Audio rate in Hz.
    """

    video_id: str
    scene: Scene
    instance_ids: tuple[int, ...]
    frames: np.ndarray = field(repr=False)
    visible: np.ndarray = field(repr=False)
    sources: dict[int, np.ndarray] = field(repr=False)
    mixture: np.ndarray = field(repr=False)
    fps: float
    sample_rate: int

    @property
    def sounding_masks(self) -> np.ndarray:
        """(T, H, W) uint8 0/1: union of the visible masks of the objects sounding in each frame."""
        flags = self.scene.sounding[:, :, None, None]  # (I, T, 1, 1)
        return (self.visible * flags).max(axis=0).astype(np.uint8)


def write_clip(folder: Path, clip: Clip) -> None:
    """Write a clip's video, mixture, sources and sounding masks under a split folder."""
    vid = clip.video_id
    for sub in ("videos", "audio"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    write_video(folder / "videos" / f"{vid}.mp4", clip.frames, fps=clip.fps, audio=clip.mixture,
                sample_rate=clip.sample_rate, options=_VIDEO_OPTIONS)
    write_float_wav(folder / "audio" / f"{vid}.wav", clip.mixture, clip.sample_rate)
    sources = folder / "sources" / vid
    sources.mkdir(parents=True, exist_ok=True)
    for instance_id, audio in clip.sources.items():
        write_float_wav(sources / f"{instance_id}.wav", audio, clip.sample_rate)
    masks = folder / "masks" / vid
    masks.mkdir(parents=True, exist_ok=True)
    for t, mask in enumerate(clip.sounding_masks):
        Image.fromarray(mask * np.uint8(255), mode="L").save(masks / f"{t:05d}.png")


def write_float_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write mono float32 samples as a WAVE_FORMAT_IEEE_FLOAT file, bit-exact and reproducible.

    libsndfile adds a PEAK chunk holding the current time to float wavs, so the same samples
    written a second later differ in their bytes; this writer emits only the fmt, fact and data
    chunks (58 header bytes), so equal samples give equal files.

    Example:
        >>> import tempfile, pathlib, soundfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.wav"
        >>> write_float_wav(path, np.array([0.5, -0.25], np.float32), 8000)
        >>> soundfile.read(path, dtype="float32")[0].tolist(), path.stat().st_size
        ([0.5, -0.25], 66)
    """
    data = np.ascontiguousarray(audio, dtype="<f4")
    if data.ndim != 1:
        raise ValueError(f"audio must be (S,) mono, got {data.shape}")
    size = data.nbytes
    header = b"".join([
        b"RIFF", struct.pack("<I", 50 + size), b"WAVE",
        # fmt: IEEE float (3), 1 channel, rate, byte rate, block align 4, 32 bits, no extension
        b"fmt ", struct.pack("<IHHIIHHH", 18, 3, 1, sample_rate, 4 * sample_rate, 4, 32, 0),
        b"fact", struct.pack("<II", 4, data.size),
        b"data", struct.pack("<I", size),
    ])
    path.write_bytes(header + data.tobytes())


def video_entry(clip: Clip, number: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The YouTube-VIS ``videos`` entry and ``annotations`` of a clip.

    Each annotation has per-frame compressed RLE segmentations (null where the object is
    fully hidden), areas and [x, y, w, h] boxes, plus avlab's ``sounding`` flags and the
    object's ``radius`` in pixels.
    """
    from pycocotools import mask as coco

    frames, height, width = clip.frames.shape[:3]
    video = {
        "id": number,
        "name": clip.video_id,
        "file_names": [f"{clip.video_id}/{t:05d}.jpg" for t in range(frames)],
        "width": int(width),
        "height": int(height),
        "length": int(frames),
        "fps": clip.fps,
        "sample_rate": clip.sample_rate,
        "duration": frames / clip.fps,
    }
    annotations = []
    for k, (obj, instance_id) in enumerate(zip(clip.scene.objects, clip.instance_ids, strict=True)):
        segmentations: list[dict[str, Any] | None] = []
        areas: list[int | None] = []
        boxes: list[list[int] | None] = []
        for mask in clip.visible[k]:
            area = int(mask.sum())
            if area == 0:
                segmentations.append(None)
                areas.append(None)
                boxes.append(None)
                continue
            rle = coco.encode(np.asfortranarray(mask))
            segmentations.append({"size": [int(height), int(width)], "counts": rle["counts"].decode("ascii")})
            areas.append(area)
            rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            boxes.append([int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)])
        annotations.append({
            "id": int(instance_id),
            "video_id": number,
            "category_id": obj.class_id,
            "iscrowd": 0,
            "height": int(height),
            "width": int(width),
            "length": 1,
            "segmentations": segmentations,
            "areas": areas,
            "bboxes": boxes,
            "sounding": [bool(s) for s in obj.sounding],
            "radius": round(obj.radius, 3),
        })
    return video, annotations


def write_instances(folder: Path, videos: list[dict[str, Any]], annotations: list[dict[str, Any]],
                    classes: tuple[SynthClass, ...], info: dict[str, Any]) -> Path:
    """Write a split's ``instances.json``; categories carry their instrument, shape and colour."""
    categories = [{**c.to_json(), "supercategory": "instrument"} for c in classes]
    document = {"info": info, "licenses": [], "videos": videos, "annotations": annotations, "categories": categories}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "instances.json"
    path.write_text(json.dumps(document, separators=(",", ":")), encoding="utf-8")
    return path
