"""The FCOS detector of AFCV: locations, head wiring, target assignment, losses, decoding."""

from __future__ import annotations

import math

import pytest
import torch

from avlab.heads.fcos import (
    FCOSHead,
    FCOSOutput,
    FCOSTargets,
    centerness_targets,
    fcos_decode,
    fcos_locations,
    fcos_losses,
    fcos_targets,
    flatten_per_location,
    gather_locations,
)

STRIDES = (8, 16, 32)
SIZES = [(8, 8), (4, 4), (2, 2)]  # a 64 x 64 image
RANGES = ((0, 16), (16, 32), (32, math.inf))  # FCOS's ranges scaled to a small image


def test_locations_hand_values() -> None:
    p3, p4 = fcos_locations([(2, 2), (1, 3)], [8, 16])
    assert p3.tolist() == [[4, 4], [12, 4], [4, 12], [12, 12]]
    assert p4.tolist() == [[8, 8], [24, 8], [40, 8]]


def test_head_wiring_and_initialisation() -> None:
    torch.manual_seed(0)
    head = FCOSHead(8, 3, num_convs=2, num_groups=4, box_activation="exp", prior_prob=0.05)
    with torch.no_grad():
        head.scales.copy_(torch.tensor([0.5, 1.0, 2.0]))
    feats = [torch.randn(2, 8, h, w) for h, w in SIZES]
    out = head(feats)
    for level, (x, stride) in enumerate(zip(feats, STRIDES, strict=True)):
        box_feat = head.box_tower(x)
        expected = torch.exp(head.scales[level] * head.box_pred(box_feat)) * stride
        assert torch.allclose(out.boxes[level], expected)
        assert torch.allclose(out.features[level], box_feat)
        assert torch.allclose(out.params[level], head.controller(box_feat))
        assert torch.allclose(out.centerness[level], head.ctr_pred(box_feat))
        assert torch.allclose(out.logits[level], head.cls_logits(head.cls_tower(x)))
        assert out.params[level].shape == (2, 169, *SIZES[level])
    # Small initial weights: the class probabilities start near the prior.
    probs = torch.sigmoid(torch.cat([x.flatten() for x in out.logits]))
    assert torch.allclose(probs, torch.full_like(probs, 0.05), atol=0.01)


def test_relu_boxes_are_non_negative_and_fixed_scales_are_not_parameters() -> None:
    head = FCOSHead(4, 2, num_convs=1, num_groups=2, learn_scales=False)
    assert "scales" not in dict(head.named_parameters())
    out = head([torch.randn(1, 4, h, w) for h, w in SIZES])
    assert all(bool((b >= 0).all()) for b in out.boxes)


def test_head_rejects_wrong_inputs() -> None:
    head = FCOSHead(4, 2, num_convs=1, num_groups=2)
    with pytest.raises(ValueError, match="expected 3 feature levels"):
        head([torch.randn(1, 4, 2, 2)])
    with pytest.raises(ValueError, match=r"level 1: expected \(B, 4, h, w\)"):
        head([torch.randn(1, 4, 4, 4), torch.randn(1, 3, 2, 2), torch.randn(1, 4, 1, 1)])
    with pytest.raises(ValueError, match="does not divide"):
        FCOSHead(6, 2, num_groups=4)


def positives(t: FCOSTargets) -> set[tuple[int, ...]]:
    """(image, level, index, gt, label) of every positive row."""
    rows = torch.nonzero(t.positive).squeeze(1).tolist()
    cols = (t.image_index, t.levels, t.indices, t.gt_index, t.labels)
    return {tuple(int(c[r]) for c in cols) for r in rows}


