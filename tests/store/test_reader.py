"""Reading a store for training: clips and frame pairs, three engines that agree, worker processes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avlab.store import ClipDataset, FramePairDataset, open_store
from avlab.store.shards import direct_reader


def test_clips_hold_the_stored_values(cached) -> None:  # type: ignore[no-untyped-def]
    store = cached.encoding["source"]
    clips = ClipDataset(store, clip_length=3, stride=1)
    assert len(clips) == 4 * 2  # 4 videos of 4 frames, clips starting at 0 and 1
    for index in (0, 5):
        item = clips[index]
        video, start = item["video"], item["start"]
        np.testing.assert_array_equal(item["visual_c4"].numpy(),
                                      cached.visual_c4[video, 0, start : start + 3].values.astype(np.float32))
        np.testing.assert_array_equal(item["mask"].numpy(), cached["mask"][video, 0, start : start + 3].values)
        np.testing.assert_array_equal(item["logmel"].numpy(),
                                      cached.logmel[video, start : start + 3].values.astype(np.float32))
        np.testing.assert_array_equal(item["stft"].numpy(), cached.stft[video].values)
        np.testing.assert_array_equal(item["frame_time"].numpy(), cached.frame_time[video, start : start + 3].values)
        assert item["visual_c4"].dtype == torch.float32 and item["stft"].dtype == torch.complex64
        assert item["instance_mask"].shape == (3, 3, 32, 32) and item["sounding"].shape == (3, 3)


@pytest.mark.parametrize("engine", ["zarr", "direct"])
def test_engines_and_memory_mode_agree(cached, engine: str) -> None:  # type: ignore[no-untyped-def]
    store = cached.encoding["source"]
    reference = ClipDataset(store, clip_length=4, view="hflip", split="train", in_memory=True)
    other = ClipDataset(store, clip_length=4, view="hflip", split="train", engine=engine)
    assert len(reference) == len(other) == 3
    for a, b in zip(reference, other, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], torch.Tensor):
                assert torch.equal(a[key].nan_to_num(), b[key].nan_to_num()), key
            else:
                assert a[key] == b[key]


def test_direct_reader_reads_shard_files_like_zarr(cached) -> None:  # type: ignore[no-untyped-def]
    store = cached.encoding["source"]
    reader = direct_reader(f"{store}/visual_c3")
    assert reader is not None and reader.run_axis == 2
    np.testing.assert_array_equal(reader.read((1, 1), 1, 3), cached.visual_c3[1, 1, 1:4].values)
    # A run past the written frames reads the fill value, like zarr.
    assert np.isnan(reader.read((3, 1), 0, 2)).all()  # the val video has no hflip view


def test_batched_reads_return_items_in_request_order(cached) -> None:  # type: ignore[no-untyped-def]
    clips = ClipDataset(cached.encoding["source"], clip_length=2, stride=2)
    order = [5, 0, 3, 3, 7]
    batch = clips.__getitems__(order)
    for index, item in zip(order, batch, strict=True):
        assert (item["video"], item["start"]) == clips.items[index]


def test_random_views_are_seeded_and_use_only_cached_views(cached) -> None:  # type: ignore[no-untyped-def]
    store = cached.encoding["source"]
    first = [item["view"] for item in ClipDataset(store, clip_length=1, view="random", seed=1)]
    again = [item["view"] for item in ClipDataset(store, clip_length=1, view="random", seed=1)]
    assert first == again and set(first) == {0, 1}
    clips = ClipDataset(store, clip_length=1, view="random", seed=1)
    val_items = [k for k, (video, _) in enumerate(clips.items) if str(cached.split.values[video]) == "val"]
    assert all(clips[k]["view"] == 0 for k in val_items)


def test_frame_pairs_stay_within_the_offset_and_share_the_view(cached) -> None:  # type: ignore[no-untyped-def]
    pairs = FramePairDataset(cached.encoding["source"], max_offset=2, view="random", seed=4)
    assert len(pairs) == 16
    offsets = []
    for item in pairs:
        first, second = item["first"], item["second"]
        assert first["video"] == second["video"] and first["view"] == second["view"]
        assert 0 < abs(item["offset"]) <= 2 and second["start"] - first["start"] == item["offset"]
        offsets.append(item["offset"])
    assert {-2, -1, 1, 2} <= set(offsets)


def test_dataloader_workers_open_the_store_themselves(cached) -> None:  # type: ignore[no-untyped-def]
    clips = ClipDataset(cached.encoding["source"], clip_length=4, split="train")
    loader = torch.utils.data.DataLoader(clips, batch_size=2, num_workers=2, multiprocessing_context="spawn")
    batches = list(loader)
    assert sum(len(b["video"]) for b in batches) == 3
    serial = torch.utils.data.default_collate([clips[0], clips[1]])
    assert torch.equal(batches[0]["visual_c5"], serial["visual_c5"])


def test_accessor_hands_out_datasets_of_its_videos(cached) -> None:  # type: ignore[no-untyped-def]
    ds = open_store(cached.encoding["source"])
    val = ds.avlab.split("val").avlab.to_torch("clips", clip_length=4)
    assert len(val) == 1 and val[0]["video"] == 3
    pairs = ds.avlab.to_torch("pairs", max_offset=1)
    assert len(pairs) == 16
