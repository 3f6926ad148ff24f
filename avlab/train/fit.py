"""`fit`: train a system on a feature store (or end to end on raw videos) in one call.

It seeds everything, reads what the store holds (channels, mask size, categories, sources,
clip length), builds the system with those sizes, picks the separation window, and runs a
Lightning Trainer with a progress bar, a CSV log, a checkpoint and a loss-curve PNG. The
checkpoint rebuilds the system alone (`avlab.models.load_system`) or the whole task
(`AVSegmentationTask.load_from_checkpoint`).

Example:
    >>> import tempfile
    >>> from avlab.testing import tiny_store
    >>> tmp = tempfile.mkdtemp()
    >>> store = tiny_store(tmp)
    >>> result = fit(store, "visual_only", system_kwargs={"fpn_width": 8, "hidden_dim": 8},
    ...              val_split=None, max_epochs=1, batch_size=4, progress=False, root_dir=tmp + "/runs")
    >>> type(result.system).__name__, result.metrics["train/loss_epoch"] > 0, result.loss_curve.name
    ('VisualOnly', True, 'loss_curve.png')
"""

from __future__ import annotations

import contextlib
import csv
import inspect
import logging
import math
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.strategies import DDPStrategy
from pytorch_lightning.utilities.warnings import PossibleUserWarning
from torch import nn

from avlab.backbones import visual_bundle
from avlab.environment import numpy_blas_threads
from avlab.models import system_class, system_config, system_state_dict, system_task
from avlab.models.batch import LEVELS
from avlab.models.checkpoint import read_checkpoint
from avlab.train.curves import plot_loss_curve
from avlab.train.datamodule import AVDataModule, choose_num_stft_frames
from avlab.train.frames import store_info
from avlab.train.resume import AtomicCheckpointIO, StepSeeds, last_checkpoint, resume_checkpoint
from avlab.train.task import AVSegmentationTask
from avlab.train.vis_data import VISDataModule, category_labels
from avlab.train.vis_task import VISTask

__all__ = ["FitResult", "fit", "flush_denormals"]


@dataclass
class FitResult:
    """What `fit` returns; unpacks as ``system, metrics = fit(...)``.

    Attributes:
        system: The trained system (CPU, eval mode).
        metrics: The last epoch's logged figures: "train/loss_epoch", and with validation
            "val/loss", "val/miou", "val/fscore", "val/acc_iou75", and for separating
            systems "val/sdr", "val/sir", "val/sar", "val/sdr_mix", "val/nsdr"; for video
            instance segmentation systems "val/ap", "val/ap50", "val/ap75", "val/ar1",
            "val/ar10" (and "..._sounding" with audio).
        checkpoint: Path of the last checkpoint (None when checkpointing was off).
        log_dir: The run's folder (metrics.csv, hparams.yaml, checkpoints/, loss_curve.png).
        loss_curve: The loss-curve PNG (None on processes other than the first).
        task: The Lightning task (with the backbone when end to end).
    """

    system: nn.Module
    metrics: dict[str, float]
    checkpoint: Path | None
    log_dir: Path
    loss_curve: Path | None
    task: AVSegmentationTask | VISTask = field(repr=False)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.system, self.metrics))


@contextlib.contextmanager
def flush_denormals() -> Iterator[None]:
    """Subnormal floats flushed to zero on the CPU while training (torch's default is off).

    Frozen features of a randomly initialised ResNet-50 reach values of 100+ at C5 (eval-mode
    BatchNorm is the identity at init), and gradients through saturated gates then underflow
    into subnormals, which x86 CPUs process 10-100x slower: one AViS-Net backward step on
    cached ResNet-50 features took 3.1 s, 0.9 s flushed (`avlab bench --only training`).
    Values below 1.2e-38 become 0; nothing else changes. Turned off again afterwards.
    """
    flushed = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if flushed:
            torch.set_flush_denormal(False)


