from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from avlab.datasets.youtube_vis import YtvisMasks, decode_segmentation, load_youtube_vis
from avlab.errors import DatasetError, MediaError, MissingAudioError
from avlab.testing.ytvis import uncompressed_rle, write_ytvis_fixture


@pytest.fixture(scope="module")
def jpeg_fixture(tmp_path_factory):
    return write_ytvis_fixture(tmp_path_factory.mktemp("ytvis_jpeg"), audio=True)


@pytest.fixture(scope="module")
def video_fixture(tmp_path_factory):
    return write_ytvis_fixture(tmp_path_factory.mktemp("ytvis_video"), frames="video", audio=True)


def _edit_json(fixture, tmp_path: Path, edit) -> Path:
    document = json.loads(fixture.annotations.read_text())
    edit(document)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(document))
    return path


def test_every_segmentation_form_decodes_to_the_drawn_mask(jpeg_fixture):
    manifest = load_youtube_vis(jpeg_fixture.annotations, jpeg_fixture.frames_root)
    forms = {f for per_video in jpeg_fixture.forms.values() for track in per_video for f in track}
    assert forms == {"rle", "uncompressed", "polygon", None}
    for video, drawn in jpeg_fixture.masks.items():
        masks = manifest[video].load_masks()
        assert masks.kind == "instance"
        assert masks.data.dtype == np.uint8 and masks.data.shape == drawn.shape
        np.testing.assert_array_equal(masks.data, drawn)
        np.testing.assert_array_equal(masks.frame_index, np.arange(drawn.shape[1]))
    masks = manifest["vid_a"].load_masks()
    assert masks.instance_ids.tolist() == [1, 2]
    assert masks.category_ids.tolist() == [1, 2]
    # A null segmentation is an empty mask, whatever was drawn elsewhere.
    assert masks.data[0, 3].sum() == 0 and masks.data[0, 2].sum() > 0


@pytest.mark.parametrize("form", ["rle", "rle-bytes", "uncompressed", "polygon"])
def test_decode_segmentation_forms(form):
    from pycocotools import mask as coco

    mask = np.zeros((10, 12), np.uint8)
    mask[2:6, 3:9] = 1
    mask[6:9, 3:5] = 1  # an L shape
    if form.startswith("rle"):
        counts = coco.encode(np.asfortranarray(mask))["counts"]
        segmentation = {"size": [10, 12], "counts": counts if form == "rle-bytes" else counts.decode()}
    elif form == "uncompressed":
        segmentation = uncompressed_rle(mask)
    else:
        segmentation = [[3, 2, 9, 2, 9, 6, 5, 6, 5, 9, 3, 9]]
    np.testing.assert_array_equal(decode_segmentation(segmentation, 10, 12), mask)


def test_uncompressed_rle_starting_with_foreground():
    mask = np.ones((3, 3), np.uint8)
    mask[2, 2] = 0
    rle = uncompressed_rle(mask)
    assert rle["counts"][0] == 0
    np.testing.assert_array_equal(decode_segmentation(rle, 3, 3), mask)


@pytest.mark.parametrize(
    ("segmentation", "message"),
    [
        ({"size": [5, 5], "counts": [25]}, "differs from"),
        ({"size": [10, 12], "counts": [3, 4]}, "do not add up"),
        ({"counts": "abc"}, "'size' and 'counts'"),
        ([[1, 2, 3]], "even number"),
        ("nonsense", "RLE dict, a list of polygons"),
    ],
)
def test_malformed_segmentation_is_a_dataset_error(segmentation, message):
    with pytest.raises(DatasetError, match=message):
        decode_segmentation(segmentation, 10, 12, path="x.json", where="annotation 1, frame 0")


def test_sounding_flags_are_read_when_present(jpeg_fixture):
    manifest = load_youtube_vis(jpeg_fixture.annotations, jpeg_fixture.frames_root)
    np.testing.assert_array_equal(manifest["vid_b"].load_masks().sounding, jpeg_fixture.sounding["vid_b"])
    assert manifest["vid_a"].load_masks().sounding is None


def test_partial_sounding_flags_are_an_error(jpeg_fixture, tmp_path):
    def edit(document):
        document["annotations"][0]["sounding"] = [True] * 4

    manifest = load_youtube_vis(_edit_json(jpeg_fixture, tmp_path, edit), jpeg_fixture.frames_root)
    with pytest.raises(DatasetError, match="'sounding' must be given for every annotation"):
        manifest["vid_a"].load_masks()


def test_frames_from_jpeg_folder(jpeg_fixture):
    manifest = load_youtube_vis(jpeg_fixture.annotations, jpeg_fixture.frames_root, split="val")
    record = manifest["vid_a"]
    assert record.split == "val" and record.video_path is None
    assert [p.name for p in record.frame_paths] == ["00000.jpg", "00005.jpg", "00010.jpg", "00015.jpg"]
    frames, times = record.load_frames()
    assert frames.shape == (4, 48, 64, 3)
    np.testing.assert_allclose(times, jpeg_fixture.frame_times)
    # The drawn red object is red in the decoded picture.
    inside = jpeg_fixture.masks["vid_a"][0, 0].astype(bool)
    assert np.abs(frames[0][inside].mean(axis=0) - [220, 40, 40]).max() < 25


