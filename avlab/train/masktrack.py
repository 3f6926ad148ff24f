"""`fit_masktrack`: train the MaskTrack R-CNN baseline end to end from raw frames, as the paper does.

Each training item is a query frame of a video (every annotated frame of every training video,
once per epoch) paired with a reference frame drawn from the same video (within
`max_frame_gap` frames when given). The loss is Mask R-CNN's (torchvision's RPN, box and mask
losses on the query frame) plus the tracking head's cross-entropy over (new instance +
reference instances) (`masktrack_loss`). The optimiser is SGD with momentum, a linear warm-up
and step decays (the paper's 12-epoch schedule by default: x0.1 after epochs 8 and 11).

Everything random (initialisation, data order, reference frames, RoI sampling) follows `seed`;
a run on the CPU repeats bit for bit. The checkpoint (`avlab.models.masktrack.load_masktrack`
rebuilds it with no arguments) and ``metrics.json`` go to `root_dir`.

Example:
    >>> from avlab.train.masktrack import fit_masktrack
    >>> fit_masktrack.__kwdefaults__["epochs"], fit_masktrack.__kwdefaults__["lr_steps"]
    (12, (8, 11))
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from avlab.datasets.detect import open_source
from avlab.datasets.manifest import Manifest, VideoRecord
from avlab.errors import AvlabError, DatasetError
from avlab.models.masktrack import (
    MaskTrackRCNN,
    boxes_from_masks,
    evaluate_masktrack,
    save_masktrack,
)

__all__ = ["MaskTrackFitResult", "MaskTrackPairs", "fit_masktrack", "masktrack_loss"]

#: The paper's frame size: the shorter side 360, the longer at most 640.
_ASPECT = 640 / 360


def masktrack_loss(
    outputs: Mapping[str, torch.Tensor], *, track_weight: float = 1.0
) -> tuple[torch.Tensor, dict[str, float]]:
    """The training loss: the sum of Mask R-CNN's losses plus the weighted tracking cross-entropy.

    Args:
        outputs: `MaskTrackRCNN`'s training outputs: ``loss_*`` terms, ``track_logits``
            (P, M + 1) and ``track_labels`` (P,).
        track_weight: Weight of the tracking term (the paper sums the terms: 1).

    Returns:
        The total (a scalar with gradients) and every term as a float (``loss_track``
        included; 0 when no RoI was sampled).

    Example:
        >>> out = {"loss_mask": torch.tensor(0.5), "track_logits": torch.tensor([[0.0, 2.0, float("-inf")]]),
        ...        "track_labels": torch.tensor([1])}
        >>> total, parts = masktrack_loss(out)
        >>> round(parts["loss_track"], 4), round(float(total), 4)  # -2 + log(1 + e^2)
        (0.1269, 0.6269)
    """
    logits, labels = outputs["track_logits"], outputs["track_labels"]
    track = F.cross_entropy(logits, labels) if len(labels) else logits.sum() * 0.0
    terms = {key: value for key, value in outputs.items() if key.startswith("loss_")}
    total = sum(terms.values(), track_weight * track)
    parts = {key: float(value.detach()) for key, value in terms.items()}
    parts["loss_track"] = float(track.detach())
    return total, parts


class MaskTrackPairs(Dataset[dict[str, Any]]):
    """Query / reference frame pairs of annotated videos, one item per annotated query frame.

    The reference of item i in epoch e is drawn from ``default_rng([seed, e, i])`` among the
    video's other annotated frames (within `max_frame_gap` positions when given; the query
    itself when the video has one frame). Decoded videos are kept in a small cache.

    Args:
        manifest: Records with instance masks (YouTube-VIS, SynthAV).
        max_frame_gap: Largest distance between query and reference, in annotated frames;
            None: any frame of the video.
        seed: Seed of the reference draws.
        cache_videos: Decoded videos kept in memory.

    Shape:
        An item: ``image`` and ``reference_image`` (3, H, W) float in [0, 1]; ``target`` and
        ``reference_target`` with ``boxes`` (I, 4) float32 (pixels, x2 / y2 exclusive),
        ``labels`` (I,) int64 category ids, ``masks`` (I, H, W) uint8 and ``instance_ids``
        (I,) int64 of the instances visible in the frame; ``video`` and ``frame`` /
        ``reference_frame`` (positions) as ints.

    Raises:
        DatasetError: A record has no instance masks.
    """

    def __init__(
        self, manifest: Manifest, *, max_frame_gap: int | None = None, seed: int = 0, cache_videos: int = 16
    ) -> None:
        self.records = list(manifest)
        self.max_frame_gap = max_frame_gap
        self.seed = int(seed)
        self.epoch = 0
        self.cache_videos = max(1, int(cache_videos))
        self._cache: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self.index: list[tuple[int, int]] = []
        self.counts: list[int] = []  # annotated frames per video
        for v, record in enumerate(self.records):
            if record.masks is None:
                raise DatasetError(record.video_path or record.video_id, f"video {record.video_id!r} has no instance masks")
            length = getattr(record.masks, "length", None)
            count = int(length) if length is not None else self._video(v)["masks"].shape[1]
            self.counts.append(count)
            self.index.extend((v, t) for t in range(count))

    def set_epoch(self, epoch: int) -> None:
        """Draw the references of epoch `epoch` (`fit_masktrack` calls it before each epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.index)

    def _video(self, v: int) -> dict[str, Any]:
        if v in self._cache:
            self._cache.move_to_end(v)
            return self._cache[v]
        record: VideoRecord = self.records[v]
        masks = record.load_masks()
        if masks.kind != "instance" or masks.instance_ids is None or masks.category_ids is None:
            raise DatasetError(record.video_path or record.video_id, f"video {record.video_id!r}: not instance masks")
        frames = record.load_frames().frames[masks.frame_index]  # (T, H, W, 3) uint8
        images = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
        if tuple(images.shape[-2:]) != masks.size:
            images = F.interpolate(images, size=masks.size, mode="bilinear", align_corners=False)
        video = {
            "images": images,  # (T, 3, H, W)
            "masks": torch.from_numpy(np.ascontiguousarray(masks.data)),  # (I, T, H, W) uint8
            "ids": torch.from_numpy(masks.instance_ids.astype(np.int64)),
            "labels": torch.from_numpy(masks.category_ids.astype(np.int64)),
        }
        self._cache[v] = video
        while len(self._cache) > self.cache_videos:
            self._cache.popitem(last=False)
        return video

    def _target(self, video: Mapping[str, torch.Tensor], t: int) -> dict[str, torch.Tensor]:
        masks = video["masks"][:, t]  # (I, H, W)
        visible = (masks.flatten(1) > 0).any(dim=1)
        masks = masks[visible]
        return {"boxes": boxes_from_masks(masks), "labels": video["labels"][visible],
                "masks": masks, "instance_ids": video["ids"][visible]}

    def reference_of(self, i: int) -> int:
        """The reference frame position of item `i` in the current epoch."""
        v, t = self.index[i]
        count = self.counts[v]
        lo, hi = 0, count - 1
        if self.max_frame_gap is not None:
            lo, hi = max(0, t - self.max_frame_gap), min(count - 1, t + self.max_frame_gap)
        choices = [k for k in range(lo, hi + 1) if k != t]
        if not choices:
            return t
        rng = np.random.default_rng([self.seed, self.epoch, i])
        return int(choices[int(rng.integers(len(choices)))])

    def __getitem__(self, i: int) -> dict[str, Any]:
        v, t = self.index[i]
        video = self._video(v)
        r = self.reference_of(i)
        return {"image": video["images"][t], "target": self._target(video, t),
                "reference_image": video["images"][r], "reference_target": self._target(video, r),
                "video": v, "frame": t, "reference_frame": r}


