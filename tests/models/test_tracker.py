"""AFCV's tracker: association by embedding + IoU, and YouTube-VIS results it produces."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pycocotools import mask as coco_mask

from avlab.datasets.youtube_vis import decode_segmentation
from avlab.eval import write_ytvis_results, ytvis_evaluate
from avlab.models.tracker import Tracker

Detection = dict[str, Any]


def det(box: tuple[float, float, float, float], embedding: list[float], *, label: int = 0,
        score: float = 0.9, size: tuple[int, int] = (8, 32)) -> Detection:
    """One detection whose mask fills its box with probability 0.9."""
    mask = torch.zeros(size)
    x0, y0, x1, y1 = (int(v) for v in box)
    mask[y0:y1, x0:x1] = 0.9
    return {"box": torch.tensor(box), "embedding": torch.tensor(embedding), "label": label,
            "score": score, "mask": mask}


def update(tracker: Tracker, frame: int, detections: list[Detection]) -> list[int]:
    """Feed one frame's detections (stacked as the detector returns them); their track ids."""
    if not detections:
        height, width = tracker.frame_size or (8, 32)
        empty = tracker.update(frame, torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64),
                               torch.zeros(0, height, width), torch.zeros(0, 3))
        return [int(i) for i in empty]
    ids = tracker.update(
        frame,
        torch.stack([d["box"] for d in detections]),
        torch.tensor([d["score"] for d in detections]),
        torch.tensor([d["label"] for d in detections], dtype=torch.int64),
        torch.stack([d["mask"] for d in detections]),
        torch.stack([d["embedding"] for d in detections]),
    )
    return [int(i) for i in ids]


def test_crossing_objects_keep_their_identities() -> None:
    """A moves right, B moves left; their boxes coincide at frame 3, so IoU cannot tell them
    apart there or just after (both tracks' last boxes are the same box): the embeddings do."""
    g = torch.Generator().manual_seed(0)
    tracker = Tracker()
    identity: dict[str, set[int]] = {"A": set(), "B": set()}
    for t in range(7):
        xa, xb = 2 + 3 * t, 20 - 3 * t
        noise = (0.1 * torch.randn(2, 3, generator=g)).tolist()
        a = det((xa, 2, xa + 6, 6), [1.0 + noise[0][0], noise[0][1], noise[0][2]])
        b = det((xb, 2, xb + 6, 6), [noise[1][0], 1.0 + noise[1][1], noise[1][2]])
        order = [a, b] if t % 2 else [b, a]  # the detector's order does not matter
        ids = update(tracker, t, order)
        by_name = dict(zip(["A", "B"] if t % 2 else ["B", "A"], ids, strict=True))
        identity["A"].add(by_name["A"])
        identity["B"].add(by_name["B"])
    assert len(identity["A"]) == len(identity["B"]) == 1 and identity["A"] != identity["B"]
    assert len(tracker.tracks) == 2
    [track_a] = [tracker.tracks[i] for i in identity["A"]]
    # Frame 6's mask of A is at x = 20..26.
    mask = decode_segmentation(track_a.segmentations[6], 8, 32)
    assert mask[2:6, 20:26].all() and mask.sum() == 24


def test_an_object_that_leaves_and_returns_rejoins_its_track() -> None:
    tracker = Tracker()
    a_first = det((1, 1, 5, 5), [1.0, 0.0, 0.0])
    b = det((20, 1, 26, 5), [0.0, 1.0, 0.0])
    assert update(tracker, 0, [a_first, b]) == [0, 1]
    assert update(tracker, 1, [a_first, b]) == [0, 1]
    assert update(tracker, 2, [b]) == [1]
    assert update(tracker, 3, []) == []
    a_back = det((12, 3, 16, 7), [0.9, 0.1, 0.0])  # elsewhere: IoU 0, cosine 0.99
    assert update(tracker, 4, [a_back, b]) == [0, 1]
    results = tracker.results(1, 5, [1])
    assert [r["segmentations"][t] is None for r in results for t in range(5)] == [
        False, False, True, True, False,  # A
        False, False, False, True, False,  # B
    ]


def test_two_detections_never_join_one_track() -> None:
    tracker = Tracker()
    update(tracker, 0, [det((1, 1, 5, 5), [1.0, 0.0, 0.0])])
    # Two duplicates of the track in one frame: one joins it, the other starts a track.
    ids = update(tracker, 1, [det((1, 1, 5, 5), [1.0, 0.0, 0.0], score=0.8),
                              det((1, 1, 5, 5), [1.0, 0.0, 0.0], score=0.7)])
    assert sorted(ids) == [0, 1]
    assert len(tracker.tracks[0].scores) == 2 and len(tracker.tracks[1].scores) == 1


