from __future__ import annotations

import numpy as np
import pytest

from avlab.datasets.ave import AveEvent, load_ave, read_ave_annotations
from avlab.errors import AvlabWarning, DatasetError
from avlab.testing.layouts import write_ave


@pytest.fixture(scope="module")
def ave_root(tmp_path_factory):
    return write_ave(tmp_path_factory.mktemp("ave"), num_videos=4)


def test_records_splits_categories_and_events(ave_root):
    ave = load_ave(ave_root)
    assert ave.name == "ave"
    assert ave.ids == ["ave000", "ave001", "ave002", "ave003"]
    assert [r.split for r in ave] == ["train", "val", "test", "train"]
    assert [r.category for r in ave] == ["Church bell", "Bark", "Male speech, man speaking", "Church bell"]
    assert ave.categories == ["Bark", "Church bell", "Male speech, man speaking"]
    clip = ave["ave003"]
    assert clip.extra["events"] == (AveEvent("Church bell", "ave003", "good", 3.0, 8.0),)
    assert clip.extra["quality"] == "good"
    assert clip.video_path == ave_root / "AVE" / "ave003.mp4" and clip.audio_path == clip.video_path


def test_frames_and_audio(ave_root):
    clip = load_ave(ave_root)["ave002"]
    frames, times = clip.load_frames()
    assert frames.shape == (4, 32, 32, 3)
    np.testing.assert_allclose(times, [0.0, 0.25, 0.5, 0.75])
    assert clip.load_audio(8000).shape == (8000,)


def test_missing_videos_warn_with_their_names(tmp_path):
    root = write_ave(tmp_path, num_videos=5, missing=2)
    with pytest.warns(AvlabWarning, match=r"2 of 5 AVE videos are missing") as caught:
        ave = load_ave(root)
    message = str(caught[0].message)
    assert "ave003.mp4" in message and "ave004.mp4" in message
    assert ave.ids == ["ave000", "ave001", "ave002"]


def test_missing_videos_can_be_an_error(tmp_path):
    root = write_ave(tmp_path, num_videos=3, missing=1)
    with pytest.raises(DatasetError, match=r"ave002\.mp4: video listed in Annotations.txt not found"):
        load_ave(root, on_missing="error")
    with pytest.raises(ValueError, match="on_missing"):
        load_ave(root, on_missing="skip")  # type: ignore[arg-type]


def test_several_events_of_one_video_make_one_record(tmp_path):
    root = write_ave(tmp_path, num_videos=2)
    with open(root / "Annotations.txt", "a") as file:
        file.write("Bark&ave001&bad&7&9\n")
    clip = load_ave(root)["ave001"]
    assert [(e.start, e.end, e.quality) for e in clip.extra["events"]] == [(1.0, 6.0, "good"), (7.0, 9.0, "bad")]
    assert len(load_ave(root)) == 2


def test_without_split_files_splits_are_none(tmp_path):
    ave = load_ave(write_ave(tmp_path, num_videos=3, split_files=False))
    assert [r.split for r in ave] == [None, None, None] and ave.splits == []


def test_split_file_problems_are_errors(tmp_path):
    root = write_ave(tmp_path, num_videos=3)
    (root / "testSet.txt").write_text("Bark&zzz&good&0&1\n")
    with pytest.raises(DatasetError, match=r"testSet.txt: video 'zzz' is not in Annotations.txt"):
        load_ave(root)
    (root / "testSet.txt").write_text("Church bell&ave000&good&0&5\n")
    with pytest.raises(DatasetError, match=r"testSet.txt: video 'ave000' is also in the train split"):
        load_ave(root)


def test_malformed_rows_name_file_and_line(tmp_path):
    root = write_ave(tmp_path, num_videos=2)
    annotations = root / "Annotations.txt"
    annotations.write_text(annotations.read_text() + "Bark&ave009&good&3\n")
    with pytest.raises(DatasetError, match=r"Annotations.txt: line 4: expected 5"):
        load_ave(root)
    annotations.write_text("Bark&ave000&good&three&5\n")
    with pytest.raises(DatasetError, match="line 1: start and end must be seconds"):
        load_ave(root)
    annotations.write_text("Bark&ave000&good&6&5\n")
    with pytest.raises(DatasetError, match="end before start"):
        load_ave(root)


def test_header_is_optional_and_bom_tolerated(tmp_path):
    path = tmp_path / "Annotations.txt"
    path.write_text("\ufeffCategory&VideoID&Quality&StartTime&EndTime\n\nBark&x1&good&0&10\n", encoding="utf-8")
    assert read_ave_annotations(path) == [AveEvent("Bark", "x1", "good", 0.0, 10.0)]
    path.write_text("Bark&x1&good&0&10\n")
    assert read_ave_annotations(path) == [AveEvent("Bark", "x1", "good", 0.0, 10.0)]


def test_missing_annotations_or_video_folder(tmp_path):
    with pytest.raises(DatasetError, match="Annotations.txt: AVE annotation file not found"):
        load_ave(tmp_path)
    (tmp_path / "Annotations.txt").write_text("Bark&x1&good&0&10\n")
    with pytest.raises(DatasetError, match="AVE video folder not found"):
        load_ave(tmp_path)


def test_table_view(ave_root):
    table = load_ave(ave_root).to_frame()
    assert table.index.tolist() == ["ave000", "ave001", "ave002", "ave003"]
    assert table.loc["ave001", "category"] == "Bark" and table.loc["ave001", "split"] == "val"
    assert table.loc["ave001", "video"].endswith("AVE/ave001.mp4")
