"""AFCV's tracker: per-frame detections with embeddings in, YouTube-VIS track results out.

CrossVIS-style online association (SPEC section 9). Frame by frame, each detection is compared
with every live track by

    similarity = embedding_weight * cosine(embedding, track's last embedding)
                 + iou_weight * IoU(box, track's last box)

(with the default weights the sum of the two, in [-1, 2]). A detection may join a track only
if the similarity is >= `match_threshold` (0.4) and, unless `class_agnostic`, their classes
agree; among those pairs one detection per track and one track per detection are chosen by an
optimal assignment (``scipy.optimize.linear_sum_assignment``, our choice over a greedy pass:
the result does not depend on the order of the detections). Starting a new track is worth
exactly the threshold, so the assignment maximises the sum over joined pairs of
``similarity - match_threshold``. Detections left over start new tracks. A track missing from
a frame stays alive, keeping its last embedding and box, so an object that leaves and comes
back rejoins it (by its embedding: its box has usually moved).

`Tracker.results` turns the tracks into YouTube-VIS result dicts that
`avlab.eval.write_ytvis_results` and `avlab.eval.ytvis_evaluate` accept. One tracker serves one
video.

Example:
    >>> import torch
    >>> tracker = Tracker()
    >>> masks = torch.zeros(1, 4, 4)
    >>> masks[0, 1:3, 1:3] = 0.9
    >>> box, emb = torch.tensor([[1.0, 1.0, 3.0, 3.0]]), torch.tensor([[1.0, 0.0]])
    >>> tracker.update(0, box, torch.tensor([0.8]), torch.tensor([0]), masks, emb).tolist()
    [0]
    >>> tracker.update(2, box, torch.tensor([0.6]), torch.tensor([0]), masks, emb).tolist()
    [0]
    >>> [result] = tracker.results(5, 3, {0: 1})
    >>> result["category_id"], round(result["score"], 2), result["segmentations"][1]
    (1, 0.7, None)
    >>> result["segmentations"][0]
    {'size': [4, 4], 'counts': '52203'}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pycocotools import mask as coco_mask
from scipy.optimize import linear_sum_assignment
from torchvision.ops import box_iou

__all__ = ["Track", "Tracker"]


@dataclass
class Track:
    """One tracked object: its last appearance and what it collected per frame.

    Attributes:
        track_id: Position in the tracker's track list (creation order).
        embedding: (D,) the last detection's embedding.
        box: (4,) the last detection's xyxy box.
        last_frame: The frame of the last detection.
        labels: Label index of each detection, in frame order.
        scores: Score of each detection, in frame order.
        segmentations: Frame -> compressed RLE of the thresholded mask (``counts`` a str).
    """

    track_id: int
    embedding: torch.Tensor
    box: torch.Tensor
    last_frame: int
    labels: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    segmentations: dict[int, dict[str, Any]] = field(default_factory=dict)


class Tracker:
    """Online tracker for one video: associate each frame's detections with the tracks.

    Association is described in the module docstring.

    Args:
        match_threshold: Smallest similarity at which a detection joins a track.
        embedding_weight: Weight of the cosine similarity of the embeddings.
        iou_weight: Weight of the box IoU.
        class_agnostic: Match detections to tracks of any class; False matches only within a
            class (the spec's default).
        class_vote: A track's class in the results: "first" (its first detection's, the
            spec's default) or "majority" (the most frequent; a tie goes to the class seen
            first).
        mask_threshold: A pixel is in the mask where its probability is above this.

    Example:
        >>> tracker = Tracker(class_vote="majority")
        >>> len(tracker.tracks)
        0
    """

    def __init__(
        self,
        *,
        match_threshold: float = 0.4,
        embedding_weight: float = 1.0,
        iou_weight: float = 1.0,
        class_agnostic: bool = False,
        class_vote: str = "first",
        mask_threshold: float = 0.5,
    ) -> None:
        if class_vote not in ("first", "majority"):
            raise ValueError(f"class_vote must be 'first' or 'majority', not {class_vote!r}")
        self.match_threshold = float(match_threshold)
        self.embedding_weight = float(embedding_weight)
        self.iou_weight = float(iou_weight)
        self.class_agnostic = bool(class_agnostic)
        self.class_vote = class_vote
        self.mask_threshold = float(mask_threshold)
        self.tracks: list[Track] = []
        self.frame_size: tuple[int, int] | None = None
        self._last_frame = -1

    def similarity(self, boxes: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        """Similarity of each detection to each track (before the threshold and the classes).

        Shape:
            boxes: (n, 4) xyxy.
            embeddings: (n, D).
            output: (n, num_tracks).
        """
        if not self.tracks:
            return boxes.new_zeros(len(boxes), 0)
        track_embeddings = torch.stack([t.embedding for t in self.tracks])  # (m, D)
        track_boxes = torch.stack([t.box for t in self.tracks])  # (m, 4)
        cosine = F.normalize(embeddings, dim=1) @ F.normalize(track_embeddings, dim=1).T
        return self.embedding_weight * cosine + self.iou_weight * box_iou(boxes, track_boxes)

    @torch.no_grad()
    def update(
        self,
        frame: int,
        boxes: torch.Tensor,
        scores: torch.Tensor,
        labels: torch.Tensor,
        masks: torch.Tensor,
        embeddings: torch.Tensor,
    ) -> torch.Tensor:
        """Add one frame's detections; frames come in increasing order (gaps allowed).

        Args:
            frame: The frame's index in the video (0-based).
            boxes: Detection boxes, xyxy in pixels.
            scores: Detection scores.
            labels: Detection label indices (the detector's classes).
            masks: Mask probabilities at the video's frame size.
            embeddings: Detection embeddings (`avlab.heads.fcos.gather_locations`).

        Shape:
            boxes: (n, 4).
            scores, labels: (n,).
            masks: (n, H, W).
            embeddings: (n, D).
            output: (n,) int64, the track id each detection joined or started.

        Raises:
            ValueError: A frame not after the last one, a frame size that changed, or
                inputs whose lengths disagree.
        """
        n = len(boxes)
        if not (len(scores) == len(labels) == len(masks) == len(embeddings) == n):
            raise ValueError(
                "boxes, scores, labels, masks and embeddings must have one row per detection"
            )
        if frame <= self._last_frame:
            raise ValueError(f"frame {frame} does not come after frame {self._last_frame}")
        if masks.ndim != 3:
            raise ValueError(f"masks must be (n, H, W), not {tuple(masks.shape)}")
        size = (int(masks.shape[1]), int(masks.shape[2]))
        if self.frame_size is not None and size != self.frame_size:
            raise ValueError(f"frame size {size} differs from the video's {self.frame_size}")
        self.frame_size = size
        self._last_frame = frame

        boxes, embeddings = boxes.detach().float().cpu(), embeddings.detach().float().cpu()
        label_list = [int(v) for v in labels.tolist()]
        assigned = self._assign(boxes, embeddings, label_list)  # (n,) track or -1
        binary = (masks.detach().cpu() > self.mask_threshold).numpy().astype(np.uint8)
        track_ids = []
        for i in range(n):
            if assigned[i] < 0:
                track = Track(len(self.tracks), embeddings[i], boxes[i], frame)
                self.tracks.append(track)
            else:
                track = self.tracks[assigned[i]]
                track.embedding, track.box, track.last_frame = embeddings[i], boxes[i], frame
            track.labels.append(label_list[i])
            track.scores.append(float(scores[i]))
            track.segmentations[frame] = _encode(binary[i])
            track_ids.append(track.track_id)
        return torch.tensor(track_ids, dtype=torch.int64)

    def _assign(self, boxes: torch.Tensor, embeddings: torch.Tensor, labels: list[int]) -> list[int]:
        """The track each detection joins, -1 for a new one (the module docstring's rule)."""
        n, m = len(boxes), len(self.tracks)
        if n == 0 or m == 0:
            return [-1] * n
        similarity = self.similarity(boxes, embeddings).numpy().astype(np.float64)  # (n, m)
        allowed = similarity >= self.match_threshold
        if not self.class_agnostic:
            track_labels = np.array([t.labels[-1] for t in self.tracks])
            allowed &= np.array(labels)[:, None] == track_labels[None, :]
        # Gain of joining: similarity - threshold (>= 0). Column m + i is "detection i starts
        # a track", worth a hair below 0 so a pair exactly at the threshold joins (">=").
        # Pairs not allowed are worth -1: a detection's own new-track column always beats them.
        gain = np.full((n, m + n), -1.0)
        gain[:, :m] = np.where(allowed, similarity - self.match_threshold, -1.0)
        gain[np.arange(n), m + np.arange(n)] = -1e-9
        rows, cols = linear_sum_assignment(gain, maximize=True)
        assigned = [-1] * n
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            if c < m and allowed[r, c]:
                assigned[r] = c
        return assigned

    def results(
        self,
        video_id: int,
        num_frames: int,
        category_ids: Mapping[int, int] | Sequence[int],
    ) -> list[dict[str, Any]]:
        """The tracks as YouTube-VIS results, one dict per track in creation order.

        Args:
            video_id: The video's id in the data set's JSON.
            num_frames: The video's length; every track gets one segmentation per frame.
            category_ids: The data set's category id of each label index (a mapping, or a
                sequence indexed by label).

        Returns:
            Per track ``{"video_id", "category_id", "score", "segmentations"}``: the score is
            the mean of its detections' scores, the class by `class_vote`, and per frame a
            compressed RLE (``{"size": [H, W], "counts": str}``) or None where the track is
            absent.

        Raises:
            ValueError: A track has a frame at or beyond `num_frames`.
            KeyError, IndexError: A label has no category id.
        """
        out = []
        for track in self.tracks:
            if max(track.segmentations) >= num_frames:
                raise ValueError(
                    f"track {track.track_id} has frame {max(track.segmentations)}, "
                    f"but the video has {num_frames} frames"
                )
            if self.class_vote == "first":
                label = track.labels[0]
            else:
                label = Counter(track.labels).most_common(1)[0][0]
            out.append({
                "video_id": video_id,
                "category_id": int(category_ids[label]),
                "score": float(np.mean(track.scores)),
                "segmentations": [track.segmentations.get(t) for t in range(num_frames)],
            })
        return out


def _encode(mask: np.ndarray) -> dict[str, Any]:
    """Compressed RLE of an (H, W) 0/1 mask, ``counts`` decoded to str (JSON-ready)."""
    rle = coco_mask.encode(np.asfortranarray(mask))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}
