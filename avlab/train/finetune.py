"""`finetune_backbone`: train the visual backbone end to end once, then freeze and cache it.

FINDINGS.md measured that frozen random features, not the heads, limit what heads learn
offline; fine-tuning the backbone end to end on the training split (with the segmentation
objective, and separation where the data has sources) and caching the result is the default
pipeline without pretrained weights. The saved file is the backbone's state dict with the
torchvision key names of ``visual_bundle(visual).load(trainable=True).state_dict()``, so
``visual_bundle(visual).load(path)`` and ``cache_features(weights=path)`` read it; its
fingerprint (what the store will record) is written next to it as JSON.

Example:
    >>> from avlab.train import finetune_backbone
    >>> "visual" in finetune_backbone.__kwdefaults__
    True
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from avlab.backbones import visual_bundle
from avlab.models.batch import LEVELS
from avlab.train.fit import FitResult, fit

__all__ = ["FinetuneRecord", "FinetuneResult", "finetune_backbone", "finetune_once"]


@dataclass
class FinetuneResult:
    """What `finetune_backbone` returns.

    Attributes:
        weights: The backbone checkpoint (pass it as ``weights=`` to `cache_features`).
        fingerprint: The bundle's fingerprint of those weights (as the store records it).
        fingerprint_path: The JSON file holding it, next to `weights`.
        checkpoint: The full training checkpoint (system with its audio encoder, and backbone);
            ``fit(..., init_from=checkpoint)`` starts heads from its audio encoder.
        metrics: The run's last figures (see `FitResult`).
        system: The trained system.
        run: The `FitResult` of the end-to-end run.
    """

    weights: Path
    fingerprint: dict[str, Any]
    fingerprint_path: Path
    checkpoint: Path | None
    metrics: dict[str, float]
    system: nn.Module
    run: FitResult = field(repr=False)


def finetune_backbone(
    source: Any,
    *,
    visual: str = "resnet18",
    output: str | os.PathLike[str] | None = None,
    system: str = "avisnet",
    system_kwargs: Mapping[str, Any] | None = None,
    weights: str | os.PathLike[str] | None = None,
    layers: Sequence[str] = LEVELS,
    solo_source: Any = None,
    size: int | tuple[int, int] = 128,
    **options: Any,
) -> FinetuneResult:
    """Fine-tune `visual` end to end on `source`'s training split and save it for caching.

    Args:
        source: The raw dataset (folder or `Manifest`) with a training split (and the
            validation split named by ``val_split``, default "val", or ``val_split=None``).
        visual: Backbone bundle (`avlab.backbones.list_visual_bundles`).
        output: Where to save the backbone (default ``{run}/{visual}-finetuned.pt``).
        system: The system trained on top (its objectives train the backbone).
        system_kwargs: Its options.
        weights: Starting weights of the backbone (None: the bundle's random ones).
        layers: Levels the fingerprint names (those `cache_features` will cache).
        solo_source: Raw solo clips (a `Manifest`) for mix-and-separate.
        size: Frame size of training (and of the later cache, for features to match).
        **options: More `fit` options (max_epochs, lr, backbone_lr, batch_size, ...).

    Returns:
        A `FinetuneResult`.
    """
    run = fit(source, system, system_kwargs=system_kwargs, solo_store=solo_source, end_to_end=True,
              visual=visual, weights=weights, size=size, **options)
    assert run.task.backbone is not None
    path = Path(output) if output is not None else run.log_dir / f"{visual}-finetuned.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu().clone() for k, v in run.task.backbone.state_dict().items()}, path)
    fingerprint = visual_bundle(visual).fingerprint(path, layers=layers)
    fingerprint_path = path.with_name(path.stem + ".fingerprint.json")
    fingerprint_path.write_text(json.dumps(fingerprint, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return FinetuneResult(path, fingerprint, fingerprint_path, run.checkpoint, run.metrics, run.system, run)


@dataclass(frozen=True)
class FinetuneRecord:
    """What a finished fine-tuning left, as `finetune_once` records it in JSON.

    Attributes:
        weights: The backbone checkpoint (for ``cache_features(weights=...)``).
        checkpoint: The full system checkpoint (for ``fit(init_from=...)``), if one was saved.
        metrics: The run's last figures.
        log_dir: The run's folder (metrics.csv, loss curve).
        seconds: How long the fine-tuning took when it ran.
        reused: True when this call read the record instead of training.
    """

    weights: Path
    checkpoint: Path | None
    metrics: dict[str, float]
    log_dir: Path
    seconds: float
    reused: bool


def finetune_once(record: str | os.PathLike[str], source: Any, **options: Any) -> FinetuneRecord:
    """`finetune_backbone(source, **options)` unless `record` says it already ran; what it saved.

    The demo, the ablation and the training benchmark fine-tune once and cache with the result
    on every later run; the JSON file at `record` is what makes a rerun skip the training.

    Args:
        record: JSON file written after a successful fine-tuning (its folder is created).
        source: The raw dataset, as for `finetune_backbone`.
        **options: `finetune_backbone` options.

    Returns:
        A `FinetuneRecord`.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from avlab.testing import tiny_store
        >>> tmp = Path(tempfile.mkdtemp())
        >>> _ = tiny_store(tmp)  # SynthAV's train split in tmp/synth
        >>> options = {"visual": "debug", "size": 32, "max_epochs": 1, "val_split": None, "progress": False,
        ...            "system": "visual_only", "system_kwargs": {"fpn_width": 8, "hidden_dim": 8},
        ...            "root_dir": tmp / "runs"}
        >>> first = finetune_once(tmp / "finetune.json", tmp / "synth", **options)
        >>> again = finetune_once(tmp / "finetune.json", tmp / "synth", **options)
        >>> first.reused, again.reused, again.weights == first.weights
        (False, True, True)
    """
    record = Path(record)
    if not record.is_file():
        started = time.perf_counter()
        tuned = finetune_backbone(source, **options)
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({
            "weights": str(tuned.weights), "checkpoint": None if tuned.checkpoint is None else str(tuned.checkpoint),
            "metrics": tuned.metrics, "log_dir": str(tuned.run.log_dir), "seconds": time.perf_counter() - started,
        }, indent=2) + "\n", encoding="utf-8")
        done = json.loads(record.read_text(encoding="utf-8"))
        reused = False
    else:
        done = json.loads(record.read_text(encoding="utf-8"))
        reused = True
    return FinetuneRecord(weights=Path(done["weights"]),
                          checkpoint=Path(done["checkpoint"]) if done["checkpoint"] else None,
                          metrics=dict(done["metrics"]), log_dir=Path(done["log_dir"]), seconds=float(done["seconds"]),
                          reused=reused)