@contextlib.contextmanager
def _quiet(quiet: bool) -> Iterator[None]:
    """Without progress output, also hold back Lightning's informational log lines."""
    loggers = [logging.getLogger(name) for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric")]
    levels = [logger.level for logger in loggers]
    if quiet:
        for logger in loggers:
            logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _strategy(strategy: str | Any, accelerator: str) -> Any:
    # DDP: some parameters sit out some batches (a U-Net on batches without a mixture), so
    # unused parameters must be found; gloo is the backend that runs on CPUs.
    if strategy in ("ddp", "ddp_spawn"):
        backend = "gloo" if accelerator == "cpu" else None
        if strategy == "ddp_spawn":
            return DDPStrategy(find_unused_parameters=True, process_group_backend=backend, start_method="spawn")
        return DDPStrategy(find_unused_parameters=True, process_group_backend=backend)
    return strategy


def _system_kwargs(name: str, given: Mapping[str, Any], channels: Sequence[int], info: Mapping[str, Any]) -> dict[str, Any]:
    """The system's constructor arguments: the user's, plus the sizes the data fixes."""
    params = inspect.signature(system_class(name).__init__).parameters
    kwargs = dict(given)
    if "channels" in params and "channels" not in kwargs:
        kwargs["channels"] = tuple(int(c) for c in channels)
    if "num_sources" in params and "num_sources" not in kwargs:
        kwargs["num_sources"] = int(info["num_sources"])
    if "num_categories" in params and "num_categories" not in kwargs and info.get("categories"):
        kwargs["num_categories"] = len(info["categories"])
    if "separation" in params and "separation" not in kwargs and not info["separates"]:
        kwargs["separation"] = False
    return kwargs


def _load_matching(system: nn.Module, checkpoint: str | os.PathLike[str]) -> int:
    """Copy the checkpoint's system weights whose names and shapes match; returns how many."""
    state = system_state_dict(read_checkpoint(checkpoint))
    own = system.state_dict()
    matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    system.load_state_dict(matched, strict=False)
    return len(matched)


def fit(
    store: Any,
    system: str | nn.Module = "avisnet",
    *,
    system_kwargs: Mapping[str, Any] | None = None,
    solo_store: Any = None,
    train_split: str = "train",
    val_split: str | None = "val",
    max_epochs: int = 10,
    max_steps: int = -1,
    batch_size: int = 16,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    separation_weight: float = 1.0,
    category_weight: float = 0.1,
    num_stft_frames: int | None = None,
    num_mix: int = 2,
    volume: Sequence[float] = (0.5, 1.5),
    augment: bool = True,
    separation_eval_items: int = 16,
    init_from: str | os.PathLike[str] | None = None,
    end_to_end: bool = False,
    visual: str = "resnet18",
    weights: str | os.PathLike[str] | None = None,
    size: int | tuple[int, int] = 128,
    fps: float | None = None,
    backbone_lr: float | None = None,
    seed: int = 0,
    precision: str | int = "32-true",
    accelerator: str = "auto",
    devices: int | str = 1,
    strategy: str | Any = "auto",
    num_workers: int = 0,
    gradient_clip_val: float | None = None,
    limit_train_batches: int | float | None = None,
    log_every_n_steps: int = 10,
    root_dir: str | os.PathLike[str] = "runs",
    checkpoint: bool = True,
    checkpoint_every_n_steps: int | None = None,
    resume: str | os.PathLike[str] | None = None,
    progress: bool = True,
    vis_options: Mapping[str, Any] | None = None,
    callbacks: Sequence[pl.Callback] = (),
) -> FitResult:
    """Train a system on a feature store, or end to end on raw videos.

    Args:
        store: The feature store of natural mixtures (path, or opened by `open_store` /
            `cache_features`); with `end_to_end`, a raw dataset (folder or `Manifest`).
        system: A registry name (`avlab.models.list_systems`) or a built system (its
            registry record and weights are used).
        system_kwargs: Options of the system; its sizes (channels, number of sources and of
            categories) come from the data unless given.
        solo_store: Store (raw dataset when end to end) of solo clips: adds mix-and-separate
            mixtures made on the fly from their cached STFTs.
        train_split: Split to train on.
        val_split: Split to validate on each epoch; None: no validation.
        max_epochs: Epochs.
        max_steps: Stop after this many optimiser steps (-1: no limit).
        batch_size: Frames per batch.
        lr: Learning rate (AdamW).
        weight_decay: AdamW weight decay.
        separation_weight: lambda on the separation loss.
        category_weight: Weight of CoSeg's category tie.
        num_stft_frames: T of the separation windows; None: the clips' STFT length rounded
            up to the system's ``time_multiple`` (at most 256).
        num_mix: Solo clips per mix-and-separate mixture.
        volume: Range of mix-and-separate volume gains.
        augment: Random cached views (or mirrored frames when end to end), random gains.
        separation_eval_items: Mixtures scored for separation per validation.
        init_from: A checkpoint whose system weights initialise matching parameters (e.g. the
            audio encoder of a `finetune_backbone` run).
        end_to_end: Train the visual backbone too, from decoded frames.
        visual: Backbone bundle when end to end.
        weights: Its starting weights (None random, "imagenet", or a checkpoint path).
        size: Frame size when end to end.
        fps: Frame sampling when end to end (None: the dataset's frames).
        backbone_lr: Learning rate of the backbone (default lr / 10).
        seed: Seed of the weights' initialisation, the data order and every draw.
        precision: Lightning precision, e.g. "32-true", "bf16-mixed", "16-mixed".
        accelerator: "auto", "cpu", "gpu".
        devices: Devices (processes) to use.
        strategy: "auto", "ddp" (gloo on CPU), "ddp_spawn", or a Lightning strategy.
        num_workers: DataLoader workers (spawned processes).
        gradient_clip_val: Clip gradients' norm to this.
        limit_train_batches: Batches (int) or fraction (float) of an epoch.
        log_every_n_steps: CSV log interval (capped at the epoch's length).
        root_dir: Folder of the runs: ``{root_dir}/{system}/version_{k}``.
        checkpoint: Save the last checkpoint (at each epoch's end), written atomically: a
            kill never leaves a half-written one.
        checkpoint_every_n_steps: Also save it every this many optimiser steps, so that a
            run killed mid-epoch loses at most that many steps.
        resume: Continue a killed or finished run, in its own folder, from its last
            checkpoint: "last" (the newest run under ``{root_dir}/{system}``), a run folder
            (``version_k``), or one of its checkpoint files. The other arguments must be the
            run's (a larger `max_epochs` trains on). With a fixed seed on the CPU, the resumed
            run ends with the weights an uninterrupted one would have: the data order, the
            items' draws and every step's random numbers depend only on (seed, epoch, batch),
            and the loader's place in the epoch is in the checkpoint.
        progress: Show progress bars and the model summary.
        vis_options: Video instance segmentation systems only: ``max_offset`` of the frame
            pairs and `avlab.train.vis_task.VISTask` options (crossover_weight,
            identity_weight, sounding_weight, max_positives, score_threshold,
            max_detections, match_threshold). Their training reads pairs of frames (batch
            size: pairs), validates by tracking, and logs YouTube-VIS AP/AR
            ("val/ap", "val/ap50", "val/ar10", ..., and "val/ap_sounding", ... with audio).
        callbacks: More Lightning callbacks for the Trainer (e.g. timers, early stopping).

    Returns:
        A `FitResult` (``system, metrics = fit(...)`` unpacks it).

    Raises:
        WeightsNotFoundError: `resume`, `init_from` or `weights` names no file (or no run).
        WeightsError: A checkpoint is truncated, corrupt or holds more than tensors and
            builtins (it is read with ``torch.load(weights_only=True)``).
    """
    pl.seed_everything(seed, workers=True, verbose=False)
    name = system_config(system)["name"] if isinstance(system, nn.Module) else system
    if system_task(name) == "vis":
        data_vis, task_vis = _vis_data_and_task(
            store, system, system_kwargs=system_kwargs, train_split=train_split, val_split=val_split,
            batch_size=batch_size, lr=lr, weight_decay=weight_decay, augment=augment, init_from=init_from,
            end_to_end=end_to_end, visual=visual, weights=weights, size=size, fps=fps, backbone_lr=backbone_lr,
            seed=seed, num_workers=num_workers, progress=progress, options=vis_options)
        data_vis.setup("fit")
        batches = math.ceil(len(data_vis.train_set) / batch_size)
        return _train(task_vis, data_vis, name, batches=batches, max_epochs=max_epochs, max_steps=max_steps,
                      precision=precision, accelerator=accelerator, devices=devices, strategy=strategy,
                      gradient_clip_val=gradient_clip_val, limit_train_batches=limit_train_batches,
                      log_every_n_steps=log_every_n_steps, root_dir=root_dir, checkpoint=checkpoint,
                      checkpoint_every_n_steps=checkpoint_every_n_steps, resume=resume, seed=seed,
                      progress=progress, validate=val_split is not None, extra_callbacks=callbacks)
    data = AVDataModule(store, solo_store=solo_store, train_split=train_split, val_split=val_split,
                        batch_size=batch_size, num_mix=num_mix, volume=volume, augment=augment,
                        separation_eval_items=separation_eval_items, num_workers=num_workers, seed=seed,
                        end_to_end=end_to_end, size=size, fps=fps, progress=progress)
    info = data.info
    channels = _channels(end_to_end, visual, info["channels"])
    name, given, initial = _system_record(system, system_kwargs)
    task = AVSegmentationTask(
        name, _system_kwargs(name, given, channels, info), lr=lr, weight_decay=weight_decay,
        separation_weight=separation_weight, category_weight=category_weight,
        backbone=visual if end_to_end else None, backbone_lr=backbone_lr,
        separation_eval_items=separation_eval_items,
    )
    _starting_weights(task, initial=initial, init_from=init_from, weights=weights if end_to_end else None,
                      visual=visual)
    multiple = int(getattr(task.system, "time_multiple", 1))
    if num_stft_frames is None:
        num_stft_frames = choose_num_stft_frames(info["num_atime"] or multiple, multiple)
    elif num_stft_frames % multiple:
        raise ValueError(f"num_stft_frames={num_stft_frames} must be a multiple of the system's "
                         f"time_multiple={multiple} (its U-Net halves T that many times)")
    data.num_stft_frames = num_stft_frames
    data.setup("fit")
    train_size = sum(len(d) for d in data.train_sets if isinstance(d, Sized))
    batches = math.ceil(train_size / batch_size)
    return _train(task, data, name, batches=batches, max_epochs=max_epochs, max_steps=max_steps,
                  precision=precision, accelerator=accelerator, devices=devices, strategy=strategy,
                  gradient_clip_val=gradient_clip_val, limit_train_batches=limit_train_batches,
                  log_every_n_steps=log_every_n_steps, root_dir=root_dir, checkpoint=checkpoint,
                  checkpoint_every_n_steps=checkpoint_every_n_steps, resume=resume, seed=seed, progress=progress,
                  validate=val_split is not None, extra_callbacks=callbacks)


def _train(task: AVSegmentationTask | VISTask, data: pl.LightningDataModule, name: str, *, batches: int, max_epochs: int,
           max_steps: int, precision: str | int, accelerator: str, devices: int | str, strategy: str | Any,
           gradient_clip_val: float | None, limit_train_batches: int | float | None, log_every_n_steps: int,
           root_dir: str | os.PathLike[str], checkpoint: bool, checkpoint_every_n_steps: int | None,
           resume: str | os.PathLike[str] | None, seed: int, progress: bool, validate: bool,
           extra_callbacks: Sequence[pl.Callback] = ()) -> FitResult:
    """Run the Lightning Trainer: CSV log, last checkpoint, loss curve; the shared end of `fit`."""
    if isinstance(limit_train_batches, int):
        batches = min(batches, limit_train_batches)
    resumed, earlier = None, []
    if resume is None:
        logger = CSVLogger(save_dir=os.fspath(root_dir), name=name)
    else:
        resumed, run_dir, step = resume_checkpoint(resume, Path(root_dir) / name)
        logger = CSVLogger(save_dir=os.fspath(run_dir.parent.parent), name=run_dir.parent.name, version=run_dir.name)
        # Lightning starts metrics.csv afresh: keep the rows up to the checkpoint's step.
        earlier = _rows_until(run_dir / "metrics.csv", step)
    callbacks: list[pl.Callback] = [*extra_callbacks, StepSeeds(seed)]
    checkpointer = None
    if checkpoint:
        # No dirpath: Lightning puts it under the logger's folder, as rank 0 decides it. Each
        # keeps one file, writing the new one before removing the old; Lightning cannot trigger
        # one on both steps and epoch ends. Where both save a step, the second overwrites it.
        checkpointer = ModelCheckpoint(filename="{epoch}-{step}", save_top_k=1, enable_version_counter=False)
        callbacks.append(checkpointer)
        if checkpoint_every_n_steps:
            callbacks.append(ModelCheckpoint(filename="{epoch}-{step}", save_top_k=1, enable_version_counter=False,
                                             every_n_train_steps=checkpoint_every_n_steps))
    with warnings.catch_warnings(), _quiet(not progress):
        if resumed is not None:
            # The run's own folders, full on purpose.
            warnings.filterwarnings("ignore", message=".*directory .* exists and is not empty.*")
        # Lightning's hints about worker counts and batch counts: our defaults are deliberate
        # (in-memory stores read in the training process).
        warnings.filterwarnings("ignore", category=PossibleUserWarning)
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        # Workers are not persistent on purpose: each epoch's copy of the dataset has its draws.
        warnings.filterwarnings("ignore", message=".*persistent_workers=True.*")
        # Lightning 2.6 on torch 2.15 calls a deprecated pytree check on every batch.
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=FutureWarning)
        trainer = pl.Trainer(
            max_epochs=max_epochs, max_steps=max_steps, accelerator=accelerator, devices=devices,
            strategy=_strategy(strategy, accelerator), precision=precision,  # type: ignore[arg-type]
            logger=logger, callbacks=callbacks,
            enable_checkpointing=checkpoint, enable_progress_bar=progress, enable_model_summary=progress,
            log_every_n_steps=max(1, min(log_every_n_steps, batches)), num_sanity_val_steps=0,
            limit_val_batches=None if validate else 0, limit_train_batches=limit_train_batches,
            gradient_clip_val=gradient_clip_val, default_root_dir=os.fspath(root_dir),
            plugins=[AtomicCheckpointIO()],
        )
        with flush_denormals(), numpy_blas_threads(1):  # the model has the cores: see numpy_blas_threads
            trainer.fit(task, datamodule=data, ckpt_path=resumed, weights_only=True)
    log_dir = Path(logger.log_dir)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    curve = None
    if trainer.is_global_zero and earlier:
        _prepend_rows(log_dir / "metrics.csv", earlier)
    if trainer.is_global_zero and (log_dir / "metrics.csv").is_file():
        curve = plot_loss_curve(log_dir / "metrics.csv", log_dir / "loss_curve.png")
    best = last_checkpoint(log_dir) if checkpointer and checkpointer.best_model_path else None
    system = task.system
    assert isinstance(system, nn.Module)
    return FitResult(system.cpu().eval(), metrics, best, log_dir, curve, task)


