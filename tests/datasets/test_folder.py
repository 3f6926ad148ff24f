from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from avlab.datasets.folder import load_folder, video_id_from_path
from avlab.datasets.manifest import Manifest, VideoRecord
from avlab.errors import AvlabWarning, DatasetError, MediaError, MissingAudioError
from avlab.testing.layouts import write_video_folder
from avlab.testing.media import frame_index_of


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_video_folder(tmp_path_factory.mktemp("videos"))


def test_every_container_is_found_in_path_order(folder):
    videos = load_folder(folder)
    assert videos.ids == ["a", "b", "sub/c", "sub/d", "sub/deeper/e"]
    assert [r.video_path.name for r in videos] == ["a.mp4", "b.mkv", "c.webm", "d.mov", "e.avi"]
    assert all(r.split is None and r.category is None for r in videos)
    assert all(r.has_audio and r.audio_path == r.video_path for r in videos)
    assert videos["sub/c"].extra["info"].audio[0].codec == "opus"


@pytest.mark.parametrize("video_id", ["a", "b", "sub/c", "sub/d", "sub/deeper/e"])
def test_frames_and_audio_of_each_container(folder, video_id):
    clip = load_folder(folder)[video_id]
    frames, times = clip.load_frames()
    assert frames.shape == (4, 32, 32, 3)
    assert frame_index_of(frames).tolist() == [0, 1, 2, 3]
    if video_id != "sub/deeper/e":  # the fixture's avi gets timestamps 0, 0.5, 0.75, 1 from write_video
        np.testing.assert_allclose(times, [0.0, 0.25, 0.5, 0.75], atol=1e-3)
    audio = clip.load_audio(16000)
    # mkv and avi declare no audio duration, so the codec's padding of its last frames remains.
    slack = 1536 if video_id in ("b", "sub/deeper/e") else 160
    assert 16000 - 160 <= len(audio) <= 16000 + slack and np.abs(audio).max() > 0.1


def test_silent_file_has_no_audio(tmp_path):
    root = write_video_folder(tmp_path, files=("loud.mp4", "quiet.mp4"), silent=("quiet.mp4",))
    videos = load_folder(root)
    assert [r.has_audio for r in videos] == [True, False]
    with pytest.raises(MissingAudioError, match="quiet"):
        videos["quiet"].load_audio(16000)
    assert load_folder(root, probe=False)["quiet"].has_audio


def test_unreadable_file_is_kept_reported_and_does_not_hide_the_others(tmp_path):
    root = write_video_folder(tmp_path, files=("good.mp4",), broken=("bad.mkv", "nested/empty.mp4"))
    (root / "nested" / "empty.mp4").write_bytes(b"")
    with pytest.warns(AvlabWarning, match="2 of 3 video files cannot be read") as caught:
        videos = load_folder(root)
    message = str(caught[0].message)
    assert "bad.mkv: not a readable media file" in message
    assert "empty.mp4: empty file (0 bytes)" in message
    assert videos.ids == ["bad", "good", "nested/empty"]
    assert videos["nested/empty"].extra["error"] == "empty file (0 bytes)"
    assert not videos["bad"].has_audio
    assert videos["good"].load_audio(16000).shape == (16000,)
    with pytest.raises(MediaError, match="bad.mkv"):
        videos["bad"].load_frames()
    with pytest.raises(MediaError, match="is unreadable"):
        videos["bad"].load_audio(16000)


def test_hidden_and_non_video_files_are_skipped_and_extensions_any_case(tmp_path):
    root = write_video_folder(tmp_path, files=("A.MP4", "b.m4v"), broken=("._A.MP4", ".cache/x.mp4"))
    (root / "notes.txt").write_text("not a video")
    videos = load_folder(root)
    assert videos.ids == ["A", "b"]


def test_ids_are_sanitised(tmp_path):
    root = write_video_folder(tmp_path, files=("My Clips/take 1 (live).mp4", "über/ok-1.2.mp4"))
    assert load_folder(root).ids == ["My_Clips/take_1_live_", "über/ok-1.2"]
    assert video_id_from_path(Path("a/..b/c d.webm")) == "a/..b/c_d"
    assert video_id_from_path("x/../y.mp4") == "x/_/y"


@pytest.mark.parametrize("names", [("clip.mp4", "clip.mkv"), ("a b.mp4", "a_b.mp4")])
def test_duplicate_ids_name_both_files(tmp_path, names):
    root = write_video_folder(tmp_path, files=names)
    with pytest.raises(DatasetError, match="both give video id") as caught:
        load_folder(root)
    assert names[0] in str(caught.value) and names[1] in str(caught.value)


def test_empty_missing_or_not_a_folder(tmp_path):
    with pytest.raises(DatasetError, match="no video files"):
        load_folder(tmp_path)
    with pytest.raises(DatasetError, match="folder not found"):
        load_folder(tmp_path / "nowhere")
    (tmp_path / "file.mp4").write_bytes(b"x")
    with pytest.raises(DatasetError, match="not a folder"):
        load_folder(tmp_path / "file.mp4")


def test_link_cycles_do_not_loop(tmp_path):
    root = write_video_folder(tmp_path, files=("sub/a.mp4",))
    os.symlink(root, root / "sub" / "loop")
    assert load_folder(root).ids == ["sub/a"]


def test_table_view(folder):
    table = load_folder(folder).to_frame()
    assert table.index.tolist() == ["a", "b", "sub/c", "sub/d", "sub/deeper/e"]
    assert table.loc["sub/d", "video"].endswith("sub/d.mov")
    assert table["audio"].notna().all() and table["num_frames"].isna().all()


def test_manifest_rejects_duplicate_ids():
    records = [VideoRecord("x", video_path=Path("a.mp4")), VideoRecord("x", video_path=Path("b.mp4"))]
    with pytest.raises(DatasetError, match="duplicate video id 'x'"):
        Manifest(records, name="toy")
