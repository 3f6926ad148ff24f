"""AFCV (Audio Fusion CrossVIS) and its baselines: video instance segmentation from cached features.

SPEC section 9, assembled from `avlab.heads`:

- C3-C5 -> `FeaturePyramid` -> P3-P5; with audio, the frame's log-mel patch -> `LogMelEncoder`
  -> a_t, fused into every P level with the `concat` fusion before the heads;
- `FCOSHead` (classes, boxes, centerness, and the CondInst controller: 169 dynamic parameters
  per location), `MaskBranch` (P3-P5 -> 8 channels at stride 8), `DynamicMaskHead` (the
  instance's filters on the mask features with relative coordinates, stride 4 logits);
- `InstanceEmbeddingHead` (the tracker's embedding per location) and, with audio and
  ``sounding=True``, a sounding score per location (a 3x3 conv on the box tower of the
  audio-fused levels): which instances are heard (audio-visual instance segmentation);
- crossover learning is a training objective (`avlab.train.vis_task`), on when ``crossover``.

``CondInstVIS`` (no crossover, no audio) and ``CrossVIS`` (no audio) are the same class with
those parts off. Systems compute no loss; `predict` turns one frame batch into detections
with masks, embeddings and sounding probabilities, which `avlab.models.Tracker` links.

Choices that are ours (the paper is silent): the sounding score's head; FCOS's level ranges
and sizes of interest follow the image size (arguments), since SynthAV frames are small.

Example:
    >>> import torch
    >>> from avlab.models import create_system
    >>> model = create_system("afcv", channels=(8, 16, 32), num_classes=3, num_identities=4, width=8,
    ...                       num_convs=1, num_groups=4, mask_branch_channels=8, embedding_dim=8,
    ...                       audio_dim=8, audio_channels=(4, 8)).eval()
    >>> batch = {"visual_c3": torch.randn(1, 8, 8, 8), "visual_c4": torch.randn(1, 16, 4, 4),
    ...          "visual_c5": torch.randn(1, 32, 2, 2), "logmel": torch.randn(1, 64, 96)}
    >>> out = model(batch)
    >>> tuple(out["mask_features"].shape), len(out["detector"].logits)
    ((1, 8, 8, 8), 3)
    >>> found = model.predict(batch, image_size=(64, 64), score_threshold=0.0)[0]
    >>> found["masks"].shape[1:], found["embeddings"].shape[1], found["sounding"].shape == found["scores"].shape
    (torch.Size([64, 64]), 8, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from avlab.heads import (
    FeaturePyramid,
    IdentityClassifier,
    InstanceEmbeddingHead,
    LogMelEncoder,
    create_head,
)
from avlab.heads.condinst import DynamicMaskHead, MaskBranch
from avlab.heads.fcos import FCOSHead, fcos_decode, fcos_locations, gather_locations
from avlab.models._registry import register_system
from avlab.models.batch import LOGMEL, visual_levels

__all__ = ["AFCV", "CondInstVIS", "CrossVIS"]


@register_system("afcv")
class AFCV(nn.Module):
    """AFCV: CondInst + CrossVIS + audio fused on P3-P5 (SPEC section 9).

    Args:
        channels: Backbone channels of C3, C4, C5.
        num_classes: K, object classes.
        num_identities: nID, training identities of the embedding classifier (from the data;
            0: no classifier, e.g. for inference only).
        audio: Fuse the per-frame audio vector into P3-P5 (`concat` fusion).
        crossover: Train with the crossover loss (read by the training task).
        sounding: Predict a sounding score per instance (needs `audio`).
        width: Channels of P3-P5 and the towers (CondInst: 256).
        num_convs: Convs per FCOS tower and in the embedding tower.
        num_groups: GroupNorm groups of the towers and the fusion.
        strides: Strides of P3-P5 in pixels.
        size_bounds: FCOS level ranges: level l takes boxes whose largest distance lies in
            (bounds[l-1], bounds[l]] with 0 and infinity at the ends (FCOS: 64, 128).
        sizes_of_interest: Relative-coordinate scale per level (CondInst: 64, 128, 256).
        mask_channels: Mask-feature channels (8).
        mask_branch_channels: Width of the mask branch (128).
        dynamic_hidden: Channels of the dynamic layers (8).
        dynamic_layers: Dynamic 1x1 convs (3).
        embedding_dim: Size of the instance embedding (256).
        audio_dim: Ca, the audio vector's size.
        audio_channels: Widths of the log-mel encoder.

    Shape:
        batch: ``visual_c3..c5`` (B, C_l, h_l, w_l); with audio ``logmel`` (B, 64, 96).
        output: "detector" (`FCOSOutput`: per-level lists), "mask_features" (B, 8, h3, w3),
            "embeddings" (list of (B, D, h_l, w_l)), with sounding "sounding_logits" (list of
            (B, 1, h_l, w_l)).
    """

    task = "vis"  # trained by avlab.train.vis_task (the frame-level systems: "segmentation")

    def __init__(
        self,
        channels: Sequence[int] = (128, 256, 512),
        num_classes: int = 40,
        *,
        num_identities: int = 0,
        audio: bool = True,
        crossover: bool = True,
        sounding: bool = True,
        width: int = 256,
        num_convs: int = 4,
        num_groups: int = 32,
        strides: Sequence[int] = (8, 16, 32),
        size_bounds: Sequence[float] = (64, 128),
        sizes_of_interest: Sequence[float] = (64, 128, 256),
        mask_channels: int = 8,
        mask_branch_channels: int = 128,
        dynamic_hidden: int = 8,
        dynamic_layers: int = 3,
        embedding_dim: int = 256,
        audio_dim: int = 128,
        audio_channels: Sequence[int] = (32, 64, 128, 256),
    ) -> None:
        super().__init__()
        if len(channels) != 3 or len(strides) != 3:
            raise ValueError(f"expected C3, C4, C5 channels and strides, got {tuple(channels)}, {tuple(strides)}")
        if len(size_bounds) != len(strides) - 1:
            raise ValueError(f"size_bounds needs {len(strides) - 1} values (between levels), got {tuple(size_bounds)}")
        if sounding and not audio:
            raise ValueError("the sounding score is read from the audio: it needs audio=True")
        self.audio, self.crossover, self.sounding = bool(audio), bool(crossover), bool(sounding)
        self.strides = tuple(int(s) for s in strides)
        bounds = [0.0, *(float(b) for b in size_bounds), math.inf]
        self.size_ranges = tuple(zip(bounds[:-1], bounds[1:], strict=True))
        self.pyramid = FeaturePyramid(tuple(int(c) for c in channels), width=width)
        if self.audio:
            self.audio_encoder = LogMelEncoder(out_dim=audio_dim, channels=tuple(audio_channels))
            self.fusion = nn.ModuleList(create_head("concat", width, audio_dim, num_groups=num_groups)
                                        for _ in self.strides)
        self.mask_head = DynamicMaskHead(mask_channels=mask_channels, hidden=dynamic_hidden,
                                         num_layers=dynamic_layers, sizes_of_interest=sizes_of_interest,
                                         mask_stride=self.strides[0])
        self.detector = FCOSHead(width, num_classes, num_convs=num_convs, num_params=self.mask_head.num_params,
                                 num_groups=num_groups, strides=self.strides)
        self.mask_branch = MaskBranch(width, channels=mask_branch_channels, out_channels=mask_channels,
                                      strides=self.strides)
        self.embedding = InstanceEmbeddingHead(width, num_convs=num_convs, dim=embedding_dim,
                                               num_groups=num_groups)
        self.identity = IdentityClassifier(embedding_dim, num_identities) if num_identities > 0 else None
        if self.sounding:
            self.sounding_head = nn.Conv2d(width, 1, 3, padding=1)
            nn.init.normal_(self.sounding_head.weight, std=0.01)
            nn.init.zeros_(self.sounding_head.bias)  # type: ignore[arg-type]

    def forward(self, batch: Mapping[str, torch.Tensor], **_: Any) -> dict[str, Any]:
        """Per-level outputs; see the class docstring (extra keywords of the contract are ignored)."""
        levels = self.pyramid(list(visual_levels(batch)))  # P3-P5, (B, width, h_l, w_l)
        out: dict[str, Any] = {}
        if self.audio:
            audio = self.audio_encoder(batch[LOGMEL])  # (B, Ca)
            levels = [fusion(p, audio)[0] for fusion, p in zip(self.fusion, levels, strict=True)]
        detector = self.detector(levels)
        out["detector"] = detector
        out["mask_features"] = self.mask_branch(levels)  # (B, 8, h3, w3)
        out["embeddings"] = self.embedding(levels)  # list of (B, D, h_l, w_l)
        if self.sounding:
            out["sounding_logits"] = [self.sounding_head(f) for f in detector.features]  # (B, 1, h_l, w_l)
        return out

    def locations(self, out: Mapping[str, Any]) -> list[torch.Tensor]:
        """(x, y) pixel positions of every level's locations, (h_l * w_l, 2) each."""
        sizes = [tuple(x.shape[-2:]) for x in out["detector"].logits]
        device = out["detector"].logits[0].device
        return [loc.to(device) for loc in fcos_locations(sizes, self.strides)]

    @torch.no_grad()
    def predict(
        self,
        batch: Mapping[str, torch.Tensor],
        *,
        image_size: tuple[int, int],
        score_threshold: float = 0.05,
        nms_threshold: float = 0.6,
        max_detections: int = 20,
        out: Mapping[str, Any] | None = None,
    ) -> list[dict[str, torch.Tensor]]:
        """Detections of every frame of the batch, with masks, embeddings and sounding.

        Args:
            batch: A frame batch.
            image_size: (H, W) of the frames in pixels (masks come back at this size).
            score_threshold: Class-probability threshold of candidates.
            nms_threshold: Class-wise NMS IoU.
            max_detections: Detections kept per frame.
            out: The forward outputs, when already computed.

        Returns:
            Per frame: "boxes" (D, 4), "scores" (D,), "labels" (D,), "masks" (D, H, W)
            probabilities, "embeddings" (D, dim), "sounding" (D,) probabilities (1 without the
            sounding head).
        """
        out = self(batch) if out is None else out
        detections = fcos_decode(out["detector"], self.locations(out), image_size=image_size,
                                 score_threshold=score_threshold, nms_threshold=nms_threshold,
                                 max_detections=max_detections)
        frames = []
        for b, found in enumerate(detections):
            image = torch.full_like(found.labels, b)
            logits = self.mask_head(out["mask_features"], found.params, found.locations, image, found.levels)
            masks = torch.sigmoid(F.interpolate(logits[:, None], size=image_size, mode="bilinear",
                                                align_corners=False)[:, 0]) if len(logits) else \
                logits.new_zeros(0, *image_size)
            embeddings = gather_locations(out["embeddings"], image, found.levels, found.indices)
            sounding = (torch.sigmoid(gather_locations(out["sounding_logits"], image, found.levels,
                                                       found.indices)[:, 0])
                        if self.sounding else torch.ones_like(found.scores))
            frames.append({"boxes": found.boxes, "scores": found.scores, "labels": found.labels, "masks": masks,
                           "embeddings": embeddings, "sounding": sounding})
        return frames


@register_system("crossvis")
class CrossVIS(AFCV):
    """CrossVIS (Yang et al. 2021): CondInst with crossover learning and tracking, no audio.

    Takes `AFCV`'s arguments except `audio`, `crossover` and `sounding`.
    """

    def __init__(self, channels: Sequence[int] = (128, 256, 512), num_classes: int = 40, **options: Any) -> None:
        super().__init__(channels, num_classes, audio=False, crossover=True, sounding=False, **options)


@register_system("condinst_vis")
class CondInstVIS(AFCV):
    """CondInst-VIS: CondInst (Tian et al. 2020) per frame plus the embedding tracker; no crossover, no audio.

    Takes `AFCV`'s arguments except `audio`, `crossover` and `sounding`.
    """

    def __init__(self, channels: Sequence[int] = (128, 256, 512), num_classes: int = 40, **options: Any) -> None:
        super().__init__(channels, num_classes, audio=False, crossover=False, sounding=False, **options)