def _rows_until(table: Path, step: int) -> list[dict[str, str]]:
    """The rows of a run's metrics.csv logged at steps up to `step` (none without the file)."""
    if not table.is_file():
        return []
    with table.open(newline="") as file:
        return [row for row in csv.DictReader(file) if row.get("step", "").isdigit() and int(row["step"]) <= step]


def _prepend_rows(table: Path, rows: list[dict[str, str]]) -> None:
    """Put `rows` (a run's rows before it resumed) in front of metrics.csv's."""
    later: list[dict[str, str]] = []
    if table.is_file():
        with table.open(newline="") as file:
            later = list(csv.DictReader(file))
    names = sorted({key for row in [*rows, *later] for key in row})
    with table.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=names)
        writer.writeheader()
        writer.writerows([*rows, *later])


def _vis_data_and_task(store: Any, system: str | nn.Module, *, system_kwargs: Mapping[str, Any] | None,
                       train_split: str, val_split: str | None, batch_size: int, lr: float, weight_decay: float,
                       augment: bool, init_from: str | os.PathLike[str] | None, end_to_end: bool, visual: str,
                       weights: str | os.PathLike[str] | None, size: int | tuple[int, int], fps: float | None,
                       backbone_lr: float | None, seed: int, num_workers: int, progress: bool,
                       options: Mapping[str, Any] | None) -> tuple[VISDataModule, VISTask]:
    """Data and task of a video instance segmentation system (AFCV, CrossVIS, CondInst-VIS)."""
    data = VISDataModule(store, train_split=train_split, val_split=val_split, batch_size=batch_size,
                         augment=augment, seed=seed, num_workers=num_workers, end_to_end=end_to_end, size=size,
                         fps=fps, progress=progress, **{k: v for k, v in dict(options or {}).items()
                                                         if k == "max_offset"})
    categories = data.categories
    names, _ = category_labels(categories)
    channels = _channels(end_to_end, visual, None if end_to_end else store_info(data.store)["channels"])
    name, given, initial = _system_record(system, system_kwargs)
    given.setdefault("channels", tuple(int(c) for c in channels))
    given.setdefault("num_classes", len(names))
    given.setdefault("num_identities", len(data.identities))
    task_options = {k: v for k, v in dict(options or {}).items() if k != "max_offset"}
    task = VISTask(name, given, categories=categories, lr=lr, weight_decay=weight_decay,
                   backbone=visual if end_to_end else None, backbone_lr=backbone_lr, seed=seed, **task_options)
    _starting_weights(task, initial=initial, init_from=init_from, weights=weights if end_to_end else None,
                      visual=visual)
    return data, task


