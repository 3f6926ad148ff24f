"""YouTube-VIS video instance segmentation AP/AR, and results files for the evaluation server.

The official YouTube-VIS API (``ytvoseval``) is COCO's evaluation with one change: the IoU of
two tracks is the sum over frames of their intersections over the sum of their unions (a frame
where a track is absent counts as an empty mask), and a track's area is the mean of its
non-empty per-frame areas. Stock ``pycocotools`` COCOeval reproduces the official numbers with
its IoU method replaced by that track IoU and the YouTube-VIS area ranges (small < 128^2 <=
medium < 256^2 <= large); crowd tracks (``iscrowd`` 1, which both APIs ignore) are scored by
plain IoU as the YouTube-VIS API does, not by COCO's intersection over the detection's area.

Segmentations stay RLEs throughout (`avlab.datasets.youtube_vis.segmentation_rle`): per frame,
one ``pycocotools.mask.iou`` call gives every result-track pair's IoU, from which, with the
two areas, the pair's intersection is exact (``I = IoU (a + b) / (1 + IoU)``, an integer
count). An earlier version decoded every frame and stacked each track into one tall mask: the
same figures, about 20x slower on 1,000 tracks of 360 x 640 (``avlab bench --only scoring``).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from avlab.datasets.youtube_vis import segmentation_rle
from avlab.errors import DatasetError
from avlab.eval._arrays import to_numpy

__all__ = ["YTVIS_STATS", "track_iou", "write_ytvis_results", "ytvis_evaluate"]

#: The 12 figures of the YouTube-VIS leaderboard, in COCOeval's ``stats`` order.
YTVIS_STATS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
_AREA_RANGES = [[0, 1e5**2], [0, 128**2], [128**2, 256**2], [256**2, 1e5**2]]
# A track: per frame a compressed RLE, or None where the track is absent.
Rles = list[dict[str, Any] | None]
Track = Sequence[Mapping[str, Any] | None]


def ytvis_evaluate(
    ground_truth: str | os.PathLike[str] | Mapping[str, Any],
    results: str | os.PathLike[str] | Sequence[Mapping[str, Any]],
) -> dict[str, float]:
    """YouTube-VIS AP and AR of video instance segmentation results.

    IoU thresholds 0.50:0.05:0.95, 101 recall points, at most 1/10/100 tracks per video and
    category, area ranges by a track's mean non-empty frame area. Detections with equal scores
    keep the order of `results` (a stable sort, as the official API). A figure with no ground
    truth to measure (e.g. no large track) is -1, as the official API prints.

    Args:
        ground_truth: A YouTube-VIS JSON file, or its content, with annotations.
        results: The results list, or a JSON file of it: per track ``video_id``,
            ``category_id``, ``score`` and ``segmentations`` (per frame an RLE, a polygon
            list, a binary (H, W) mask, or None where the track is absent).

    Returns:
        The 12 figures named in `YTVIS_STATS`: ``AP``, ``AP50``, ``AP75``, ``APs``, ``APm``,
        ``APl``, ``AR1``, ``AR10``, ``AR100``, ``ARs``, ``ARm``, ``ARl``.

    Raises:
        DatasetError: The ground truth is unreadable or has no annotations.
        ValueError: A result names an unknown video or category, or has the wrong number or
            size of frames.

    Example:
        >>> import numpy as np
        >>> masks = np.zeros((2, 8, 8), np.uint8)
        >>> masks[:, 2:6, 2:6] = 1
        >>> rle = [{"size": [8, 8], "counts": [18, 4, 4, 4, 4, 4, 4, 4, 18]}, None]
        >>> gt = {"videos": [{"id": 1, "height": 8, "width": 8, "length": 2}],
        ...       "categories": [{"id": 1, "name": "drum"}],
        ...       "annotations": [{"id": 1, "video_id": 1, "category_id": 1, "iscrowd": 0,
        ...                        "segmentations": rle, "areas": [16, None]}]}
        >>> results = [{"video_id": 1, "category_id": 1, "score": 0.9, "segmentations": masks}]
        >>> stats = ytvis_evaluate(gt, results)  # IoU = 16 / 32 = 0.5: matched only at 0.5
        >>> round(stats["AP"], 3), round(stats["AP50"], 3), round(stats["APs"], 3), stats["APl"]
        (0.1, 1.0, 0.1, -1.0)
    """
    document, source = _ground_truth(ground_truth)
    videos = {video["id"]: video for video in document["videos"]}
    images = [{"id": v["id"], "height": v["height"], "width": v["width"]} for v in document["videos"]]
    gt_annotations = []
    for index, annotation in enumerate(document["annotations"]):
        where = f"annotations[{index}]"
        video = videos.get(annotation.get("video_id"))
        if video is None:
            raise DatasetError(source, f"{where} refers to video_id {annotation.get('video_id')!r}, which is not in 'videos'")
        if "category_id" not in annotation:
            raise DatasetError(source, f"{where} has no category_id")
        frames = _gt_frames(annotation, video, source, where)
        frame_areas = _frame_areas(frames)
        gt_annotations.append({
            "id": index + 1,  # COCOeval marks "unmatched" with id 0
            "image_id": video["id"],
            "category_id": annotation["category_id"],
            "iscrowd": int(annotation.get("iscrowd", 0)),
            "segmentation": _NO_SEGMENTATION,
            "frames": frames,
            "frame_areas": frame_areas,
            "area": _mean_area(annotation.get("areas") or frame_areas.tolist()),
        })
    dt_annotations = []
    categories = {category["id"] for category in document["categories"]}
    for index, result in enumerate(_results(results)):
        frames = _result_frames(result, index, videos, categories)
        frame_areas = _frame_areas(frames)
        dt_annotations.append({
            "id": index + 1,
            "image_id": result["video_id"],
            "category_id": result["category_id"],
            "iscrowd": 0,
            "score": float(result["score"]),
            "segmentation": _NO_SEGMENTATION,
            "frames": frames,
            "frame_areas": frame_areas,
            "area": _mean_area(frame_areas.tolist()),
        })

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools narrates every step
        gt_coco = _coco(images, gt_annotations, document["categories"])
        dt_coco = _coco(images, dt_annotations, document["categories"])
        evaluation = _TrackEval(gt_coco, dt_coco, iouType="segm")
        evaluation.params.areaRng = _AREA_RANGES
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {name: float(value) for name, value in zip(YTVIS_STATS, evaluation.stats, strict=True)}


def write_ytvis_results(
    path: str | os.PathLike[str],
    results: Sequence[Mapping[str, Any]],
    ground_truth: str | os.PathLike[str] | Mapping[str, Any],
) -> Path:
    """Write a ``results.json`` that the YouTube-VIS evaluation server accepts.

    Each result becomes ``{"video_id", "category_id", "score", "segmentations"}`` with one
    compressed RLE (``counts`` as a string) or null per frame. Everything is checked against
    the ground truth's videos, categories, frame counts and frame sizes before anything is
    written. The server takes the file zipped (``results.zip`` holding ``results.json``).

    Args:
        path: The JSON file to write (parent folders are created).
        results: Per track ``video_id``, ``category_id``, ``score`` and ``segmentations``
            (per frame an RLE, a polygon list, a binary (H, W) mask, or None where absent;
            or a (T, H, W) array).
        ground_truth: The YouTube-VIS JSON of the split (a file or its content); annotations
            are not needed.

    Returns:
        `path`.

    Raises:
        DatasetError: The ground truth is unreadable.
        ValueError: A result names an unknown video or category, or has the wrong number or
            size of frames, or a score that is not a finite number.

    Example:
        >>> import json, tempfile, numpy as np
        >>> gt = {"videos": [{"id": 7, "height": 4, "width": 4, "length": 2}],
        ...       "categories": [{"id": 1, "name": "drum"}], "annotations": None}
        >>> masks = [np.eye(4, dtype=np.uint8), None]
        >>> path = write_ytvis_results(tempfile.mkdtemp() + "/results.json",
        ...                            [{"video_id": 7, "category_id": 1, "score": 0.5, "segmentations": masks}], gt)
        >>> json.loads(path.read_text())[0]["segmentations"]
        [{'size': [4, 4], 'counts': '01400000'}, None]
    """
    document, _ = _ground_truth(ground_truth, need_annotations=False)
    videos = {video["id"]: video for video in document["videos"]}
    categories = {category["id"] for category in document["categories"]}
    written = []
    for index, result in enumerate(_results(results)):
        frames = _result_frames(result, index, videos, categories)
        written.append({
            "video_id": int(result["video_id"]),
            "category_id": int(result["category_id"]),
            "score": float(result["score"]),
            "segmentations": [None if m is None else _encode(m) for m in frames],
        })
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(written))
    return path


# COCOeval's `_prepare` passes each annotation's "segmentation" through `annToRLE`, which returns
# a compressed RLE as it is; the tracks' masks are in "frames", which `computeIoU` reads.
_NO_SEGMENTATION = {"size": [0, 0], "counts": b""}


class _TrackEval(COCOeval):
    """COCOeval with the YouTube-VIS track IoU, crowd tracks scored by plain IoU as the YouTube-VIS API."""

    def computeIoU(self, imgId: int, catId: int) -> Any:  # COCOeval's method, for segm and useCats
        gt, dt = self._gts[imgId, catId], self._dts[imgId, catId]
        if len(gt) == 0 and len(dt) == 0:
            return []
        order = np.argsort([-d["score"] for d in dt], kind="mergesort")
        dt = [dt[i] for i in order[: self.params.maxDets[-1]]]
        return track_iou([d["frames"] for d in dt], [g["frames"] for g in gt],
                         [d["frame_areas"] for d in dt], [g["frame_areas"] for g in gt])


def track_iou(
    results: Sequence[Track],
    truths: Sequence[Track],
    result_areas: Sequence[np.ndarray] | None = None,
    truth_areas: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """The YouTube-VIS IoU of every (result, ground-truth) pair of tracks of one video.

    ``sum_t |R_t & G_t| / sum_t |R_t | G_t|``, a frame where a track is absent (None) counting
    as empty; 0 where both tracks are empty throughout (pycocotools' convention).

    Args:
        results: D tracks, each a list of T per-frame compressed RLEs or None.
        truths: G tracks, likewise.
        result_areas: (T,) pixel counts of each result track's frames (computed if None).
        truth_areas: Likewise for the ground truth.

    Returns:
        (D, G) float64.

    Example:
        >>> a = coco_mask.encode(np.asfortranarray(np.eye(4, dtype=np.uint8)))
        >>> b = coco_mask.encode(np.asfortranarray(np.tril(np.ones((4, 4), np.uint8))))
        >>> track_iou([[a, a]], [[b, None], [None, None]]).tolist()  # (4 + 0) / (10 + 4), and 0
        [[0.2857142857142857, 0.0]]
    """
    num_frames = max((len(t) for t in [*results, *truths]), default=0)
    areas_r = np.zeros((len(results), num_frames))  # (D, T); 0 where absent
    areas_g = np.zeros((len(truths), num_frames))  # (G, T)
    for areas, tracks, given in ((areas_r, results, result_areas), (areas_g, truths, truth_areas)):
        for k, track in enumerate(tracks):
            areas[k, :len(track)] = _frame_areas(track) if given is None else given[k]
    intersection = np.zeros((len(results), len(truths)))
    # Only frames where both sides have a non-empty mask can intersect.
    for t in np.flatnonzero((areas_r > 0).any(axis=0) & (areas_g > 0).any(axis=0)).tolist():
        here_r, here_g = np.flatnonzero(areas_r[:, t]), np.flatnonzero(areas_g[:, t])
        iou = np.asarray(coco_mask.iou([results[k][t] for k in here_r.tolist()], [truths[k][t] for k in here_g.tolist()],
                                       [0] * len(here_g)), np.float64).reshape(len(here_r), len(here_g))
        both = areas_r[here_r, t][:, None] + areas_g[here_g, t][None, :]
        intersection[np.ix_(here_r, here_g)] += np.rint(iou * both / (1 + iou))  # exact pixel counts
    union = areas_r.sum(axis=1)[:, None] + areas_g.sum(axis=1)[None, :] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def _coco(images: list[dict[str, Any]], annotations: list[dict[str, Any]], categories: list[Any]) -> COCO:
    dataset = COCO()
    dataset.dataset = {"images": images, "annotations": annotations, "categories": categories}
    dataset.createIndex()
    return dataset


def _ground_truth(
    ground_truth: str | os.PathLike[str] | Mapping[str, Any], *, need_annotations: bool = True
) -> tuple[Mapping[str, Any], str]:
    """The JSON content and the name to put in errors."""
    if isinstance(ground_truth, Mapping):
        document, source = ground_truth, "<ground truth>"
    else:
        source = os.fspath(ground_truth)
        try:
            with open(source) as file:
                document = json.load(file)
        except FileNotFoundError:
            raise DatasetError(source, "ground-truth file not found") from None
        except (OSError, ValueError) as error:
            raise DatasetError(source, f"cannot read ground-truth JSON ({error})") from error
    if not isinstance(document, Mapping) or not isinstance(document.get("videos"), list) or not isinstance(document.get("categories"), list):
        raise DatasetError(source, "a YouTube-VIS JSON must be an object with 'videos' and 'categories' lists")
    for index, video in enumerate(document["videos"]):
        missing = [key for key in ("id", "height", "width", "length") if key not in video]
        if missing:
            raise DatasetError(source, f"videos[{index}] has no {', '.join(missing)}")
    if need_annotations and not isinstance(document.get("annotations"), list):
        raise DatasetError(source, "the ground truth has no 'annotations' (a test split?): nothing to evaluate against")
    return document, source


def _results(results: str | os.PathLike[str] | Sequence[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
    if isinstance(results, (str, os.PathLike)):
        with open(results) as file:
            results = json.load(file)
    if not isinstance(results, Sequence) or isinstance(results, (str, bytes)):
        raise ValueError("results must be a list of {video_id, category_id, score, segmentations}")
    return results


def _gt_frames(annotation: Mapping[str, Any], video: Mapping[str, Any], source: str, where: str) -> Rles:
    segmentations = annotation.get("segmentations")
    if not isinstance(segmentations, list) or len(segmentations) != video["length"]:
        raise DatasetError(source, f"{where}: 'segmentations' must be a list of {video['length']} entries (one per frame)")
    return [
        None if segmentation is None
        else segmentation_rle(segmentation, video["height"], video["width"], path=source, where=f"{where} frame {t}")
        for t, segmentation in enumerate(segmentations)
    ]


def _frame_areas(frames: Track) -> np.ndarray:
    """(T,) pixel count of each frame's mask, 0 where the track is absent."""
    present = [t for t, rle in enumerate(frames) if rle is not None]
    areas = np.zeros(len(frames), np.int64)
    if present:
        areas[present] = coco_mask.area([frames[t] for t in present])
    return areas


def _result_frames(
    result: Mapping[str, Any], index: int, videos: Mapping[Any, Mapping[str, Any]], categories: set[Any]
) -> Rles:
    """Per-frame compressed RLEs of one result (None where absent), after checking it."""
    where = f"results[{index}]"
    if not isinstance(result, Mapping):
        raise ValueError(f"{where} must be a mapping with video_id, category_id, score and segmentations")
    missing = [key for key in ("video_id", "category_id", "score", "segmentations") if key not in result]
    if missing:
        raise ValueError(f"{where} has no {', '.join(missing)}")
    video = videos.get(result["video_id"])
    if video is None:
        raise ValueError(f"{where}: video_id {result['video_id']!r} is not in the ground truth's videos")
    if result["category_id"] not in categories:
        raise ValueError(f"{where}: category_id {result['category_id']!r} is not in the ground truth's categories")
    score = result["score"]
    if isinstance(score, bool) or not isinstance(score, (int, float, np.number)) or not math.isfinite(score):
        raise ValueError(f"{where}: score must be a finite number, not {score!r}")
    segmentations = result["segmentations"]
    if not isinstance(segmentations, (list, tuple)):
        segmentations = list(to_numpy(segmentations))
    height, width, length = video["height"], video["width"], video["length"]
    if len(segmentations) != length:
        raise ValueError(f"{where}: {len(segmentations)} segmentations for video {video['id']}, which has {length} frames")
    frames: Rles = []
    for t, segmentation in enumerate(segmentations):
        if segmentation is None:
            frames.append(None)
        elif isinstance(segmentation, (Mapping, list)):
            try:
                frames.append(segmentation_rle(segmentation, height, width, where=f"{where} frame {t}"))
            except DatasetError as error:
                raise ValueError(error.reason) from error
        else:
            mask = to_numpy(segmentation)
            if mask.shape != (height, width):
                raise ValueError(f"{where} frame {t}: mask of shape {mask.shape}, video {video['id']} is {height} x {width}")
            frames.append(dict(coco_mask.encode(np.asfortranarray(mask != 0, dtype=np.uint8))))
    return frames


def _mean_area(areas: Sequence[Any]) -> float:
    """The YouTube-VIS API's track area: the mean of the non-empty frame areas (0 if none)."""
    present = [area for area in areas if area]
    return float(np.mean(present)) if present else 0.0


def _encode(rle: Mapping[str, Any]) -> dict[str, Any]:
    """A compressed RLE as JSON: its counts as an ASCII string."""
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}
