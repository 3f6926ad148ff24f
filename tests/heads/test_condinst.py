"""CondInst's masks for AFCV: upsampling, dynamic head, Dice, mask and crossover losses."""

from __future__ import annotations

import math

import pytest
import torch

from avlab.heads.condinst import (
    CrossoverFrame,
    DynamicMaskHead,
    MaskBranch,
    aligned_bilinear,
    crossover_loss,
    dice_loss,
    dynamic_parameter_count,
    mask_losses,
    relative_coordinates,
    sample_masks,
    sample_positives,
    split_dynamic_parameters,
)
from avlab.heads.fcos import FCOSHead, FCOSTargets, fcos_locations, fcos_losses, fcos_targets

# Offsets of the default head's 169 parameters: weights (8 x 10, 8 x 8, 1 x 8), then biases.
W1, W2, W3, B1, B2, B3 = (0, 80), (80, 144), (144, 152), (152, 160), (160, 168), (168, 169)


def test_parameter_counts() -> None:
    assert dynamic_parameter_count() == 169  # 8 mask channels + 2 coordinates, 8, 8, 1
    assert dynamic_parameter_count(rel_coords=False) == (64 + 8) + (64 + 8) + (8 + 1)
    assert dynamic_parameter_count(num_layers=1) == 10 + 1
    assert dynamic_parameter_count(hidden=16) == (160 + 16) + (256 + 16) + (16 + 1)
    assert DynamicMaskHead(mask_channels=4, rel_coords=False).num_params == 40 + 72 + 9


def test_split_layout() -> None:
    params = torch.arange(2 * 169.0).reshape(2, 169)
    weights, biases = split_dynamic_parameters(params)
    assert [tuple(w.shape) for w in weights] == [(16, 10, 1, 1), (16, 8, 1, 1), (2, 8, 1, 1)]
    assert torch.equal(weights[0][0, :, 0, 0], params[0, :10])
    assert torch.equal(weights[0][8, :, 0, 0], params[1, :10])  # instance 1's first filter
    assert torch.equal(weights[1][9, :, 0, 0], params[1, 88:96])
    assert torch.equal(weights[2][1, :, 0, 0], params[1, W3[0] : W3[1]])
    assert biases[0].tolist() == list(range(152, 160)) + list(range(169 + 152, 169 + 160))
    assert biases[2].tolist() == [168, 169 + 168]
    with pytest.raises(ValueError, match=r"expected params \(P, 169\)"):
        split_dynamic_parameters(torch.zeros(2, 168))


def test_relative_coordinates_hand_values() -> None:
    # Pixels of a 2 x 3 stride-8 map: x in (4, 12, 20), y in (4, 12).
    rel = relative_coordinates(
        torch.tensor([[12.0, 4.0], [20.0, 12.0]]), (2, 3), 8, torch.tensor([64.0, 128.0])
    )
    assert rel.shape == (2, 2, 2, 3)
    e = 1 / 8
    assert rel[0, 0].tolist() == [[e, 0, -e], [e, 0, -e]]
    assert rel[0, 1].tolist() == [[0, 0, 0], [-e, -e, -e]]
    assert rel[1, 0].tolist() == [[e, e / 2, 0], [e, e / 2, 0]]
    assert rel[1, 1].tolist() == [[e / 2, e / 2, e / 2], [0, 0, 0]]


def test_aligned_bilinear_hand_values() -> None:
    x = torch.tensor([[0.0, 4.0], [8.0, 12.0]]).reshape(1, 1, 2, 2)
    assert aligned_bilinear(x, 2)[0, 0].tolist() == [
        [0, 0, 2, 4],
        [0, 0, 2, 4],
        [4, 4, 6, 8],
        [8, 8, 10, 12],
    ]
    # Factor 4: the padded row (0, 4, 4) resized to 9 points, 2 replicated at the left, 8 kept.
    row = torch.tensor([0.0, 4.0]).reshape(1, 1, 1, 2)
    assert aligned_bilinear(row, 4)[0, 0, 0].tolist() == [0, 0, 0, 1, 2, 3, 4, 4]
    assert aligned_bilinear(row, 4).shape == (1, 1, 4, 8)
    assert aligned_bilinear(x, 1) is x
    with pytest.raises(ValueError, match="integer >= 1"):
        aligned_bilinear(x, 0)