def test_assignment_is_optimal_not_greedy() -> None:
    """Y (the higher score) is a bit closer to T0 than to T1, X matches only T0: a greedy pass
    by score gives Y T0 and leaves X alone; the optimal assignment joins both."""
    tracker = Tracker(iou_weight=0.0)
    update(tracker, 0, [det((1, 1, 5, 5), [1.0, 0.0, 0.0]), det((20, 1, 26, 5), [0.0, 1.0, 0.0])])
    y = det((10, 1, 14, 5), [1.0, 0.9, 0.0], score=0.95)  # cosine 0.74 to T0, 0.67 to T1
    x = det((10, 1, 14, 5), [1.0, 0.05, 0.0], score=0.5)  # cosine 0.999 to T0, 0.05 to T1
    assert update(tracker, 1, [y, x]) == [1, 0]
    assert len(tracker.tracks) == 2


def test_threshold_applies_to_the_weighted_sum() -> None:
    def joins(tracker: Tracker, second: Detection) -> bool:
        update(tracker, 0, [det((0, 0, 4, 4), [1.0, 0.0, 0.0])])
        return update(tracker, 1, [second]) == [0]

    def at_cosine(c: float, box: tuple[float, float, float, float] = (20, 0, 24, 4)) -> Detection:
        return det(box, [c, math.sqrt(1 - c * c), 0.0])

    assert not joins(Tracker(), at_cosine(0.39))  # IoU 0
    assert joins(Tracker(), at_cosine(0.41))
    quarter = (0, 0, 4, 1)  # IoU 4 / 16 with (0, 0, 4, 4)
    assert joins(Tracker(), at_cosine(0.2, quarter))  # 0.2 + 0.25 >= 0.4
    assert not joins(Tracker(iou_weight=0.0), at_cosine(0.2, quarter))
    assert not joins(Tracker(embedding_weight=0.5), at_cosine(0.2, quarter))  # 0.1 + 0.25
    half = (0, 0, 4, 2)  # IoU exactly 0.5: ">=" joins
    assert joins(Tracker(embedding_weight=0.0, match_threshold=0.5), at_cosine(0.0, half))
    assert not joins(Tracker(embedding_weight=0.0, match_threshold=0.51), at_cosine(0.0, half))


def test_same_class_versus_class_agnostic_matching_and_class_votes() -> None:
    emb = [1.0, 0.0, 0.0]
    same = Tracker()
    assert update(same, 0, [det((0, 0, 4, 4), emb, label=0)]) == [0]
    assert update(same, 1, [det((0, 0, 4, 4), emb, label=1)]) == [1]  # other class: new track
    assert update(same, 2, [det((0, 0, 4, 4), emb, label=1)]) == [1]

    for vote, category in (("first", 10), ("majority", 20)):
        agnostic = Tracker(class_agnostic=True, class_vote=vote)
        for t, label in enumerate([0, 1, 1]):
            assert update(agnostic, t, [det((0, 0, 4, 4), emb, label=label)]) == [0]
        [result] = agnostic.results(3, 3, {0: 10, 1: 20})
        assert result["category_id"] == category

    tie = Tracker(class_agnostic=True, class_vote="majority")
    for t, label in enumerate([1, 0]):
        update(tie, t, [det((0, 0, 4, 4), emb, label=label)])
    assert tie.results(3, 2, [10, 20])[0]["category_id"] == 20  # tie: the class seen first


def test_results_score_masks_and_json() -> None:
    tracker = Tracker(mask_threshold=0.5)
    probabilities = torch.tensor([[0.2, 0.5, 0.51], [0.9, 0.0, 1.0]])  # (2, 3)
    for t, score in enumerate([0.9, 0.6, 0.3]):
        tracker.update(2 * t, torch.tensor([[0.0, 0.0, 3.0, 2.0]]), torch.tensor([score]),
                       torch.tensor([0]), probabilities[None], torch.tensor([[1.0, 2.0]]))
    [result] = tracker.results(9, 6, {0: 4})
    assert result["video_id"] == 9 and result["category_id"] == 4
    assert result["score"] == pytest.approx(0.6)
    segmentations = result["segmentations"]
    assert [s is None for s in segmentations] == [False, True, False, True, False, True]
    expected = np.array([[0, 0, 1], [1, 0, 1]], np.uint8)  # above 0.5 only
    rle = segmentations[0]
    assert isinstance(rle["counts"], str) and rle["size"] == [2, 3]
    np.testing.assert_array_equal(decode_segmentation(rle, 2, 3), expected)
    # Column-major run lengths of [[0, 0, 1], [1, 0, 1]]: 0 1 | 1 0 ... -> runs 1, 1, 2, 2.
    assert coco_mask.frPyObjects({"size": [2, 3], "counts": [1, 1, 2, 2]}, 2, 3)["counts"].decode() == rle["counts"]
    assert json.loads(json.dumps([result])) == [result]
    with pytest.raises(ValueError, match="has frame 4, but the video has 4 frames"):
        tracker.results(9, 4, {0: 4})


