"""MaskTrack R-CNN (Yang et al. 2019, "Video Instance Segmentation"): the AFCV paper's VIS baseline.

A torchvision Mask R-CNN (ResNet + FPN) with a tracking head: each detection's box RoI
features go through a few fully connected layers to an embedding f_i, compared with a memory
of the N instances already identified in the video::

    p_i(n) = exp(f_i . f_n) / (1 + sum_j exp(f_i . f_j))   n = 1..N (an earlier instance)
    p_i(0) = 1 / (1 + sum_j exp(f_i . f_j))                  a new instance (a fixed zero logit)

Training pairs a query frame with a reference frame of the same video: the memory holds the
embeddings of the reference frame's ground-truth instances, and the query's positive RoIs
(IoU >= the box head's foreground threshold with a ground-truth box) are classified over
(new + memory) with cross-entropy, the label being their instance's position in the memory
(0 when the instance is not in the reference frame). At inference detections are matched to
the memory frame by frame by the paper's weighted sum::

    v_i(n) = log p_i(n) + alpha log s_i + beta IoU(b_i, b_n) + gamma [c_i == c_n]

(s_i the detection score, b the boxes, c the classes; the new-instance option gets only its
log-probability and the score term), and a matched instance's memory entry (embedding, box,
class) is replaced by its latest detection. Video results: one track per identity, its score
the mean detection score, its class the most frequent one, its masks the mask head's
probabilities above 0.5, as YouTube-VIS results (`predict_ytvis`, scored by
`avlab.eval.ytvis_evaluate`).

Faithful to the paper and its public release, as we read them: the architecture (Mask R-CNN,
ResNet-50 FPN, box RoIAlign 7 x 7, a tracking branch of two fully connected layers with
unnormalised dot products and a zero "new" logit), the query / reference pair training with
cross-entropy on positive RoIs, the cue combination with alpha = 1, beta = 2, gamma = 10,
memory update by the latest embedding, mean score per video, 360 x 640 frames, initialisation
from COCO Mask R-CNN weights (``weights="coco"``, when the file is in the torch hub cache).

Ours: torchvision's Mask R-CNN in place of mmdetection's (its RPN / RoI settings, and plain
BatchNorm in the backbone when training from random weights, as torchvision does); a
ResNet-18 option and every width as an argument (`fpn_channels`, `box_head_dim`,
`mask_head_dim`, `track_fc_dim`, `embedding_dim`) for CPU runs and tests; at most
`track_samples` random positive RoIs per query frame, taken from the RPN proposals and the
ground-truth boxes; a greedy one-to-one assignment of a frame's detections to identities (best
value first), where the release keeps the better of two detections claiming one identity;
masks below 0.5 everywhere left out of a track's frame; at most `detections_per_image`
detections per frame.

Example:
    >>> import torch
    >>> model = MaskTrackRCNN(3, backbone="resnet18", min_size=32, max_size=32, fpn_channels=8,
    ...                       box_head_dim=16, mask_head_dim=8, track_fc_dim=16, embedding_dim=8)
    >>> frames = torch.rand(2, 3, 32, 32)  # (T, 3, H, W) in [0, 1]
    >>> tracks = track_video(model.eval(), frames)
    >>> all(len(track["segmentations"]) == 2 for track in tracks)
    True
    >>> model.config["embedding_dim"], model.config["weights"]
    (8, None)
"""

from __future__ import annotations

import os
from collections import OrderedDict, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from pycocotools import mask as coco_mask
from torch import nn
from torchvision.models.detection import MaskRCNN, MaskRCNN_ResNet50_FPN_Weights
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import box_iou, masks_to_boxes
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool
from torchvision.ops.misc import FrozenBatchNorm2d

from avlab.backbones import visual_bundle
from avlab.backbones.weights import HubWeights, match_state_dict, read_state_dict
from avlab.datasets.detect import open_source
from avlab.datasets.manifest import Manifest
from avlab.datasets.youtube_vis import YtvisMasks
from avlab.errors import AvlabError, WeightsError, WeightsNotFoundError
from avlab.eval.ytvis import ytvis_evaluate

__all__ = [
    "COCO_MASK_RCNN",
    "MaskTrackRCNN",
    "TrackHead",
    "VideoTracker",
    "assign_tracks",
    "boxes_from_masks",
    "evaluate_masktrack",
    "ground_truth_json",
    "load_masktrack",
    "match_logits",
    "match_scores",
    "predict_ytvis",
    "save_masktrack",
    "track_video",
]

#: torchvision's COCO Mask R-CNN (ResNet-50 FPN), looked up in the torch hub cache for ``weights="coco"``.
COCO_MASK_RCNN = HubWeights(MaskRCNN_ResNet50_FPN_Weights.COCO_V1.url)

_BACKBONES = {"resnet18": (64, 128, 256, 512), "resnet50": (256, 512, 1024, 2048)}  # C2-C5 channels
_STAGES = ("layer4", "layer3", "layer2", "layer1", "conv1")  # trainable first
_CHECKPOINT_NAME = "masktrack"


