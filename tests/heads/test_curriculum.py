"""Hide-and-detect on hand-made masks: schedule, whole-region and cell hiding, seeds, eval mode."""

from __future__ import annotations

import pytest
import torch

from avlab.heads import HideAndDetect


def blob_masks() -> torch.Tensor:
    # Two sources on a 10 x 12 grid: an L-shaped one (box rows 1-5, cols 2-7) and a square.
    masks = torch.zeros(1, 2, 10, 12, dtype=torch.bool)
    masks[0, 0, 1:6, 2:4] = True
    masks[0, 0, 4:6, 2:8] = True
    masks[0, 1, 7:9, 8:11] = True
    return masks


def box_of(mask: torch.Tensor) -> torch.Tensor:
    rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
    box = torch.zeros_like(mask)
    box[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] = True
    return box


def test_stage_schedule() -> None:
    hide = HideAndDetect(stages=(0, 2, 4, 8), epochs_per_stage=3)
    assert [hide.stage(e) for e in range(13)] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3]
    assert [hide.grid_size(e) for e in (0, 3, 6, 9, 100)] == [0, 2, 4, 8, 8]
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        hide.stage(-1)


def test_defaults() -> None:
    hide = HideAndDetect()
    assert (hide.stages, hide.p, hide.fill, hide.epochs_per_stage) == ((0, 2, 4, 8), 0.5, "zero", 5)


def test_stage_zero_hides_the_whole_region_of_the_chosen_source() -> None:
    masks = blob_masks()
    hide = HideAndDetect(p=1.0)
    x = torch.randn(1, 3, 10, 12)
    seen = set()
    for step in range(20):
        x_hidden, hidden = hide(x, masks, epoch=0, step=step)
        chosen = [n for n in range(2) if torch.equal(hidden[0], masks[0, n])]
        assert len(chosen) == 1  # exactly one source's mask, not a box
        seen.add(chosen[0])
        assert (x_hidden[:, :, hidden[0]] == 0).all()
        assert torch.equal(x_hidden[:, :, ~hidden[0]], x[:, :, ~hidden[0]])
    assert seen == {0, 1}


def test_stage_zero_hides_with_probability_p() -> None:
    masks = blob_masks()[:, :1].expand(200, 1, 10, 12)
    _, hidden = HideAndDetect(p=0.5, seed=3)(torch.ones(200, 1, 10, 12), masks, epoch=0, step=0)
    hidden_samples = hidden.flatten(1).any(1).float().mean().item()
    assert 0.35 < hidden_samples < 0.65
    _, hidden = HideAndDetect(p=0.0)(torch.ones(200, 1, 10, 12), masks, epoch=0, step=0)
    assert not hidden.any()


@pytest.mark.parametrize("epoch", [1, 2, 3], ids=["g2", "g4", "g8"])
def test_cells_are_hidden_within_the_box_only(epoch: int) -> None:
    masks = blob_masks()[:, :1]  # (1, 1, H, W): one source
    hide = HideAndDetect(epochs_per_stage=1, p=0.5)
    box = box_of(masks[0, 0])
    counts = []
    for step in range(30):
        _, hidden = hide(torch.ones(1, 2, 10, 12), masks, epoch=epoch, step=step)
        assert not (hidden[0] & ~box).any()
        counts.append(int(hidden.sum()))
    assert 0 < sum(counts) < 30 * int(box.sum())  # some cells, never all of them every time


def test_cells_partition_the_box() -> None:
    # p = 1 hides every cell: their union is the box, background included.
    masks = blob_masks()[:, 0]  # (1, H, W)
    _, hidden = HideAndDetect(stages=(3,), p=1.0)(torch.ones(1, 1, 10, 12), masks, epoch=0, step=0)
    assert torch.equal(hidden[0], box_of(masks[0]))


def test_two_by_two_cells_are_whole_rectangles() -> None:
    masks = torch.zeros(1, 8, 8, dtype=torch.bool)
    masks[0, 2:6, 2:6] = True  # a 4 x 4 box: four 2 x 2 cells
    hide = HideAndDetect(stages=(2,), p=0.5)
    for step in range(10):
        _, hidden = hide(torch.ones(1, 1, 8, 8), masks, epoch=0, step=step)
        cells = hidden[0, 2:6, 2:6].reshape(2, 2, 2, 2).permute(0, 2, 1, 3).flatten(2)  # (2, 2, 4)
        assert (cells.all(-1) | ~cells.any(-1)).all()


