"""Separation heads and helpers: the warp, the audio U-Net, the synthesizer, targets and loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from avlab.heads import (
    AudioUNet,
    PixelSound,
    Synthesizer,
    separation_targets,
    separation_weights,
    unwarp_frequency,
    warp_frequency,
    weighted_bce,
)


def pixelplayer_grid(rows: int, cols: int, warp: bool) -> torch.Tensor:
    # PixelPlayer's utils.warpgrid, for a batch of one.
    x = np.linspace(-1, 1, cols)
    y = np.linspace(-1, 1, rows)
    xv, yv = np.meshgrid(x, y)
    grid_y = (
        (np.power(21, (yv + 1) / 2) - 11) / 10
        if warp
        else np.log(yv * 10 + 11) / np.log(21) * 2 - 1
    )
    return torch.from_numpy(np.stack([xv, grid_y], axis=-1)[None])  # (1, rows, cols, 2) float64


def smooth_spectrum(bins: int = 512, frames: int = 6) -> torch.Tensor:
    f = torch.linspace(0, 1, bins)[:, None]
    t = torch.linspace(0, 1, frames)[None, :]
    return torch.exp(-3 * f) * (1.2 + torch.sin(2 * torch.pi * (f + t)))  # (F, T), positive


def test_warp_equals_pixelplayer_grid_sample() -> None:
    # In float64, so that only the method could differ, not the rounding of the grid.
    mag = torch.rand(1, 1, 512, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for warp, fn, rows in ((True, warp_frequency, 256), (False, unwarp_frequency, 512)):
        source = mag if warp else warp_frequency(mag)
        expected = F.grid_sample(source, pixelplayer_grid(rows, 7, warp), align_corners=True)
        assert torch.allclose(fn(source), expected, atol=1e-12)


def test_warp_rows_are_monotone_and_log_spaced() -> None:
    ramp = torch.arange(512.0)[:, None]
    rows = warp_frequency(ramp)[:, 0]
    steps = rows.diff()
    assert rows[0] == 0 and rows[-1] == 511 and (steps > 0).all()
    assert (steps.diff() > 0).all()  # ever wider steps: more rows for low frequencies
    assert steps[0] < 1 < steps[-1]


def test_warp_unwarp_round_trip_of_a_smooth_spectrum() -> None:
    spec = smooth_spectrum()
    back = unwarp_frequency(warp_frequency(spec))
    assert back.shape == spec.shape
    assert (back - spec).abs().max() < 1e-3 * spec.abs().max()


def test_warp_keeps_leading_dims_and_rejects_one_row() -> None:
    assert warp_frequency(torch.rand(2, 3, 512, 4), rows=64).shape == (2, 3, 64, 4)
    with pytest.raises(ValueError, match="F >= 2"):
        warp_frequency(torch.rand(1, 4))


def test_unet_default_layout_is_pixelplayers_unet7() -> None:
    unet = AudioUNet()
    assert unet.widths == (64, 128, 256, 512, 512, 512, 512)
    downs = [m for level in unet.down for m in level if isinstance(m, nn.Conv2d)]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) and c.bias is None for c in downs)
    assert [c.in_channels for c in downs] == [1, 64, 128, 256, 512, 512, 512]
    leaky = [m for level in unet.down for m in level if isinstance(m, nn.LeakyReLU)]
    assert len(leaky) == 6 and all(m.negative_slope == 0.2 for m in leaky)
    # BatchNorm: none on the outermost down and up levels nor on the innermost down level.
    has_bn = [any(isinstance(m, nn.BatchNorm2d) for m in level) for level in unet.down]
    assert has_bn == [False, True, True, True, True, True, False]
    has_bn = [any(isinstance(m, nn.BatchNorm2d) for m in level) for level in unet.up]
    assert has_bn == [False, True, True, True, True, True, True]
    ups = [m for level in unet.up for m in level if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in ups] == [
        (128, 32),
        (256, 64),
        (512, 128),
        (1024, 256),
        (1024, 512),
        (1024, 512),
        (512, 512),
    ]
    assert all(c.kernel_size == (3, 3) for c in ups)
    samplers = [m for level in unet.up for m in level if isinstance(m, nn.Upsample)]
    assert all(m.mode == "bilinear" and m.align_corners for m in samplers)


def test_unet_default_maps_a_pixelplayer_clip() -> None:
    # 256 warped rows x 256 STFT frames (a 65535-sample clip at 11025 Hz) -> K = 32 maps.
    torch.manual_seed(0)
    with torch.no_grad():
        out = AudioUNet().eval()(torch.randn(1, 1, 256, 256))
    assert out.shape == (1, 32, 256, 256) and torch.isfinite(out).all()


def test_unet_skips_reach_the_output() -> None:
    # Every input position influences the output through the skips, down to the finest level.
    torch.manual_seed(0)
    unet = AudioUNet(out_channels=3, num_downs=3, base_channels=4).eval()
    x = torch.randn(1, 1, 16, 16, requires_grad=True)
    out = unet(x)
    out[0, :, 3, 5].sum().backward()
    assert out.shape == (1, 3, 16, 16) and x.grad.abs().sum() > 0


def test_unet_rejects_sizes_it_cannot_halve() -> None:
    with pytest.raises(ValueError, match="divisible by 8"):
        AudioUNet(num_downs=3, base_channels=4)(torch.randn(1, 1, 12, 16))


def test_synthesizer_formula() -> None:
    torch.manual_seed(0)
    synth = Synthesizer(3)
    with torch.no_grad():
        synth.scale.copy_(torch.tensor([0.5, -1.0, 2.0]))
        synth.bias.fill_(0.25)
    v, a = torch.randn(2, 4, 3), torch.randn(2, 3, 5, 6)
    expected = (
        sum(
            synth.scale[k] * torch.sigmoid(v[:, :, k])[..., None, None] * a[:, None, k]
            for k in range(3)
        )
        + 0.25
    )
    assert torch.allclose(synth(v, a), expected, atol=1e-6)
    raw = Synthesizer(3, visual_sigmoid=False)
    assert torch.allclose(raw(v[:, 0], a), torch.einsum("bk,bkft->bft", v[:, 0], a), atol=1e-6)


def test_pixel_sound_is_the_synthesizer_at_every_pixel() -> None:
    torch.manual_seed(0)
    synth = Synthesizer(4)
    with torch.no_grad():
        synth.scale.uniform_(-1, 1)
    vmap, a = torch.randn(2, 4, 3, 2), torch.randn(2, 4, 8, 5)
    masks = PixelSound(4, synthesizer=synth)(vmap, a)
    assert masks.shape == (2, 3, 2, 8, 5)
    for i in range(3):
        for j in range(2):
            assert torch.allclose(masks[:, i, j], synth(vmap[:, :, i, j], a), atol=1e-6)
    with pytest.raises(ValueError, match="K = 4, expected 3"):
        PixelSound(3, synthesizer=synth)


def test_separation_targets_binary_and_ratio() -> None:
    sources = torch.tensor([[[[3.0, 1.0, 0.0]], [[1.0, 1.0, 0.0]]]])  # (1, 2, 1, 3)
    mix = sources.sum(1)  # (1, 1, 3)
    assert separation_targets(sources, mix).tolist() == [[[[1.0, 0.0, 0.0]], [[0.0, 0.0, 0.0]]]]
    assert separation_targets(sources, mix, threshold=0.4).tolist() == [
        [[[1.0, 1.0, 0.0]], [[0.0, 1.0, 0.0]]]
    ]
    ratio = separation_targets(sources, mix.unsqueeze(1), "ratio")  # (B, 1, F, T) mixture too
    assert torch.allclose(ratio, torch.tensor([[[[0.75, 0.5, 0.0]], [[0.25, 0.5, 0.0]]]]))
    loud = separation_targets(torch.tensor([[[[9.0]]]]), torch.tensor([[[1.0]]]), "ratio")
    assert loud.item() == 5.0  # clamped
    with pytest.raises(ValueError, match="'binary' or 'ratio'"):
        separation_targets(sources, mix, "soft")


def test_separation_weights_clamp_log1p() -> None:
    mix = torch.tensor([0.0, 1.0, 100.0, 1e9])
    assert torch.allclose(separation_weights(mix), torch.tensor([1e-3, 0.693147, 4.615121, 10.0]))


def test_weighted_bce_equals_pixelplayers_mean_over_sources() -> None:
    torch.manual_seed(0)
    logits, targets = torch.randn(2, 3, 4, 5), (torch.rand(2, 3, 4, 5) > 0.5).float()
    weights = torch.rand(2, 4, 5)
    per_source = [
        F.binary_cross_entropy(torch.sigmoid(logits[:, n]), targets[:, n], weight=weights)
        for n in range(3)
    ]
    assert torch.allclose(
        weighted_bce(logits, targets, weights.unsqueeze(1)), sum(per_source) / 3, atol=1e-6
    )
    assert torch.allclose(
        weighted_bce(logits, targets), F.binary_cross_entropy_with_logits(logits, targets)
    )


def test_weighted_bce_rejects_shapes() -> None:
    with pytest.raises(ValueError, match="do not match"):
        weighted_bce(torch.zeros(2, 3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="do not broadcast"):
        weighted_bce(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), torch.zeros(2, 4))


# Pinned under torch.manual_seed(0); recompute only for an intended change of the helpers.
PINNED_SEPARATION_LOSS = 1.262927


def test_pinned_separation_loss() -> None:
    torch.manual_seed(0)
    sources = torch.rand(2, 2, 512, 8) * 4  # (B, N, F, T) magnitudes
    mixture = sources.sum(dim=1)  # (B, F, T)
    logits = torch.randn(2, 2, 256, 8)  # on the warped grid
    warped_sources, warped_mix = warp_frequency(sources), warp_frequency(mixture)
    targets = separation_targets(warped_sources, warped_mix)
    weights = separation_weights(warped_mix).unsqueeze(1)
    loss = weighted_bce(logits, targets, weights)
    assert loss.item() == pytest.approx(PINNED_SEPARATION_LOSS, abs=1e-5)