class TrackHead(nn.Module):
    """MaskTrack's tracking branch: fully connected layers from a RoI's features to an embedding.

    Args:
        in_channels: Channels of the RoI features (the FPN's width).
        roi_size: Side of the RoI-pooled features.
        fc_dim: Width of the hidden fully connected layers.
        embedding_dim: Size of the embedding (the last layer's output, no activation).
        num_fcs: Fully connected layers in all (ReLU between them), at least 1.

    Shape:
        rois: (R, in_channels, roi_size, roi_size).
        output: (R, embedding_dim).

    Example:
        >>> head = TrackHead(8, roi_size=7, fc_dim=16, embedding_dim=4)
        >>> tuple(head(torch.randn(5, 8, 7, 7)).shape)
        (5, 4)
    """

    def __init__(
        self, in_channels: int, *, roi_size: int = 7, fc_dim: int = 1024, embedding_dim: int = 1024, num_fcs: int = 2
    ) -> None:
        super().__init__()
        if num_fcs < 1:
            raise ValueError(f"num_fcs must be at least 1, got {num_fcs}")
        widths = [in_channels * roi_size * roi_size] + [fc_dim] * (num_fcs - 1) + [embedding_dim]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            if i:
                layers.append(nn.ReLU(inplace=True))
            layers.append(nn.Linear(a, b))
        self.fcs = nn.Sequential(*layers)

    def forward(self, rois: torch.Tensor) -> torch.Tensor:
        """Embed RoI features; see the class docstring for shapes."""
        return self.fcs(rois.flatten(1))


