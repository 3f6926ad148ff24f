"""AVSBench and AVSS meters against oracles written from the protocols' definitions, and hand values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from avlab.eval import AVSBenchMeter, AVSSMeter

# -- Oracles written here from the protocol's definition (../shared/SPEC.md section 11), in float64
# numpy, independently of avlab.eval: per frame IoU with the empty-ground-truth rule and 1e-7 on
# the union; F at 255 thresholds, beta^2 = 0.3, averaged over a batch's frames with an object,
# maximum over thresholds; a batch without any object scores F = 0.


def oracle_batch_iou(logits: torch.Tensor, gt: torch.Tensor) -> float:
    probabilities = 1 / (1 + np.exp(-logits.double().numpy()))
    target = gt.numpy() > 0
    scores = []
    for predicted, truth in zip(probabilities > 0.5, target, strict=True):
        if truth.any():
            scores.append((predicted & truth).sum() / ((predicted | truth).sum() + 1e-7))
        else:
            scores.append((~predicted).sum() / (truth.size + 1e-7))
    return float(np.mean(scores))


def oracle_batch_fscore(logits: torch.Tensor, gt: torch.Tensor) -> float:
    probabilities = 1 / (1 + np.exp(-logits.double().numpy()))
    thresholds = np.linspace(0, 1 - 1e-10, 255)
    per_frame = []
    for probability, truth in zip(probabilities, gt.numpy() > 0, strict=True):
        if not truth.any():
            continue
        chosen = probability[None] >= thresholds[:, None, None]  # (255, H, W)
        hits = (chosen & truth).sum(axis=(1, 2))
        precision = hits / (chosen.sum(axis=(1, 2)) + 1e-20)
        recall = hits / truth.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            f = np.nan_to_num(1.3 * precision * recall / (0.3 * precision + recall))
        per_frame.append(f)
    return float(np.mean(per_frame, axis=0).max()) if per_frame else 0.0


def random_batches(seed: int, sizes: list[int], size: int = 12) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Logit maps loosely aligned with blob masks; some frames have empty ground truth."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for n in sizes:
        gt = (torch.rand(n, size, size, generator=generator) > 0.6).float()
        gt[torch.rand(n, generator=generator) < 0.3] = 0.0
        logits = 4 * (gt - 0.5) + 3 * torch.randn(n, size, size, generator=generator)
        batches.append((logits, gt))
    return batches


# -- legacy mode ------------------------------------------------------------------------------------


def test_legacy_mode_equals_the_protocol_oracle():
    batches = random_batches(0, [5, 5, 3, 5])
    batches[2][1].zero_()  # a batch whose frames all have empty ground truth: F = 0 for it
    meter = AVSBenchMeter()
    for logits, gt in batches:
        meter.update(logits, gt)
    ious = [oracle_batch_iou(logits, gt) for logits, gt in batches]
    fscores = [oracle_batch_fscore(logits, gt) for logits, gt in batches]
    assert fscores[2] == 0.0
    scores = meter.compute()
    # avlab computes in float32 as AVSBench does; the oracle in float64.
    assert scores["miou"] == pytest.approx(np.mean(ious), abs=1e-6)
    assert scores["fscore"] == pytest.approx(np.mean(fscores), abs=1e-6)


def test_legacy_hand_values():
    # Frame 0: gt = top-left 2x2 of 4x4, prediction = top two rows (sigmoid(5) and sigmoid(-5)).
    # Frame 1: empty gt, 4 of 16 pixels predicted: IoU = 12 correctly empty / 16.
    logits = torch.full((2, 4, 4), -5.0)
    logits[0, :2] = 5.0
    logits[1, 3] = 5.0
    gt = torch.zeros(2, 4, 4)
    gt[0, :2, :2] = 1.0
    meter = AVSBenchMeter()
    meter.update(logits, gt)
    scores = meter.compute()
    assert scores["miou"] == pytest.approx((4 / 8 + 12 / 16) / 2, abs=1e-6)
    # Frame 1 is skipped for F. Frame 0: at thresholds up to sigmoid(-5) all 16 pixels are
    # predicted (P = 1/4, R = 1, F = 0.3023); above it the top rows (P = 1/2, R = 1,
    # F = 1.3 * 0.5 / (0.15 + 1)); the last threshold is 1.0, which sigmoid(5) does not reach.
    assert scores["fscore"] == pytest.approx(1.3 * 0.5 / 1.15, abs=1e-6)


def test_legacy_depends_on_batching_and_dataset_mode_does_not():
    [(logits, gt)] = random_batches(1, [6])
    gt[:3] = 0.0
    gt[3:, :2, :2] = 1.0  # every frame of the second half has an object
    splits = {"one batch": [slice(0, 6)], "halves": [slice(0, 3), slice(3, 6)], "pairs": [slice(0, 2), slice(2, 4), slice(4, 6)]}
    legacy, dataset = {}, {}
    for name, parts in splits.items():
        legacy_meter, dataset_meter = AVSBenchMeter(mode="legacy"), AVSBenchMeter(mode="dataset")
        for part in parts:
            legacy_meter.update(logits[part], gt[part])
            dataset_meter.update(logits[part], gt[part])
        legacy[name], dataset[name] = legacy_meter.compute(), dataset_meter.compute()
    # The first half has no object: legacy scores it F = 0, which halves the F-score.
    assert legacy["halves"]["fscore"] == pytest.approx(legacy["one batch"]["fscore"] / 2, abs=1e-6)
    assert dataset["halves"] == pytest.approx(dataset["one batch"], abs=1e-12)
    assert dataset["pairs"] == pytest.approx(dataset["one batch"], abs=1e-12)
    # On a single batch the two modes agree (legacy's 1e-7 union epsilon and float32 aside).
    assert dataset["one batch"] == pytest.approx(legacy["one batch"], abs=1e-5)


def test_dataset_mode_hand_values_and_no_object_at_all():
    meter = AVSBenchMeter(mode="dataset")
    meter.update(np.full((2, 3, 3), -1.0, np.float32), np.zeros((2, 3, 3)))
    scores = meter.compute()
    assert scores["miou"] == 1.0  # nothing predicted, nothing there
    assert math.isnan(scores["fscore"])  # no frame with an object to score
    meter.update(np.full((1, 3, 3), 2.0), np.ones((1, 3, 3)))
    assert meter.compute() == {"miou": 1.0, "fscore": 1.0}


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), mode=st.sampled_from(["legacy", "dataset"]))
def test_scores_are_in_the_unit_interval(seed, mode):
    meter = AVSBenchMeter(mode=mode)
    for logits, gt in random_batches(seed, [3, 2]):
        meter.update(logits, gt)
    scores = meter.compute()
    assert 0.0 <= scores["miou"] <= 1.0
    assert math.isnan(scores["fscore"]) or 0.0 <= scores["fscore"] <= 1.0


def test_meter_rejects_bad_input():
    with pytest.raises(TypeError, match="float logits"):
        AVSBenchMeter().update(np.zeros((1, 2, 2), bool), np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match="same"):
        AVSBenchMeter().update(np.zeros((1, 2, 2)), np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match="before any update"):
        AVSBenchMeter().compute()
    with pytest.raises(ValueError, match="mode"):
        AVSBenchMeter(mode="batch")  # type: ignore[arg-type]


# -- AVSS oracle, from the definition: per frame and class, IoU and F (beta^2 = 0.3) from pixel
# counts where the ground truth is labelled; a class counts in a frame when its union is non-empty;
# per-class means over the frames that count; the all-class mean counts absent classes as 0.


def oracle_avss(batches: list[tuple[torch.Tensor, torch.Tensor]], nclass: int) -> dict[str, float]:
    iou_sum, f_sum, counted = np.zeros(nclass), np.zeros(nclass), np.zeros(nclass)
    for output, mask in batches:
        predicted = output.argmax(dim=1).numpy()
        for frame_pred, frame_gt in zip(predicted, mask.numpy(), strict=True):
            for c in range(nclass):
                p, g = frame_pred == c, frame_gt == c
                inter, union = (p & g).sum(), (p | g).sum()
                if union == 0:
                    continue
                counted[c] += 1
                iou_sum[c] += inter / union
                precision = inter / p.sum() if p.sum() else 0.0
                recall = inter / g.sum() if g.sum() else 0.0
                if precision + recall > 0:
                    f_sum[c] += 1.3 * precision * recall / (0.3 * precision + recall)
    with np.errstate(invalid="ignore"):
        iou, f = iou_sum / counted, f_sum / counted
    present = counted > 0
    return {"miou": float(np.nan_to_num(iou).mean()), "fscore": float(np.nan_to_num(f).mean()),
            "miou_present": float(iou[present].mean())}


def test_avss_equals_the_protocol_oracle():
    generator = torch.Generator().manual_seed(3)
    nclass = 9  # classes 7 and 8 never occur: they count 0 in the all-class means
    batches = []
    for n in (4, 3):
        mask = torch.randint(0, 5, (n, 10, 10), generator=generator)
        output = torch.randn(n, nclass, 10, 10, generator=generator)
        output += 3 * torch.nn.functional.one_hot(mask, nclass).permute(0, 3, 1, 2)
        output[:, 7:] -= 100  # never predicted
        batches.append((output, mask))
    meter = AVSSMeter(num_classes=nclass)
    for output, mask in batches:
        meter.update(output, mask)
    scores = meter.compute()
    expected = oracle_avss(batches, nclass)
    for key, value in expected.items():
        assert scores[key] == pytest.approx(value, abs=1e-6)
    assert np.isnan(scores["per_class_iou"][7:]).all() and not np.isnan(scores["per_class_iou"][:7]).any()


def test_avss_hand_values():
    gt = np.array([[[0, 1], [1, 1]], [[2, 2], [2, 2]]])
    pred = np.array([[[0, 1], [0, 1]], [[2, 2], [2, 0]]])
    meter = AVSSMeter(num_classes=4)
    meter.update(pred, gt)
    scores = meter.compute()
    # Class 0: frame 0 IoU 1/2, F = 1.3 * 1 / (0.3 * 1 + 2); frame 1 IoU 0, F 0 (predicted, absent).
    # Class 1: frame 0 IoU 2/3, F = 1.3 * 2 / (0.3 * 3 + 2). Class 2: frame 1 IoU 3/4,
    # F = 1.3 * 3 / (0.3 * 4 + 3). Class 3: never present.
    iou = [(1 / 2 + 0) / 2, 2 / 3, 3 / 4]
    fscore = [(1.3 / 2.3 + 0) / 2, 2.6 / 2.9, 3.9 / 4.2]
    np.testing.assert_allclose(scores["per_class_iou"][:3], iou)
    np.testing.assert_allclose(scores["per_class_fscore"][:3], fscore)
    assert scores["miou"] == pytest.approx(sum(iou) / 4)
    assert scores["miou_present"] == pytest.approx(sum(iou) / 3)
    assert scores["fscore"] == pytest.approx(sum(fscore) / 4)
    assert scores["fscore_present"] == pytest.approx(sum(fscore) / 3)


def test_avss_rejects_out_of_range_labels():
    with pytest.raises(ValueError, match=r"outside \[0, 3\)"):
        AVSSMeter(num_classes=3).update(np.zeros((1, 2, 2), int), np.full((1, 2, 2), 3))
    with pytest.raises(ValueError, match="labels matching"):
        AVSSMeter(num_classes=3).update(np.zeros((1, 3, 2, 2)), np.zeros((1, 2, 3), int))