def _collate(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return items


def _to(target: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {key: value.to(device) for key, value in target.items()}


@dataclass
class MaskTrackFitResult:
    """What `fit_masktrack` returns.

    Attributes:
        model: The trained model (CPU, eval mode).
        checkpoint: Its checkpoint (`load_masktrack` rebuilds it).
        metrics: The last epoch's mean losses (``train/loss``, ``train/loss_classifier``,
            ``train/loss_track``, ...) and, with a validation split, its YouTube-VIS figures
            (``val/AP``, ``val/AP50``, ..., ``val/ARl``).
        log_dir: The run's folder (the checkpoint and ``metrics.json``).
        history: Per epoch, the mean losses.
    """

    model: MaskTrackRCNN
    checkpoint: Path
    metrics: dict[str, float]
    log_dir: Path
    history: list[dict[str, float]] = field(default_factory=list, repr=False)


def fit_masktrack(
    source: Manifest | str | os.PathLike[str],
    *,
    split: str | None = "train",
    val_split: str | None = None,
    epochs: int = 12,
    batch_size: int = 8,
    lr: float = 0.01,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    lr_steps: Sequence[int] = (8, 11),
    warmup_steps: int = 500,
    clip_grad_norm: float | None = 35.0,
    track_weight: float = 1.0,
    size: int | None = None,
    max_frame_gap: int | None = None,
    max_steps: int | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    num_workers: int = 0,
    root_dir: str | os.PathLike[str] = "runs/masktrack",
    progress: bool = True,
) -> MaskTrackFitResult:
    """Train MaskTrack R-CNN on the annotated videos of a split, from raw frames.

    Args:
        source: A SynthAV folder, or a `Manifest` of videos with instance masks and ids
            (`load_youtube_vis`, `load_synth`).
        split: The split to train on; None: every record of `source`.
        val_split: A split to score with YouTube-VIS AP / AR after training (its records must
            come from one annotated JSON); None: no validation.
        epochs: Passes over the query frames.
        batch_size: Query / reference pairs per step.
        lr: SGD learning rate after warm-up.
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        lr_steps: Epochs after which the learning rate is divided by 10.
        warmup_steps: Steps of linear warm-up from lr / 3.
        clip_grad_norm: Clip the gradients' norm to this; None: no clipping.
        track_weight: Weight of the tracking loss.
        size: The model's `min_size` (its `max_size` keeps the paper's 640 / 360 ratio);
            None: the model's own (360 / 640), or `model_kwargs`'.
        max_frame_gap: Largest query / reference distance in frames; None: any.
        max_steps: Stop after this many steps (None: all epochs).
        model_kwargs: More `MaskTrackRCNN` arguments (``num_classes`` defaults to the number
            of the dataset's categories, background included).
        seed: Seed of the initialisation, the data order and every draw.
        device: Where to train; None: CUDA when available, else the CPU.
        num_workers: DataLoader workers.
        root_dir: Where the checkpoint ``masktrack.ckpt`` and ``metrics.json`` are written.
        progress: Show a progress bar.

    Returns:
        A `MaskTrackFitResult`.

    Raises:
        AvlabError: No training videos, no categories, or the loss is not finite.
    """
    from tqdm.auto import tqdm

    manifest = open_source(source)
    train = manifest.split(split) if split is not None else manifest
    if len(train) == 0:
        raise AvlabError(f"no videos in split {split!r} of {getattr(source, 'name', source)}")
    kwargs = dict(model_kwargs or {})
    if "num_classes" not in kwargs:
        if not manifest.categories:
            raise AvlabError("the dataset names no categories: pass model_kwargs={'num_classes': ...}")
        kwargs["num_classes"] = len(manifest.categories)
    if size is not None:
        kwargs["min_size"], kwargs["max_size"] = int(size), int(round(size * _ASPECT))
    target_device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")

    torch.manual_seed(seed)
    model = MaskTrackRCNN(**kwargs).to(target_device)
    dataset = MaskTrackPairs(train, max_frame_gap=max_frame_gap, seed=seed)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, collate_fn=_collate, num_workers=num_workers,
                        generator=torch.Generator().manual_seed(seed))
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay)
    steps_per_epoch = len(loader)
    milestones = [int(m) * steps_per_epoch for m in lr_steps]

    def factor(step: int) -> float:
        warm = 1.0 if step >= warmup_steps else (1 + 2 * step / warmup_steps) / 3
        return warm * 0.1 ** sum(step >= m for m in milestones)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    total_steps = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    bar = tqdm(total=total_steps, desc="MaskTrack", disable=not progress)
    history: list[dict[str, float]] = []
    step = 0
    model.train()
    for epoch in range(epochs):
        if step >= total_steps:
            break
        dataset.set_epoch(epoch)
        sums: dict[str, float] = {}
        batches = 0
        for batch in loader:
            if step >= total_steps:
                break
            outputs = model(
                [item["image"].to(target_device) for item in batch],
                [_to(item["target"], target_device) for item in batch],
                [item["reference_image"].to(target_device) for item in batch],
                [_to(item["reference_target"], target_device) for item in batch],
            )
            loss, parts = masktrack_loss(outputs, track_weight=track_weight)
            if not torch.isfinite(loss):
                raise AvlabError(f"MaskTrack loss is not finite at step {step} (epoch {epoch}): {parts}; "
                                 "lower lr or raise warmup_steps")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(parameters, clip_grad_norm)
            optimizer.step()
            scheduler.step()
            step += 1
            batches += 1
            parts["loss"] = float(loss.detach())
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value
            bar.update(1)
            bar.set_postfix(loss=f"{parts['loss']:.3f}", epoch=epoch)
        if batches:
            history.append({"epoch": float(epoch), **{key: value / batches for key, value in sums.items()}})
    bar.close()

    model = model.cpu().eval()
    metrics = {f"train/{key}": value for key, value in (history[-1] if history else {}).items() if key != "epoch"}
    if val_split is not None:
        stats = evaluate_masktrack(model, manifest, split=val_split)
        metrics.update({f"val/{key}": value for key, value in stats.items()})
    log_dir = Path(root_dir)
    checkpoint = save_masktrack(model, log_dir / "masktrack.ckpt", metrics=metrics)
    (log_dir / "metrics.json").write_text(
        json.dumps({"metrics": metrics, "history": history, "steps": step,
                    "model_kwargs": model.config}, indent=2) + "\n", encoding="utf-8")
    return MaskTrackFitResult(model, checkpoint, metrics, log_dir, history)
