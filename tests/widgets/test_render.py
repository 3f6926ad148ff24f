from __future__ import annotations

import numpy as np

from avlab.widgets.render import (
    ContactRow,
    contact_sheet,
    instance_colors,
    mask_outline,
    overlay_masks,
)


def test_overlay_tints_only_inside_the_mask_and_outlines_on_request() -> None:
    frame = np.full((8, 8, 3), 100, np.uint8)
    masks = np.zeros((2, 8, 8), np.uint8)
    masks[0, 1:5, 1:5] = 1
    masks[1, 5:8, 5:8] = 1
    colors = np.array([[255, 0, 0], [0, 0, 255]], np.uint8)
    out = overlay_masks(frame, masks, colors=colors, alpha=0.5, outline=[True, False])
    assert out[3, 3].tolist() == [178, 50, 50]  # inside 0, not on its outline
    assert out[1, 1].tolist() == [255, 255, 255]  # outline of the sounding instance
    assert out[6, 6].tolist() == [50, 50, 178]  # instance 1: tinted, no outline
    assert out[0, 7].tolist() == [100, 100, 100]  # background untouched


def test_outline_of_a_filled_square_is_its_border() -> None:
    mask = np.zeros((6, 6), bool)
    mask[1:5, 1:5] = True
    border = mask_outline(mask)
    assert border.sum() == 12 and not border[2:4, 2:4].any()


def test_colors_are_stable_and_distinct() -> None:
    colors = instance_colors(10)
    assert (instance_colors(3) == colors[:3]).all()
    assert len({tuple(c) for c in colors}) == 10


def test_contact_sheet_draws_frames_overlays_and_spectrogram(tmp_path) -> None:
    frames = np.zeros((8, 32, 32, 3), np.uint8)
    masks = np.zeros((1, 8, 32, 32), np.uint8)
    masks[0, :, 8:24, 8:24] = 1
    sounding = np.zeros((1, 8), bool)
    sounding[0, 4:] = True
    t = np.arange(11025) / 11025
    row = ContactRow("video", frames, masks=masks, sounding=sounding,
                     audio=(0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sample_rate=11025)
    figure = contact_sheet([row, row], num_frames=4)
    assert len(figure.axes) == 2 * (4 + 1)
    path = tmp_path / "sheet.png"
    figure.savefig(path)
    from PIL import Image

    image = np.asarray(Image.open(path).convert("RGB"))
    # The overlay colour of instance 0 appears in the saved picture.
    tint = overlay_masks(frames[0], masks[:, 0], colors=instance_colors(1))[16, 16]
    assert (np.abs(image.astype(int) - tint.astype(int)).sum(axis=-1) < 30).any()