def test_mask_branch_sums_the_levels_at_p3() -> None:
    torch.manual_seed(0)
    branch = MaskBranch(4, channels=6, out_channels=5, num_convs=2, norm=None)
    feats = [torch.randn(1, 4, 8, 8), torch.randn(1, 4, 4, 4), torch.randn(1, 4, 2, 2)]
    summed = branch.refine[0](feats[0])
    summed = summed + aligned_bilinear(branch.refine[1](feats[1]), 2)
    summed = summed + aligned_bilinear(branch.refine[2](feats[2]), 4)
    expected = branch.out(branch.tower(summed))
    assert torch.allclose(branch(feats), expected, atol=1e-6)
    assert branch(feats).shape == (1, 5, 8, 8)


def oracle_masks(
    features: torch.Tensor,
    params: torch.Tensor,
    locations: torch.Tensor,
    image: torch.Tensor,
    soi: torch.Tensor,
) -> torch.Tensor:
    """The default dynamic head, one instance at a time, from the parameter layout by hand."""
    out = []
    _, _, h, w = features.shape
    ys, xs = torch.meshgrid(torch.arange(h) * 8.0 + 4, torch.arange(w) * 8.0 + 4, indexing="ij")
    for p in range(len(params)):
        v = params[p]
        rel = torch.stack([locations[p, 0] - xs, locations[p, 1] - ys]) / soi[p]
        x = torch.cat([features[image[p]], rel])  # (10, h, w)
        x = torch.relu(
            torch.einsum("oc,chw->ohw", v[W1[0] : W1[1]].view(8, 10), x)
            + v[B1[0] : B1[1], None, None]
        )
        x = torch.relu(
            torch.einsum("oc,chw->ohw", v[W2[0] : W2[1]].view(8, 8), x)
            + v[B2[0] : B2[1], None, None]
        )
        x = torch.einsum("oc,chw->ohw", v[W3[0] : W3[1]].view(1, 8), x) + v[B3[0]]
        out.append(aligned_bilinear(x[None], 2)[0, 0])
    return torch.stack(out)


def test_dynamic_head_matches_a_per_instance_oracle() -> None:
    torch.manual_seed(0)
    features = torch.randn(2, 8, 3, 4)
    params = torch.randn(3, 169) * 0.5
    locations = torch.tensor([[4.0, 4.0], [20.0, 12.0], [28.0, 20.0]])
    image, levels = torch.tensor([1, 0, 1]), torch.tensor([0, 2, 1])
    head = DynamicMaskHead(sizes_of_interest=(64, 128, 256))
    expected = oracle_masks(features, params, locations, image, torch.tensor([64.0, 256, 128]))
    assert torch.allclose(head(features, params, locations, image, levels), expected, atol=1e-5)
    assert head(features, params[:0], locations[:0], image[:0], levels[:0]).shape == (0, 6, 8)


def test_sample_masks_at_stride_4_with_offset_2() -> None:
    masks = torch.arange(2 * 8 * 8.0).reshape(2, 8, 8)
    sampled = sample_masks(masks)
    assert sampled[0].tolist() == [[18, 22], [50, 54]]  # pixels (2, 2), (2, 6), (6, 2), (6, 6)
    assert sampled[1, 1, 1].item() == 64 + 54
    padded = sample_masks(masks, size=(3, 1))
    assert padded[0].tolist() == [[18], [50], [0]]


def test_dice_loss_hand_values() -> None:
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [math.log(3), -math.log(3), 0.0, 0.0]])
    targets = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0]])
    # x = (1/2, 1/2, 1/2, 1/2): 1 - 2 * 1 / (1 + 2); x = (3/4, 1/4, 1/2, 1/2): 1 - 2 * 1.25 / (1.125 + 2)
    expected = torch.tensor([1 - 2 / (3 + 1e-5), 1 - 2.5 / (3.125 + 1e-5)])
    assert torch.allclose(dice_loss(logits, targets), expected)


