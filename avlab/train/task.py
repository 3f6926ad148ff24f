"""The Lightning task: a system, its losses, its optimiser, and its validation metrics.

``AVSegmentationTask(system_name, system_kwargs, ...)`` builds the system from the registry and
saves its name and constructor arguments as hyperparameters, so a checkpoint rebuilds it with
no extra arguments (`AVSegmentationTask.load_from_checkpoint(path)`, or
`avlab.models.load_system(path)` for the system alone). With a backbone (end-to-end training)
the task turns batch images into features first, with its own learning rate.

Loss: BCE with logits on the sounding-object mask (annotated pixels) + `separation_weight` x
PixelPlayer's separation loss + `category_weight` x the co-segmentation category tie (systems
returning "category_logits" only).

Validation: AVSBench mIoU and F-score (`avlab.eval.AVSBenchMeter`, dataset mode) and accuracy
at IoU 0.75 (`avlab.eval.mask_iou`, two empty masks count as IoU 1) on annotated frames; for
separating systems, SDR / SIR / SAR / mixture SDR / NSDR (`avlab.eval.SeparationMeter`, Sound
of Pixels protocol) on up to `separation_eval_items` mixtures: fixed mixtures of validation
solo clips when the data has them, else the natural mixtures with at least two sources.
``miou_silent`` and ``acc_iou75_silent`` are the same mask figures on the frames that show a
silent object (a distractor or a resting performer): where looks alone cannot tell what sounds.
Separated waveforms follow SPEC section 6 (`avlab.models.separate_waveforms`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from avlab.backbones import visual_bundle
from avlab.eval import AVSBenchMeter, SeparationMeter, mask_iou
from avlab.eval.separation import one_blas_thread
from avlab.models import create_system, separate_waveforms, waveforms
from avlab.train.losses import (
    best_permutation,
    category_loss,
    mask_loss,
    separation_loss,
    warped_targets,
)

__all__ = ["AVSegmentationTask", "BackboneTask"]

ACCURACY_IOU = 0.75
_VAL_METRICS = ("loss", "miou", "fscore", "acc_iou75", "miou_silent", "acc_iou75_silent", "sdr", "sir", "sar", "sdr_mix", "nsdr", "separation_skipped")


class BackboneTask(pl.LightningModule):
    """What every avlab task shares: a system, an optional backbone trained end to end, AdamW.

    Subclasses build ``self.system`` and call `_build_backbone`; hyperparameters ``lr``,
    ``weight_decay`` and ``backbone_lr`` (default lr / 10) set the optimiser's two groups.
    """

    system: torch.nn.Module
    backbone: torch.nn.Module | None

    def _build_backbone(self, name: str | None, layers: Sequence[str]) -> None:
        # Random weights here; `fit` loads the starting weights, checkpoints restore theirs.
        self.backbone = None if name is None else visual_bundle(name).load(None, layers=tuple(layers), trainable=True)

    def _features(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """End to end: images -> backbone levels, in place of cached features."""
        batch = dict(batch)
        if self.backbone is None or "image" not in batch:
            return batch
        images = batch.pop("image")  # (B, 3, H, W)
        sources = batch.pop("source_image", None)  # (B, N, 3, H, W)
        if sources is None:
            for level, value in self.backbone(images).items():
                batch[f"visual_{level}"] = value
            return batch
        b, n = sources.shape[:2]
        # One backbone pass over the frames and the sources' frames together.
        features = self.backbone(torch.cat([images, sources.flatten(0, 1)]))
        for level, value in features.items():
            batch[f"visual_{level}"] = value[:b]
            batch[f"source_visual_{level}"] = value[b:].view(b, n, *value.shape[1:])
        return batch

    def configure_optimizers(self) -> torch.optim.Optimizer:
        groups = [{"params": [p for p in self.system.parameters() if p.requires_grad], "lr": self.hparams["lr"]}]
        if self.backbone is not None:
            backbone_lr = self.hparams["backbone_lr"] or self.hparams["lr"] / 10
            groups.append({"params": [p for p in self.backbone.parameters() if p.requires_grad], "lr": backbone_lr})
        return torch.optim.AdamW(groups, lr=self.hparams["lr"], weight_decay=self.hparams["weight_decay"])


class AVSegmentationTask(BackboneTask):
    """Trains a registered system on frame-level batches (the `avlab.models` contract).

    Args:
        system: Registry name of the system (`avlab.models.list_systems`).
        system_kwargs: Its constructor arguments (channels included).
        lr: Learning rate of the system (AdamW).
        weight_decay: AdamW weight decay.
        separation_weight: lambda on the separation loss.
        category_weight: Weight of the category tie (CoSeg).
        backbone: Visual bundle name to train end to end (None: batches carry features).
        backbone_layers: Its levels.
        backbone_lr: Learning rate of the backbone (default: lr / 10).
        separation_eval_items: Mixtures scored for separation per validation.
        separation_threshold: Binary threshold of the unwarped masks at evaluation.

    Example:
        >>> task = AVSegmentationTask("visual_only", {"channels": (8, 16, 32), "fpn_width": 8, "hidden_dim": 8})
        >>> task.hparams["system"], type(task.system).__name__
        ('visual_only', 'VisualOnly')
    """

    def __init__(
        self,
        system: str,
        system_kwargs: Mapping[str, Any] | None = None,
        *,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        separation_weight: float = 1.0,
        category_weight: float = 0.1,
        backbone: str | None = None,
        backbone_layers: Sequence[str] = ("c3", "c4", "c5"),
        backbone_lr: float | None = None,
        separation_eval_items: int = 16,
        separation_threshold: float = 0.5,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.system = create_system(system, **dict(system_kwargs or {}))
        self._build_backbone(backbone, backbone_layers)
        self._reset_meters()

    # Forward and losses.

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The system's outputs for a batch (features computed first when end to end)."""
        batch = self._features(batch)
        size = tuple(batch["mask"].shape[-2:]) if "mask" in batch else None
        return self.system(batch, output_size=size, epoch=self.current_epoch,
                           step=self.global_step if self.training else None)

    def losses(self, batch: Mapping[str, torch.Tensor], out: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """"loss" (the total), "mask", and when present "separation" and "category"."""
        losses = {"mask": mask_loss(out["mask_logits"], batch["mask"], batch.get("annotated"))}
        total = losses["mask"]
        if "separation_logits" in out:
            losses["separation"] = separation_loss(
                out["separation_logits"], batch["mixture_mag"], batch["source_mag"], batch["source_valid"],
                permutation_invariant=bool(getattr(self.system, "permutation_invariant", False)),
            )
            total = total + self.hparams["separation_weight"] * losses["separation"]
        if "category_logits" in out and "source_category" in batch:
            losses["category"] = category_loss(out["category_logits"], batch["source_category"], batch["source_valid"])
            total = total + self.hparams["category_weight"] * losses["category"]
        losses["loss"] = total
        return losses

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        out = self(batch)
        losses = self.losses(batch, out)
        size = int(batch["logmel"].shape[0])
        synced = self.trainer.world_size > 1  # epoch means over every process's batches
        self.log("train/loss", losses["loss"], on_step=True, on_epoch=True, prog_bar=True, batch_size=size,
                 sync_dist=synced)
        for name in ("mask", "separation", "category"):
            if name in losses:
                self.log(f"train/{name}_loss", losses[name], on_step=False, on_epoch=True, batch_size=size,
                         sync_dist=synced)
        return losses["loss"]

    def on_train_epoch_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "set_epoch"):
            datamodule.set_epoch(self.current_epoch)

    # Validation.

    def _reset_meters(self) -> None:
        self._masks = AVSBenchMeter(mode="dataset")
        self._ious: list[np.ndarray] = []
        self._silent_masks = AVSBenchMeter(mode="dataset")  # frames showing a silent object
        self._silent_ious: list[np.ndarray] = []
        self._separation = SeparationMeter()
        self._separated = 0
        self._val_loss: list[tuple[float, int]] = []

    def on_validation_epoch_start(self) -> None:
        self._reset_meters()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        out = self(batch)
        solo_mixtures = dataloader_idx == 1
        if not solo_mixtures:
            losses = self.losses(batch, out)
            self._val_loss.append((float(losses["loss"].detach()), int(batch["logmel"].shape[0])))
            keep = batch["annotated"].bool().cpu()
            if keep.any():
                logits = out["mask_logits"].detach().float().cpu()[keep]
                gt = (batch["mask"].cpu()[keep] == 1)
                self._masks.update(logits, gt)
                self._ious.append(mask_iou(logits, gt))
                silent = batch["silent_shown"].bool().cpu()[keep] if "silent_shown" in batch else None
                if silent is not None and silent.any():
                    self._silent_masks.update(logits[silent], gt[silent])
                    self._silent_ious.append(mask_iou(logits[silent], gt[silent]))
        scores_here = solo_mixtures or len(self.trainer.num_val_batches) < 2
        if "separation_logits" in out and scores_here:
            self._score_separation(batch, out["separation_logits"])

    def _score_separation(self, batch: Mapping[str, torch.Tensor], logits: torch.Tensor) -> None:
        budget = self.hparams["separation_eval_items"] - self._separated
        if budget <= 0:
            return
        valid = batch["source_valid"].bool().cpu()
        chosen = [b for b in range(len(valid)) if int(valid[b].sum()) >= 2][:budget]
        if not chosen:
            return
        logits = logits.detach().float()[chosen]
        if getattr(self.system, "permutation_invariant", False):
            targets, weights = warped_targets(batch["source_mag"][chosen], batch["mixture_mag"][chosen], logits.shape[-2])
            order = best_permutation(logits, targets, weights)  # targets[order[i]] -> slot i
            inverse = order.argsort(dim=1)  # slot matched to each target
            logits = logits.gather(1, inverse[:, :, None, None].expand_as(logits))
        lengths = batch["stft_length"][chosen].tolist()
        estimates = separate_waveforms(logits, batch["mixture_stft"][chosen], lengths,
                                       threshold=self.hparams["separation_threshold"])
        references = waveforms(batch["source_stft"][chosen], lengths)
        mixtures = waveforms(batch["mixture_stft"][chosen], lengths)
        with one_blas_thread():
            for k, b in enumerate(chosen):
                if not np.any(mixtures[k]):
                    continue
                real = valid[b].numpy()
                self._separation.update(references[k][real], estimates[k][real], mixtures[k])
                self._separated += 1

    def on_validation_epoch_end(self) -> None:
        # (value, weight) per metric on this process; weights: frames, or mixtures scored.
        local: dict[str, tuple[float, float]] = dict.fromkeys(_VAL_METRICS, (0.0, 0.0))
        if self._val_loss:
            frames = sum(n for _, n in self._val_loss)
            local["loss"] = (sum(v * n for v, n in self._val_loss) / frames, frames)
        if self._ious:
            scores = self._masks.compute()
            ious = np.concatenate(self._ious)
            for name, value in (("miou", scores["miou"]), ("fscore", scores["fscore"]),
                                ("acc_iou75", float(np.mean(ious >= ACCURACY_IOU)))):
                local[name] = (value, float(len(ious)))
        if self._silent_ious:
            ious = np.concatenate(self._silent_ious)
            local["miou_silent"] = (self._silent_masks.compute()["miou"], float(len(ious)))
            local["acc_iou75_silent"] = (float(np.mean(ious >= ACCURACY_IOU)), float(len(ious)))
        scores = self._separation.compute()
        if scores["num_samples"]:
            for name in ("sdr", "sir", "sar", "sdr_mix", "nsdr"):
                local[name] = (scores[name], float(scores["num_samples"]))
        local["separation_skipped"] = (float(scores["num_skipped"]), 1.0)
        # Weighted means over processes (every process logs the same names: no collective
        # left waiting). F-score's maximum over thresholds does not decompose: across
        # processes it is the mean of the processes' F-scores.
        sums = torch.tensor([[v * w if w else 0.0, w] for v, w in local.values()], dtype=torch.float64,
                            device=self.device)
        gathered = self.all_gather(sums)
        assert isinstance(gathered, torch.Tensor)
        if gathered.ndim == 3:  # (processes, metrics, 2)
            sums = gathered.sum(dim=0)
        for (name, _), (total, weight) in zip(local.items(), sums.tolist(), strict=True):
            if weight > 0:
                value = total if name == "separation_skipped" else total / weight
                self.log(f"val/{name}", float(value), prog_bar=name in ("miou", "sdr"))
