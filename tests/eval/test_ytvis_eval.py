"""YouTube-VIS AP/AR against a straightforward re-implementation of the official API and hand values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as coco_mask

from avlab.errors import DatasetError
from avlab.eval import write_ytvis_results, ytvis_evaluate
from avlab.eval.ytvis import YTVIS_STATS
from avlab.testing.ytvis import uncompressed_rle, write_ytvis_fixture

# -- the YouTube-VIS API's evaluation, written out directly on dense masks ----------------------------

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
MAX_DETECTIONS = (1, 10, 100)
AREA_RANGES = ((0, 1e10), (0, 128**2), (128**2, 256**2), (256**2, 1e10))  # all, small, medium, large


def mean_area(frames):
    areas = [int(f.sum()) for f in frames if f is not None and f.any()]
    return float(np.mean(areas)) if areas else 0.0


def track_iou(detected, truth):
    """Sum over frames of intersections / sum of unions; absent frames are empty."""
    inter = union = 0
    for d, g in zip(detected, truth, strict=True):
        if d is None and g is None:
            continue
        d = np.zeros_like(g) if d is None else d
        g = np.zeros_like(d) if g is None else g
        inter += np.sum(d & g)
        union += np.sum(d | g)
    return inter / union if union else 0.0


def match_video(gts, dts, area_range):
    """Greedy matching of one video and category; per detection: score, matched (T,), ignored (T,)."""
    low, high = area_range
    ignore = [g["crowd"] or not low <= g["area"] <= high for g in gts]
    order = sorted(range(len(gts)), key=lambda j: ignore[j])  # regular tracks first
    gts, ignore = [gts[j] for j in order], [ignore[j] for j in order]
    dts = sorted(dts, key=lambda d: -d["score"])[: MAX_DETECTIONS[-1]]  # stable: input order on ties
    ious = np.array([[track_iou(d["frames"], g["frames"]) for g in gts] for d in dts]).reshape(len(dts), len(gts))
    matched = np.zeros((len(IOU_THRESHOLDS), len(dts)), bool)
    ignored = np.zeros((len(IOU_THRESHOLDS), len(dts)), bool)
    for t, threshold in enumerate(IOU_THRESHOLDS):
        taken = [False] * len(gts)
        for i in range(len(dts)):
            best, best_iou = -1, min(threshold, 1 - 1e-10)
            for j in range(len(gts)):
                if taken[j] and not gts[j]["crowd"]:
                    continue
                if best > -1 and not ignore[best] and ignore[j]:
                    break
                if ious[i, j] < best_iou:
                    continue
                best, best_iou = j, ious[i, j]
            if best > -1:
                taken[best] = True
                matched[t, i], ignored[t, i] = True, ignore[best]
    outside = np.array([not low <= d["area"] <= high for d in dts], bool)
    ignored |= ~matched & outside[None]
    return [d["score"] for d in dts], matched, ignored, sum(not i for i in ignore)


def reference_ytvis(video_ids, category_ids, gts, dts):
    precision = -np.ones((10, 101, len(category_ids), 4, 3))
    recall = -np.ones((10, len(category_ids), 4, 3))
    for k, category in enumerate(category_ids):
        for a, area_range in enumerate(AREA_RANGES):
            per_video = []
            for video in sorted(video_ids):
                g = [x for x in gts if x["video"] == video and x["category"] == category]
                d = [x for x in dts if x["video"] == video and x["category"] == category]
                if g or d:
                    per_video.append(match_video(g, d, area_range))
            for m, max_det in enumerate(MAX_DETECTIONS):
                num_gt = sum(v[3] for v in per_video)
                if not per_video or num_gt == 0:
                    continue
                scores = np.concatenate([np.asarray(v[0][:max_det], float) for v in per_video])
                matched = np.concatenate([v[1][:, :max_det] for v in per_video], axis=1)
                ignored = np.concatenate([v[2][:, :max_det] for v in per_video], axis=1)
                order = np.argsort(-scores, kind="mergesort")
                tp = np.cumsum(matched[:, order] & ~ignored[:, order], axis=1).astype(float)
                fp = np.cumsum(~matched[:, order] & ~ignored[:, order], axis=1).astype(float)
                for t in range(10):
                    rc = tp[t] / num_gt
                    pr = tp[t] / (fp[t] + tp[t] + np.spacing(1))
                    recall[t, k, a, m] = rc[-1] if len(rc) else 0
                    pr = np.maximum.accumulate(pr[::-1])[::-1]  # precision envelope
                    inds = np.searchsorted(rc, RECALL_POINTS, side="left")
                    precision[t, :, k, a, m] = [pr[i] if i < len(pr) else 0.0 for i in inds]

    def mean(values):
        values = values[values > -1]
        return float(np.mean(values)) if values.size else -1.0

    t50, t75 = 0, 5
    return dict(zip(YTVIS_STATS, [
        mean(precision[..., 0, 2]), mean(precision[t50, ..., 0, 2]), mean(precision[t75, ..., 0, 2]),
        mean(precision[..., 1, 2]), mean(precision[..., 2, 2]), mean(precision[..., 3, 2]),
        mean(recall[..., 0, 0]), mean(recall[..., 0, 1]), mean(recall[..., 0, 2]),
        mean(recall[..., 1, 2]), mean(recall[..., 2, 2]), mean(recall[..., 3, 2]),
    ], strict=True))


# -- a random dataset, in the JSON forms and as dense masks ------------------------------------------

VIDEOS = {1: (300, 280, 2), 2: (40, 48, 4), 3: (140, 150, 3)}  # id: (height, width, frames)


def random_track(rng, height, width, length, present=0.75):
    frames = []
    for _ in range(length):
        if rng.random() > present:
            frames.append(None)
            continue
        y0, x0 = rng.integers(0, height - 2), rng.integers(0, width - 2)
        y1, x1 = rng.integers(y0 + 1, height + 1), rng.integers(x0 + 1, width + 1)
        mask = np.zeros((height, width), bool)
        mask[y0:y1, x0:x1] = True
        frames.append(mask)
    return frames


def jitter(rng, frames, height, width):
    """A detection of a track: present frames shifted a little or dropped, absent ones sometimes filled."""
    out = []
    for mask in frames:
        if mask is None:
            out.append(None if rng.random() < 0.7 else random_track(rng, height, width, 1, present=1.0)[0])
        elif rng.random() < 0.15:
            out.append(None)
        else:
            out.append(np.roll(mask, (rng.integers(-4, 5), rng.integers(-4, 5)), axis=(0, 1)))
    return out


def encode(mask, form):
    if form == "rle":
        rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
        return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}
    if form == "uncompressed":
        return uncompressed_rle(mask.astype(np.uint8))
    return mask.astype(np.uint8)


def random_case(seed):
    """(document, results, gts, dts): the JSON forms and the dense tracks they encode."""
    rng = np.random.default_rng(seed)
    gts, dts = [], []
    for video, (height, width, length) in VIDEOS.items():
        for _ in range(rng.integers(1, 4)):
            frames = random_track(rng, height, width, length)
            if not any(f is not None for f in frames):
                frames[0] = random_track(rng, height, width, 1, present=1.0)[0]
            gts.append({"video": video, "category": int(rng.integers(1, 4)), "frames": frames,
                        "crowd": bool(rng.random() < 0.1), "area": mean_area(frames)})
            for _ in range(rng.integers(0, 3)):
                category = gts[-1]["category"] if rng.random() < 0.8 else int(rng.integers(1, 4))
                detected = jitter(rng, frames, height, width)
                dts.append({"video": video, "category": category, "frames": detected, "score": float(rng.random()),
                            "area": mean_area(detected)})
        for _ in range(rng.integers(0, 3)):
            detected = random_track(rng, height, width, length)
            dts.append({"video": video, "category": int(rng.integers(1, 4)), "frames": detected,
                        "score": float(rng.random()), "area": mean_area(detected)})
    forms = ("rle", "uncompressed", "array")
    annotations = []
    for index, g in enumerate(gts):
        annotation = {
            "id": 100 + index, "video_id": g["video"], "category_id": g["category"], "iscrowd": int(g["crowd"]),
            "segmentations": [None if f is None else encode(f, forms[(index + t) % 2]) for t, f in enumerate(g["frames"])],
        }
        if index % 3:  # the others leave the areas to be measured
            annotation["areas"] = [None if f is None else int(f.sum()) for f in g["frames"]]
        annotations.append(annotation)
    document = {
        "videos": [{"id": v, "height": h, "width": w, "length": n} for v, (h, w, n) in VIDEOS.items()],
        "categories": [{"id": c, "name": f"class{c}"} for c in (1, 2, 3)],
        "annotations": annotations,
    }
    results = [
        {"video_id": d["video"], "category_id": d["category"], "score": d["score"],
         "segmentations": [None if f is None else encode(f, forms[(i + t) % 3]) for t, f in enumerate(d["frames"])]}
        for i, d in enumerate(dts)
    ]
    return document, results, gts, dts


@pytest.mark.parametrize("seed", range(4))
def test_stock_cocoeval_on_tall_masks_equals_the_youtube_vis_evaluation(seed):
    document, results, gts, dts = random_case(seed)
    expected = reference_ytvis(list(VIDEOS), [1, 2, 3], gts, dts)
    got = ytvis_evaluate(document, results)
    assert list(got) == list(YTVIS_STATS)
    assert got == pytest.approx(expected, abs=1e-12)
    assert any(0 < value < 1 for value in got.values())  # a case that exercises something


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**16), shuffle=st.randoms(use_true_random=False))
def test_ap_is_unchanged_by_reordering_results(seed, shuffle):
    document, results, _, _ = random_case(seed)
    reordered = list(results)
    shuffle.shuffle(reordered)
    assert ytvis_evaluate(document, reordered) == ytvis_evaluate(document, results)


# -- hand-computed cases ------------------------------------------------------------------------------


def one_video(length=2, size=10, tracks=(), iscrowd=()):
    """A ground truth with one video; `tracks` are per-frame masks (None where absent)."""
    return {
        "videos": [{"id": 5, "height": size, "width": size, "length": length}],
        "categories": [{"id": 1, "name": "drum"}],
        "annotations": [
            {"id": i + 1, "video_id": 5, "category_id": 1, "iscrowd": int(i in iscrowd),
             "segmentations": [None if m is None else uncompressed_rle(m) for m in frames]}
            for i, frames in enumerate(tracks)
        ],
    }


def box(size, rows, cols=slice(None)):
    mask = np.zeros((size, size), np.uint8)
    mask[rows, cols] = 1
    return mask


def test_a_track_absent_in_a_frame_counts_that_frame_as_empty():
    # GT: 50 pixels in frame 0, absent in frame 1. Detection: the same 50, plus 30 in frame 1.
    # IoU = 50 / 80 = 0.625: a match at 0.50, 0.55 and 0.60 only.
    gt = one_video(tracks=[[box(10, slice(0, 5)), None]])
    detection = {"video_id": 5, "category_id": 1, "score": 0.9, "segmentations": [box(10, slice(0, 5)), box(10, slice(0, 3))]}
    stats = ytvis_evaluate(gt, [detection])
    assert stats["AP"] == pytest.approx(0.3)
    assert (stats["AP50"], stats["AP75"]) == (pytest.approx(1.0), 0.0)  # precision is tp / (tp + fp + eps)
    assert stats["AR1"] == stats["AR10"] == stats["AR100"] == pytest.approx(0.3)
    assert stats["APs"] == pytest.approx(0.3) and stats["ARs"] == pytest.approx(0.3)
    assert stats["APm"] == stats["APl"] == stats["ARm"] == stats["ARl"] == -1.0  # nothing that size


def test_equal_scores_keep_the_order_of_the_results():
    # One track; two detections with the same score, one perfect and one disjoint.
    track = [box(10, slice(0, 5)), box(10, slice(0, 5))]
    gt = one_video(tracks=[track])
    hit = {"video_id": 5, "category_id": 1, "score": 0.5, "segmentations": track}
    miss = {"video_id": 5, "category_id": 1, "score": 0.5, "segmentations": [box(10, slice(6, 9))] * 2}
    assert ytvis_evaluate(gt, [hit, miss])["AP"] == pytest.approx(1.0)
    # Miss first: precision 0 then 1/2 at full recall, so 0.5 at every recall point.
    assert ytvis_evaluate(gt, [miss, hit])["AP"] == pytest.approx(0.5)
    assert ytvis_evaluate(gt, [miss, hit])["AR1"] == 0.0


def test_area_is_the_mean_of_the_non_empty_frames():
    # 130 x 130 = 16900 pixels in two of three frames: mean 16900 is medium (the mean over all
    # three frames, 11267, would be small).
    frame = box(140, slice(0, 130), slice(0, 130))
    track = [frame, None, frame]
    stats = ytvis_evaluate(one_video(length=3, size=140, tracks=[track]),
                           [{"video_id": 5, "category_id": 1, "score": 1.0, "segmentations": track}])
    assert (stats["APm"], stats["ARm"]) == (pytest.approx(1.0), 1.0)
    assert stats["APs"] == stats["APl"] == -1.0


def test_crowd_tracks_are_scored_by_plain_iou():
    # A crowd region over rows 0-7 and a regular track on rows 8-9. The top-scoring detection
    # covers rows 0-1: COCO's crowd IoU (intersection / detection area = 1) would swallow it as
    # ignored; the YouTube-VIS API's plain IoU (20 / 80) leaves it a false positive.
    crowd, regular = box(10, slice(0, 8)), box(10, slice(8, 10))
    gt = one_video(length=1, tracks=[[crowd], [regular]], iscrowd={0})
    results = [
        {"video_id": 5, "category_id": 1, "score": 0.9, "segmentations": [box(10, slice(0, 2))]},
        {"video_id": 5, "category_id": 1, "score": 0.8, "segmentations": [regular]},
    ]
    assert ytvis_evaluate(gt, results)["AP"] == pytest.approx(0.5)


def test_no_results_score_zero_where_there_is_ground_truth():
    stats = ytvis_evaluate(one_video(tracks=[[box(10, slice(0, 5)), None]]), [])
    assert (stats["AP"], stats["AR100"], stats["APs"]) == (0.0, 0.0, 0.0)
    assert stats["APm"] == stats["APl"] == -1.0


def test_perfect_results_on_the_fixture_score_one(tmp_path):
    fixture = write_ytvis_fixture(tmp_path / "ytvis")
    document = json.loads(fixture.annotations.read_text())
    results = [
        {"video_id": a["video_id"], "category_id": a["category_id"], "score": 0.5 + 0.1 * i,
         "segmentations": a["segmentations"]}
        for i, a in enumerate(document["annotations"])
    ]
    path = write_ytvis_results(tmp_path / "out" / "results.json", results, fixture.annotations)
    stats = ytvis_evaluate(fixture.annotations, path)
    assert stats == ytvis_evaluate(document, results)
    assert [stats[k] for k in ("AP", "AP50", "AR100", "APs")] == pytest.approx([1.0] * 4)


# -- results files ------------------------------------------------------------------------------------


def test_written_results_are_compressed_rle_or_null(tmp_path):
    document, results, _, _ = random_case(7)
    path = write_ytvis_results(tmp_path / "results.json", results, document)
    written = json.loads(path.read_text())
    assert len(written) == len(results)
    for entry, result in zip(written, results, strict=True):
        assert set(entry) == {"video_id", "category_id", "score", "segmentations"}
        height, width, length = VIDEOS[entry["video_id"]]
        assert len(entry["segmentations"]) == length
        for seg, original in zip(entry["segmentations"], result["segmentations"], strict=True):
            assert (seg is None) == (original is None)
            if seg is not None:
                assert seg["size"] == [height, width] and isinstance(seg["counts"], str)
    assert ytvis_evaluate(document, path) == ytvis_evaluate(document, results)


def test_results_from_a_stacked_array_are_accepted(tmp_path):
    gt = one_video(tracks=[[box(10, slice(0, 5))] * 2])
    stacked = np.stack([box(10, slice(0, 5))] * 2)  # (T, H, W)
    path = write_ytvis_results(tmp_path / "r.json", [{"video_id": 5, "category_id": 1, "score": 1, "segmentations": stacked}], gt)
    assert ytvis_evaluate(gt, path)["AP"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"video_id": 6}, r"results\[0\]: video_id 6 is not in the ground truth"),
        ({"category_id": 9}, r"results\[0\]: category_id 9 is not in the ground truth"),
        ({"segmentations": [None]}, r"results\[0\]: 1 segmentations for video 5, which has 2 frames"),
        ({"segmentations": [np.zeros((10, 9)), None]}, r"results\[0\] frame 0: mask of shape \(10, 9\)"),
        ({"segmentations": [{"size": [9, 10], "counts": "0"}, None]}, r"results\[0\] frame 0: RLE size \[9, 10\]"),
        ({"score": math.nan}, r"results\[0\]: score must be a finite number"),
        ({"score": None}, r"results\[0\]: score must be a finite number"),
    ],
)
def test_invalid_results_are_named_before_anything_is_written(tmp_path, change, message):
    gt = one_video(tracks=[[box(10, slice(0, 5)), None]])
    result = {"video_id": 5, "category_id": 1, "score": 0.5, "segmentations": [None, None]} | change
    with pytest.raises(ValueError, match=message):
        write_ytvis_results(tmp_path / "results.json", [result], gt)
    assert not (tmp_path / "results.json").exists()
    with pytest.raises(ValueError, match=message):
        ytvis_evaluate(gt, [result])


def test_missing_fields_and_ground_truth_problems():
    gt = one_video(tracks=[[box(10, slice(0, 5)), None]])
    with pytest.raises(ValueError, match=r"results\[0\] has no score"):
        ytvis_evaluate(gt, [{"video_id": 5, "category_id": 1, "segmentations": [None, None]}])
    with pytest.raises(DatasetError, match="ground-truth file not found"):
        ytvis_evaluate("/nonexistent/valid.json", [])
    with pytest.raises(DatasetError, match="no 'annotations'"):
        ytvis_evaluate(gt | {"annotations": None}, [])
    with pytest.raises(DatasetError, match="frame"):
        ytvis_evaluate(gt | {"annotations": [gt["annotations"][0] | {"segmentations": [None]}]}, [])


def test_track_iou_from_frame_rles_equals_the_iou_of_stacked_masks() -> None:
    """The per-frame RLE arithmetic against the definition: one tall mask per track, one IoU."""
    from pycocotools import mask as coco_mask

    from avlab.eval.ytvis import track_iou

    rng = np.random.default_rng(0)
    num_frames, height, width = 5, 12, 9

    def track() -> tuple[list[dict | None], np.ndarray]:
        dense = (rng.random((num_frames, height, width)) < rng.uniform(0.05, 0.6)).astype(np.uint8)
        absent = rng.random(num_frames) < 0.3
        dense[absent] = 0
        frames = [None if absent[t] else coco_mask.encode(np.asfortranarray(dense[t])) for t in range(num_frames)]
        return frames, dense

    results, truths = [track() for _ in range(6)], [track() for _ in range(4)]
    results.append(([None] * num_frames, np.zeros((num_frames, height, width), np.uint8)))  # absent throughout
    got = track_iou([r for r, _ in results], [g for g, _ in truths])
    tall = [coco_mask.encode(np.asfortranarray(d.reshape(-1, width))) for _, d in results]
    tall_truths = [coco_mask.encode(np.asfortranarray(d.reshape(-1, width))) for _, d in truths]
    expected = coco_mask.iou(tall, tall_truths, [0] * len(truths))
    np.testing.assert_array_equal(got, expected)
    assert got[-1].tolist() == [0.0] * len(truths)
