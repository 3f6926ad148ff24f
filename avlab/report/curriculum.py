"""AViS-Net's hide-and-detect curriculum on validation frames: what each stage hides, and the mask then.

`curriculum_examples` takes the frames `segmentation_examples` shows (validation's own items),
hides their C5 features as training hides them at chosen epochs (the system's `HideAndDetect`
on the regions `AViSNet.hide_regions` gives, with a fixed training step), and runs the system in
eval mode on the occluded features. `avlab.widgets.CurriculumViewer` steps through the result.

Example:
    >>> import tempfile
    >>> from avlab.models import create_system, system_preset
    >>> from avlab.testing import tiny_store
    >>> tmp = tempfile.mkdtemp()
    >>> store = tiny_store(tmp)  # SynthAV's train split in tmp/synth, cached
    >>> system = create_system("avisnet", channels=(8, 16, 32), separation=False,
    ...                        hide_and_detect={"stages": (0, 2), "epochs_per_stage": 1, "p": 1.0},
    ...                        **system_preset("avisnet", "tiny"))
    >>> examples = curriculum_examples(store, system, source=tmp + "/synth", split="train", num=2)
    >>> examples.epochs.tolist(), examples.grid_sizes.tolist(), examples.hidden.shape
    ([0, 1], [0, 2], (2, 2, 32, 32))
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from avlab.eval import mask_iou
from avlab.heads import HideAndDetect
from avlab.report.examples import (
    Source,
    _as_system,
    _datamodule,
    _forward,
    segmentation_examples,
)
from avlab.train.datamodule import store_path
from avlab.train.datasets import NaturalFrames
from avlab.train.frames import StoreFrames
from avlab.train.items import collate

__all__ = ["CurriculumExamples", "curriculum_examples"]


@dataclass(frozen=True)
class CurriculumExamples:
    """Validation frames hidden as the hide-and-detect curriculum hides them, and a system's masks then.

    E epochs, N frames; (h, w) is the C5 grid the hiding works on, (H, W) the frames' size.

    Attributes:
        video_ids: The video of each frame.
        frame_indices: (N,) each frame's index in its video's cached frames.
        frame_times: (N,) each frame's time in seconds.
        frames: (N, H, W, 3) uint8 frames at the masks' size.
        truth: (N, H, W) bool ground-truth sounding-object masks.
        probabilities: (N, H, W) float32 predicted probabilities on the intact features.
        ious: (N,) IoU of the unoccluded predictions (`avlab.eval.mask_iou`).
        epochs: (E,) the training epochs shown.
        stages: (E,) the curriculum's stage at each epoch (`HideAndDetect.stage`).
        grid_sizes: (E,) its grid size g at each epoch, 0 meaning the whole region.
        step: The training step that seeded the draws (the same for every epoch).
        hide_masks: (E, N, h, w) bool: `HideAndDetect`'s hide mask on the C5 grid.
        hidden: (E, N, H, W) bool: the hide masks on the frames (each C5 cell covers its pixels).
        occluded_probabilities: (E, N, H, W) float32 probabilities on the occluded features.
        occluded_ious: (E, N) IoU of the occluded predictions.
    """

    video_ids: list[str]
    frame_indices: np.ndarray
    frame_times: np.ndarray
    frames: np.ndarray
    truth: np.ndarray
    probabilities: np.ndarray
    ious: np.ndarray
    epochs: np.ndarray
    stages: np.ndarray
    grid_sizes: np.ndarray
    step: int
    hide_masks: np.ndarray
    hidden: np.ndarray
    occluded_probabilities: np.ndarray
    occluded_ious: np.ndarray

    @property
    def titles(self) -> list[str]:
        """A label per frame: its video and time."""
        return [f"{video} @ {time:.2f} s" for video, time in zip(self.video_ids, self.frame_times, strict=True)]


def cells_to_pixels(cells: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour upsampling of grid masks to pixels: pixel (y, x) takes cell (y * h // H, x * w // W).

    When H and W are multiples of h and w (AViS-Net's C5 on its frames), each cell becomes
    the block of pixels that `torch.nn.functional.adaptive_max_pool2d` pooled into it.

    Args:
        cells: (..., h, w) masks on a grid.
        size: (H, W) of the result.

    Returns:
        (..., H, W), the dtype of `cells`.

    Example:
        >>> cells_to_pixels(np.array([[True, False]]), (2, 4)).astype(int).tolist()
        [[1, 1, 0, 0], [1, 1, 0, 0]]
    """
    cells = np.asarray(cells)
    rows = np.arange(size[0]) * cells.shape[-2] // size[0]
    cols = np.arange(size[1]) * cells.shape[-1] // size[1]
    return cells[..., rows[:, None], cols[None, :]]