def test_frames_from_video_file_sampled_at_frame_times(video_fixture):
    manifest = load_youtube_vis(video_fixture.annotations, video_fixture.frames_root)
    record = manifest["vid_b"]
    assert record.frame_paths is None and record.video_path.name == "vid_b.mp4"
    np.testing.assert_allclose(record.frame_times, [0.0, 1 / 6, 2 / 6, 3 / 6])
    frames, times = record.load_frames()
    assert frames.shape == (4, 48, 64, 3)
    np.testing.assert_allclose(times, video_fixture.frame_times)
    # Each decoded frame shows that frame's mask (the object moves 2 px per frame).
    for t in range(4):
        inside = video_fixture.masks["vid_b"][0, t].astype(bool)
        assert frames[t][inside].mean() > 3 * frames[t][~inside].mean()
    np.testing.assert_array_equal(record.load_masks().data, video_fixture.masks["vid_b"])


def test_frame_time_rules(jpeg_fixture, tmp_path):
    # The video entry's own fps comes first.
    def with_fps(document):
        document["videos"][0]["fps"] = 12.0

    manifest = load_youtube_vis(_edit_json(jpeg_fixture, tmp_path, with_fps), jpeg_fixture.frames_root, fps=2.0)
    np.testing.assert_allclose(manifest["vid_a"].frame_times, np.arange(4) / 12.0)
    # Then the fps argument; then frame numbers at 30 fps.
    np.testing.assert_allclose(manifest["vid_b"].frame_times, np.arange(4) / 2.0)
    manifest = load_youtube_vis(jpeg_fixture.annotations, jpeg_fixture.frames_root)
    np.testing.assert_allclose(manifest["vid_b"].frame_times, np.arange(4) * 5 / 30.0)


def test_frames_without_times(jpeg_fixture, video_fixture, tmp_path):
    def rename(document):
        document["videos"][0]["file_names"] = [f"vid_a/{n}.jpg" for n in "abcd"]

    source = jpeg_fixture.frames_root / "vid_a"
    target = tmp_path / "frames" / "vid_a"
    target.mkdir(parents=True)
    for old, new in zip(sorted(source.iterdir()), "abcd", strict=True):
        (target / f"{new}.jpg").write_bytes(old.read_bytes())
    (tmp_path / "frames" / "vid_b").symlink_to(jpeg_fixture.frames_root / "vid_b")
    manifest = load_youtube_vis(_edit_json(jpeg_fixture, tmp_path, rename), tmp_path / "frames")
    assert manifest["vid_a"].frame_times is None
    assert manifest["vid_a"].load_frames().times.tolist() == [0.0, 1.0, 2.0, 3.0]

    def rename_video(document):
        document["videos"][1]["file_names"] = [f"vid_b/{n}.jpg" for n in "abcd"]

    with pytest.raises(DatasetError, match="pass fps="):
        load_youtube_vis(_edit_json(video_fixture, tmp_path, rename_video), video_fixture.frames_root)
    manifest = load_youtube_vis(_edit_json(video_fixture, tmp_path, rename_video), video_fixture.frames_root, fps=6)
    assert manifest["vid_b"].load_frames().frames.shape[0] == 4


def test_audio_lookup(jpeg_fixture, video_fixture, tmp_path):
    # A file in audio_root.
    manifest = load_youtube_vis(jpeg_fixture.annotations, jpeg_fixture.frames_root, audio_root=jpeg_fixture.audio_root)
    record = manifest["vid_a"]
    assert record.audio_path == jpeg_fixture.audio_root / "vid_a.wav"
    audio = record.load_audio(16000)
    assert audio.shape == (round(4 * 5 / 30 * 16000),)
    # Image frames and no audio_root: no audio.
    assert not load_youtube_vis(jpeg_fixture.annotations, jpeg_fixture.frames_root)["vid_a"].has_audio
    # Frames from a container with a soundtrack: that soundtrack, unless audio_root has a file.
    manifest = load_youtube_vis(video_fixture.annotations, video_fixture.frames_root, audio_root=tmp_path)
    assert manifest["vid_a"].audio_path == video_fixture.frames_root / "vid_a.mp4"
    assert manifest["vid_a"].load_audio(16000).shape[0] > 0
    (tmp_path / "vid_a.flac").write_bytes((jpeg_fixture.audio_root / "vid_a.wav").read_bytes())
    manifest = load_youtube_vis(video_fixture.annotations, video_fixture.frames_root, audio_root=tmp_path)
    assert manifest["vid_a"].audio_path == tmp_path / "vid_a.flac"


def test_container_without_soundtrack_has_no_audio(tmp_path):
    fixture = write_ytvis_fixture(tmp_path, frames="video", audio=False)
    record = load_youtube_vis(fixture.annotations, fixture.frames_root)["vid_a"]
    assert record.audio_path is None and not record.has_audio
    assert "vid_a.mp4 has no soundtrack" in record.extra["audio_note"]
    with pytest.raises(MissingAudioError, match="has no soundtrack"):
        record.load_audio(16000)


