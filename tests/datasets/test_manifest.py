from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image

from avlab.datasets.manifest import Manifest, VideoRecord
from avlab.datasets.masks import Masks, PngMasks, read_mask_png
from avlab.errors import DatasetError, MissingAudioError
from avlab.testing.media import frame_index_of, sine, test_pattern, write_test_video


@pytest.fixture()
def image_frames(tmp_path: Path) -> tuple[Path, ...]:
    paths = []
    for k, frame in enumerate(test_pattern(5, 16, 24)):
        path = tmp_path / f"{k}.png"
        Image.fromarray(frame).save(path)
        paths.append(path)
    return tuple(paths)


def test_record_needs_pictures() -> None:
    with pytest.raises(ValueError, match="video_path or frame_paths"):
        VideoRecord("x")


def test_frames_from_images_keep_their_times_and_resample_by_time(image_frames: tuple[Path, ...]) -> None:
    times = np.array([0.5, 1.5, 2.5, 3.5, 4.5])
    record = VideoRecord("v", frame_paths=image_frames, frame_times=times)
    frames, got = record.load_frames()
    assert frames.shape == (5, 16, 24, 3)
    np.testing.assert_array_equal(got, times)
    np.testing.assert_array_equal(frame_index_of(frames), np.arange(5))
    # At 2 fps from 0.5 s to the end of the last frame's second: the frame shown at each time.
    frames, got = record.load_frames(fps=2, size=8)
    assert frames.shape == (10, 8, 8, 3)
    np.testing.assert_allclose(got, 0.5 + np.arange(10) / 2)
    np.testing.assert_array_equal(frame_index_of(frames), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4])


def test_frames_from_a_video_at_the_dataset_times(tmp_path: Path) -> None:
    path = Path(write_test_video(tmp_path / "v.mp4", num_frames=12, fps=12))
    record = VideoRecord("v", video_path=path, frame_times=np.array([0.0, 0.25, 0.5]), audio_path=path)
    frames, times = record.load_frames()
    np.testing.assert_array_equal(frame_index_of(frames), [0, 3, 6])
    np.testing.assert_allclose(times, [0.0, 0.25, 0.5])


def test_audio_on_the_clip_clock(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    audio = np.zeros(8000, np.float32)
    audio[4000] = 1.0  # a click at 0.5 s into the file
    soundfile.write(path, audio, 8000, subtype="FLOAT")
    record = VideoRecord("v", video_path=tmp_path / "v.mp4", audio_path=path, audio_offset=0.25, duration=0.5)
    clip = record.load_audio(8000)
    assert clip.shape == (4000,)
    assert int(np.argmax(clip)) == 2000  # 0.5 s in the file is 0.25 s on the clip's clock


def test_missing_audio_names_the_video(tmp_path: Path) -> None:
    record = VideoRecord("quiet", video_path=tmp_path / "quiet.mp4")
    with pytest.raises(MissingAudioError, match="quiet.mp4"):
        record.load_audio(16000)
    with pytest.raises(DatasetError, match="no masks"):
        record.load_masks()
    with pytest.raises(DatasetError, match="no source audio"):
        record.load_sources(16000)


def test_sources_are_padded_to_the_longest(tmp_path: Path) -> None:
    soundfile.write(tmp_path / "a.wav", sine(0.5, 8000), 8000, subtype="FLOAT")
    soundfile.write(tmp_path / "b.wav", sine(0.25, 8000), 8000, subtype="FLOAT")
    record = VideoRecord("v", video_path=tmp_path / "v.mp4",
                         sources={"1": tmp_path / "a.wav", "2": tmp_path / "b.wav"})
    ids, audio = record.load_sources(8000)
    assert ids == ["1", "2"] and audio.shape == (2, 4000)
    assert not audio[1, 2000:].any() and audio[1, :2000].any()


def test_png_masks_binary_palette_and_colour(tmp_path: Path) -> None:
    grey = np.zeros((4, 6), np.uint8)
    grey[1:3, 2:5] = 255
    Image.fromarray(grey).save(tmp_path / "grey.png")
    indexed = Image.fromarray((grey > 0).astype(np.uint8) * 3, mode="L").convert("P")
    indexed.save(tmp_path / "palette.png")
    palette = np.array([[0, 0, 0], [128, 0, 0], [0, 128, 0]], np.uint8)
    colour = palette[np.array([[0, 1, 1, 2, 2, 0]] * 4)]
    Image.fromarray(colour).save(tmp_path / "colour.png")
    np.testing.assert_array_equal(read_mask_png(tmp_path / "grey.png"), grey > 0)
    np.testing.assert_array_equal(read_mask_png(tmp_path / "palette.png"), grey > 0)
    np.testing.assert_array_equal(read_mask_png(tmp_path / "colour.png", palette=palette)[0], [0, 1, 1, 2, 2, 0])
    with pytest.raises(DatasetError, match=r"colour .* is not in the class palette"):
        read_mask_png(tmp_path / "colour.png", palette=palette[:2])
    masks = PngMasks([tmp_path / "grey.png", tmp_path / "palette.png"], [0, 4]).load()
    assert masks.kind == "binary" and masks.data.shape == (2, 4, 6) and masks.frame_index.tolist() == [0, 4]
    with pytest.raises(DatasetError, match="missing.png"):
        PngMasks([tmp_path / "missing.png"], [0]).load()


def test_instance_union_respects_sounding_flags() -> None:
    data = np.zeros((2, 3, 4, 4), np.uint8)
    data[0, :, 0, 0] = 1
    data[1, :, 3, 3] = 1
    sounding = np.array([[True, False, True], [False, False, True]])
    masks = Masks("instance", data, np.arange(3), np.array([1, 2]), np.array([5, 6]), sounding)
    assert masks.union().sum(axis=(1, 2)).tolist() == [2, 2, 2]
    assert masks.union(sounding_only=True).sum(axis=(1, 2)).tolist() == [1, 0, 2]
    with pytest.raises(ValueError):
        Masks("instance", data[0], np.arange(3))


def test_manifest_indexing_splits_and_table(tmp_path: Path) -> None:
    records = [VideoRecord(f"v{i}", split="train" if i < 3 else "test", video_path=tmp_path / f"v{i}.mp4",
                           category="dog" if i % 2 else "cat") for i in range(5)]
    manifest = Manifest(records, name="toy", root=tmp_path, categories=["cat", "dog"])
    assert len(manifest) == 5 and manifest[1].video_id == "v1" and manifest["v4"].split == "test"
    assert manifest.splits == ["train", "test"] and len(manifest.split("test")) == 2
    assert isinstance(manifest[1:3], Manifest) and manifest[1:3].ids == ["v1", "v2"]
    assert "v2" in manifest and "v9" not in manifest
    assert manifest.filter(lambda r: r.category == "dog").ids == ["v1", "v3"]
    table = manifest.to_frame()
    assert list(table.index) == manifest.ids and table.loc["v3", "category"] == "dog"
    assert "v0" in manifest._repr_html_() and "5 videos" in repr(manifest)
    with pytest.raises(KeyError, match="v9"):
        manifest["v9"]


def test_duplicate_ids_are_an_error(tmp_path: Path) -> None:
    records = [VideoRecord("same", video_path=tmp_path / "a.mp4"), VideoRecord("same", video_path=tmp_path / "b.mp4")]
    with pytest.raises(DatasetError, match="duplicate video id 'same'"):
        Manifest(records, name="toy", root=tmp_path)