def test_update_checks_its_inputs() -> None:
    tracker = Tracker()
    update(tracker, 1, [det((0, 0, 4, 4), [1.0, 0.0, 0.0])])
    with pytest.raises(ValueError, match="does not come after frame 1"):
        update(tracker, 1, [det((0, 0, 4, 4), [1.0, 0.0, 0.0])])
    with pytest.raises(ValueError, match="frame size"):
        update(tracker, 2, [det((0, 0, 4, 4), [1.0, 0.0, 0.0], size=(8, 8))])
    with pytest.raises(ValueError, match="one row per detection"):
        tracker.update(3, torch.zeros(2, 4), torch.zeros(1), torch.zeros(1), torch.zeros(1, 8, 32),
                       torch.zeros(1, 3))
    with pytest.raises(ValueError, match="class_vote"):
        Tracker(class_vote="last")


# A hand-made YouTube-VIS ground truth: video 1 (3 frames, 8 x 12) holds two instances of
# category 1 side by side; video 2 (2 frames, 8 x 8) one of category 2 and one of category 1
# that appears in frame 1 only. Embeddings are one-hot per instance.
Box = tuple[int, int, int, int]
_OBJECTS: dict[tuple[int, int], tuple[int, list[Box | None], list[float]]] = {
    # (video, instance) -> (category, box per frame or None, embedding)
    (1, 1): (1, [(1, 1, 4, 6), (1, 2, 4, 7), (2, 2, 5, 7)], [1.0, 0.0, 0.0, 0.0]),
    (1, 2): (1, [(7, 1, 11, 5), (7, 1, 11, 5), (6, 1, 10, 6)], [0.0, 1.0, 0.0, 0.0]),
    (2, 3): (2, [(0, 0, 5, 3), (1, 0, 6, 3)], [0.0, 0.0, 1.0, 0.0]),
    (2, 4): (1, [None, (2, 4, 7, 8)], [0.0, 0.0, 0.0, 1.0]),
}
_VIDEOS = {1: (3, 8, 12), 2: (2, 8, 8)}  # id -> (length, height, width)
_CATEGORY_IDS = [1, 2]  # label index -> category id


def _box_mask(box: Box | None, height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    if box is not None:
        x0, y0, x1, y1 = box
        mask[y0:y1, x0:x1] = 1
    return mask


def _ground_truth() -> dict[str, Any]:
    annotations = []
    for (video, instance), (category, boxes, _) in _OBJECTS.items():
        _, height, width = _VIDEOS[video]
        segmentations: list[dict[str, Any] | None] = []
        for box in boxes:
            if box is None:
                segmentations.append(None)
            else:
                rle = coco_mask.encode(np.asfortranarray(_box_mask(box, height, width)))
                segmentations.append({"size": [height, width], "counts": rle["counts"].decode()})
        annotations.append({"id": instance, "video_id": video, "category_id": category,
                            "iscrowd": 0, "segmentations": segmentations})
    return {
        "videos": [{"id": v, "length": n, "height": h, "width": w} for v, (n, h, w) in _VIDEOS.items()],
        "categories": [{"id": 1, "name": "guitar"}, {"id": 2, "name": "drum"}],
        "annotations": annotations,
    }


def _track_all(*, swap_from: int | None = None) -> list[dict[str, Any]]:
    """Run a tracker per video on detections made from the ground truth; `swap_from` swaps the
    embeddings of video 1's two instances from that frame on (an identity switch)."""
    results = []
    for video, (length, height, width) in _VIDEOS.items():
        tracker = Tracker(embedding_weight=2.0)
        for t in range(length):
            detections = []
            for (v, instance), (category, boxes, embedding) in _OBJECTS.items():
                if v != video or boxes[t] is None:
                    continue
                if swap_from is not None and video == 1 and t >= swap_from:
                    embedding = _OBJECTS[(1, 3 - instance)][2]
                detections.append({
                    "box": torch.tensor(boxes[t], dtype=torch.float32),
                    "embedding": torch.tensor(embedding),
                    "label": _CATEGORY_IDS.index(category),
                    "score": 0.9,
                    "mask": torch.from_numpy(_box_mask(boxes[t], height, width)).float(),
                })
            update(tracker, t, detections)
        results += tracker.results(video, length, _CATEGORY_IDS)
    return results


def test_perfect_tracks_score_ap_one_and_are_accepted_by_the_writer(tmp_path: Path) -> None:
    gt = _ground_truth()
    results = _track_all()
    assert len(results) == 4
    stats = ytvis_evaluate(gt, results)
    assert stats["AP"] == pytest.approx(1.0) and stats["AR10"] == pytest.approx(1.0)
    path = write_ytvis_results(tmp_path / "results.json", results, gt)
    assert json.loads(path.read_text()) == results
    assert ytvis_evaluate(gt, path)["AP"] == pytest.approx(1.0)


def test_an_identity_switch_lowers_ap() -> None:
    gt = _ground_truth()
    results = _track_all(swap_from=1)
    # The switch happened: video 1's first track (instance 1 at frame 0) covers instance 2 later.
    first = results[0]
    mask = decode_segmentation(first["segmentations"][1], 8, 12)
    np.testing.assert_array_equal(mask, _box_mask(_OBJECTS[(1, 2)][1][1], 8, 12))
    stats = ytvis_evaluate(gt, results)
    assert stats["AP"] < 0.9 and stats["AP50"] < 1.0