def test_targets_on_hand_made_boxes() -> None:
    locations = fcos_locations(SIZES, STRIDES)
    # Box 0 (class 2) is small; box 1 (class 0) is large and overlaps it.
    boxes = torch.tensor([[0.0, 0.0, 16.0, 16.0], [8.0, 8.0, 56.0, 56.0]])
    t = fcos_targets(
        locations,
        STRIDES,
        [boxes, torch.zeros(0, 4)],
        [torch.tensor([2, 0]), torch.zeros(0, dtype=torch.long)],
        size_ranges=RANGES,
    )
    # Box 0: the 2 x 2 P3 locations at 4 and 12 (max distance 12, in (0, 16]).
    # Box 1: its centre regions (radius 1.5 strides, clipped to the box) hold the P3 locations
    # at 28 and 36 (max distance 28: not P3's), the P4 ones at 24 and 40 (max 32: P4's) and
    # every P5 one (max 40: P5's).
    assert positives(t) == {
        *((0, 0, i, 0, 2) for i in (0, 1, 8, 9)),
        *((0, 1, i, 1, 0) for i in (5, 6, 9, 10)),
        *((0, 2, i, 1, 0) for i in (0, 1, 2, 3)),
    }
    n = 64 + 16 + 4
    assert len(t.labels) == 2 * n
    assert t.image_index.tolist() == [0] * n + [1] * n
    assert t.levels[n:].tolist() == [0] * 64 + [1] * 16 + [2] * 4
    assert torch.equal(t.locations[n:], torch.cat(locations))
    assert (t.labels[n:] == -1).all() and (t.gt_index[n:] == -1).all()
    assert (t.ltrb[~t.positive] == 0).all()
    assert t.ltrb[9].tolist() == [12, 12, 4, 4]  # P3 (12, 12) in box 0
    assert t.ltrb[64 + 5].tolist() == [16, 16, 32, 32]  # P4 (24, 24) in box 1
    assert t.ltrb[80 + 3].tolist() == [40, 40, 8, 8]  # P5 (48, 48) in box 1


def test_targets_smallest_box_wins_and_first_on_equal_areas() -> None:
    locations = fcos_locations([(2, 2)], [8])  # (4, 4), (12, 4), (4, 12), (12, 12)
    big, small = [0.0, 0.0, 16.0, 16.0], [0.0, 0.0, 12.0, 14.0]
    t = fcos_targets(
        locations,
        [8],
        [torch.tensor([big, small]), torch.tensor([big, big])],
        [torch.tensor([0, 1]), torch.tensor([0, 1])],
        size_ranges=((0, 64),),
        center_sampling_radius=0,
    )
    # (12, 4) touches the small box's right side: not strictly inside, so the big box's.
    assert t.gt_index.tolist() == [1, 0, 1, 0, 0, 0, 0, 0]
    assert t.labels.tolist() == [1, 0, 1, 0, 0, 0, 0, 0]
    assert t.ltrb[2].tolist() == [4, 12, 8, 2]


def test_targets_default_ranges_and_level_mismatch() -> None:
    locations = fcos_locations(SIZES, STRIDES)
    t = fcos_targets(
        locations, STRIDES, [torch.tensor([[0.0, 0.0, 64.0, 64.0]])], [torch.tensor([1])]
    )
    # Default ranges (0, 64], (64, 128], (128, inf): every positive's reach is at most 64.
    assert set(t.levels[t.positive].tolist()) == {0}
    with pytest.raises(ValueError, match="one of each per level"):
        fcos_targets(locations, STRIDES, [], [], size_ranges=((0, 64),))


def test_centerness_targets() -> None:
    ltrb = torch.tensor([[4.0, 4.0, 4.0, 4.0], [1.0, 2.0, 4.0, 4.0]])  # 1/4 * 2/4
    assert torch.allclose(centerness_targets(ltrb), torch.tensor([1.0, 0.125**0.5]))


