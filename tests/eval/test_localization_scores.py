"""cIoU, AP50 and AUC of sound-source localisation, by the LVS and EZ-VSL protocols, by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avlab.eval import localization_scores


def rows(first: int, last: int, size: int = 10) -> np.ndarray:
    """A (size, size) map that is 1 on rows first..last."""
    region = np.zeros((size, size))
    region[first : last + 1] = 1.0
    return region


def test_ties_at_the_median_are_where_the_protocols_differ():
    # 100 distinct values: the threshold is the 51st smallest (50). EZ-VSL keeps values >= 50
    # (rows 5-9, 50 pixels); LVS keeps values > 50 (49 pixels).
    heatmap = np.arange(100.0).reshape(1, 10, 10)
    gt = rows(5, 9)[None]
    assert localization_scores(heatmap, gt, protocol="ezvsl")["ciou_mean"] == 1.0
    assert localization_scores(heatmap, gt, protocol="lvs")["ciou_mean"] == pytest.approx(49 / 50)


def test_consensus_maps_weigh_pixels_and_are_not_binarised():
    # Prediction: rows 5-9. Consensus: both annotators on rows 5-9 x cols 0-4 (weight 1), one
    # annotator on rows 0-4 x cols 0-4 (weight 0.5). cIoU = 25 / (37.5 + 25 predicted outside).
    heatmap = rows(5, 9)[None]
    gt = np.zeros((1, 10, 10))
    gt[0, 5:, :5] = 1.0
    gt[0, :5, :5] = 0.5
    for protocol in ("lvs", "ezvsl"):
        assert localization_scores(heatmap, gt, protocol=protocol)["ciou_mean"] == pytest.approx(0.4)


def test_ap50_mean_and_auc_over_samples():
    # Binary heatmaps select the same 50 pixels (rows 0-4) under both protocols.
    heatmaps = np.stack([rows(0, 4)] * 3)
    gt = np.zeros((3, 10, 10))
    gt[0, :5] = 1.0  # cIoU 1
    gt[1, :4, :9] = 1.0  # 36 inside the prediction: 36 / (36 + 14) = 0.72
    gt[2, 3:9] = 1.0  # 20 of 60 overlap: 20 / (60 + 30) = 0.222
    cious = [1.0, 0.72, 20 / 90]
    # Fraction with cIoU >= 0.05 i for i = 0..20: all up to 0.20 (i <= 4), two up to 0.70
    # (i <= 14), then one; trapezoidal rule with step 0.05.
    success = np.array([1.0] * 5 + [2 / 3] * 10 + [1 / 3] * 6)
    auc = sum((success[i] + success[i + 1]) / 2 * 0.05 for i in range(20))
    for protocol in ("lvs", "ezvsl"):
        scores = localization_scores(heatmaps, gt, protocol=protocol)
        assert scores["ciou_ap50"] == pytest.approx(2 / 3)
        assert scores["ciou_mean"] == pytest.approx(np.mean(cious))
        assert scores["auc"] == pytest.approx(auc)


def test_vggss_union_maps_and_torch_inputs():
    heatmap = torch.from_numpy(rows(0, 4)[None]).float()
    gt = torch.from_numpy(rows(0, 9)[None])  # everything: cIoU = 50 / 100
    assert localization_scores(heatmap, gt) == {"ciou_ap50": 1.0, "ciou_mean": 0.5, "auc": pytest.approx(0.5 + 0.025)}


def test_constant_heatmaps_follow_the_reference_code():
    # A constant map is not normalised by either reference: LVS ends with 1 + value, kept only
    # if >= 1 (empty prediction for a negative map: cIoU 0); EZ-VSL keeps every pixel.
    heatmap = np.full((1, 10, 10), -2.0)
    gt = rows(0, 4)[None]
    assert localization_scores(heatmap, gt, protocol="lvs")["ciou_mean"] == 0.0
    assert localization_scores(heatmap, gt, protocol="ezvsl")["ciou_mean"] == 0.5


@pytest.mark.parametrize(("protocol", "align_corners"), [("lvs", False), ("ezvsl", True)])
def test_small_heatmaps_are_upsampled_as_the_protocol_does(protocol, align_corners):
    rng = np.random.default_rng(0)
    small = rng.standard_normal((4, 7, 7)).astype(np.float32)
    gt = (rng.random((4, 28, 28)) > 0.5).astype(np.float64)
    gt[:, 0, 0] = 1.0
    upsampled = F.interpolate(torch.from_numpy(small)[:, None], size=(28, 28), mode="bilinear", align_corners=align_corners)
    expected = localization_scores(upsampled[:, 0].numpy(), gt, protocol=protocol)
    assert localization_scores(small, gt, protocol=protocol) == expected


def test_bad_inputs_are_rejected():
    heatmaps = np.zeros((2, 4, 4))
    gt = np.ones((2, 4, 4))
    with pytest.raises(ValueError, match=r"gt_maps \[1\] are all zero"):
        localization_scores(heatmaps, np.stack([gt[0], np.zeros((4, 4))]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        localization_scores(heatmaps, 2 * gt)
    with pytest.raises(ValueError, match="expected heatmaps"):
        localization_scores(heatmaps[:1], gt)
    with pytest.raises(ValueError, match="protocol"):
        localization_scores(heatmaps, gt, protocol="senocak")  # type: ignore[arg-type]
