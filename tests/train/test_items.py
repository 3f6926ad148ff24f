"""Items in the batch contract, checked against what the store holds and against linearity of the STFT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from avlab.train import (
    StftWindow,
    StoreFrames,
    collate,
    mix_item,
    mixture_logmel,
    natural_item,
    store_info,
)


@pytest.fixture(scope="module")
def frames(mix_store: Path) -> StoreFrames:
    return StoreFrames(mix_store, split="train")


@pytest.fixture(scope="module")
def solo_frames(solo_store: Path) -> StoreFrames:
    return StoreFrames(solo_store, split="train")


def test_store_info_reads_sizes_categories_and_splits(mix_store: Path) -> None:
    info = store_info(mix_store)
    assert info["channels"] == {"c3": 8, "c4": 16, "c5": 32}
    assert info["mask_size"] == (32, 32) and info["splits"] == {"train": 4, "val": 2}
    assert info["categories"][0] == "background" and len(info["categories"]) == 9
    assert info["num_atime"] == 44 and info["stft"]["hop_length"] == 256


def test_stft_window_is_centred_on_the_frame_and_stays_inside_the_audio() -> None:
    window = StftWindow(16)
    assert window.span(0.5, 44) == (14, 16)  # frame 21.5 -> [14, 30)
    assert window.span(0.0, 44) == (0, 16)
    assert window.span(0.99, 44) == (28, 16)  # clipped to the end
    assert window.span(0.5, 10) == (0, 10)  # shorter audio: all of it, then padding
    cut = window.cut(np.broadcast_to(np.arange(10.0)[:, None], (10, 3)), 0, 10)
    assert cut.shape == (3, 16) and cut[0, :10].tolist() == list(range(10)) and not cut[:, 10:].any()


def test_natural_item_windows_the_stored_stft_and_sources(frames: StoreFrames) -> None:
    raw = frames.frame(2)
    item = natural_item(raw, num_sources=4, num_stft_frames=16)
    start, count = StftWindow(16).span(float(raw["frame_time"]), 44)
    assert torch.equal(item["mixture_stft"], raw["stft"][start : start + count].T)
    assert torch.allclose(item["mixture_mag"], item["mixture_stft"].abs(), rtol=1e-6, atol=0)
    real = item["source_valid"]
    assert real.sum() == int(torch.isfinite(raw["source_stft"][:, 0, 0].real).sum())
    assert not real[-1] and not item["source_stft"][~real].abs().any()  # padding
    # SynthAV's mixture is exactly the sum of its sources, so its STFT is theirs summed.
    total = item["source_stft"][real].sum(dim=0)
    assert torch.allclose(total, item["mixture_stft"], atol=1e-4 * float(item["mixture_mag"].max()))
    assert int(item["stft_length"]) == 16


def test_natural_item_regions_are_the_sources_instance_masks(frames: StoreFrames) -> None:
    for position in range(len(frames)):
        raw = frames.frame(position)
        item = natural_item(raw, num_sources=3, num_stft_frames=16)
        for n in range(int(item["source_valid"].sum())):
            instance = int((raw["instance_id"] == raw["source_instance"][n]).nonzero()[0])
            assert torch.equal(item["source_region"][n], (raw["instance_mask"][instance] == 1).float())
            assert int(item["source_category"][n]) == int(raw["instance_category"][instance])


def test_natural_item_without_separation_has_only_the_frame(frames: StoreFrames) -> None:
    item = natural_item(frames.frame(0), num_sources=2, num_stft_frames=16, separation=False)
    assert set(item) == {"visual_c3", "visual_c4", "visual_c5", "logmel", "mask", "annotated", "silent_shown"}
    assert item["annotated"].dtype == torch.bool and bool(item["annotated"])


def test_mix_item_sums_scaled_solo_windows(solo_frames: StoreFrames) -> None:
    first, second = solo_frames.frame(0), solo_frames.frame(len(solo_frames) - 1)
    item = mix_item([first, second], [1.5, 0.5], num_sources=3, num_stft_frames=16)
    window = StftWindow(16)
    s0 = torch.from_numpy(window.cut(first["stft"].numpy(), *window.span(float(first["frame_time"]), 44))) * 0.75
    assert torch.allclose(item["source_stft"][0], s0)
    assert torch.allclose(item["mixture_stft"], item["source_stft"].sum(dim=0))
    assert item["source_valid"].tolist() == [True, True, False]
    assert torch.equal(item["source_region"][1], (second["mask"] == 1).float())
    assert torch.equal(item["source_visual_c5"][1], second["visual_c5"])
    assert torch.equal(item["mask"], first["mask"])  # the batch's frame is the first clip's
    assert not item["source_visual_c5"][2].any()


def test_mixture_logmel_adds_mel_magnitudes() -> None:
    mel = torch.rand(2, 4, 5) * 3
    logmels = torch.log(mel + 0.01)
    mixed = mixture_logmel(logmels, torch.tensor([0.5, 0.5]))
    assert torch.allclose(mixed, torch.log(mel.mean(dim=0) + 0.01), atol=1e-6)


def test_collate_gives_natural_items_their_own_frame_per_source(frames: StoreFrames, solo_frames: StoreFrames) -> None:
    natural = natural_item(frames.frame(0), num_sources=2, num_stft_frames=16)
    mixed = mix_item([solo_frames.frame(0), solo_frames.frame(5)], [1.0, 1.0], num_sources=2, num_stft_frames=16)
    batch = collate([natural, mixed])
    assert batch["source_visual_c4"].shape == (2, 2, 16, 2, 2)
    assert torch.equal(batch["source_visual_c4"][0, 1], natural["visual_c4"])
    plain = natural_item(frames.frame(0), num_sources=2, num_stft_frames=16, separation=False)
    with pytest.raises(ValueError, match="disagree"):
        collate([natural, plain])


def test_store_frames_cannot_mirror_features(frames: StoreFrames) -> None:
    assert np.isfinite(frames.frame(0)["visual_c3"].numpy()).all()
    with pytest.raises(ValueError, match="hflip"):
        frames.frame(0, flip=True)
