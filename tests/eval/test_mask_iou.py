"""Per-sample mask IoU and accuracy at an IoU threshold, with hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from avlab.eval import accuracy_at_iou, mask_iou
from avlab.eval.masks import binarize


def masks(*rows: str) -> np.ndarray:
    """(N, H, W) bool from strings, one string per mask row-major, '#' foreground: masks("##..", ...)."""
    return np.array([[[c == "#" for c in row] for row in mask.split("/")] for mask in rows])


def test_iou_hand_values_and_empty_masks():
    pred = masks("##/..", "../..", "##/..", "##/##", "../..")
    gt = masks("#./..", "../..", "../..", "##/##", "#./.#")
    # 1 / 2; both empty: 1; gt empty, pred not: 0; all ones: 1; pred empty, gt not: 0.
    assert mask_iou(pred, gt).tolist() == [0.5, 1.0, 0.0, 1.0, 0.0]


def test_logits_are_thresholded_at_sigmoid_one_half():
    logits = np.array([[[-3.0, 0.0], [1e-3, 7.0]]], np.float32)
    assert binarize(logits).tolist() == [[[False, False], [True, True]]]
    gt = masks("../##")
    assert mask_iou(logits, gt).tolist() == [1.0]
    assert mask_iou(torch.from_numpy(logits), torch.from_numpy(gt)).tolist() == [1.0]


def test_integer_masks_are_foreground_where_nonzero():
    pred = np.array([[[0, 255], [255, 0]]], np.uint8)
    gt = np.array([[[0, 1], [0, 0]]], np.uint8)
    assert mask_iou(pred, gt).tolist() == [0.5]


def test_leading_dimensions_are_kept():
    pred = np.zeros((2, 3, 4, 4), bool)
    assert mask_iou(pred, pred).shape == (2, 3)


def test_accuracy_at_iou_counts_the_threshold_itself():
    pred = masks("###./..../..../....", "##../..../..../....")
    gt = masks("####/..../..../....", "####/..../..../....")
    # IoU 3/4 (exactly the default threshold) and 2/4.
    assert accuracy_at_iou(pred, gt) == 0.5
    assert accuracy_at_iou(pred, gt, threshold=0.5) == 1.0
    assert accuracy_at_iou(pred, gt, threshold=0.76) == 0.0


@pytest.mark.parametrize(("empty", "expected"), [("one", 2 / 3), ("zero", 1 / 3), ("skip", 1 / 2)])
def test_accuracy_empty_pairs_count_one_zero_or_are_skipped(empty, expected):
    pred = masks("##/..", "../..", "#./..")
    gt = masks("##/..", "../..", "##/##")
    assert accuracy_at_iou(pred, gt, empty=empty) == pytest.approx(expected)


def test_accuracy_is_nan_when_every_sample_is_skipped():
    empty = masks("../..", "../..")
    assert math.isnan(accuracy_at_iou(empty, empty, empty="skip"))
    assert accuracy_at_iou(empty, empty) == 1.0


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="same"):
        mask_iou(np.zeros((1, 2, 2), bool), np.zeros((1, 2, 3), bool))
    with pytest.raises(ValueError, match="empty"):
        accuracy_at_iou(np.zeros((1, 2, 2), bool), np.zeros((1, 2, 2), bool), empty="nan")  # type: ignore[arg-type]


mask_batches = st.integers(1, 4).flatmap(
    lambda n: st.tuples(*(arrays(bool, (n, 5, 6)) for _ in range(2)))
)


@settings(max_examples=40, deadline=None)
@given(pair=mask_batches)
def test_iou_is_symmetric_and_in_unit_interval(pair):
    a, b = pair
    iou = mask_iou(a, b)
    np.testing.assert_array_equal(iou, mask_iou(b, a))
    assert np.all((iou >= 0) & (iou <= 1))
    np.testing.assert_array_equal(mask_iou(a, a), np.ones(len(a)))