def _channels(end_to_end: bool, visual: str, cached: Mapping[str, int] | None) -> list[int]:
    """C3-C5 channels: the bundle's when end to end, else the store's (which must hold them)."""
    if end_to_end or cached is None:
        bundle = visual_bundle(visual)
        return [bundle.channels[level] for level in LEVELS]
    missing = [level for level in LEVELS if level not in cached]
    if missing:
        raise ValueError(f"the store lacks levels {missing}: systems read C3, C4 and C5")
    return [cached[level] for level in LEVELS]


def _system_record(system: str | nn.Module, system_kwargs: Mapping[str, Any] | None) -> tuple[str, dict[str, Any], Any]:
    """(name, constructor options, weights or None) of a registry name or a built system."""
    if isinstance(system, nn.Module):
        config = system_config(system)
        return config["name"], {**config["kwargs"], **dict(system_kwargs or {})}, system.state_dict()
    return system, dict(system_kwargs or {}), None


def _starting_weights(task: AVSegmentationTask | VISTask, *, initial: Any, init_from: str | os.PathLike[str] | None,
                      weights: str | os.PathLike[str] | None, visual: str) -> None:
    """Load a built system's weights, matching ones from `init_from`, and the backbone's start."""
    if initial is not None:
        task.system.load_state_dict(initial)
    if init_from is not None:
        _load_matching(task.system, init_from)
    if weights is not None:
        assert task.backbone is not None
        start = visual_bundle(visual).load(weights, layers=LEVELS, trainable=True)
        task.backbone.load_state_dict(start.state_dict())
