"""CurriculumViewer over synthetic examples, and curriculum_examples end to end on a tiny store and AViS-Net."""

from __future__ import annotations

import copy
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from avlab.heads import HideAndDetect
from avlab.models import create_system, system_preset
from avlab.report import CurriculumExamples, curriculum_examples, segmentation_examples
from avlab.testing import tiny_store
from avlab.testing.examples import synthetic_curriculum_examples
from avlab.train import NaturalFrames, StoreFrames, collate, store_info
from avlab.widgets import CurriculumViewer
from avlab.widgets.render import (
    HIDDEN_OUTLINE,
    curriculum_iou_figure,
    instance_colors,
    mask_outline,
    occlusion_overlay,
    truth_and_prediction,
)

CURRICULUM = {"stages": (0, 2), "epochs_per_stage": 1, "p": 1.0}


def decoded(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


# The viewer on synthetic examples.


def test_moving_the_sliders_shows_that_epochs_occlusion_of_that_frame() -> None:
    hide = HideAndDetect(stages=(0, 2, 4), epochs_per_stage=2, p=0.5, seed=1)
    examples = synthetic_curriculum_examples(3, epochs=(0, 2, 4), hide=hide, size=16, grid=4, step=5)
    viewer = CurriculumViewer(examples)
    assert viewer.epoch.options == (("0", 0), ("2", 1), ("4", 2)) and viewer.frame.max == 2
    expected = occlusion_overlay(examples.frames[0], examples.hidden[0, 0], examples.occluded_probabilities[0, 0],
                                 examples.truth[0])
    assert (viewer.image == expected).all()

    viewer.epoch.value = 1
    viewer.frame.value = 2
    expected = occlusion_overlay(examples.frames[2], examples.hidden[1, 2], examples.occluded_probabilities[1, 2],
                                 examples.truth[2])
    assert (viewer.image == expected).all()
    assert (decoded(viewer.picture.value) == expected).all()  # the PNG shown is the image
    unoccluded = truth_and_prediction(examples.frames[2], examples.truth[2], examples.probabilities[2])[1]
    assert (decoded(viewer.unoccluded_picture.value) == unoccluded).all()
    assert viewer.caption.value.startswith("epoch 2: stage 1, g = 2 (2 x 2 cells of the box) · video2 @ 1.25 s · ")
    assert viewer.caption.value.endswith(f"IoU {examples.occluded_ious[1, 2]:.2f} occluded vs "
                                         f"{examples.ious[2]:.2f} unoccluded")

    # What is hidden is HideAndDetect's draw for that epoch and step, on the truth's 4 x 4 grid.
    regions = F.adaptive_max_pool2d(torch.from_numpy(examples.truth).float()[:, None], (4, 4)) > 0.5
    _, cells = hide.train()(torch.zeros(3, 1, 4, 4), regions, epoch=2, step=5)  # (N, 4, 4)
    assert cells.any() and np.array_equal(examples.hide_masks[1], cells.numpy())
    assert np.array_equal(viewer.hidden(), np.repeat(np.repeat(cells[2].numpy(), 4, axis=0), 4, axis=1))
    picture = decoded(viewer.picture.value)
    assert (picture[mask_outline(viewer.hidden()) & ~mask_outline(examples.truth[2])] == HIDDEN_OUTLINE).all()


def test_the_iou_strip_follows_the_epoch_and_the_frame() -> None:
    examples = synthetic_curriculum_examples(2, epochs=(0, 1, 2))
    viewer = CurriculumViewer(examples)
    first = viewer.iou_strip.value
    viewer.epoch.value = 2
    moved = viewer.iou_strip.value
    assert moved != first  # the marker moved
    viewer.epoch.value = 0
    assert viewer.iou_strip.value == first  # redrawn identically
    figure = curriculum_iou_figure(examples.epochs, examples.occluded_ious[:, 1], float(examples.ious[1]), current=2)
    occluded, unoccluded, marker = figure.axes[0].lines
    assert occluded.get_ydata().tolist() == examples.occluded_ious[:, 1].tolist()
    assert list(unoccluded.get_ydata()) == [examples.ious[1]] * 2
    assert marker.get_xdata().tolist() == [2.0]


def test_one_epoch_and_one_frame_disable_the_sliders_and_bad_shapes_are_refused() -> None:
    examples = synthetic_curriculum_examples(1, epochs=(0,))
    viewer = CurriculumViewer(examples)
    assert viewer.epoch.disabled and viewer.frame.disabled
    bundle = viewer._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == viewer.widget.model_id
    from dataclasses import replace

    with pytest.raises(ValueError, match="hidden masks"):
        CurriculumViewer(replace(examples, hidden=examples.hidden[:, :0]))


def test_occlusion_overlay_darkens_outlines_and_tints() -> None:
    frame = np.full((8, 8, 3), 200, np.uint8)
    hidden = np.zeros((8, 8), bool)
    hidden[:4, :4] = True
    predicted = np.zeros((8, 8))
    predicted[4:, 4:] = 0.9
    truth = np.zeros((8, 8), bool)
    truth[5:7, 5:7] = True
    out = occlusion_overlay(frame, hidden, predicted, truth, darken=0.5, alpha=0.5)
    assert out[1, 1].tolist() == [100, 100, 100]  # inside the hidden region, darkened
    assert out[0, 0].tolist() == HIDDEN_OUTLINE.tolist() and out[3, 1].tolist() == HIDDEN_OUTLINE.tolist()
    tint = instance_colors(2)[1].astype(float)
    assert out[7, 7].tolist() == np.round(0.5 * 200 + 0.5 * tint).astype(int).tolist()  # predicted, tinted
    assert out[5, 5].tolist() == [255, 255, 255]  # the truth's outline
    assert out[0, 7].tolist() == [200, 200, 200]  # untouched
    with pytest.raises(ValueError, match="hidden, predicted and truth"):
        occlusion_overlay(frame, hidden[:4], predicted, truth)


# curriculum_examples end to end: a tiny store (64 px: C5 is 2 x 2) and an untrained tiny AViS-Net.


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("curriculum")


@pytest.fixture(scope="module")
def store(folder: Path) -> Any:
    return tiny_store(folder, size=64)


@pytest.fixture(scope="module")
def system() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_system("avisnet", channels=(8, 16, 32), separation=False, hide_and_detect=CURRICULUM,
                         **system_preset("avisnet", "tiny"))


@pytest.fixture(scope="module")
def examples(store: Any, system: torch.nn.Module, folder: Path) -> CurriculumExamples:
    return curriculum_examples(store, system, source=folder / "synth", split="train", num=3, step=4)


def validation_batch(store: Any, examples: CurriculumExamples) -> dict[str, torch.Tensor]:
    """The examples' frames as validation's items, built by hand."""
    path = store.encoding["source"]
    dataset = NaturalFrames(StoreFrames(path, split="train"), num_sources=store_info(path)["num_sources"],
                            num_stft_frames=8, annotated_only=True)
    ids = StoreFrames(path).clips.video_ids
    where = {(ids[dataset.frames.items[p][0]], dataset.frames.items[p][1]): i for i, p in enumerate(dataset.positions)}
    chosen = [where[(v, t)] for v, t in zip(examples.video_ids, examples.frame_indices.tolist(), strict=True)]
    return collate([dataset[i] for i in chosen])


def test_curriculum_examples_hide_the_regions_training_hides(examples: CurriculumExamples, store: Any,
                                                             system: torch.nn.Module, folder: Path) -> None:
    n = len(examples.video_ids)
    assert n == 3 and examples.epochs.tolist() == [0, 1] and examples.grid_sizes.tolist() == [0, 2]
    assert examples.stages.tolist() == [0, 1] and examples.step == 4
    assert examples.hide_masks.shape == (2, n, 2, 2) and examples.hidden.shape == (2, n, 64, 64)
    assert examples.occluded_probabilities.shape == (2, n, 64, 64) and examples.occluded_ious.shape == (2, n)
    assert examples.hidden.any(axis=(2, 3)).all()  # p = 1: something is hidden on every frame at every stage
    # Each C5 cell covers its 32 x 32 pixels.
    assert np.array_equal(examples.hidden, examples.hide_masks.repeat(32, axis=2).repeat(32, axis=3))
    # The frames and the unoccluded predictions are segmentation_examples'.
    seen = segmentation_examples(store, system, source=folder / "synth", split="train", num=3)
    assert seen.video_ids == examples.video_ids and np.array_equal(seen.frames, examples.frames)
    np.testing.assert_array_equal(seen.probabilities, examples.probabilities)
    # AViS-Net in training hides the same cells at the same (epoch, step).
    batch = validation_batch(store, examples)
    training = copy.deepcopy(system).train()  # a copy: training mode updates batch-norm statistics
    with torch.no_grad():
        for e, epoch in enumerate(examples.epochs.tolist()):
            out = training(batch, output_size=(64, 64), epoch=epoch, step=4)
            assert np.array_equal(out["hide_mask"].numpy(), examples.hide_masks[e]), epoch


def test_the_occluded_prediction_is_the_systems_on_the_hidden_features(examples: CurriculumExamples, store: Any,
                                                                      system: torch.nn.Module) -> None:
    batch = validation_batch(store, examples)
    system.eval()  # as validation runs it
    for e in range(len(examples.epochs)):
        cells = torch.from_numpy(examples.hide_masks[e])  # (N, 2, 2)
        hidden = {**batch, "visual_c5": batch["visual_c5"].masked_fill(cells[:, None], 0.0)}  # fill="zero"
        with torch.no_grad():
            logits = system(hidden, output_size=(64, 64))["mask_logits"]
        np.testing.assert_allclose(examples.occluded_probabilities[e], torch.sigmoid(logits).numpy(), atol=1e-6)
        # Hiding changed what the model saw, so what it predicted.
        assert not np.allclose(examples.occluded_probabilities[e], examples.probabilities, atol=1e-6)
    viewer = CurriculumViewer(examples)
    viewer.epoch.value = 1
    viewer.frame.value = 2
    assert (viewer.image == occlusion_overlay(examples.frames[2], examples.hidden[1, 2],
                                              examples.occluded_probabilities[1, 2], examples.truth[2])).all()


def test_curriculum_examples_need_a_curriculum_and_aviss_regions(store: Any, folder: Path) -> None:
    plain = create_system("avisnet", channels=(8, 16, 32), separation=False, **system_preset("avisnet", "tiny"))
    with pytest.raises(ValueError, match="pass hide=HideAndDetect"):
        curriculum_examples(store, plain, source=folder / "synth", split="train")
    given = curriculum_examples(store, plain, source=folder / "synth", split="train", num=1,
                                hide=HideAndDetect(stages=(0, 4), epochs_per_stage=3, p=1.0), epochs=[7, 0])
    assert given.epochs.tolist() == [7, 0] and given.grid_sizes.tolist() == [4, 0]
    visual = create_system("visual_only", channels=(8, 16, 32), **system_preset("visual_only", "tiny"))
    with pytest.raises(ValueError, match="no hide_regions"):
        curriculum_examples(store, visual, source=folder / "synth", split="train", hide=HideAndDetect())
    with pytest.raises(ValueError, match="epochs"):
        curriculum_examples(store, plain, source=folder / "synth", split="train", hide=HideAndDetect(), epochs=[])