def focal(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Sigmoid focal loss (alpha 0.25, gamma 2), summed, from its formula."""
    p = torch.sigmoid(logits)
    pos = -0.25 * targets * (1 - p) ** 2 * torch.log(p)
    neg = -0.75 * (1 - targets) * p**2 * torch.log(1 - p)
    return (pos + neg).sum()


def loss_case() -> tuple[FCOSOutput, FCOSTargets]:
    # One image, one 1 x 3 level, K = 2. Location 0: class 1, target ltrb (2, 2, 2, 2),
    # predicted (1, 1, 3, 1). Location 1: class 0, predicted exactly. Location 2: background.
    logits = torch.tensor([[0.5, -1.0], [2.0, 0.0], [-3.0, 1.0]]).T.reshape(1, 2, 1, 3)
    boxes = torch.tensor([[1.0, 1, 3, 1], [1, 3, 3, 1], [5, 5, 5, 5]]).T.reshape(1, 4, 1, 3)
    ctr = torch.tensor([0.0, 1.0, 7.0]).reshape(1, 1, 1, 3)
    params = torch.zeros(1, 1, 1, 3)
    out = FCOSOutput([logits], [boxes], [ctr], [params], [params])
    targets = FCOSTargets(
        labels=torch.tensor([1, 0, -1]),
        ltrb=torch.tensor([[2.0, 2, 2, 2], [1, 3, 3, 1], [0, 0, 0, 0]]),
        gt_index=torch.tensor([0, 1, -1]),
        image_index=torch.zeros(3, dtype=torch.long),
        levels=torch.zeros(3, dtype=torch.long),
        indices=torch.arange(3),
        locations=torch.zeros(3, 2),
    )
    return out, targets


def test_losses_hand_values() -> None:
    out, targets = loss_case()
    onehot = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    logits = torch.tensor([[0.5, -1.0], [2.0, 0.0], [-3.0, 1.0]])
    # Location 0: pred box [-1, 3] x [-1, 1], target [-2, 2] x [-2, 2]: intersection 6,
    # union 18, IoU 1/3, enclosing box 20, GIoU 1/3 - 2/20. Location 1: loss 0. Weights:
    # centerness targets 1 and sqrt(1/3 * 1/3) = 1/3.
    w = torch.tensor([1.0, 1 / 3])
    giou = (w * torch.tensor([1 - (1 / 3 - 0.1), 0.0])).sum() / w.sum()
    iou = (w * torch.tensor([1 - 1 / 3, 0.0])).sum() / w.sum()
    ctr = (math.log(2) + (math.log1p(math.e) - 1 / 3)) / 2  # BCE(0, 1), BCE(1, 1/3)
    losses = fcos_losses(out, targets)
    assert torch.allclose(losses["cls"], focal(logits, onehot) / 2)
    assert torch.allclose(losses["box"], giou)
    assert losses["ctr"].item() == pytest.approx(ctr, abs=1e-6)
    assert fcos_losses(out, targets, box_loss="iou")["box"].item() == pytest.approx(float(iou))


def test_losses_without_positives_keep_the_graph() -> None:
    out, targets = loss_case()
    empty = targets._replace(labels=torch.full((3,), -1))
    for x in (*out.logits, *out.boxes, *out.centerness):
        x.requires_grad_(True)
    losses = fcos_losses(out, empty)
    assert losses["box"].item() == 0 and losses["ctr"].item() == 0
    assert losses["cls"].item() == pytest.approx(
        float(focal(out.logits[0][0].detach().flatten(1).T, torch.zeros(3, 2)))
    )
    torch.stack(list(losses.values())).sum().backward()
    assert out.boxes[0].grad is not None


def test_losses_reject_mismatched_targets() -> None:
    out, targets = loss_case()
    with pytest.raises(ValueError, match="outputs have 3 locations, targets 2"):
        fcos_losses(out, FCOSTargets(*(x[:2] for x in targets)))
    with pytest.raises(ValueError, match="box_loss"):
        fcos_losses(out, targets, box_loss="l1")


def test_losses_decrease_on_a_toy_case() -> None:
    torch.manual_seed(0)
    head = FCOSHead(4, 2, num_convs=1, num_groups=2)
    sizes = [(4, 4), (2, 2), (1, 1)]  # a 32 x 32 image
    feats = [torch.randn(2, 4, h, w) for h, w in sizes]
    targets = fcos_targets(
        fcos_locations(sizes, STRIDES),
        STRIDES,
        [torch.tensor([[2.0, 4.0, 20.0, 26.0]]), torch.tensor([[10.0, 8.0, 30.0, 30.0]])],
        [torch.tensor([0]), torch.tensor([1])],
        size_ranges=RANGES,
    )
    opt = torch.optim.Adam(head.parameters(), lr=0.02)
    history = []
    for _ in range(15):
        total = torch.stack(list(fcos_losses(head(feats), targets).values())).sum()
        opt.zero_grad()
        total.backward()
        opt.step()
        history.append(total.item())
    assert all(math.isfinite(v) for v in history)
    assert history[-1] < 0.6 * history[0]


def test_flatten_and_gather_read_the_same_rows() -> None:
    torch.manual_seed(0)
    maps = [torch.randn(2, 3, h, w) for h, w in SIZES]
    t = fcos_targets(
        fcos_locations(SIZES, STRIDES),
        STRIDES,
        [torch.tensor([[0.0, 0.0, 16.0, 16.0]]), torch.tensor([[8.0, 8.0, 56.0, 56.0]])],
        [torch.tensor([0]), torch.tensor([0])],
        size_ranges=RANGES,
    )
    rows = torch.nonzero(t.positive).squeeze(1)
    gathered = gather_locations(maps, t.image_index[rows], t.levels[rows], t.indices[rows])
    assert torch.equal(gathered, flatten_per_location(maps)[rows])
    # One by hand: image 1, P4 location (24, 24) is row 1, column 1 of P4.
    row = 84 + 64 + 5
    assert torch.equal(flatten_per_location(maps)[row], maps[1][1, :, 1, 1])


def decode_case() -> FCOSOutput:
    # Levels: 2 x 2 at stride 8, 1 x 1 at stride 16; K = 2; a 16 x 16 image.
    logits = [torch.full((1, 2, 2, 2), -9.0), torch.full((1, 2, 1, 1), -9.0)]
    logits[0][0, 0, 0, 0] = 2.0  # (4, 4), class 0
    logits[0][0, 0, 0, 1] = 1.0  # (12, 4), class 0: suppressed by the one above
    logits[0][0, 1, 0, 1] = 1.5  # (12, 4), class 1: another class, kept
    logits[0][0, 0, 1, 1] = -4.0  # below the threshold
    logits[1][0, 1, 0, 0] = 0.0  # (8, 8) of P4, class 1
    boxes = [torch.full((1, 4, 2, 2), 4.0), torch.full((1, 4, 1, 1), 30.0)]
    boxes[0][0, :, 0, 1] = torch.tensor([12.0, 4.0, 0.0, 4.0])  # [0, 0, 12, 8]
    ctr = [torch.zeros(1, 1, 2, 2), torch.full((1, 1, 1, 1), 10.0)]
    params = [torch.arange(8.0).reshape(1, 2, 2, 2), torch.tensor([[[[50.0]], [[60.0]]]])]
    return FCOSOutput(logits, boxes, ctr, params, [])


def test_decode_hand_set_logits() -> None:
    locations = fcos_locations([(2, 2), (1, 1)], [8, 16])
    det = fcos_decode(decode_case(), locations, image_size=(16, 16))[0]
    s = torch.sigmoid
    expected_scores = torch.sqrt(
        torch.stack(
            [
                s(torch.tensor(0.0)) * s(torch.tensor(10.0)),
                s(torch.tensor(2.0)) / 2,
                s(torch.tensor(1.5)) / 2,
            ]
        )
    )
    assert torch.allclose(det.scores, expected_scores)
    assert det.labels.tolist() == [1, 0, 1]
    assert det.levels.tolist() == [1, 0, 0]
    assert det.indices.tolist() == [0, 0, 1]
    assert det.locations.tolist() == [[8, 8], [4, 4], [12, 4]]
    # P4's box (8 -+ 30) is clipped to the image; [0, 0, 12, 8] has IoU 2/3 > 0.6 with
    # [0, 0, 8, 8] of the same class and a lower score: suppressed.
    assert det.boxes.tolist() == [[0, 0, 16, 16], [0, 0, 8, 8], [0, 0, 12, 8]]
    assert det.params.tolist() == [[50, 60], [0, 4], [1, 5]]


def test_decode_caps() -> None:
    locations = fcos_locations([(2, 2), (1, 1)], [8, 16])
    out = decode_case()
    assert fcos_decode(out, locations, image_size=(16, 16), max_detections=2)[
        0
    ].levels.tolist() == [1, 0]
    top1 = fcos_decode(out, locations, image_size=(16, 16), pre_nms_top_k=1)[0]
    assert top1.labels.tolist() == [1, 0] and top1.indices.tolist() == [0, 0]
    # Without NMS (threshold 1) the suppressed box comes back.
    assert len(fcos_decode(out, locations, image_size=(16, 16), nms_threshold=1.0)[0].boxes) == 4