def match_logits(query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """Logits of (new instance, memory instances) for each query embedding.

    Column 0 is the fixed zero logit of "a new instance"; column n (1..N) is the dot product of
    the query with memory entry n - 1. A softmax over a row gives the paper's p_i(n).

    Shape:
        query: (Q, D). memory: (N, D). output: (Q, N + 1).

    Example:
        >>> match_logits(torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 0.0], [0.0, 3.0]]))
        tensor([[0., 2., 0.]])
    """
    dots = query @ memory.T  # (Q, N)
    return torch.cat([dots.new_zeros(dots.shape[0], 1), dots], dim=1)


def match_scores(
    log_probs: torch.Tensor,
    scores: torch.Tensor,
    ious: torch.Tensor,
    same_class: torch.Tensor,
    *,
    score_weight: float = 1.0,
    iou_weight: float = 2.0,
    class_weight: float = 10.0,
) -> torch.Tensor:
    """The paper's assignment values v_i(n) = log p_i(n) + alpha log s_i + beta IoU + gamma [same class].

    The new-instance column (0) gets only log p_i(0) + alpha log s_i.

    Args:
        log_probs: log p_i(n), new instance first.
        scores: Detection scores s_i in (0, 1].
        ious: Box IoU of each detection with each memory instance's last box.
        same_class: Whether the detection's class is the memory instance's.
        score_weight: alpha.
        iou_weight: beta.
        class_weight: gamma.

    Shape:
        log_probs: (Q, N + 1). scores: (Q,). ious, same_class: (Q, N). output: (Q, N + 1).

    Example:
        >>> v = match_scores(torch.log(torch.tensor([[0.5, 0.25, 0.25]])), torch.tensor([1.0]),
        ...                  torch.tensor([[0.5, 0.0]]), torch.tensor([[False, True]]))
        >>> [round(x, 3) for x in v[0].tolist()]
        [-0.693, -0.386, 8.614]
    """
    score_term = score_weight * torch.log(scores.clamp_min(1e-12))[:, None]  # (Q, 1)
    cues = iou_weight * ious + class_weight * same_class.to(log_probs.dtype)  # (Q, N)
    return log_probs + score_term + torch.cat([cues.new_zeros(cues.shape[0], 1), cues], dim=1)


def assign_tracks(values: torch.Tensor) -> torch.Tensor:
    """One-to-one assignment of detections to memory instances, best value first.

    Pairs are taken in decreasing order of value (ties in row-major order); a detection takes
    its best option still free, a memory instance goes to one detection at most, and "new"
    (column 0) is never used up.

    Shape:
        values: (Q, N + 1), new instance first. output: (Q,) int64, the memory index (0..N-1)
        of each detection, or -1 for a new instance.

    Example:
        >>> assign_tracks(torch.tensor([[0.0, 5.0, 1.0], [0.0, 4.0, 3.0], [0.0, -1.0, -2.0]]))
        tensor([ 0,  1, -1])
    """
    num_queries, num_options = values.shape
    result = torch.full((num_queries,), -1, dtype=torch.int64)
    done = [False] * num_queries
    taken = [False] * num_options
    left = num_queries
    order = torch.argsort(values.detach().flatten().cpu(), descending=True, stable=True)
    for flat in order.tolist():
        if left == 0:
            break
        query, option = divmod(flat, num_options)
        if done[query] or (option > 0 and taken[option]):
            continue
        done[query] = True
        left -= 1
        if option > 0:
            taken[option] = True
            result[query] = option - 1
    return result


class VideoTracker:
    """The memory of one video at inference: identities' latest embedding, box and class.

    Args:
        score_weight: alpha of `match_scores`.
        iou_weight: beta.
        class_weight: gamma.

    Example:
        >>> tracker = VideoTracker()
        >>> box = torch.tensor([[0.0, 0.0, 4.0, 4.0]])
        >>> tracker.update(torch.tensor([[5.0, 0.0]]), box, torch.tensor([1]), torch.tensor([0.9]))
        tensor([0])
        >>> tracker.update(torch.tensor([[4.0, 0.0], [-5.0, 0.0]]), box.repeat(2, 1), torch.tensor([1, 1]),
        ...                torch.tensor([0.8, 0.7]))
        tensor([0, 1])
        >>> tracker.num_tracks
        2
    """

    def __init__(self, *, score_weight: float = 1.0, iou_weight: float = 2.0, class_weight: float = 10.0) -> None:
        self.weights = {"score_weight": score_weight, "iou_weight": iou_weight, "class_weight": class_weight}
        self.embeddings: torch.Tensor | None = None  # (N, D)
        self.boxes: torch.Tensor | None = None  # (N, 4)
        self.labels: torch.Tensor | None = None  # (N,)

    @property
    def num_tracks(self) -> int:
        return 0 if self.embeddings is None else int(self.embeddings.shape[0])

    def update(
        self, embeddings: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor, scores: torch.Tensor
    ) -> torch.Tensor:
        """Assign one frame's detections to identities and update the memory.

        Args:
            embeddings: The detections' embeddings.
            boxes: Their boxes (x1, y1, x2, y2), in the frame's pixels.
            labels: Their classes.
            scores: Their detection scores.

        Shape:
            embeddings: (Q, D). boxes: (Q, 4). labels, scores: (Q,). output: (Q,) int64
            identity of each detection (new identities numbered on from `num_tracks`, in
            detection order).
        """
        embeddings, boxes, labels = embeddings.detach().cpu(), boxes.detach().cpu(), labels.detach().cpu()
        count = self.num_tracks
        if count == 0 or self.embeddings is None or self.boxes is None or self.labels is None:
            ids = torch.arange(embeddings.shape[0], dtype=torch.int64)
        else:
            log_probs = match_logits(embeddings, self.embeddings).log_softmax(dim=1)  # (Q, N + 1)
            values = match_scores(log_probs, scores.detach().cpu(), box_iou(boxes, self.boxes),
                                  labels[:, None] == self.labels[None, :], **self.weights)
            ids = assign_tracks(values)
            new = ids < 0
            ids[new] = count + torch.arange(int(new.sum()), dtype=torch.int64)
        grown = max(count, int(ids.max()) + 1) if len(ids) else count
        memory = [
            _grow(self.embeddings, grown, embeddings.shape[1:], embeddings.dtype),
            _grow(self.boxes, grown, (4,), boxes.dtype),
            _grow(self.labels, grown, (), labels.dtype),
        ]
        for tensor, new_rows in zip(memory, (embeddings, boxes, labels), strict=True):
            tensor[ids] = new_rows
        self.embeddings, self.boxes, self.labels = memory
        return ids


def _grow(tensor: torch.Tensor | None, rows: int, shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    out = torch.zeros((rows, *shape), dtype=dtype)
    if tensor is not None:
        out[: tensor.shape[0]] = tensor
    return out


def boxes_from_masks(masks: torch.Tensor) -> torch.Tensor:
    """Boxes (x1, y1, x2, y2) around masks, covering whole pixels (x2 = last column + 1).

    Shape:
        masks: (I, H, W), none empty. output: (I, 4) float32.

    Example:
        >>> m = torch.zeros(1, 4, 5, dtype=torch.uint8)
        >>> m[0, 1:3, 2] = 1
        >>> boxes_from_masks(m)
        tensor([[2., 1., 3., 3.]])
    """
    if masks.shape[0] == 0:
        return torch.zeros((0, 4), dtype=torch.float32)
    return masks_to_boxes(masks.bool()).float() + torch.tensor([0.0, 0.0, 1.0, 1.0], device=masks.device)


class MaskTrackRCNN(nn.Module):
    """Mask R-CNN with MaskTrack's tracking head (see the module docstring).

    The detector is torchvision's `MaskRCNN` (``self.detector``, its keys those of
    ``maskrcnn_resnet50_fpn`` for the default sizes), the tracking head ``self.track_head``.
    ``self.config`` holds the constructor arguments as resolved (weights left out: they are
    in the state dict), which `save_masktrack` stores so `load_masktrack` rebuilds the model.

    Args:
        num_classes: Classes including the background (class 0), as torchvision counts them;
            labels are the dataset's category ids, so for YouTube-VIS and SynthAV pass
            ``len(manifest.categories)``.
        backbone: "resnet50" (the paper's) or "resnet18".
        weights: None (random), "imagenet" (the backbone's ImageNet weights from the torch hub
            cache), "coco" (torchvision's COCO Mask R-CNN from the torch hub cache, all but the
            class-specific layers; ResNet-50 and default widths only), or a path to a ResNet
            checkpoint (e.g. `avlab.train.finetune_backbone`'s). Nothing is ever downloaded.
        trainable_layers: ResNet stages trained, counted from the last (0..5); None: 3 with
            pretrained weights, 5 without (torchvision's rule).
        frozen_bn: Freeze the backbone's BatchNorm; None: frozen with pretrained weights only.
        min_size: Shorter side frames are resized to (the paper: 360).
        max_size: Longest side at most (the paper: 640).
        fpn_channels: The FPN's width (torchvision: 256).
        anchor_sizes: One anchor size per FPN level (P2-P6).
        box_head_dim: Width of the box head's two fully connected layers (1024).
        mask_head_dim: Width of the mask head's four convolutions (256).
        track_fc_dim: Width of the tracking head's hidden layers.
        embedding_dim: Size of the tracking embedding.
        num_track_fcs: Fully connected layers of the tracking head.
        track_samples: Positive RoIs per query frame that train the tracking head, at most.
        score_threshold: Detections scoring below are dropped at inference.
        detections_per_image: Detections kept per frame at inference, at most.
        score_weight: alpha, the weight of log(detection score) in matching.
        iou_weight: beta, the weight of box IoU.
        class_weight: gamma, the weight of class agreement.

    Shape:
        Training, ``model(images, targets, reference_images, reference_targets)``: B query
        frames (3, H, W) in [0, 1] with targets ``boxes`` (I, 4) float, ``labels`` (I,) int64,
        ``masks`` (I, H, W) uint8 and ``instance_ids`` (I,) int64, and B reference frames of the
        same videos with targets alike. Returns torchvision's losses (``loss_objectness``,
        ``loss_rpn_box_reg``, ``loss_classifier``, ``loss_box_reg``, ``loss_mask``) plus
        ``track_logits`` (P, M + 1) (the P sampled positive RoIs against their reference's
        memory, new instance first; -inf where a reference has fewer than M instances) and
        ``track_labels`` (P,) int64 in 0..M. Evaluation, ``model(images)``: `detect`.

    Example:
        >>> model = MaskTrackRCNN(3, backbone="resnet18", min_size=32, max_size=32, fpn_channels=8,
        ...                       box_head_dim=16, mask_head_dim=8, track_fc_dim=16, embedding_dim=8)
        >>> sorted(model.eval().detect([torch.rand(3, 32, 40)])[0])
        ['boxes', 'embeddings', 'labels', 'masks', 'scores']
    """

    def __init__(
        self,
        num_classes: int,
        *,
        backbone: str = "resnet50",
        weights: str | os.PathLike[str] | None = None,
        trainable_layers: int | None = None,
        frozen_bn: bool | None = None,
        min_size: int = 360,
        max_size: int = 640,
        fpn_channels: int = 256,
        anchor_sizes: Sequence[int] = (32, 64, 128, 256, 512),
        box_head_dim: int = 1024,
        mask_head_dim: int = 256,
        track_fc_dim: int = 1024,
        embedding_dim: int = 1024,
        num_track_fcs: int = 2,
        track_samples: int = 128,
        score_threshold: float = 0.05,
        detections_per_image: int = 10,
        score_weight: float = 1.0,
        iou_weight: float = 2.0,
        class_weight: float = 10.0,
    ) -> None:
        super().__init__()
        if backbone not in _BACKBONES:
            raise ValueError(f"backbone must be one of {sorted(_BACKBONES)}, got {backbone!r}")
        if num_classes < 2:
            raise ValueError(f"num_classes counts the background and at least one class, got {num_classes}")
        if len(anchor_sizes) != 5:
            raise ValueError(f"anchor_sizes needs one size per FPN level (5), got {tuple(anchor_sizes)}")
        pretrained = weights is not None
        trainable = (3 if pretrained else 5) if trainable_layers is None else int(trainable_layers)
        if not 0 <= trainable <= 5:
            raise ValueError(f"trainable_layers must be in 0..5, got {trainable}")
        frozen = pretrained if frozen_bn is None else bool(frozen_bn)
        self.config: dict[str, Any] = {
            "num_classes": int(num_classes), "backbone": backbone, "weights": None, "trainable_layers": trainable,
            "frozen_bn": frozen, "min_size": int(min_size), "max_size": int(max_size),
            "fpn_channels": int(fpn_channels), "anchor_sizes": tuple(int(a) for a in anchor_sizes),
            "box_head_dim": int(box_head_dim), "mask_head_dim": int(mask_head_dim),
            "track_fc_dim": int(track_fc_dim), "embedding_dim": int(embedding_dim),
            "num_track_fcs": int(num_track_fcs), "track_samples": int(track_samples),
            "score_threshold": float(score_threshold), "detections_per_image": int(detections_per_image),
            "score_weight": float(score_weight), "iou_weight": float(iou_weight), "class_weight": float(class_weight),
        }
        weights_file = None if weights is None else self._weights_file(weights)  # fails before building
        self.embedding_dim = int(embedding_dim)
        self.track_samples = int(track_samples)
        self.tracker_weights = {"score_weight": float(score_weight), "iou_weight": float(iou_weight),
                                "class_weight": float(class_weight)}

        resnet = getattr(torchvision.models, backbone)(weights=None, norm_layer=FrozenBatchNorm2d if frozen else nn.BatchNorm2d)
        fpn = BackboneWithFPN(
            resnet,
            return_layers={"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
            in_channels_list=list(_BACKBONES[backbone]),
            out_channels=fpn_channels,
            extra_blocks=LastLevelMaxPool(),
        )
        roi_size = 7
        anchors = AnchorGenerator(tuple((int(a),) for a in anchor_sizes), ((0.5, 1.0, 2.0),) * 5)
        self.detector = MaskRCNN(
            fpn,
            num_classes=None,
            min_size=min_size,
            max_size=max_size,
            rpn_anchor_generator=anchors,
            box_head=TwoMLPHead(fpn_channels * roi_size * roi_size, box_head_dim),
            box_predictor=FastRCNNPredictor(box_head_dim, num_classes),
            box_score_thresh=score_threshold,
            box_detections_per_img=detections_per_image,
            mask_head=MaskRCNNHeads(fpn_channels, [mask_head_dim] * 4, 1),
            mask_predictor=MaskRCNNPredictor(mask_head_dim, mask_head_dim, num_classes),
        )
        self.track_head = TrackHead(fpn_channels, roi_size=roi_size, fc_dim=track_fc_dim,
                                    embedding_dim=embedding_dim, num_fcs=num_track_fcs)
        if weights_file is not None:
            self._load_pretrained(weights_file, coco=weights == "coco")
        body = self.detector.backbone.body
        train_stages = _STAGES[:trainable] + (("bn1",) if trainable == 5 else ())
        for name, parameter in body.named_parameters():
            if not name.startswith(train_stages):
                parameter.requires_grad_(False)

    # ----------------------------------------------------------------- weights

    def _weights_file(self, weights: str | os.PathLike[str]) -> Path:
        """The file `weights` names, checked to exist (and, for "coco", to fit) before anything is built."""
        if weights == "coco":
            defaults = {"backbone": "resnet50", "fpn_channels": 256, "box_head_dim": 1024, "mask_head_dim": 256,
                        "anchor_sizes": (32, 64, 128, 256, 512)}
            different = {k: self.config[k] for k, v in defaults.items() if self.config[k] != v}
            if different:
                raise ValueError(f"weights='coco' needs torchvision's Mask R-CNN sizes {defaults}; got {different}")
            return COCO_MASK_RCNN.require("COCO Mask R-CNN weights (ResNet-50 FPN)")
        if weights == "imagenet":
            hub = visual_bundle(self.config["backbone"]).imagenet
            assert hub is not None
            return hub.require(f"ImageNet weights of {self.config['backbone']}")
        if not Path(weights).is_file():
            raise WeightsNotFoundError(weights, "weights file not found")
        return Path(weights)

    def _load_pretrained(self, path: Path, *, coco: bool) -> None:
        state = read_state_dict(path)
        if coco:
            # Everything but the class-specific layers (COCO's 91 classes are not ours).
            class_specific = ("roi_heads.box_predictor.", "roi_heads.mask_predictor.mask_fcn_logits.")
            kept = {k: v for k, v in state.items() if not k.startswith(class_specific)}
            result = self.detector.load_state_dict(kept, strict=False)
            missing = [k for k in result.missing_keys
                       if not k.startswith(class_specific) and not k.endswith("num_batches_tracked")]
            if missing or result.unexpected_keys:
                raise WeightsError(path, f"does not fit torchvision's Mask R-CNN: missing {missing[:5]}, "
                                         f"unexpected {result.unexpected_keys[:5]}")
            return
        body = self.detector.backbone.body
        expected = {key: value.shape for key, value in body.state_dict().items()}
        plain = getattr(torchvision.models, self.config["backbone"])(weights=None).state_dict()
        ignored = [key for key in plain if key not in expected]  # fc, BatchNorm counters when frozen
        body.load_state_dict(match_state_dict(state, expected, source=path, ignored=ignored), strict=False)

    # ----------------------------------------------------------------- forward

    def embed(
        self, features: Mapping[str, torch.Tensor], boxes: Sequence[torch.Tensor], image_sizes: Sequence[tuple[int, int]]
    ) -> list[torch.Tensor]:
        """Tracking embeddings of boxes from their RoI-pooled FPN features.

        Args:
            features: The FPN levels of a batch of (transformed) images.
            boxes: Per image (R_b, 4) boxes in the transformed images' pixels.
            image_sizes: The transformed images' sizes.

        Returns:
            Per image (R_b, embedding_dim).
        """
        rois = self.detector.roi_heads.box_roi_pool(dict(features), list(boxes), list(image_sizes))  # (R, C, 7, 7)
        return list(self.track_head(rois).split([len(b) for b in boxes]))

    def forward(
        self,
        images: Sequence[torch.Tensor],
        targets: Sequence[Mapping[str, torch.Tensor]] | None = None,
        reference_images: Sequence[torch.Tensor] | None = None,
        reference_targets: Sequence[Mapping[str, torch.Tensor]] | None = None,
    ) -> Any:
        """Training: losses and tracking logits of query / reference pairs; evaluation: `detect`.

        See the class docstring for shapes.
        """
        if not self.training:
            return self.detect(images)
        if targets is None or reference_images is None or reference_targets is None:
            raise ValueError("training needs targets, reference_images and reference_targets")
        count = len(images)
        if not (len(targets) == len(reference_images) == len(reference_targets) == count):
            raise ValueError("images, targets, reference_images and reference_targets must have one entry per pair")
        # One backbone pass over queries and references (BatchNorm sees 2B frames).
        image_list, all_targets = self.detector.transform(
            list(images) + list(reference_images), [dict(t) for t in targets] + [dict(t) for t in reference_targets]
        )
        assert all_targets is not None
        features = self.detector.backbone(image_list.tensors)
        query = OrderedDict((k, v[:count]) for k, v in features.items())
        reference = OrderedDict((k, v[count:]) for k, v in features.items())
        sizes = [tuple(s) for s in image_list.image_sizes]
        query_sizes, reference_sizes = sizes[:count], sizes[count:]
        query_targets, reference_targets_t = all_targets[:count], all_targets[count:]
        query_list = ImageList(image_list.tensors[:count], query_sizes)
        proposals, rpn_losses = self.detector.rpn(query_list, query, query_targets)
        _, roi_losses = self.detector.roi_heads(query, proposals, query_sizes, query_targets)
        logits, labels = self._track_logits(query, reference, proposals, query_targets, reference_targets_t,
                                            query_sizes, reference_sizes)
        return {**rpn_losses, **roi_losses, "track_logits": logits, "track_labels": labels}

    def _track_logits(
        self,
        query: Mapping[str, torch.Tensor],
        reference: Mapping[str, torch.Tensor],
        proposals: Sequence[torch.Tensor],
        query_targets: Sequence[Mapping[str, torch.Tensor]],
        reference_targets: Sequence[Mapping[str, torch.Tensor]],
        query_sizes: Sequence[tuple[int, int]],
        reference_sizes: Sequence[tuple[int, int]],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        threshold = float(self.detector.roi_heads.proposal_matcher.high_threshold)
        sampled_boxes, sampled_ids = [], []
        for boxes, target in zip(proposals, query_targets, strict=True):
            gt_boxes, ids = target["boxes"], target["instance_ids"]
            if len(gt_boxes) == 0:
                sampled_boxes.append(gt_boxes.new_zeros((0, 4)))
                sampled_ids.append(ids.new_zeros((0,)))
                continue
            candidates = torch.cat([boxes.detach(), gt_boxes])  # (P, 4)
            best, which = box_iou(candidates, gt_boxes).max(dim=1)
            positive = torch.nonzero(best >= threshold)[:, 0]
            if len(positive) > self.track_samples:
                positive = positive[torch.randperm(len(positive), device=positive.device)[: self.track_samples]]
            sampled_boxes.append(candidates[positive])
            sampled_ids.append(ids[which[positive]])
        query_embeddings = self.embed(query, sampled_boxes, query_sizes)
        memories = self.embed(reference, [t["boxes"] for t in reference_targets], reference_sizes)
        width = 1 + max((len(m) for m in memories), default=0)
        all_logits, all_labels = [], []
        for embeddings, ids, memory, target in zip(query_embeddings, sampled_ids, memories, reference_targets, strict=True):
            logits = match_logits(embeddings, memory)  # (P_b, N_b + 1)
            all_logits.append(F.pad(logits, (0, width - logits.shape[1]), value=float("-inf")))
            same = ids[:, None] == target["instance_ids"][None, :]  # (P_b, N_b)
            all_labels.append(torch.where(same.any(dim=1), same.to(torch.int64).argmax(dim=1) + 1, 0))
        return torch.cat(all_logits), torch.cat(all_labels)

    def detect(self, images: Sequence[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """Detect, segment and embed the instances of each image (eval mode).

        Args:
            images: Frames (3, H, W) in [0, 1], any sizes.

        Returns:
            Per image ``boxes`` (K, 4) in the image's pixels, ``labels`` (K,), ``scores`` (K,),
            ``masks`` (K, 1, H, W) probabilities, ``embeddings`` (K, embedding_dim); K at most
            `detections_per_image`, best first.

        Raises:
            RuntimeError: The model is in training mode.
        """
        if self.training:
            raise RuntimeError("detect runs in eval mode: call model.eval() first")
        original_sizes = [(int(im.shape[-2]), int(im.shape[-1])) for im in images]
        image_list, _ = self.detector.transform(list(images))
        features = self.detector.backbone(image_list.tensors)
        sizes = [(int(s[0]), int(s[1])) for s in image_list.image_sizes]
        proposals, _ = self.detector.rpn(image_list, features)
        detections, _ = self.detector.roi_heads(features, proposals, sizes)
        embeddings = self.embed(features, [d["boxes"] for d in detections], sizes)
        detections = self.detector.transform.postprocess(detections, sizes, original_sizes)
        for detection, embedding in zip(detections, embeddings, strict=True):
            detection["embeddings"] = embedding
        return detections

    def tracker(self) -> VideoTracker:
        """A fresh `VideoTracker` with this model's matching weights."""
        return VideoTracker(**self.tracker_weights)


# --------------------------------------------------------------------- video inference


def _frames_tensor(frames: torch.Tensor | np.ndarray) -> torch.Tensor:
    """(T, 3, H, W) float in [0, 1] from decoded (T, H, W, 3) uint8 or a float tensor."""
    tensor = torch.as_tensor(frames)
    if tensor.dtype == torch.uint8:
        if tensor.ndim != 4 or tensor.shape[-1] != 3:
            raise ValueError(f"uint8 frames must be (T, H, W, 3), got {tuple(tensor.shape)}")
        return tensor.permute(0, 3, 1, 2).float() / 255.0
    if tensor.ndim != 4 or tensor.shape[1] != 3:
        raise ValueError(f"float frames must be (T, 3, H, W), got {tuple(tensor.shape)}")
    return tensor.float()


@torch.no_grad()
def track_video(
    model: MaskTrackRCNN,
    frames: torch.Tensor | np.ndarray,
    *,
    chunk_size: int = 8,
    mask_threshold: float = 0.5,
    max_tracks: int = 100,
) -> list[dict[str, Any]]:
    """Detect and track the instances of one video.

    Frames are detected `chunk_size` at a time (``model.detect``), then matched to the video's
    memory in order (``model.tracker()``).

    Args:
        model: The model, in eval mode.
        frames: (T, H, W, 3) uint8 as decoded, or (T, 3, H, W) float in [0, 1].
        chunk_size: Frames per detection batch.
        mask_threshold: Mask probability above which a pixel is the instance's.
        max_tracks: Tracks kept, best score first.

    Returns:
        Per track ``category_id`` (its most frequent class; ties to the smaller id),
        ``score`` (mean detection score) and ``segmentations`` (T entries: a compressed RLE
        ``{"size": [H, W], "counts": str}``, or None where the track is absent or its mask
        empty), best score first.
    """
    if model.training:
        raise RuntimeError("track_video runs in eval mode: call model.eval() first")
    video = _frames_tensor(frames)
    device = next(model.parameters()).device
    tracker = model.tracker()
    per_track: dict[int, dict[int, tuple[float, int, np.ndarray]]] = defaultdict(dict)
    for start in range(0, len(video), chunk_size):
        chunk = video[start : start + chunk_size].to(device)
        for offset, detection in enumerate(model.detect(list(chunk))):
            ids = tracker.update(detection["embeddings"], detection["boxes"], detection["labels"], detection["scores"])
            masks = (detection["masks"][:, 0] > mask_threshold).cpu().numpy()  # (K, H, W)
            for k, identity in enumerate(ids.tolist()):
                per_track[identity][start + offset] = (float(detection["scores"][k]), int(detection["labels"][k]), masks[k])
    tracks: list[dict[str, Any]] = []
    for frames_of_track in per_track.values():
        scores = [s for s, _, _ in frames_of_track.values()]
        labels = np.array([c for _, c, _ in frames_of_track.values()])
        segmentations: list[dict[str, Any] | None] = [None] * len(video)
        for t, (_, _, mask) in frames_of_track.items():
            if mask.any():
                rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
                segmentations[t] = {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}
        tracks.append({"category_id": int(np.bincount(labels).argmax()), "score": float(np.mean(scores)),
                       "segmentations": segmentations})
    tracks.sort(key=lambda track: -float(track["score"]))
    return tracks[:max_tracks]


def _split(source: Manifest | str | os.PathLike[str], split: str | None) -> Manifest:
    manifest = open_source(source)
    if split is not None:
        manifest = manifest.split(split)
    if len(manifest) == 0:
        raise AvlabError(f"no videos in split {split!r} of {getattr(source, 'name', source)}")
    return manifest


def predict_ytvis(
    model: MaskTrackRCNN,
    source: Manifest | str | os.PathLike[str],
    *,
    split: str | None = "val",
    chunk_size: int = 8,
    max_tracks: int = 100,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """YouTube-VIS results of `model` on every video of a split.

    Args:
        model: A `MaskTrackRCNN` (put in eval mode here).
        source: A YouTube-VIS manifest (`load_youtube_vis`, `load_synth`) or a SynthAV folder.
        split: The split to predict; None: every record of `source`.
        chunk_size: Frames per detection batch.
        max_tracks: Tracks per video, at most (YouTube-VIS scores at most 100).
        progress: Show a progress bar.

    Returns:
        Per track ``video_id`` (the JSON's id), ``category_id`` (the dataset's id), ``score``
        and ``segmentations`` (an RLE or None per frame): what `write_ytvis_results` and
        `ytvis_evaluate` take.

    Raises:
        AvlabError: The split is empty, or a record has no YouTube-VIS id or a frame count
            that differs from its annotation's.
    """
    from tqdm.auto import tqdm

    manifest = _split(source, split)
    model.eval()
    results: list[dict[str, Any]] = []
    for record in tqdm(manifest, desc="MaskTrack", disable=not progress):
        if "ytvis_id" not in record.extra:
            raise AvlabError(f"video {record.video_id!r} has no YouTube-VIS id (load it with load_youtube_vis or load_synth)")
        decoded = record.load_frames().frames  # (T, H, W, 3) uint8
        video = _frames_tensor(decoded)
        size = (int(record.extra.get("height", video.shape[2])), int(record.extra.get("width", video.shape[3])))
        if tuple(video.shape[2:]) != size:
            video = F.interpolate(video, size=size, mode="bilinear", align_corners=False)
        if record.num_frames is not None and len(video) != record.num_frames:
            raise AvlabError(f"video {record.video_id!r}: decoded {len(video)} frames, the annotation has {record.num_frames}")
        for track in track_video(model, video, chunk_size=chunk_size, max_tracks=max_tracks):
            results.append({"video_id": record.extra["ytvis_id"], **track})
    return results


def ground_truth_json(source: Manifest | str | os.PathLike[str], *, split: str | None = "val") -> Path:
    """The YouTube-VIS JSON that a split's records were read from.

    Raises:
        AvlabError: The records carry no YouTube-VIS masks, or come from several files.
    """
    paths = {record.masks.path for record in _split(source, split) if isinstance(record.masks, YtvisMasks)}
    if len(paths) != 1:
        raise AvlabError(f"split {split!r}: expected the records of one annotated YouTube-VIS JSON, found {len(paths)}")
    return Path(paths.pop())


def evaluate_masktrack(
    model: MaskTrackRCNN,
    source: Manifest | str | os.PathLike[str],
    *,
    split: str | None = "val",
    ground_truth: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    **options: Any,
) -> dict[str, float]:
    """YouTube-VIS AP / AR of `model` on a split (`predict_ytvis` then `ytvis_evaluate`).

    Args:
        model: The model.
        source: As for `predict_ytvis`.
        split: The split.
        ground_truth: The split's annotated JSON; None: the one its records come from.
        **options: More `predict_ytvis` options.

    Returns:
        The 12 figures of `avlab.eval.ytvis.YTVIS_STATS` (-1 where nothing can be measured).
    """
    truth = ground_truth if ground_truth is not None else ground_truth_json(source, split=split)
    return ytvis_evaluate(truth, predict_ytvis(model, source, split=split, **options))


# --------------------------------------------------------------------- checkpoints


def save_masktrack(model: MaskTrackRCNN, path: str | os.PathLike[str], *, metrics: Mapping[str, float] | None = None) -> Path:
    """Save the model's constructor arguments and weights (and optional metrics) for `load_masktrack`.

    Example:
        >>> import tempfile
        >>> model = MaskTrackRCNN(3, backbone="resnet18", min_size=32, max_size=32, fpn_channels=8,
        ...                       box_head_dim=16, mask_head_dim=8, track_fc_dim=16, embedding_dim=8)
        >>> path = save_masktrack(model, tempfile.mkdtemp() + "/m.ckpt")
        >>> again = load_masktrack(path)
        >>> torch.equal(again.track_head.fcs[0].weight, model.track_head.fcs[0].weight), again.training
        (True, False)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({
        "hyper_parameters": {"model": _CHECKPOINT_NAME, "model_kwargs": dict(model.config)},
        "state_dict": {key: value.detach().cpu() for key, value in model.state_dict().items()},
        "metrics": {str(k): float(v) for k, v in (metrics or {}).items()},
    }, path)
    return path


def load_masktrack(checkpoint: str | os.PathLike[str] | Mapping[str, Any], *, map_location: str = "cpu") -> MaskTrackRCNN:
    """Rebuild a `MaskTrackRCNN` from `save_masktrack`'s file (read with ``weights_only=True``).

    Returns:
        The model with its weights, in eval mode.

    Raises:
        AvlabError: The file holds no MaskTrack model.
    """
    if isinstance(checkpoint, Mapping):
        data, where = checkpoint, "checkpoint"
    else:
        data = torch.load(os.fspath(checkpoint), map_location=map_location, weights_only=True)
        where = os.fspath(checkpoint)
    params = data.get("hyper_parameters", {}) if isinstance(data, Mapping) else {}
    if params.get("model") != _CHECKPOINT_NAME or "state_dict" not in data:
        raise AvlabError(f"{where}: no MaskTrack R-CNN in this checkpoint (hyper_parameters['model'] != 'masktrack')")
    kwargs = dict(params["model_kwargs"])
    kwargs["weights"] = None  # the weights are the state dict's
    model = MaskTrackRCNN(**kwargs)
    model.load_state_dict(data["state_dict"])
    return model.eval()
