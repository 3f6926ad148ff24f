from __future__ import annotations

import numpy as np
import pytest

from avlab.datasets.music import duet_instruments, load_music
from avlab.errors import AvlabWarning, DatasetError, MediaError, MissingAudioError
from avlab.testing.layouts import write_music, write_video_folder
from avlab.testing.media import frame_index_of


@pytest.fixture(scope="module")
def music_root(tmp_path_factory):
    return write_music(tmp_path_factory.mktemp("music"))


def test_solo_and_duet_records(music_root):
    music = load_music(music_root)
    assert music.name == "music"
    assert music.ids == ["flute/flute_0", "violin/violin_0", "violin/violin_1",
                         "acoustic_guitar+violin/duet_0"]
    assert [r.extra["kind"] for r in music] == ["solo", "solo", "solo", "duet"]
    assert [r.category for r in music] == ["flute", "violin", "violin", "acoustic_guitar+violin"]
    duet = music["acoustic_guitar+violin/duet_0"]
    assert duet.extra["instruments"] == ("acoustic_guitar", "violin")
    assert duet.video_path == music_root / "duet" / "acoustic_guitar violin" / "duet_0.mp4"
    assert music.categories == ["acoustic_guitar", "flute", "violin"]
    assert music.splits == [] and all(r.split is None for r in music)


def test_frames_and_audio_come_from_the_container(music_root):
    clip = load_music(music_root)["violin/violin_1"]
    assert clip.audio_path == clip.video_path and clip.has_audio
    assert clip.extra["info"].audio[0].sample_rate == 16000
    frames, times = clip.load_frames()
    assert frames.shape == (4, 32, 32, 3)
    np.testing.assert_allclose(times, [0.0, 0.25, 0.5, 0.75])
    assert frame_index_of(frames).tolist() == [0, 1, 2, 3]
    audio = clip.load_audio(16000)
    assert audio.shape == (16000,) and np.abs(audio).max() > 0.1


def test_flat_layout_is_all_solo(tmp_path):
    root = write_music(tmp_path, solo={"cello": 1, "erhu": 2}, flat=True)
    music = load_music(root)
    assert music.ids == ["cello/cello_0", "erhu/erhu_0", "erhu/erhu_1"]
    assert {r.extra["kind"] for r in music} == {"solo"}
    assert music["erhu/erhu_1"].extra["instruments"] == ("erhu",)


def test_duet_folder_names_with_plus_and_webm(tmp_path):
    root = write_music(tmp_path, solo={}, duet={"flute+trumpet": 1}, extension=".webm")
    clip = load_music(root)["flute+trumpet/duet_0"]
    assert clip.extra["instruments"] == ("flute", "trumpet") and clip.category == "flute+trumpet"
    assert clip.load_audio(16000).shape == (16000,)


def test_duet_instruments_split_on_separators():
    assert duet_instruments("acoustic_guitar violin") == ("acoustic_guitar", "violin")
    assert duet_instruments(" cello & clarinet ") == ("cello", "clarinet")


def test_silent_video_has_no_audio(tmp_path):
    root = write_music(tmp_path, solo={"violin": 1}, duet={}, sample_rate=None)
    clip = load_music(root)["violin/violin_0"]
    assert not clip.has_audio
    with pytest.raises(MissingAudioError, match="violin_0"):
        clip.load_audio(16000)
    # Without probing, audio is assumed.
    assert load_music(root, probe=False)["violin/violin_0"].has_audio


def test_unreadable_video_is_kept_and_reported(tmp_path):
    root = write_music(tmp_path, solo={"violin": 1}, duet={})
    write_video_folder(root / "solo" / "violin", files=(), broken=("broken.mp4",))
    with pytest.warns(AvlabWarning, match=r"broken\.mp4: not a readable media file"):
        music = load_music(root)
    assert music.ids == ["violin/broken", "violin/violin_0"]
    assert "not a readable media file" in music["violin/broken"].extra["error"]
    assert music["violin/violin_0"].load_audio(16000).shape == (16000,)
    with pytest.raises(MediaError, match="is unreadable") as caught:
        music["violin/broken"].load_audio(16000)
    assert not isinstance(caught.value, MissingAudioError)


def test_duet_folder_with_one_instrument_is_an_error(tmp_path):
    root = write_music(tmp_path, solo={}, duet={"violin": 1})
    with pytest.raises(DatasetError, match="duet folder must name its instruments") as caught:
        load_music(root)
    assert caught.value.path.endswith("duet/violin")


def test_same_id_twice_names_both_files(tmp_path):
    root = write_video_folder(tmp_path, files=("violin/x.mp4", "violin/x.mkv"))
    with pytest.raises(DatasetError, match=r"x\.mkv and .*x\.mp4|x\.mp4 and .*x\.mkv"):
        load_music(root)


def test_empty_or_missing_folder_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        load_music(tmp_path / "nowhere")
    (tmp_path / "solo" / "violin").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no videos found"):
        load_music(tmp_path)


def test_table_view(music_root):
    table = load_music(music_root).to_frame()
    assert table.index.tolist()[-1] == "acoustic_guitar+violin/duet_0"
    assert table["category"].tolist() == ["flute", "violin", "violin", "acoustic_guitar+violin"]
    assert table["audio"].notna().all() and not table["has_masks"].any()
