from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avlab.datasets import Manifest, Masks, VideoRecord
from avlab.datasets.stats import describe_manifest


class FixedMasks:
    def __init__(self, masks: Masks) -> None:
        self.masks = masks

    def load(self) -> Masks:
        return self.masks


def test_statistics_of_instance_masks(tmp_path: Path) -> None:
    data = np.zeros((2, 4, 10, 10), np.uint8)
    data[0, :, :4, :4] = 1  # 16 px in every frame
    data[0, 3, :2, :4] = 0  # frame 3: 8 px, half hidden -> not "occluded" (< half is)
    data[1, 0, 5:, 5:] = 1  # 25 px, present only in frame 0
    sounding = np.array([[True, True, False, False], [True, False, False, False]])
    masks = Masks("instance", data, np.arange(4), np.array([1, 2]), np.array([1, 2]), sounding)
    record = VideoRecord("v", split="train", video_path=tmp_path / "v.mp4", frame_times=np.arange(4.0),
                         masks=FixedMasks(masks), category="x")
    summary = describe_manifest(Manifest([record], name="toy", categories=["background", "cat", "dog"]))
    assert summary["num_videos"] == 1 and summary["num_frames"] == 4
    assert summary["num_instances"] == 2
    assert summary["instances_per_category"] == {"cat": 1, "dog": 1}
    assert summary["sounding_fraction"] == pytest.approx(3 / 5)  # 5 visible instance-frames
    assert summary["occluded_fraction"] == 0.0
    assert summary["mean_area_fraction"] == pytest.approx((16 * 3 + 8 + 25) / 5 / 100)