def test_determinism_by_seed_and_step() -> None:
    masks = blob_masks()
    x = torch.randn(1, 3, 10, 12)

    def run(seed: int, step: int) -> torch.Tensor:
        return HideAndDetect(stages=(8,), seed=seed)(x, masks, epoch=0, step=step)[1]

    assert torch.equal(run(0, 5), run(0, 5))
    assert not torch.equal(run(0, 5), run(0, 6))
    assert not torch.equal(run(0, 5), run(1, 5))


def test_an_explicit_generator_and_the_call_counter() -> None:
    masks, x = blob_masks(), torch.randn(1, 3, 10, 12)
    a = HideAndDetect(stages=(8,))(x, masks, epoch=0, generator=torch.Generator().manual_seed(7))[1]
    b = HideAndDetect(stages=(8,))(x, masks, epoch=0, generator=torch.Generator().manual_seed(7))[1]
    assert torch.equal(a, b)
    first, second = HideAndDetect(stages=(8,)), HideAndDetect(stages=(8,))
    runs = [[h(x, masks, epoch=0)[1] for _ in range(3)] for h in (first, second)]
    assert all(torch.equal(u, v) for u, v in zip(*runs, strict=True))
    assert torch.equal(runs[0][1], HideAndDetect(stages=(8,))(x, masks, epoch=0, step=1)[1])


def test_a_sample_does_not_depend_on_the_rest_of_the_batch() -> None:
    masks = blob_masks()
    x = torch.randn(1, 3, 10, 12)
    hide = HideAndDetect(stages=(4,))
    alone = hide(x, masks, epoch=0, step=4)[1]
    batch = hide(x.expand(3, -1, -1, -1), masks.expand(3, -1, -1, -1), epoch=0, step=4)[1]
    assert torch.equal(batch[0], alone[0])


def test_empty_masks_hide_nothing() -> None:
    _, hidden = HideAndDetect(p=1.0)(
        torch.ones(2, 1, 4, 4), torch.zeros(2, 3, 4, 4), epoch=0, step=0
    )
    assert not hidden.any()


def test_identity_in_eval_mode() -> None:
    hide = HideAndDetect(p=1.0).eval()
    x = torch.randn(1, 3, 10, 12)
    x_out, hidden = hide(x, blob_masks(), epoch=0, step=0)
    assert x_out is x and hidden.shape == (1, 10, 12) and not hidden.any()
    x_out, hidden = hide.train()(x, blob_masks(), epoch=0, step=0)
    assert hidden.any()


def test_mean_fill() -> None:
    masks = blob_masks()[:, 0]
    x = torch.randn(2, 3, 10, 12)
    masks2 = masks.expand(2, -1, -1)
    x_out, hidden = HideAndDetect(p=1.0, fill="mean")(x, masks2, epoch=0, step=0)
    assert torch.allclose(
        x_out[:, :, hidden[0]], x.mean((2, 3))[:, :, None].expand(-1, -1, int(hidden[0].sum()))
    )
    x_out, hidden = HideAndDetect(p=1.0, fill="mean", fill_value=(0.5, 0.25, 1.0))(
        x, masks2, epoch=0, step=0
    )
    assert x_out[1, :, hidden[1]].unique(dim=1).flatten().tolist() == [0.5, 0.25, 1.0]


def test_float_masks_and_bad_arguments() -> None:
    float_masks = blob_masks()[:, 0].float() * 0.9
    _, hidden = HideAndDetect(p=1.0)(torch.ones(1, 1, 10, 12), float_masks, epoch=0, step=0)
    assert torch.equal(hidden[0], blob_masks()[0, 0])
    with pytest.raises(ValueError, match="same grid"):
        HideAndDetect()(torch.ones(1, 1, 10, 12), torch.ones(1, 5, 6), epoch=0, step=0)
    with pytest.raises(ValueError, match="fill must be"):
        HideAndDetect(fill="noise")
    with pytest.raises(ValueError, match="p must be"):
        HideAndDetect(p=1.5)