def test_corrupt_video_file_is_kept_with_its_error(tmp_path):
    fixture = write_ytvis_fixture(tmp_path, frames="video", audio=True)
    (fixture.frames_root / "vid_a.mp4").write_bytes(b"not a video at all" * 10)
    manifest = load_youtube_vis(fixture.annotations, fixture.frames_root)
    assert manifest["vid_a"].extra["error"] and "error" not in manifest["vid_b"].extra
    with pytest.raises(MediaError, match="unreadable"):
        manifest["vid_a"].load_audio(16000)
    assert manifest["vid_b"].has_audio


def test_categories_and_extra(jpeg_fixture):
    manifest = load_youtube_vis(jpeg_fixture.annotations, jpeg_fixture.frames_root)
    assert manifest.name == "youtube-vis"
    assert manifest.categories == ["background", "drum", "guitar"]
    assert manifest.ids == ["vid_a", "vid_b"]
    record = manifest["vid_b"]
    assert record.extra["ytvis_id"] == jpeg_fixture.video_ids["vid_b"] == 2
    assert (record.extra["width"], record.extra["height"]) == (64, 48)
    assert record.extra["instance_ids"] == (3,) and record.extra["category_ids"] == (1,)


def test_test_split_without_annotations(tmp_path):
    fixture = write_ytvis_fixture(tmp_path / "null", annotated=False)
    manifest = load_youtube_vis(fixture.annotations, fixture.frames_root, split="test")
    assert all(r.masks is None for r in manifest)
    with pytest.raises(DatasetError, match="has no masks"):
        manifest["vid_a"].load_masks()
    document = json.loads(fixture.annotations.read_text())
    del document["annotations"]
    path = tmp_path / "no_key.json"
    path.write_text(json.dumps(document))
    assert all(r.masks is None for r in load_youtube_vis(path, fixture.frames_root))


def test_video_without_annotations_has_empty_instance_masks(jpeg_fixture, tmp_path):
    def drop_vid_b(document):
        document["annotations"] = [a for a in document["annotations"] if a["video_id"] != 2]

    masks = load_youtube_vis(_edit_json(jpeg_fixture, tmp_path, drop_vid_b), jpeg_fixture.frames_root)["vid_b"].load_masks()
    assert masks.data.shape == (0, 4, 48, 64) and masks.instance_ids.shape == (0,)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.pop("videos"), "'videos'"),
        (lambda d: d.pop("categories"), "'categories'"),
        (lambda d: d["videos"][1].pop("file_names"), "videos[1] has no 'file_names'"),
        (lambda d: d["videos"][0].pop("height"), "videos[0] has no 'height'"),
        (lambda d: d["videos"][0].pop("id"), "videos[0] has no 'id'"),
        (lambda d: d["annotations"][2].pop("video_id"), "annotations[2] has no 'video_id'"),
        (lambda d: d["annotations"][0].pop("segmentations"), "annotations[0] has no 'segmentations'"),
        (lambda d: d["annotations"][0].pop("category_id"), "annotations[0] has no 'category_id'"),
        (lambda d: d["categories"][1].pop("name"), "categories[1] has no 'name'"),
        (lambda d: d["annotations"][0].update(video_id=99), "video_id 99"),
        (lambda d: d["videos"][0].update(length=7), "'length' is 7"),
    ],
)
def test_missing_fields_are_clear_dataset_errors(jpeg_fixture, tmp_path, edit, field):
    path = _edit_json(jpeg_fixture, tmp_path, edit)
    with pytest.raises(DatasetError) as caught:
        load_youtube_vis(path, jpeg_fixture.frames_root)
    assert caught.value.path == str(path)
    assert field in str(caught.value)


def test_wrong_number_of_segmentations_is_an_error(jpeg_fixture, tmp_path):
    def truncate(document):
        document["annotations"][0]["segmentations"] = document["annotations"][0]["segmentations"][:2]

    manifest = load_youtube_vis(_edit_json(jpeg_fixture, tmp_path, truncate), jpeg_fixture.frames_root)
    with pytest.raises(DatasetError, match="list of 4 entries"):
        manifest["vid_a"].load_masks()


def test_unreadable_json_and_missing_frames(jpeg_fixture, tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        load_youtube_vis(tmp_path / "absent.json", jpeg_fixture.frames_root)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(DatasetError, match="cannot read annotation JSON"):
        load_youtube_vis(broken, jpeg_fixture.frames_root)
    with pytest.raises(DatasetError, match="neither a frame folder 'vid_a/' nor a video file"):
        load_youtube_vis(jpeg_fixture.annotations, tmp_path)


def test_masks_are_picklable_and_lazy(jpeg_fixture):
    record = load_youtube_vis(jpeg_fixture.annotations, jpeg_fixture.frames_root)["vid_a"]
    assert isinstance(record.masks, YtvisMasks)
    clone = pickle.loads(pickle.dumps(record.masks))
    np.testing.assert_array_equal(clone.load().data, jpeg_fixture.masks["vid_a"])
