"""Descriptive statistics of a manifest: what a dataset holds, computed from its annotations."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from avlab.datasets.manifest import Manifest

__all__ = ["describe_manifest"]


def describe_manifest(manifest: Manifest) -> dict[str, Any]:
    """Counts and ground-truth statistics of a manifest, JSON-ready.

    Masks are decoded to measure them, so this reads every annotation once.

    Returns:
        A dict with ``num_videos``, ``num_frames``, ``categories`` (videos per category),
        and, when the videos have instance masks: ``num_instances``,
        ``instances_per_video`` (mean), ``instances_per_category``, ``sounding_fraction``
        (of instance-frames where the object is visible), ``mean_area_fraction`` (visible
        pixels of a present instance, as a fraction of the frame) and ``occluded_fraction``
        (instance-frames whose visible area is below half of that instance's largest).

    Example:
        >>> import numpy as np
        >>> from pathlib import Path
        >>> from avlab.datasets import Manifest, VideoRecord
        >>> m = Manifest([VideoRecord("a", video_path=Path("a.mp4"), frame_times=np.arange(4.0))], name="toy")
        >>> describe_manifest(m)["num_frames"]
        4
    """
    summary: dict[str, Any] = {
        "num_videos": len(manifest),
        "num_frames": int(sum(r.num_frames or 0 for r in manifest)),
        "categories": dict(Counter(r.category for r in manifest if r.category is not None)),
    }
    names = manifest.categories
    instances = 0
    per_category: Counter[str] = Counter()
    visible = sounding = occluded = 0
    areas: list[float] = []
    for record in manifest:
        if record.masks is None:
            continue
        masks = record.load_masks()
        if masks.kind != "instance" or masks.category_ids is None:
            continue
        instances += len(masks.data)
        area = masks.data.reshape(len(masks.data), masks.num_frames, -1).sum(axis=-1)  # (I, T)
        present = area > 0
        visible += int(present.sum())
        occluded += int((present & (area < 0.5 * area.max(axis=1, keepdims=True))).sum())
        areas.extend((area[present] / float(np.prod(masks.size))).tolist())
        if masks.sounding is not None:
            sounding += int((masks.sounding & present).sum())
        for category in masks.category_ids.tolist():
            label = names[category] if names is not None and 0 <= category < len(names) else str(category)
            per_category[label] += 1
    if instances:
        summary.update(
            num_instances=instances,
            instances_per_video=instances / max(1, len(manifest)),
            instances_per_category=dict(sorted(per_category.items())),
            sounding_fraction=sounding / max(1, visible),
            mean_area_fraction=float(np.mean(areas)) if areas else 0.0,
            occluded_fraction=occluded / max(1, visible),
        )
    return summary
