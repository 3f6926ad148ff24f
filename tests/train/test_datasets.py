"""Datasets: draws depend on (seed, epoch, index) only; partners come from other clips; views are drawn."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from avlab.store import cache_features
from avlab.train import AVDataModule, MixFrames, NaturalFrames, StoreFrames


@pytest.fixture(scope="module")
def solo_frames(solo_store: Path) -> StoreFrames:
    return StoreFrames(solo_store, split="train")


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_mix_draws_repeat_per_epoch_and_change_between_epochs(solo_frames: StoreFrames) -> None:
    mixes = MixFrames(solo_frames, num_mix=2, num_stft_frames=16, augment=True, seed=3)
    first = [mixes[i] for i in range(6)]
    again = MixFrames(solo_frames, num_mix=2, num_stft_frames=16, augment=True, seed=3)
    assert all(same(a, again[i]) for i, a in enumerate(first))
    mixes.set_epoch(1)
    assert not all(same(a, mixes[i]) for i, a in enumerate(first))


def test_mix_partners_come_from_other_clips_and_gains_are_one_without_augmentation(solo_frames: StoreFrames) -> None:
    mixes = MixFrames(solo_frames, num_mix=2, num_stft_frames=16, augment=False)
    for index in range(len(mixes)):
        item = mixes[index]
        video = solo_frames.video_of(index)
        matches = [p for p in range(len(solo_frames))
                   if torch.equal(solo_frames.frame(p)["visual_c3"], item["source_visual_c3"][1])]
        assert matches and all(solo_frames.video_of(p) != video for p in matches)
        # Gains of 1: each source is half its clip's STFT window.
        assert torch.allclose(item["mixture_stft"], item["source_stft"].sum(dim=0))
        assert torch.allclose(item["source_visual_c3"][0], item["visual_c3"])


def test_natural_frames_keep_annotated_frames_for_evaluation(mix_store: Path) -> None:
    frames = StoreFrames(mix_store, split="val")
    every = NaturalFrames(frames, num_sources=2, num_stft_frames=16)
    annotated = NaturalFrames(frames, num_sources=2, num_stft_frames=16, annotated_only=True)
    assert len(every) == 8 and len(annotated) == sum(bool(every[i]["annotated"]) for i in range(8))


def test_augmented_views_are_drawn_per_epoch(synth_root: Path, tmp_path: Path) -> None:
    store = cache_features(synth_root, tmp_path / "flip.zarr", visual="debug", size=32, augment=("hflip",),
                           progress=False).encoding["source"]
    frames = StoreFrames(store, split="train")
    dataset = NaturalFrames(frames, num_sources=2, num_stft_frames=16, augment=True)
    # A frame whose sounding mask is not its own mirror image (an empty one would be).
    index = next(i for i in range(len(frames))
                 if not torch.equal(frames.frame(i)["mask"], frames.frame(i)["mask"].flip(-1)))
    original, flipped = frames.frame(index, view=0), frames.frame(index, view=1)
    assert torch.equal(flipped["mask"], original["mask"].flip(-1))
    seen = set()
    for epoch in range(8):
        dataset.set_epoch(epoch)
        mask = dataset[index]["mask"]
        seen.add("original" if torch.equal(mask, original["mask"]) else "hflip")
    assert seen == {"original", "hflip"}


def test_data_module_batches_and_loaders(mix_store: Path, solo_store: Path) -> None:
    data = AVDataModule(mix_store, solo_store=solo_store, batch_size=5, num_stft_frames=16, separation_eval_items=3)
    assert data.info["num_sources"] == 3 and data.info["separates"]
    data.setup("fit")
    assert [len(d) for d in data.train_sets] == [16, 12]  # 4 x 4 natural frames, 3 x 4 solo frames
    batch = next(iter(data.train_dataloader()))
    assert batch["source_visual_c5"].shape == (5, 3, 32, 1, 1)
    natural, solo = data.val_dataloader()
    assert len(solo.dataset) == 3
    assert all(bool(item["annotated"]) for item in natural.dataset)


def test_data_module_names_missing_splits(mix_store: Path) -> None:
    from avlab.errors import AvlabError

    with pytest.raises(AvlabError, match="no videos in split 'test'"):
        _ = AVDataModule(mix_store, val_split="test").info
