"""cache_features on a tiny SynthAV split: values, alignment, views, failures, recipes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from store_cases import CACHE_OPTIONS

from avlab.backbones import LogMelFrames, SeparationSTFT, visual_bundle
from avlab.errors import AvlabWarning
from avlab.store import RecipeMismatchError, cache_features, open_store
from avlab.store.extract import view_masks


def test_features_equal_the_backbone_on_the_decoded_frames(cached, manifest) -> None:  # type: ignore[no-untyped-def]
    model = visual_bundle("debug").load(None)
    for position, record in enumerate(manifest):
        frames, times = record.load_frames(size=32)
        images = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
        with torch.inference_mode():
            expected = model(images)
        for level in ("c3", "c4", "c5"):
            stored = cached[f"visual_{level}"][position, 0, : len(frames)].values.astype(np.float32)
            np.testing.assert_allclose(stored, expected[level].numpy(), rtol=2e-3, atol=2e-3)
        np.testing.assert_allclose(cached.frame_time[position, : len(times)].values, times)


def test_hflip_view_is_the_backbone_on_flipped_frames_with_flipped_masks(cached, manifest) -> None:  # type: ignore[no-untyped-def]
    model = visual_bundle("debug").load(None)
    train = [i for i, r in enumerate(manifest) if r.split == "train"]
    position = train[0]
    frames, _ = manifest[position].load_frames(size=32)
    flipped = torch.from_numpy(frames[:, :, ::-1].copy()).permute(0, 3, 1, 2).float() / 255
    with torch.inference_mode():
        expected = model(flipped)["c4"].numpy()
    stored = cached.visual_c4[position, 1, : len(frames)].values.astype(np.float32)
    np.testing.assert_allclose(stored, expected, rtol=2e-3, atol=2e-3)
    masks = cached["mask"][position].values  # (view, frame, y, x)
    np.testing.assert_array_equal(masks[1], view_masks("hflip", masks[0]))
    # Validation videos get the original view only.
    val = [i for i, r in enumerate(manifest) if r.split == "val"][0]
    assert int(cached.num_views[val]) == 1 and np.isnan(cached.visual_c3[val, 1].values).all()


def test_audio_features_match_the_front_ends_on_the_frame_times(cached, manifest) -> None:  # type: ignore[no-untyped-def]
    record = manifest[0]
    times = cached.frame_time[0].values
    times = times[np.isfinite(times)]
    expected = LogMelFrames()(record.load_audio(16000), times)
    np.testing.assert_allclose(cached.logmel[0, : len(times)].values.astype(np.float32), expected, atol=2e-2, rtol=2e-3)
    audio = record.load_audio(11025)
    spectrum = SeparationSTFT()(audio).T
    np.testing.assert_allclose(cached.stft[0, : len(spectrum)].values, spectrum, atol=1e-5)
    np.testing.assert_array_equal(cached.audio[0, : len(audio)].values, audio)


def test_sources_sum_to_the_mixture_in_the_stft(cached, manifest) -> None:  # type: ignore[no-untyped-def]
    for position in range(len(manifest)):
        count = int(cached.num_sources[position])
        if count == 0:
            continue
        sources = cached.source_stft[position, :count].values
        np.testing.assert_allclose(sources.sum(axis=0), cached.stft[position].values, atol=1e-4)


def test_masks_and_sounding_flags_follow_the_annotations(cached, manifest) -> None:  # type: ignore[no-untyped-def]
    for position, record in enumerate(manifest):
        masks = record.load_masks()
        count = len(masks.instance_ids)
        np.testing.assert_array_equal(cached.instance_id[position, :count].values, masks.instance_ids)
        np.testing.assert_array_equal(cached.sounding[position, : masks.num_frames, :count].values,
                                      masks.sounding.T.astype(np.int8))
        stored = cached.instance_mask[position, 0, : masks.num_frames, :count].values
        np.testing.assert_array_equal(stored, masks.data.transpose(1, 0, 2, 3))
        np.testing.assert_array_equal(cached["mask"][position, 0, : masks.num_frames].values,
                                      masks.union(sounding_only=True))


def test_store_describes_itself(cached) -> None:  # type: ignore[no-untyped-def]
    recipe = cached.avlab.recipe
    assert recipe["visual"]["backbone"] == "debug" and recipe["dtype"] == "float16"
    assert recipe["audio"]["stft"]["n_fft"] == 1022 and recipe["precision"] == "float32"
    assert len(cached.avlab.fingerprint) == 64
    assert cached.avlab.attrs["sealed"] and cached.avlab.attrs["versions"]["zarr"]
    assert cached.avlab.status.tolist() == ["done"] * 4
    assert list(cached.avlab.split("val").video.values) == [v for v in cached.video.values if "val" in v]
    table = cached.avlab.videos
    assert set(table["split"]) == {"train", "val"} and (table["num_frames"] == 4).all()
    html = cached.avlab._repr_html_()
    assert "debug" in html and "done 4" in html
    assert cached.visual_c3.dtype == np.float16 and cached.visual_c3.encoding["shards"][2] == 4


def test_rerun_is_a_no_op_and_a_recipe_mismatch_names_the_fields(cached, synth_root) -> None:  # type: ignore[no-untyped-def]
    store = cached.encoding["source"]

    def worker_files() -> dict[Path, int]:  # features and commits: what a recomputation rewrites
        paths = [*Path(store).glob("visual_*/c/**/*"), *Path(store).glob("_avlab/commits/*")]
        return {p: p.stat().st_mtime_ns for p in paths if p.is_file()}

    before = worker_files()
    assert len(before) > 4
    again = cache_features(synth_root, store, **CACHE_OPTIONS)
    assert again.avlab.fingerprint == cached.avlab.fingerprint
    assert worker_files() == before
    with pytest.raises(RecipeMismatchError, match=r"(?s)frames\.size: stored \[32, 32\], requested \[16, 16\]"):
        cache_features(synth_root, store, **{**CACHE_OPTIONS, "size": 16})


def test_a_corrupt_video_is_recorded_and_the_rest_are_cached(synth_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "synth"
    shutil.copytree(synth_root, root)
    victim = sorted((root / "train" / "videos").glob("*.mp4"))[1]
    victim.write_bytes(victim.read_bytes()[:200])  # truncated mid-header
    with pytest.warns(AvlabWarning, match=r"1 of 4 videos failed"):
        ds = cache_features(root, tmp_path / "store.zarr", **CACHE_OPTIONS)
    failures = ds.avlab.failures
    assert list(failures) == [victim.stem] and victim.name in failures[victim.stem]
    assert sorted(ds.avlab.status.values) == ["done", "done", "done", "failed"]
    position = list(ds.video.values).index(victim.stem)
    assert np.isnan(ds.visual_c3[position].values).all()
    assert np.isfinite(ds.visual_c3[(position + 1) % 4, 0, :4].values).all()


def test_a_changed_video_is_extracted_again(synth_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "synth"
    shutil.copytree(synth_root, root)
    store = tmp_path / "store.zarr"
    cache_features(root, store, **CACHE_OPTIONS)
    videos = sorted((root / "train" / "videos").glob("*.mp4"))
    shutil.copy(videos[0], videos[2])  # video 2's file now has video 0's pictures
    ds = cache_features(root, store, **CACHE_OPTIONS)
    np.testing.assert_array_equal(ds.visual_c3[2, 0].values, ds.visual_c3[0, 0].values)


def test_fsspec_urls_give_the_same_values(cached, synth_root: Path, tmp_path: Path) -> None:
    local = cache_features(synth_root, f"file://{tmp_path}/url.zarr", **CACHE_OPTIONS)
    memory = cache_features(synth_root, "memory://avlab-test/url.zarr", **CACHE_OPTIONS)
    for ds in (local, memory):
        np.testing.assert_array_equal(ds.visual_c5.values, cached.visual_c5.values)
        assert ds.avlab.fingerprint == cached.avlab.fingerprint
    assert open_store("memory://avlab-test/url.zarr").avlab.status.tolist() == ["done"] * 4


def test_default_store_path_names_dataset_backbone_and_fingerprint(synth_root: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ds = cache_features(synth_root, **{**CACHE_OPTIONS, "audio": ()})
    path = Path(ds.encoding["source"])
    assert path.parent.name == "featurestore"
    assert path.name == f"synthav-debug-{ds.avlab.fingerprint[:8]}.zarr"