def curriculum_examples(
    store: Any,
    system: nn.Module | str | os.PathLike[str],
    *,
    source: Source,
    hide: HideAndDetect | None = None,
    epochs: Sequence[int] | None = None,
    num: int = 4,
    step: int = 0,
    seed: int = 0,
    split: str = "val",
    num_stft_frames: int | None = None,
) -> CurriculumExamples:
    """Hide validation frames' C5 features as training would at each epoch, and predict on them.

    The frames are those ``segmentation_examples(store, system, source=source, num=num,
    seed=seed, split=split)`` shows, with its unoccluded predictions. For each epoch, `hide`
    (in training mode, on a copy: the system's module is left as it is) hides the batch's C5
    as `AViSNet.forward` does in training: ``hide(c5, system.hide_regions(batch),
    epoch=epoch, step=step)``, every frame of the batch drawn from the one generator of
    `step`. The system then runs in eval mode on the batch with the occluded C5, as
    validation runs it, so only the hiding differs from the unoccluded prediction.

    Args:
        store: The feature store the system was trained on (path, or opened).
        system: A trained AViS-Net (`FitResult.system`) or its checkpoint.
        source: The raw dataset the store was cached from, for the RGB frames.
        hide: The curriculum to apply; default the system's own (``system.hide``).
        epochs: Epochs to show; default the first epoch of each stage.
        num: Frames (fewer when the split has fewer).
        step: Training step seeding the draws.
        seed: Seed of the choice of frames.
        split: The split to draw frames from.
        num_stft_frames: T of the separation window, when the run set it (default: `fit`'s).

    Returns:
        `CurriculumExamples`, frames in (video, time) order, epochs in the order given.

    Raises:
        ValueError: The system has no hide-and-detect module and `hide` is None; the system is
            not AViS-Net (no ``hide_regions``); `epochs` is empty or negative; or as
            `segmentation_examples`.

    Example:
        >>> import tempfile
        >>> from avlab.models import create_system, system_preset
        >>> from avlab.testing import tiny_store
        >>> tmp = tempfile.mkdtemp()
        >>> store = tiny_store(tmp)
        >>> plain = create_system("avisnet", channels=(8, 16, 32), separation=False,
        ...                       **system_preset("avisnet", "tiny"))
        >>> curriculum_examples(store, plain, source=tmp + "/synth", split="train")
        Traceback (most recent call last):
        ...
        ValueError: AViSNet has no hide-and-detect module (built without hide_and_detect): pass hide=HideAndDetect(...), or build the system with hide_and_detect=True
        >>> examples = curriculum_examples(store, plain, source=tmp + "/synth", split="train", num=1,
        ...                                hide=HideAndDetect(stages=(0, 4), p=1.0), epochs=[0, 5, 9])
        >>> examples.stages.tolist(), examples.grid_sizes.tolist(), examples.occluded_ious.shape
        ([0, 1, 1], [0, 4, 4], (3, 1))
    """
    model = _as_system(system)
    hide_regions = getattr(model, "hide_regions", None)
    if not callable(hide_regions):
        raise ValueError(f"{type(model).__name__} has no hide_regions: the hide-and-detect curriculum is "
                         "AViS-Net's (create_system('avisnet', hide_and_detect=True))")
    module = getattr(model, "hide", None) if hide is None else hide
    if not isinstance(module, HideAndDetect):
        raise ValueError(f"{type(model).__name__} has no hide-and-detect module (built without hide_and_detect): "
                         "pass hide=HideAndDetect(...), or build the system with hide_and_detect=True")
    if epochs is None:
        epochs = [k * module.epochs_per_stage for k in range(len(module.stages))]
    shown = [int(e) for e in epochs]
    if not shown or min(shown) < 0:
        raise ValueError(f"epochs must be a non-empty list of epochs >= 0, got {list(epochs)}")
    seen = segmentation_examples(store, model, source=source, split=split, num=num, seed=seed,
                                 num_stft_frames=num_stft_frames)
    batch = _batch_of(store, model, seen.video_ids, seen.frame_indices, split=split, seed=seed,
                      num_stft_frames=num_stft_frames)
    regions = hide_regions(batch)  # (N, S, h, w)
    if regions is None:
        raise ValueError("the validation batch carries no source regions or masks to hide")
    c5 = batch["visual_c5"]  # (N, C5, h, w)
    hiding = copy.deepcopy(module).train()  # training mode hides; the copy keeps the system's call count
    hide_masks, probabilities, ious = [], [], []
    for epoch in shown:
        occluded, hidden = hiding(c5, regions, epoch=epoch, step=step)  # (N, C5, h, w), (N, h, w)
        logits = _forward(model, {**batch, "visual_c5": occluded})["mask_logits"].float()  # (N, H, W)
        hide_masks.append(hidden.cpu().numpy())
        probabilities.append(torch.sigmoid(logits).numpy().astype(np.float32))
        ious.append(mask_iou(logits, seen.truth))
    cells = np.stack(hide_masks)  # (E, N, h, w)
    return CurriculumExamples(
        video_ids=seen.video_ids,
        frame_indices=seen.frame_indices,
        frame_times=seen.frame_times,
        frames=seen.frames,
        truth=seen.truth,
        probabilities=seen.probabilities,
        ious=seen.ious,
        epochs=np.asarray(shown, np.int64),
        stages=np.asarray([module.stage(e) for e in shown], np.int64),
        grid_sizes=np.asarray([module.grid_size(e) for e in shown], np.int64),
        step=step,
        hide_masks=cells,
        hidden=cells_to_pixels(cells, seen.truth.shape[-2:]),
        occluded_probabilities=np.stack(probabilities),
        occluded_ious=np.stack(ious).astype(np.float64),
    )


def _batch_of(store: Any, model: nn.Module, video_ids: Sequence[str], frame_indices: np.ndarray, *, split: str,
              seed: int, num_stft_frames: int | None) -> dict[str, torch.Tensor]:
    """Validation's batch of the frames ``(video id, frame index)``, as `segmentation_examples` built it."""
    data = _datamodule(store_path(store), model, split=split, seed=seed, num_stft_frames=num_stft_frames)
    dataset = data.val_sets[0]
    assert isinstance(dataset, NaturalFrames)
    table = dataset.frames
    assert isinstance(table, StoreFrames)
    names = table.clips.video_ids
    where = {(names[video], int(t)): i for i, (video, t) in enumerate(table.items[p] for p in dataset.positions)}
    chosen = [where[(video, int(t))] for video, t in zip(video_ids, frame_indices, strict=True)]
    return collate([dataset[i] for i in chosen])
