"""MaskTrack R-CNN: the tracking head's training signal, matching by hand, video results, a smoke fit.

Models are tiny (ResNet-18, few channels, 32 px frames); the data is a generated SynthAV with
two training and two validation clips of four 32 x 32 frames.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torchvision

from avlab.datasets.synth import generate, load_synth
from avlab.datasets.youtube_vis import decode_segmentation
from avlab.errors import AvlabError, WeightsNotFoundError
from avlab.eval.ytvis import YTVIS_STATS, write_ytvis_results, ytvis_evaluate
from avlab.models.masktrack import (
    MaskTrackRCNN,
    VideoTracker,
    assign_tracks,
    ground_truth_json,
    load_masktrack,
    match_logits,
    match_scores,
    predict_ytvis,
    save_masktrack,
    track_video,
)
from avlab.train.masktrack import MaskTrackPairs, fit_masktrack, masktrack_loss

TINY = {"backbone": "resnet18", "min_size": 32, "max_size": 32, "fpn_channels": 8, "box_head_dim": 16,
        "mask_head_dim": 8, "track_fc_dim": 16, "embedding_dim": 8, "anchor_sizes": (8, 16, 32, 64, 128)}


def tiny_model(num_classes: int = 4, **options: Any) -> MaskTrackRCNN:
    torch.manual_seed(0)
    return MaskTrackRCNN(num_classes, **{**TINY, **options})


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("masktrack") / "synth", num_videos={"train": 2, "val": 2}, size=32,
                    fps=4, seconds=1.0, sample_rate=8000, renderer="additive", num_solo=0)


def square(box: tuple[int, int, int, int], size: int = 32) -> torch.Tensor:
    mask = torch.zeros(size, size, dtype=torch.uint8)
    x1, y1, x2, y2 = box
    mask[y1:y2, x1:x2] = 1
    return mask


def target(boxes: list[tuple[int, int, int, int]], labels: list[int], ids: list[int]) -> dict[str, torch.Tensor]:
    return {"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels),
            "masks": torch.stack([square(b) for b in boxes]), "instance_ids": torch.tensor(ids)}


# ----------------------------------------------------------------- training signal


def test_pair_forward_labels_positives_by_identity_and_trains_every_track_head_parameter() -> None:
    model = tiny_model(trainable_layers=0).train()
    generator = torch.Generator().manual_seed(1)
    images = [torch.rand(3, 32, 32, generator=generator) for _ in range(4)]
    # Query: instances 5 (new to the reference) and 7; reference: 7 and 9. Pair 2: an empty query.
    query = target([(2, 2, 14, 14), (18, 16, 30, 28)], [1, 2], [5, 7])
    reference = target([(17, 15, 29, 27), (4, 20, 12, 30)], [2, 3], [7, 9])
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64),
             "masks": torch.zeros(0, 32, 32, dtype=torch.uint8), "instance_ids": torch.zeros(0, dtype=torch.int64)}
    outputs = model(images[:2], [query, empty], images[2:], [reference, reference])
    logits, labels = outputs["track_logits"], outputs["track_labels"]
    assert logits.shape[1] == 3 and len(labels) == len(logits) > 0
    assert torch.equal(logits[:, 0], torch.zeros(len(logits)))  # the fixed "new instance" logit
    # Positive RoIs of instance 5 are labelled "new" (0), of instance 7 its reference slot (1).
    assert set(labels.tolist()) == {0, 1}
    loss, parts = masktrack_loss(outputs)
    assert set(parts) >= {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_mask",
                          "loss_track"}
    assert all(math.isfinite(v) for v in parts.values())
    loss.backward()
    for name, parameter in model.track_head.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in model.detector.backbone.body.parameters())  # trainable_layers=0


def test_masktrack_loss_is_cross_entropy_over_new_and_memory() -> None:
    logits = torch.tensor([[0.0, 1.0, -2.0], [0.0, 0.5, float("-inf")]])  # second row: a 1-instance memory
    outputs = {"loss_mask": torch.tensor(0.25), "track_logits": logits, "track_labels": torch.tensor([2, 0])}
    total, parts = masktrack_loss(outputs, track_weight=2.0)
    first = 2.0 + math.log(1 + math.e + math.exp(-2.0))  # label 2: logit -2
    second = math.log(1 + math.exp(0.5))
    assert parts["loss_track"] == pytest.approx((first + second) / 2, abs=1e-6)
    assert float(total) == pytest.approx(0.25 + 2.0 * (first + second) / 2, abs=1e-6)
    empty = {"track_logits": torch.zeros(0, 1), "track_labels": torch.zeros(0, dtype=torch.int64)}
    assert masktrack_loss(empty)[1]["loss_track"] == 0.0


# ----------------------------------------------------------------- matching


def test_match_scores_follow_the_weighted_sum_by_hand() -> None:
    query = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    memory = torch.tensor([[2.0, 0.0], [0.0, -1.0]])
    logits = match_logits(query, memory)
    assert torch.equal(logits, torch.tensor([[0.0, 2.0, 0.0], [0.0, 0.0, -1.0]]))
    log_probs = logits.log_softmax(dim=1)
    ious = torch.tensor([[0.5, 0.0], [0.0, 0.25]])
    same = torch.tensor([[True, False], [False, True]])
    values = match_scores(log_probs, torch.tensor([0.5, 0.8]), ious, same, score_weight=1.0, iou_weight=2.0,
                          class_weight=3.0)
    norm0 = math.log(1 + math.exp(2.0) + 1)
    norm1 = math.log(1 + 1 + math.exp(-1.0))
    expected = [
        [-norm0 + math.log(0.5), 2.0 - norm0 + math.log(0.5) + 1.0 + 3.0, -norm0 + math.log(0.5)],
        [-norm1 + math.log(0.8), -norm1 + math.log(0.8), -1.0 - norm1 + math.log(0.8) + 0.5 + 3.0],
    ]
    assert values.flatten().tolist() == pytest.approx(sum(expected, []), abs=1e-6)


def test_assignment_is_one_to_one_best_first() -> None:
    # Both detections prefer memory instance 0; the better pair wins, the other takes its next option.
    values = torch.tensor([[0.0, 3.0, 1.0], [0.5, 4.0, -1.0]])
    assert assign_tracks(values).tolist() == [1, 0]
    values = torch.tensor([[0.0, 3.0, -5.0], [0.5, 4.0, -1.0]])
    assert assign_tracks(values).tolist() == [-1, 0]
    assert assign_tracks(torch.zeros(0, 3)).tolist() == []


def test_tracker_keeps_identities_and_opens_a_new_one_when_nothing_matches() -> None:
    tracker = VideoTracker()
    a, b = torch.tensor([4.0, 0.0, 0.0]), torch.tensor([0.0, 4.0, 0.0])
    far = torch.tensor([-4.0, -4.0, 2.0])  # dot products -16 with both: "new" wins despite the class bonus
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [12.0, 12.0, 20.0, 20.0]])
    labels, scores = torch.tensor([1, 1]), torch.tensor([0.9, 0.8])
    assert tracker.update(torch.stack([a, b]), boxes, labels, scores).tolist() == [0, 1]
    # Frame 2: the same objects in the other order, with slightly changed embeddings.
    moved = torch.stack([b * 0.9, a * 1.1])
    assert tracker.update(moved, boxes.flip(0), labels, scores).tolist() == [1, 0]
    assert tracker.embeddings is not None and tracker.boxes is not None
    assert torch.equal(tracker.embeddings, torch.stack([a * 1.1, b * 0.9]))  # memory holds the latest
    # Frame 3: an unknown object on instance 0's box and class, and instance 1 again.
    ids = tracker.update(torch.stack([far, b]), boxes, labels, scores)
    assert ids.tolist() == [2, 1] and tracker.num_tracks == 3
    assert tracker.boxes is not None and tracker.labels is not None
    assert torch.equal(tracker.boxes[2], boxes[0]) and torch.equal(tracker.labels, torch.tensor([1, 1, 1]))


class ScriptedMaskTrack(MaskTrackRCNN):
    """A MaskTrackRCNN whose detections are given, frame after frame, instead of computed."""

    def __init__(self, frames: list[list[dict[str, Any]]], **options: Any) -> None:
        super().__init__(4, **{**TINY, **options})
        self.script = list(frames)

    def detect(self, images: Any) -> list[dict[str, torch.Tensor]]:
        out = []
        for image in images:
            objects = self.script.pop(0)
            h, w = image.shape[-2:]
            out.append({
                "boxes": torch.tensor([o["box"] for o in objects], dtype=torch.float32).reshape(-1, 4),
                "labels": torch.tensor([o["label"] for o in objects], dtype=torch.int64),
                "scores": torch.tensor([o["score"] for o in objects], dtype=torch.float32),
                "masks": torch.stack([o["mask"].float() for o in objects])[:, None] if objects else torch.zeros(0, 1, h, w),
                "embeddings": torch.stack([o["embedding"] for o in objects]) if objects else torch.zeros(0, 3),
            })
        return out


def decode(rle: dict[str, Any] | None) -> Any:
    return None if rle is None else decode_segmentation(rle, *rle["size"])


def test_track_video_builds_tracks_with_mean_score_and_majority_class() -> None:
    x_mask = square((1, 1, 4, 4), 8)
    y_mask = square((5, 5, 8, 8), 8)
    x = {"box": (1, 1, 4, 4), "mask": x_mask, "embedding": torch.tensor([5.0, 0.0, 0.0])}
    y = {"box": (5, 5, 8, 8), "mask": y_mask, "embedding": torch.tensor([-5.0, 5.0, 0.0])}
    frames = [
        [{**x, "label": 2, "score": 0.9}],
        [{**y, "label": 3, "score": 0.5}, {**x, "label": 2, "score": 0.6}],
        [{**x, "label": 1, "score": 0.3}],
        [],
    ]
    model = ScriptedMaskTrack(frames).eval()
    tracks = track_video(model, torch.zeros(4, 3, 8, 8), chunk_size=3)
    assert [t["category_id"] for t in tracks] == [2, 3]
    assert tracks[0]["score"] == pytest.approx(0.6) and tracks[1]["score"] == pytest.approx(0.5)
    first, second = ([decode(s) for s in t["segmentations"]] for t in tracks)
    assert [m is None for m in first] == [False, False, False, True]
    assert all(np.array_equal(m, x_mask.numpy()) for m in first[:3])
    assert [m is None for m in second] == [True, False, True, True]
    assert np.array_equal(second[1], y_mask.numpy())


def simplex(k: int, count: int = 8, scale: float = 6.0) -> torch.Tensor:
    """Embedding k of `count` with dot product -scale^2 / count with every other one."""
    return scale * (torch.eye(count)[k] - 1.0 / count)


def test_ground_truth_detections_tracked_through_predict_ytvis_score_ap_one(synth: Path) -> None:
    manifest = load_synth(synth, split="val")
    script: list[list[dict[str, Any]]] = []
    for record in manifest:
        masks = record.load_masks()
        assert masks.instance_ids is not None and masks.category_ids is not None
        for t in range(masks.num_frames):
            objects = []
            for i in range(len(masks.instance_ids)):
                mask = torch.from_numpy(masks.data[i, t])
                if mask.any():
                    ys, xs = torch.nonzero(mask, as_tuple=True)
                    objects.append({"box": (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1),
                                    "mask": mask, "label": int(masks.category_ids[i]), "score": 0.9,
                                    "embedding": simplex(i)})
            script.append(objects)
    model = ScriptedMaskTrack(script)
    results = predict_ytvis(model, synth, split="val", chunk_size=3)
    assert not model.script  # every frame of every video was detected once
    truth = json.loads((synth / "val" / "instances.json").read_text())
    assert len(results) == len(truth["annotations"])
    assert ground_truth_json(synth, split="val") == synth / "val" / "instances.json"
    stats = ytvis_evaluate(synth / "val" / "instances.json", results)
    assert stats["AP"] == pytest.approx(1.0) and stats["AR100"] == pytest.approx(1.0)


# ----------------------------------------------------------------- data, weights, checkpoints


def test_frame_pairs_give_boxes_around_masks_and_references_of_the_same_video(synth: Path) -> None:
    manifest = load_synth(synth, split="train")
    pairs = MaskTrackPairs(manifest, max_frame_gap=1, seed=3)
    assert len(pairs) == 8  # 2 videos x 4 frames
    truth = json.loads((synth / "train" / "instances.json").read_text())
    for i in range(len(pairs)):
        item = pairs[i]
        assert item["video"] == pairs.index[i][0] and abs(item["reference_frame"] - item["frame"]) == 1
        record = manifest[item["video"]]
        annotations = [a for a in truth["annotations"] if a["video_id"] == record.extra["ytvis_id"]]
        visible = [a for a in annotations if a["segmentations"][item["frame"]] is not None]
        assert item["target"]["instance_ids"].tolist() == [a["id"] for a in visible]
        assert item["target"]["labels"].tolist() == [a["category_id"] for a in visible]
        for box, a in zip(item["target"]["boxes"].tolist(), visible, strict=True):
            x, y, w, h = a["bboxes"][item["frame"]]  # COCO boxes: x, y, width, height
            assert box == pytest.approx([x, y, x + w, y + h])
    pairs.set_epoch(1)
    again = [pairs.reference_of(i) for i in range(len(pairs))]
    fresh = MaskTrackPairs(manifest, max_frame_gap=1, seed=3)
    fresh.set_epoch(1)
    assert [fresh.reference_of(i) for i in range(len(pairs))] == again


def test_pretrained_weights_come_only_from_local_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    with pytest.raises(WeightsNotFoundError, match="resnet18-f37072fd.pth"):
        tiny_model(weights="imagenet")
    with pytest.raises(WeightsNotFoundError, match="maskrcnn_resnet50_fpn_coco"):
        MaskTrackRCNN(3, weights="coco", min_size=32, max_size=32)
    torch.manual_seed(5)
    resnet = torchvision.models.resnet18()
    torch.save(resnet.state_dict(), tmp_path / "r18.pt")
    model = tiny_model(weights=tmp_path / "r18.pt")
    body = model.detector.backbone.body
    assert torch.equal(body.conv1.weight, resnet.conv1.weight)
    assert torch.equal(body.layer3[0].bn1.running_var, resnet.layer3[0].bn1.running_var)
    assert model.config["trainable_layers"] == 3 and model.config["frozen_bn"] is True
    assert not body.conv1.weight.requires_grad and body.layer4[0].conv1.weight.requires_grad


def test_checkpoint_rebuilds_without_arguments(tmp_path: Path) -> None:
    model = tiny_model(num_classes=5, iou_weight=1.5)
    path = save_masktrack(model, tmp_path / "m.ckpt", metrics={"val/AP": 0.25})
    again = load_masktrack(path)
    assert again.config == model.config and again.tracker().weights["iou_weight"] == 1.5
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True))
    torch.save({"hyper_parameters": {"system": "avisnet"}, "state_dict": {}}, tmp_path / "other.ckpt")
    with pytest.raises(AvlabError, match="no MaskTrack"):
        load_masktrack(tmp_path / "other.ckpt")


# ----------------------------------------------------------------- end to end


def fit_tiny(synth: Path, root: Path, **options: Any) -> Any:
    return fit_masktrack(synth, epochs=1, batch_size=4, size=32, lr=0.01, warmup_steps=1, device="cpu",
                         model_kwargs={**TINY, "trainable_layers": 1}, root_dir=root, progress=False, **options)


def test_smoke_fit_gives_a_checkpoint_that_reloads_predicts_and_scores(synth: Path, tmp_path: Path) -> None:
    result = fit_tiny(synth, tmp_path / "run", val_split="val")
    assert len(result.history) == 1 and result.metrics["train/loss"] > 0
    assert {f"val/{name}" for name in YTVIS_STATS} <= set(result.metrics)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["steps"] == 2  # 8 query frames / 4
    model = load_masktrack(result.checkpoint)
    assert model.config["num_classes"] == 9  # background + SynthAV's 8 classes
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), result.model.state_dict().values(),
                                                   strict=True))
    results = predict_ytvis(model, load_synth(synth, split="val"), split="val")
    videos = {1: 4, 2: 4}
    assert results and all(len(r["segmentations"]) == videos[r["video_id"]] for r in results)
    path = write_ytvis_results(tmp_path / "results.json", results, synth / "val" / "instances.json")
    stats = ytvis_evaluate(synth / "val" / "instances.json", path)
    assert all(v == -1.0 or 0.0 <= v <= 1.0 for v in stats.values())
    assert stats == pytest.approx({k[4:]: v for k, v in result.metrics.items() if k.startswith("val/")})


def test_fit_repeats_exactly_under_a_seed(synth: Path, tmp_path: Path) -> None:
    first = fit_tiny(synth, tmp_path / "a", max_steps=1, seed=7)
    second = fit_tiny(synth, tmp_path / "b", max_steps=1, seed=7)
    other = fit_tiny(synth, tmp_path / "c", max_steps=1, seed=8)
    pairs = list(zip(first.model.state_dict().values(), second.model.state_dict().values(), strict=True))
    assert all(torch.equal(a, b) for a, b in pairs)
    assert first.metrics == second.metrics and first.metrics != other.metrics
