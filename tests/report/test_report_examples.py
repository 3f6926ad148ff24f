"""Examples of trained systems on validation items: the arrays validation saw, scored as validation scores.

One tiny SynthAV (64 px: C5 is 2 x 2) with train and val splits and solo clips, cached with the
debug backbone, and one AViS-Net trained on it for an epoch, shared by the module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from avlab.backbones import visual_bundle
from avlab.datasets.synth import generate, load_synth
from avlab.eval import SeparationMeter, bss_eval, write_ytvis_results
from avlab.models import create_system, system_preset
from avlab.report import (
    loss_curves_figure,
    segmentation_examples,
    separation_examples,
    vis_examples,
)
from avlab.store import cache_features, open_store
from avlab.testing.ytvis import uncompressed_rle
from avlab.train import NaturalFrames, StoreFrames, collate, fit, store_info, ytvis_ground_truth


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("report-synth") / "synth", num_videos={"train": 2, "val": 2}, size=64,
                    fps=4, seconds=1.0, renderer="additive", splits=["train", "val"], num_solo={"train": 2, "val": 2})


@pytest.fixture(scope="module")
def mix_store(synth_root: Path) -> Any:
    return cache_features(synth_root, synth_root.parent / "mix.zarr", visual="debug", size=64, progress=False)


@pytest.fixture(scope="module")
def solo_store(synth_root: Path) -> Path:
    solo = load_synth(synth_root, split=["train", "val"], solo=True)
    cache_features(solo, synth_root.parent / "solo.zarr", visual="debug", size=64, progress=False)
    return synth_root.parent / "solo.zarr"


@pytest.fixture(scope="module")
def run(mix_store: Any, solo_store: Path, synth_root: Path) -> Any:
    return fit(mix_store, "avisnet", system_kwargs=system_preset("avisnet", "tiny"), solo_store=solo_store,
               max_epochs=1, batch_size=8, separation_eval_items=2, progress=False, root_dir=synth_root.parent / "runs")


# Segmentation.


def test_segmentation_examples_hold_the_stores_ground_truth_and_frames(run: Any, mix_store: Any,
                                                                        synth_root: Path) -> None:
    examples = segmentation_examples(mix_store, run.system, source=synth_root, num=3, seed=0)
    n = len(examples.video_ids)
    assert n == 3 and examples.frames.shape == (n, 64, 64, 3) and examples.frames.dtype == np.uint8
    assert examples.truth.shape == (n, 64, 64) and examples.truth.dtype == bool
    assert examples.attention is not None and examples.attention.shape == (n, 3, 2, 2)  # Q = 3 in the tiny preset
    assert examples.logan_map is not None and examples.logan_map.shape == (n, 2, 2)
    assert examples.ious.shape == (n,) and ((0 <= examples.probabilities) & (examples.probabilities <= 1)).all()
    assert all(video.startswith("val_") for video in examples.video_ids)
    assert examples.truth.any(axis=(1, 2)).all()  # every frame shows a sounding object
    ds = open_store(mix_store.encoding["source"])
    for k, (video, t) in enumerate(zip(examples.video_ids, examples.frame_indices.tolist(), strict=True)):
        stored = ds["mask"].sel(video=video).isel(view=0, frame=t).values
        assert np.array_equal(examples.truth[k], stored == 1)
        assert examples.frame_times[k] == ds["frame_time"].sel(video=video).isel(frame=t).values
    # The frames shown are the ones the store's features were computed from.
    backbone = visual_bundle("debug").load()
    with torch.no_grad():
        c5 = backbone(torch.from_numpy(examples.frames).permute(0, 3, 1, 2).float() / 255)["c5"]
    stored_c5 = np.stack([ds["visual_c5"].sel(video=v).isel(view=0, frame=t).values.astype(np.float32)
                          for v, t in zip(examples.video_ids, examples.frame_indices.tolist(), strict=True)])
    np.testing.assert_allclose(c5.numpy(), stored_c5, rtol=1e-2, atol=1e-2)
    assert examples.titles[0] == f"{examples.video_ids[0]} @ {examples.frame_times[0]:.2f} s"


def test_segmentation_predictions_are_validations(run: Any, mix_store: Any, synth_root: Path) -> None:
    examples = segmentation_examples(mix_store, run.system, source=synth_root, num=100)
    # Validation's items, built by hand as the training tests do.
    path = mix_store.encoding["source"]
    dataset = NaturalFrames(StoreFrames(path, split="val"), num_sources=store_info(path)["num_sources"],
                            num_stft_frames=48, annotated_only=True)
    batch = collate([dataset[i] for i in range(len(dataset))])
    with torch.no_grad():
        logits = run.system(batch)["mask_logits"]
    ids = StoreFrames(path).clips.video_ids
    where = {(ids[dataset.frames.items[p][0]], dataset.frames.items[p][1]): i for i, p in enumerate(dataset.positions)}
    shown = [where[(v, t)] for v, t in zip(examples.video_ids, examples.frame_indices.tolist(), strict=True)]
    sounding = [i for i in range(len(dataset)) if bool((batch["mask"][i] == 1).any())]
    assert sorted(shown) == sounding  # num beyond the count: every annotated frame with a sounding object
    np.testing.assert_allclose(examples.probabilities, torch.sigmoid(logits[shown]).numpy(), atol=1e-6)
    binary = examples.probabilities > 0.5
    truth = examples.truth
    by_hand = [(b & g).sum() / (b | g).sum() if (b | g).any() else 1.0 for b, g in zip(binary, truth, strict=True)]
    np.testing.assert_allclose(examples.ious, by_hand)


def test_segmentation_examples_are_chosen_by_the_seed_and_load_checkpoints(run: Any, mix_store: Any,
                                                                           synth_root: Path) -> None:
    first = segmentation_examples(mix_store, run.system, source=synth_root, num=2, seed=3)
    # A store path, a checkpoint and a manifest in place of the opened store, the system and the folder.
    again = segmentation_examples(mix_store.encoding["source"], run.checkpoint, source=load_synth(synth_root, split="val"),
                                  num=2, seed=3)
    assert first.video_ids == again.video_ids and np.array_equal(first.frame_indices, again.frame_indices)
    np.testing.assert_allclose(first.probabilities, again.probabilities, atol=1e-6)
    picks = set()
    for seed in range(6):
        drawn = segmentation_examples(mix_store, run.system, source=synth_root, num=2, seed=seed)
        picks.add(tuple(zip(drawn.video_ids, drawn.frame_indices.tolist(), strict=True)))
    assert len(picks) > 1
    # Predictions in eval mode; a system in training mode is left in it.
    run.system.train()
    try:
        during = segmentation_examples(mix_store, run.system, source=synth_root, num=2, seed=3)
        assert run.system.training
    finally:
        run.system.eval()
    np.testing.assert_allclose(during.probabilities, first.probabilities, atol=1e-6)


def test_segmentation_examples_explain_a_wrong_source(run: Any, mix_store: Any, synth_root: Path) -> None:
    with pytest.raises(ValueError, match="not in synthav"):
        segmentation_examples(mix_store, run.system, source=load_synth(synth_root, split="train"), num=1)
    with pytest.raises(ValueError, match="num must be"):
        segmentation_examples(mix_store, run.system, source=synth_root, num=0)


# Separation.


def test_separation_examples_are_validations_mixtures_scored_by_bss_eval(run: Any, mix_store: Any, solo_store: Path,
                                                                         synth_root: Path) -> None:
    examples = separation_examples(mix_store, solo_store, run.system, num=2)
    assert len(examples) == 2
    # Each mixture holds the split's two solo clips (num_mix 2): their classes name the sources.
    classes = [r.category for r in load_synth(synth_root, split="val", solo=True)]
    meter = SeparationMeter()
    for example in examples:
        k, f, t = example.estimates.shape
        assert (k, f) == (2, 512) and example.references.shape == (k, f, t) and example.mixture.shape == (f, t)
        assert t == 44  # the 1 s clips' STFT frames (the window of 48 is zero-padded after them)
        # Binary masks on the mixture: each separated bin is the mixture's or zero.
        assert np.all((example.estimates == 0) | np.isclose(example.estimates, example.mixture[None]))
        assert np.all(example.references.sum(axis=0) >= example.mixture * (1 - 1e-5))  # |a + b| <= |a| + |b|
        samples = (t - 1) * example.hop_length
        assert example.estimate_waveforms.shape == (k, samples) == example.reference_waveforms.shape
        assert example.labels == [classes[0], classes[1]] or example.labels == [classes[1], classes[0]]
        assert example.scored
        scores = bss_eval(example.reference_waveforms, example.estimate_waveforms)
        for name in ("sdr", "sir", "sar"):
            np.testing.assert_allclose(getattr(example, name), scores[name])
        meter.update(example.reference_waveforms, example.estimate_waveforms, example.mixture_waveform)
    # The run's validation scored the same two mixtures: the same means.
    figures = meter.compute()
    assert run.metrics["val/separation_skipped"] == figures["num_skipped"] == 0
    for name in ("sdr", "sir", "sar", "sdr_mix"):
        assert run.metrics[f"val/{name}"] == pytest.approx(figures[name], rel=1e-4, abs=1e-4), name
    assert figures["sdr"] == pytest.approx(np.mean([e.sdr.mean() for e in examples]))


def test_separation_examples_with_frames_hold_each_pixels_sound(run: Any, mix_store: Any, solo_store: Path,
                                                                 synth_root: Path) -> None:
    solo = load_synth(synth_root, split="val", solo=True)
    examples = separation_examples(mix_store, solo_store, run.system, num=2, source=solo)
    backbone = visual_bundle("debug").load()
    for example in examples:
        k, f, t = example.estimates.shape
        assert example.frames is not None and example.frames.shape == (k, 64, 64, 3)
        assert example.pixel_masks is not None and example.pixel_masks.shape == (k, 2, 2, f, t)  # C5 is 2 x 2
        assert example.pixel_masks.dtype == np.float16
        assert ((0 <= example.pixel_masks) & (example.pixel_masks <= 1)).all()
        assert example.mixture_stft is not None
        np.testing.assert_allclose(np.abs(example.mixture_stft), example.mixture, rtol=1e-6)
        # Each source's frame is a frame of that source's solo clip: its class is the source's label.
        with torch.no_grad():
            c5 = backbone(torch.from_numpy(example.frames).permute(0, 3, 1, 2).float() / 255)["c5"]
        stored = open_store(solo_store)
        for source in range(k):
            clips = [r.video_id for r in solo if r.category == example.labels[source]]
            found = [stored["visual_c5"].sel(video=v).isel(view=0).values.astype(np.float32) for v in clips]
            assert any(np.abs(frames - c5[source].numpy()).max(axis=(1, 2, 3)).min() < 2e-2 for frames in found)
    # Without the raw dataset there are no frames to click.
    assert separation_examples(mix_store, solo_store, run.system, num=1)[0].pixel_masks is None


def test_separation_examples_refuse_systems_that_do_not_separate(mix_store: Any, solo_store: Path,
                                                                 synth_root: Path) -> None:
    silent = create_system("avisnet", channels=(8, 16, 32), separation=False, **system_preset("avisnet", "tiny"))
    with pytest.raises(ValueError, match="does not separate"):
        separation_examples(mix_store, solo_store, silent)
    separating = create_system("avisnet", channels=(8, 16, 32), **system_preset("avisnet", "tiny"))
    with pytest.raises(ValueError, match="no solo clips in split 'test'"):
        separation_examples(mix_store, solo_store, separating, split="test")


# Video instance segmentation.


def encoded(mask: np.ndarray) -> dict[str, Any]:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def test_vis_examples_decode_validations_results_onto_the_right_videos(mix_store: Any, synth_root: Path,
                                                                       tmp_path: Path) -> None:
    path = mix_store.encoding["source"]
    categories = store_info(path)["categories"]
    truth = ytvis_ground_truth(StoreFrames(path, split="val"), categories)  # what VIS validation scores against
    assert [v["id"] for v in truth["videos"]] == [3, 4]  # store positions + 1: after the 2 training videos
    # Tracks as validation writes them: the ground truth's instances, a low-scoring one last.
    results = [{"video_id": a["video_id"], "category_id": a["category_id"], "score": 0.9,
                "segmentations": a["segmentations"]} for a in truth["annotations"]]
    first_video = [r for r in results if r["video_id"] == 3]
    results.append({**first_video[0], "score": 0.1})
    written = write_ytvis_results(tmp_path / "ytvis_results.json", results, truth)
    examples = vis_examples(written, synth_root, num_videos=5)
    assert [e.ytvis_id for e in examples] == [3, 4] and [e.video_id for e in examples] == ["val_0000", "val_0001"]
    ds = open_store(path)
    for example in examples:
        instances = ds["instance_mask"].sel(video=example.video_id).isel(view=0).values  # (T, I, H, W)
        kinds = ds["instance_category"].sel(video=example.video_id).values
        shown = [i for i in range(instances.shape[1]) if kinds[i] >= 1 and (instances[:, i] == 1).any()]
        assert sorted(example.tracks) == list(range(len(shown)))  # the low-scoring track is left out
        for track, instance in zip(sorted(example.tracks), shown, strict=True):
            assert np.array_equal(example.tracks[track], instances[:, instance] == 1)
            assert example.labels[track] == categories[kinds[instance]] and example.scores[track] == 0.9
        decoded = load_synth(synth_root, split="val")[example.video_id].load_frames(size=64)
        assert example.frames.shape == (len(decoded.frames), 64, 64, 3)
        assert np.array_equal(example.frames, decoded.frames)
    # The same videos when the store names them, and only the first with num_videos=1.
    again = vis_examples(written, synth_root, store=mix_store, num_videos=1)
    assert len(again) == 1 and again[0].video_id == "val_0000"
    assert all(np.array_equal(again[0].tracks[k], examples[0].tracks[k]) for k in examples[0].tracks)


def test_vis_examples_decode_hand_written_rles_exactly(synth_root: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    masks = rng.random((4, 64, 64)) > 0.7  # (T, H, W), every pixel its own draw
    masks[1] = False
    segmentations: list[Any] = [encoded(masks[0]), None, uncompressed_rle(masks[2]), encoded(masks[3])]
    results = [{"video_id": 2, "category_id": 1, "score": 0.5, "segmentations": segmentations}]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    # An end-to-end run numbers its validation split's videos: pass that split's manifest.
    [example] = vis_examples(path, load_synth(synth_root, split="val"))
    assert example.video_id == "val_0001" and example.ytvis_id == 2
    assert np.array_equal(example.tracks[0], masks)
    assert example.labels == {0: load_synth(synth_root, split="val").categories[1]}
    # The whole dataset numbers video 2 as a training video: a clear error, not wrong frames.
    with pytest.raises(ValueError, match="split 'train'"):
        vis_examples(path, synth_root)
    assert vis_examples(path, load_synth(synth_root, split="val"), score_threshold=0.6) == []
    with pytest.raises(ValueError, match="not a YouTube-VIS results list"):
        path.write_text(json.dumps({"videos": []}))
        vis_examples(path, synth_root)


def test_loss_curves_of_a_fit_run(run: Any) -> None:
    figure = loss_curves_figure({"avisnet": run.log_dir / "metrics.csv"})
    train, val = figure.axes[0].lines
    assert train.get_xdata().tolist() == [1] and train.get_ydata().tolist() == pytest.approx([run.metrics["train/loss_epoch"]])
    assert val.get_ydata().tolist() == pytest.approx([run.metrics["val/loss"]])
