"""The sound of a pixel is the sound of a source whose region is that pixel alone."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from avlab.models import create_system, system_preset

CHANNELS = (8, 16, 32)


def one_cell_regions(batch: dict[str, Any], grid: tuple[int, int], cell: tuple[int, int]) -> torch.Tensor:
    """Regions (B, N, H, W) covering exactly grid cell `cell` of an (h, w) grid, for every source."""
    b, n, height, width = batch["source_region"].shape
    regions = torch.zeros(b, n, height, width)
    rows, cols = height // grid[0], width // grid[1]
    regions[..., cell[0] * rows:(cell[0] + 1) * rows, cell[1] * cols:(cell[1] + 1) * cols] = 1
    return regions


@pytest.mark.parametrize("name, level", [("pixelplayer", "c4"), ("avisnet", "c5")])
@pytest.mark.parametrize("which", ["mix_batch", "natural_batch"])
def test_a_source_on_one_pixel_sounds_as_that_pixel(name: str, level: str, which: str,
                                                    request: pytest.FixtureRequest) -> None:
    torch.manual_seed(0)
    batch = dict(request.getfixturevalue(which))
    system = create_system(name, channels=CHANNELS, **system_preset(name, "tiny")).eval()
    grid = tuple(batch[f"visual_{level}"].shape[-2:])
    cell = (grid[0] - 1, 0)
    batch["source_region"] = one_cell_regions(batch, grid, cell)
    with torch.no_grad():
        pixels = system.pixel_sounds(batch)  # (B, V, h, w, rows, T)
        sources = system(batch)["separation_logits"]  # (B, N, rows, T)
    b, n = batch["source_region"].shape[:2]
    views = n if which == "mix_batch" else 1
    assert pixels.shape[:4] == (b, views, *grid)
    assert pixels.shape[-2:] == sources.shape[-2:]
    for k in range(n):
        view = k if views > 1 else 0
        torch.testing.assert_close(pixels[:, view, cell[0], cell[1]], sources[:, k], atol=1e-5, rtol=1e-5)
    # the pixels differ from one another: each has its own sound
    assert not torch.allclose(pixels[:, :, 0, 0], pixels[:, :, cell[0], cell[1]])


def test_a_system_built_without_separation_has_no_pixel_sounds(natural_batch: dict[str, Any]) -> None:
    system = create_system("avisnet", channels=CHANNELS, separation=False, **system_preset("avisnet", "tiny"))
    with pytest.raises(ValueError, match="separation=False"):
        system.pixel_sounds(natural_batch)