def test_sample_positives_caps_with_a_generator() -> None:
    positive = torch.zeros(20, dtype=torch.bool)
    positive[[1, 4, 5, 9, 12, 13, 19]] = True
    rows = sample_positives(positive, max_positives=3, generator=torch.Generator().manual_seed(0))
    again = sample_positives(positive, max_positives=3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(rows, again) and len(rows) == 3
    assert bool(positive[rows].all()) and rows.tolist() == sorted(set(rows.tolist()))


SIZES, STRIDES = [(4, 4), (2, 2)], (8, 16)  # a 32 x 32 image


def two_image_batch() -> tuple[torch.Tensor, list[torch.Tensor], FCOSTargets, list[torch.Tensor]]:
    torch.manual_seed(0)
    masks = [torch.zeros(2, 32, 32), torch.zeros(1, 32, 32)]
    masks[0][0, 2:14, 3:15] = 1
    masks[0][1, 12:30, 8:28] = 1
    masks[1][0, 0:20, 10:32] = 1
    boxes = [
        torch.tensor([[3.0, 2.0, 15.0, 14.0], [8.0, 12.0, 28.0, 30.0]]),
        torch.tensor([[10.0, 0.0, 32.0, 20.0]]),
    ]
    targets = fcos_targets(
        fcos_locations(SIZES, STRIDES),
        STRIDES,
        boxes,
        [torch.tensor([0, 1]), torch.tensor([1])],
        size_ranges=((0, 12), (12, 64)),
    )
    features = torch.randn(2, 8, 4, 4)
    params = [torch.randn(2, 169, h, w) * 0.5 for h, w in SIZES]
    return features, params, targets, masks


def mask_loss_oracle(
    features: torch.Tensor,
    params: list[torch.Tensor],
    targets: FCOSTargets,
    masks: list[torch.Tensor],
    rows: list[int],
) -> torch.Tensor:
    """Mean Dice over `rows`, one positive at a time, with loops and the hand oracle."""
    losses = []
    for r in rows:
        b, level, idx = int(targets.image_index[r]), int(targets.levels[r]), int(targets.indices[r])
        w = params[level].shape[-1]
        p = params[level][b, :, idx // w, idx % w]
        soi = torch.tensor([64.0 * 2**level])
        logits = oracle_masks(features, p[None], targets.locations[r][None], torch.tensor([b]), soi)
        gt = masks[b][int(targets.gt_index[r])][2::4, 2::4]
        x = torch.sigmoid(logits[0])
        losses.append(1 - 2 * (x * gt).sum() / ((x * x).sum() + (gt * gt).sum() + 1e-5))
    return torch.stack(losses).mean()


def test_mask_losses_match_a_loop_oracle() -> None:
    features, params, targets, masks = two_image_batch()
    rows = torch.nonzero(targets.positive).squeeze(1).tolist()
    assert len(rows) >= 4 and set(targets.levels[rows].tolist()) == {0, 1}
    loss = mask_losses(DynamicMaskHead(), features, params, targets, masks)["mask"]
    assert torch.allclose(loss, mask_loss_oracle(features, params, targets, masks, rows), atol=1e-5)


def test_mask_losses_cap_uses_the_drawn_subset() -> None:
    features, params, targets, masks = two_image_batch()
    loss = mask_losses(
        DynamicMaskHead(),
        features,
        params,
        targets,
        masks,
        max_positives=3,
        generator=torch.Generator().manual_seed(1),
    )["mask"]
    rows = sample_positives(
        targets.positive, max_positives=3, generator=torch.Generator().manual_seed(1)
    )
    assert torch.allclose(
        loss, mask_loss_oracle(features, params, targets, masks, rows.tolist()), atol=1e-5
    )


def test_mask_losses_without_positives_keep_the_graph() -> None:
    features, params, targets, masks = two_image_batch()
    features.requires_grad_(True)
    empty = targets._replace(labels=torch.full_like(targets.labels, -1))
    loss = mask_losses(DynamicMaskHead(), features, params, empty, masks)["mask"]
    loss.backward()
    assert loss.item() == 0 and features.grad is not None


# Crossover: one 4 x 4 stride-8 level (a 32 x 32 image). Mask-feature channel k is the
# indicator of object k on the stride-8 grid; the perfect filter of object k reads channel k:
# stride-8 logits 100 * indicator - 10, so the stride-4 logits are 100 * aligned_bilinear - 10
# and the ground truth is where the upsampled indicator is > 0 (so >= 1/4: logits >= 15).
CROSS_RANGES = ((0, 64),)


def cells_frame(
    cells: list[tuple[int, int, int, int]], ids: list[int], filters: torch.Tensor
) -> CrossoverFrame:
    """One image; object k covers stride-8 cells rows r0..r1, columns c0..c1 (inclusive)."""
    ind = torch.zeros(1, 8, 4, 4)
    boxes = []
    for k, (r0, r1, c0, c1) in enumerate(cells):
        ind[0, k, r0 : r1 + 1, c0 : c1 + 1] = 1
        boxes.append([8.0 * c0, 8.0 * r0, 8.0 * (c1 + 1), 8.0 * (r1 + 1)])
    gt4 = aligned_bilinear(ind[:, : len(cells)], 2)[0] > 0  # (n, 8, 8)
    masks = gt4.repeat_interleave(4, 1).repeat_interleave(4, 2)  # (n, 32, 32)
    targets = fcos_targets(
        fcos_locations([(4, 4)], [8]),
        [8],
        [torch.tensor(boxes)],
        [torch.zeros(len(cells), dtype=torch.long)],
        size_ranges=CROSS_RANGES,
    )
    params = torch.zeros(1, 169, 4, 4)
    for r in torch.nonzero(targets.positive).squeeze(1).tolist():
        idx = int(targets.indices[r])
        params[0, :, idx // 4, idx % 4] = filters[int(targets.gt_index[r])]
    return CrossoverFrame(ind, [params], targets, [torch.tensor(ids)], [masks])


def perfect_filter(channel: int) -> torch.Tensor:
    v = torch.zeros(169)
    v[W1[0] + channel] = 1.0  # layer 1, output 0 reads channel `channel`
    v[W2[0]] = 1.0  # layer 2, output 0 reads input 0
    v[W3[0]] = 100.0
    v[B3[0]] = -10.0
    return v


def test_crossover_is_zero_with_perfect_filters_and_positive_with_wrong_ones() -> None:
    head = DynamicMaskHead()
    # Object 7 moves from the top-left to the right; object 3 from the bottom-right to the left.
    cells_t, cells_u = [(0, 1, 0, 1), (2, 3, 2, 3)], [(1, 2, 2, 3), (2, 3, 0, 1)]
    good = torch.stack([perfect_filter(0), perfect_filter(1)])
    frame_t = cells_frame(cells_t, [7, 3], good)
    frame_u = cells_frame(cells_u, [7, 3], good)
    gen = torch.Generator().manual_seed(0)
    assert crossover_loss(head, frame_t, frame_u, generator=gen).item() < 1e-4
    # The same filters do segment each frame on its own.
    assert (
        mask_losses(head, frame_u.mask_features, frame_u.params, frame_u.targets, frame_u.gt_masks)[
            "mask"
        ].item()
        < 1e-4
    )
    # Frame u lists its objects in the other order: matching goes by id, not by index.
    gt_index = frame_u.targets.gt_index
    swapped_u = frame_u._replace(
        targets=frame_u.targets._replace(gt_index=torch.where(gt_index >= 0, 1 - gt_index, -1)),
        object_ids=[torch.tensor([3, 7])],
        gt_masks=[frame_u.gt_masks[0].flip(0)],
    )
    assert crossover_loss(head, frame_t, swapped_u, generator=gen).item() < 1e-4
    # Each object's positives carry the other object's filters: disjoint masks, loss near 1.
    wrong_t = cells_frame(cells_t, [7, 3], good.flip(0))
    wrong_u = cells_frame(cells_u, [7, 3], good.flip(0))
    assert crossover_loss(head, wrong_t, wrong_u, generator=gen).item() > 0.9


def random_frame(boxes: list[list[float]], ids: list[int], seed: int) -> CrossoverFrame:
    """Two images, random features and parameters, masks equal to the boxes."""
    gen = torch.Generator().manual_seed(seed)
    per_image = [boxes[:2], boxes[2:]]
    masks = []
    for image_boxes in per_image:
        m = torch.zeros(len(image_boxes), 32, 32)
        for k, (x0, y0, x1, y1) in enumerate(image_boxes):
            m[k, int(y0) : int(y1), int(x0) : int(x1)] = 1
        masks.append(m)
    targets = fcos_targets(
        fcos_locations([(4, 4)], [8]),
        [8],
        [torch.tensor(b) for b in per_image],
        [torch.zeros(len(b), dtype=torch.long) for b in per_image],
        size_ranges=CROSS_RANGES,
    )
    features = torch.randn(2, 8, 4, 4, generator=gen)
    params = [torch.randn(2, 153, 4, 4, generator=gen) * 0.5]  # no relative coordinates
    return CrossoverFrame(
        features, params, targets, [torch.tensor(ids[:2]), torch.tensor(ids[2:])], masks
    )


def crossover_oracle(source: CrossoverFrame, dest: CrossoverFrame) -> torch.Tensor:
    """Mean over source positives with the object in dest of Dice(source filters, dest features).

    For heads without relative coordinates (153 parameters), where the dest location does not
    matter: weights 8 x 8, 8 x 8, 1 x 8 at 0, 64, 128, then biases at 136, 144, 152.
    """
    st, losses = source.targets, []
    for r in torch.nonzero(st.positive).squeeze(1).tolist():
        b = int(st.image_index[r])
        obj = int(source.object_ids[b][int(st.gt_index[r])])
        dest_ids = dest.object_ids[b].tolist()
        if obj not in dest_ids:
            continue
        idx = int(st.indices[r])
        v = source.params[0][b, :, idx // 4, idx % 4]  # (153,)
        x = dest.mask_features[b]  # (8, 4, 4)
        x = torch.relu(torch.einsum("oc,chw->ohw", v[:64].view(8, 8), x) + v[136:144, None, None])
        x = torch.relu(
            torch.einsum("oc,chw->ohw", v[64:128].view(8, 8), x) + v[144:152, None, None]
        )
        x = torch.einsum("oc,chw->ohw", v[128:136].view(1, 8), x) + v[152]
        logits = aligned_bilinear(x[None], 2)[0, 0]
        gt = dest.gt_masks[b][dest_ids.index(obj)][2::4, 2::4]
        losses.append(dice_loss(logits[None], gt[None])[0])
    return torch.stack(losses).mean()


def test_crossover_matches_an_oracle_and_is_symmetric() -> None:
    head = DynamicMaskHead(rel_coords=False)
    # Image 0: objects 7 and 3 in t; 7 and 5 in u (3 leaves, 5 enters). Image 1: object 7 (a
    # different video's 7) in both frames. Matching is per image and per id.
    frame_t = random_frame(
        [[0.0, 0.0, 16.0, 16.0], [8.0, 10.0, 30.0, 28.0], [4.0, 4.0, 28.0, 20.0]], [7, 3, 7], seed=1
    )
    frame_u = random_frame(
        [[12.0, 8.0, 32.0, 28.0], [0.0, 16.0, 14.0, 32.0], [0.0, 8.0, 24.0, 30.0]],
        [7, 5, 7],
        seed=2,
    )
    assert int(frame_t.targets.positive.sum()) > 4 and int(frame_u.targets.positive.sum()) > 4
    loss = crossover_loss(head, frame_t, frame_u, generator=torch.Generator().manual_seed(0))
    expected = (crossover_oracle(frame_t, frame_u) + crossover_oracle(frame_u, frame_t)) / 2
    assert torch.allclose(loss, expected, atol=1e-5)
    swapped = crossover_loss(head, frame_u, frame_t, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(swapped, loss, atol=1e-6)


def test_crossover_runs_the_filters_at_the_location_in_the_other_frame() -> None:
    # Objects on single stride-8 cells: one positive location each, so the draw is fixed.
    # Object 7 at (4, 4) in t and (12, 20) in u; object 3 at (28, 28) in t and (28, 4) in u.
    torch.manual_seed(0)
    head = DynamicMaskHead()
    filters_t, filters_u = torch.randn(2, 169) * 0.5, torch.randn(2, 169) * 0.5
    frame_t = cells_frame([(0, 0, 0, 0), (3, 3, 3, 3)], [7, 3], filters_t)
    frame_u = cells_frame([(2, 2, 1, 1), (0, 0, 3, 3)], [7, 3], filters_u)
    frame_t = frame_t._replace(mask_features=torch.randn(1, 8, 4, 4))
    frame_u = frame_u._replace(mask_features=torch.randn(1, 8, 4, 4))
    assert int(frame_t.targets.positive.sum()) == int(frame_u.targets.positive.sum()) == 2
    loc_t = torch.tensor([[4.0, 4.0], [28.0, 28.0]])
    loc_u = torch.tensor([[12.0, 20.0], [28.0, 4.0]])

    def direction(
        source_filters: torch.Tensor, dest: CrossoverFrame, locs: torch.Tensor
    ) -> torch.Tensor:
        logits = oracle_masks(
            dest.mask_features,
            source_filters,
            locs,
            torch.tensor([0, 0]),
            torch.tensor([64.0, 64.0]),
        )
        gt = sample_masks(dest.gt_masks[0])
        return dice_loss(logits, gt).mean()

    expected = (direction(filters_t, frame_u, loc_u) + direction(filters_u, frame_t, loc_t)) / 2
    loss = crossover_loss(head, frame_t, frame_u)
    assert torch.allclose(loss, expected, atol=1e-5)
    assert torch.allclose(crossover_loss(head, frame_u, frame_t), loss, atol=1e-6)
    # The source frame's own locations would give another value: the test can tell.
    stay = (direction(filters_t, frame_u, loc_t) + direction(filters_u, frame_t, loc_u)) / 2
    assert abs(stay.item() - loss.item()) > 1e-3


def test_crossover_without_a_shared_object_is_zero_with_the_graph() -> None:
    filters = torch.stack([perfect_filter(0), perfect_filter(1)])
    frame_t = cells_frame([(0, 1, 0, 1)], [7], filters)
    frame_u = cells_frame([(2, 3, 2, 3)], [8], filters)
    frame_t.params[0].requires_grad_(True)
    loss = crossover_loss(DynamicMaskHead(), frame_t, frame_u)
    loss.backward()
    assert loss.item() == 0 and frame_t.params[0].grad is not None


def frame_losses(
    fcos: FCOSHead,
    branch: MaskBranch,
    dynamic: DynamicMaskHead,
    sizes: list[tuple[int, int]],
    targets: FCOSTargets,
    masks: list[torch.Tensor],
) -> tuple[CrossoverFrame, torch.Tensor]:
    """One frame batch of random P3-P5 through the heads: its crossover inputs and its losses."""
    feats = [torch.randn(2, 8, h, w) for h, w in sizes]
    out, mask_features = fcos(feats), branch(feats)
    losses = fcos_losses(out, targets)
    losses.update(mask_losses(dynamic, mask_features, out.params, targets, masks))
    ids = [torch.tensor([1, 2]), torch.tensor([1])]
    frame = CrossoverFrame(mask_features, out.params, targets, ids, masks)
    return frame, torch.stack(list(losses.values())).sum()


def test_end_to_end_losses_reach_every_parameter() -> None:
    torch.manual_seed(0)
    sizes, strides = [(8, 8), (4, 4), (2, 2)], (8, 16, 32)  # 64 x 64 images
    fcos = FCOSHead(8, 3, num_convs=2, num_groups=4, strides=strides)
    branch = MaskBranch(8, channels=8, num_convs=2)
    dynamic = DynamicMaskHead()
    boxes = [
        torch.tensor([[4.0, 6.0, 40.0, 44.0], [30.0, 20.0, 62.0, 60.0]]),
        torch.tensor([[10.0, 0.0, 64.0, 50.0]]),
    ]
    masks = []
    for image_boxes in boxes:
        m = torch.zeros(len(image_boxes), 64, 64)
        for k, (x0, y0, x1, y1) in enumerate(image_boxes.int().tolist()):
            m[k, y0:y1, x0:x1] = 1
        masks.append(m)
    targets = fcos_targets(
        fcos_locations(sizes, strides),
        strides,
        boxes,
        [torch.tensor([0, 2]), torch.tensor([1])],
        size_ranges=((0, 24), (24, 40), (40, math.inf)),
    )
    assert set(targets.levels[targets.positive].tolist()) == {0, 1, 2}
    frame_t, total_t = frame_losses(fcos, branch, dynamic, sizes, targets, masks)
    frame_u, total_u = frame_losses(fcos, branch, dynamic, sizes, targets, masks)
    total = total_t + total_u + crossover_loss(dynamic, frame_t, frame_u)
    assert torch.isfinite(total)
    total.backward()
    for module in (fcos, branch):
        for name, param in module.named_parameters():
            assert param.grad is not None, name
            assert torch.isfinite(param.grad).all(), name
            assert param.grad.abs().sum() > 0, name
