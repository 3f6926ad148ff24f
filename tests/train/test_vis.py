"""Video instance segmentation training: frame pairs, ground truth, tracking to results, fit for AFCV and its baselines."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from avlab.eval import write_ytvis_results, ytvis_evaluate
from avlab.models import list_systems, load_system, system_preset
from avlab.models.masktrack import boxes_from_masks
from avlab.train import fit
from avlab.train.frames import StoreFrames, store_info
from avlab.train.vis_data import (
    FramePairs,
    IdentityTable,
    OrderedFrames,
    collate_pairs,
    ytvis_ground_truth,
)
from avlab.train.vis_task import VISTask

VIS_OPTIONS = {"max_detections": 3}


def test_boxes_from_masks_include_the_edge_pixels() -> None:
    masks = torch.zeros(2, 5, 6, dtype=torch.bool)
    masks[0, 1:4, 2:5] = True
    masks[1, 4, 0] = True
    assert boxes_from_masks(masks).tolist() == [[2.0, 1.0, 5.0, 4.0], [0.0, 4.0, 1.0, 5.0]]
    assert boxes_from_masks(masks[:0]).shape == (0, 4)


def test_identities_are_counted_per_video_and_instance(mix_store: Path) -> None:
    frames = StoreFrames(mix_store, split="train")
    identities = IdentityTable.from_frames(frames)
    expected = set()
    for index, (video, _) in enumerate(frames.items):
        ids = frames.frame(index)["instance_id"].numpy()
        expected |= {(video, int(i)) for i in ids if i >= 0}
    assert set(identities.rows) == expected and sorted(identities.rows.values()) == list(range(len(expected)))


def test_pairs_are_two_frames_of_one_video_within_the_offset(mix_store: Path) -> None:
    frames = StoreFrames(mix_store, split="train")
    pairs = FramePairs(frames, IdentityTable.from_frames(frames), max_offset=1, seed=3)
    for index in range(len(pairs)):
        first, second = pairs[index]
        assert int(first["video"]) == int(second["video"])
        assert 0 < abs(int(first["frame"]) - int(second["frame"])) <= 1
        # The same instances (store positions) on both frames, labelled alike.
        assert torch.equal(first["instance_label"], second["instance_label"])
        assert torch.equal(first["instance_identity"], second["instance_identity"])
    again = FramePairs(frames, IdentityTable.from_frames(frames), max_offset=1, seed=3)
    assert all(int(again[i][1]["frame"]) == int(pairs[i][1]["frame"]) for i in range(len(pairs)))
    batch = collate_pairs([pairs[0], pairs[1]])
    assert batch["first"]["instance_mask"].shape[0] == 2 and set(batch) == {"first", "second"}


def test_ground_truth_scores_itself_perfectly_and_keeps_sounding_frames(mix_store: Path) -> None:
    frames = StoreFrames(mix_store, split="val")
    categories = store_info(mix_store)["categories"]
    truth = ytvis_ground_truth(frames, categories)
    assert truth["annotations"] and all(a["category_id"] >= 1 for a in truth["annotations"])
    perfect = [{"video_id": a["video_id"], "category_id": a["category_id"], "score": 1.0,
                "segmentations": a["segmentations"]} for a in truth["annotations"]]
    assert ytvis_evaluate(truth, perfect)["AP"] == pytest.approx(1.0)
    heard = ytvis_ground_truth(frames, categories, sounding_only=True)
    # Frame by frame: a sounding-only mask exists exactly where the instance shows and sounds.
    for video in sorted({v for v, _ in frames.items}):  # store positions; JSON ids are position + 1
        raws = [frames.frame(p) for p in range(len(frames)) if frames.items[p][0] == video]
        shown_and_heard = sum(int((r["instance_mask"][i] == 1).any() and r["sounding"][i] == 1)
                              for r in raws for i in range(len(r["sounding"])))
        kept = sum(s is not None for a in heard["annotations"] if a["video_id"] == video + 1
                   for s in a["segmentations"])
        assert kept == shown_and_heard


def test_tracks_of_perfect_detections_score_one(mix_store: Path, tmp_path: Path) -> None:
    # Detections made from the ground truth, embeddings naming the instance: the task's tracking
    # turns them into results that the official-style evaluation scores as perfect.
    frames = StoreFrames(mix_store, split="val")
    info = store_info(mix_store)
    task = VISTask("condinst_vis", {"channels": (8, 16, 32), "num_classes": len(info["categories"]) - 1,
                                    **system_preset("condinst_vis", "tiny")}, categories=info["categories"])
    task.ground_truth = ytvis_ground_truth(frames, info["categories"])
    ordered = OrderedFrames(frames)
    for index in range(len(ordered)):
        item = ordered[index]
        present = ((item["instance_mask"] == 1).flatten(1).any(1) & (item["instance_label"] >= 0)).nonzero()[:, 0]
        masks = (item["instance_mask"][present] == 1).float()
        task.observe(int(item["video"]), int(item["frame"]), {
            "boxes": boxes_from_masks(masks.bool()), "scores": torch.ones(len(present)),
            "labels": item["instance_label"][present], "masks": masks,
            "embeddings": torch.nn.functional.one_hot(present, 8).float(), "sounding": torch.ones(len(present)),
        })
    results, sounding = task.track()
    assert ytvis_evaluate(task.ground_truth, results)["AP"] == pytest.approx(1.0)
    assert len(sounding) == len(results)  # every frame heard: nothing dropped
    written = write_ytvis_results(tmp_path / "results.json", results, task.ground_truth)
    assert ytvis_evaluate(task.ground_truth, written)["AP"] == pytest.approx(1.0)


@pytest.mark.parametrize("name", list_systems("vis"))
def test_every_vis_system_trains_tracks_and_checkpoints(name: str, mix_store: Path, tmp_path: Path) -> None:
    result = fit(mix_store, name, system_kwargs=system_preset(name, "tiny"), max_epochs=1, batch_size=4,
                 progress=False, root_dir=tmp_path, vis_options=VIS_OPTIONS)
    metrics = result.metrics
    losses = ["cls", "box", "ctr", "mask", "identity"] + (["crossover"] if name != "condinst_vis" else []) + \
        (["sounding"] if name == "afcv" else [])
    for loss in losses:
        assert math.isfinite(metrics[f"train/{loss}_loss"]), loss
    assert "train/crossover_loss" not in metrics or name != "condinst_vis"
    for figure in ("ap", "ap50", "ar10"):
        assert 0.0 <= metrics[f"val/{figure}"] <= 1.0
    assert ("val/ap_sounding" in metrics) == (name == "afcv")
    written = result.log_dir / "ytvis_results.json"
    assert ytvis_evaluate(ytvis_ground_truth(StoreFrames(mix_store, split="val"), store_info(mix_store)["categories"]),
                          written)["AP"] == pytest.approx(metrics["val/ap"])
    rebuilt = load_system(result.checkpoint)
    for (key, a), b in zip(result.system.state_dict().items(), rebuilt.state_dict().values(), strict=True):
        assert torch.equal(a, b), key
    info = store_info(mix_store)
    assert rebuilt.detector.num_classes == len(info["categories"]) - 1  # "background" is not a class
    assert rebuilt.identity is not None and rebuilt.identity.classifier.out_features == len(
        IdentityTable.from_frames(StoreFrames(mix_store, split="train")))


def test_afcv_trains_end_to_end_from_raw_video(synth_root: Path, tmp_path: Path) -> None:
    result = fit(synth_root, "afcv", system_kwargs=system_preset("afcv", "tiny"), end_to_end=True, visual="debug",
                 size=32, max_epochs=1, batch_size=4, progress=False, root_dir=tmp_path, vis_options=VIS_OPTIONS)
    task: Any = result.task
    assert task.backbone is not None and math.isfinite(result.metrics["train/loss_epoch"])
    assert np.isfinite(result.metrics["val/ap"])
