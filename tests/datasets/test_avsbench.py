from __future__ import annotations

import operator
import pickle
import shutil

import numpy as np
import pytest
from PIL import Image

from avlab.datasets.avsbench import avsbench_palette, load_avsbench, load_avsbench_log_mel
from avlab.errors import AvlabWarning, DatasetError, MediaError, MissingAudioError
from avlab.testing.layouts import (
    avss_class,
    fixture_frame,
    fixture_mask,
    write_avsbench_ms3,
    write_avsbench_s4,
    write_avss,
)


@pytest.fixture(scope="module")
def s4_root(tmp_path_factory):
    return write_avsbench_s4(tmp_path_factory.mktemp("s4"), num_videos=4)


@pytest.fixture(scope="module")
def ms3_root(tmp_path_factory):
    return write_avsbench_ms3(tmp_path_factory.mktemp("ms3"), num_videos=3)


@pytest.fixture(scope="module")
def avss_root(tmp_path_factory):
    return write_avss(tmp_path_factory.mktemp("avss"), num_videos=6)


def _dominant_hz(audio: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio))
    return float(np.argmax(spectrum) * sample_rate / len(audio))


# ---- S4 ----------------------------------------------------------------------------------


def test_s4_records_ids_splits_categories(s4_root):
    s4 = load_avsbench(s4_root)
    assert s4.name == "avsbench-s4"
    assert s4.ids == ["s4vid-0", "s4vid-1", "s4vid-2", "s4vid-3"]
    assert [r.split for r in s4] == ["train", "val", "test", "train"]
    assert [r.category for r in s4] == ["dog_barking", "playing_violin", "dog_barking", "playing_violin"]
    assert s4.categories == ["dog_barking", "playing_violin"]
    assert s4["s4vid-1"].extra["start"] == "1"


def test_s4_split_argument_keeps_one_split(s4_root):
    train = load_avsbench(s4_root, split="train")
    assert train.ids == ["s4vid-0", "s4vid-3"]
    test = load_avsbench(s4_root, split="test")
    assert test.ids == ["s4vid-2"]
    assert test.categories == ["dog_barking", "playing_violin"]  # ids agree across splits


def test_s4_frames_are_the_stored_pngs_at_second_centres(s4_root):
    clip = load_avsbench(s4_root)["s4vid-1"]
    assert clip.num_frames == 5 and clip.duration == 5.0
    assert clip.frame_paths[0].name == "s4vid-1_1.png"
    frames, times = clip.load_frames()
    assert frames.shape == (5, 32, 32, 3)
    assert times.tolist() == [0.5, 1.5, 2.5, 3.5, 4.5]
    for i in range(5):
        np.testing.assert_array_equal(frames[i], fixture_frame(1, i))
    # Resampling to 2 fps shows each one-per-second frame twice.
    resampled = clip.load_frames(fps=2, size=16)
    assert resampled.frames.shape == (10, 16, 16, 3)
    np.testing.assert_allclose(resampled.times, np.arange(10) / 2 + 0.5)
    np.testing.assert_array_equal(resampled.frames[7], np.asarray(Image.fromarray(fixture_frame(1, 3)).resize((16, 16))))


def test_s4_audio_is_the_wav_for_the_whole_clip(s4_root):
    clip = load_avsbench(s4_root)["s4vid-2"]
    assert clip.audio_path.name == "s4vid-2.wav" and clip.audio_path.parent.name == "dog_barking"
    audio = clip.load_audio(16000)
    assert audio.shape == (80000,) and audio.dtype == np.float32
    assert _dominant_hz(audio, 16000) == pytest.approx(660.0, abs=1.0)
    assert clip.load_audio(8000).shape == (40000,)


def test_s4_train_masks_annotate_only_the_first_frame(s4_root):
    masks = load_avsbench(s4_root)["s4vid-0"].load_masks()
    assert masks.kind == "binary"
    assert masks.frame_index.tolist() == [0]
    assert masks.data.shape == (1, 32, 32) and masks.data.dtype == np.uint8
    np.testing.assert_array_equal(masks.data[0], fixture_mask(0))


def test_s4_eval_masks_are_binary_on_all_five_frames(s4_root):
    masks = load_avsbench(s4_root)["s4vid-1"].load_masks()
    assert masks.frame_index.tolist() == [0, 1, 2, 3, 4]
    assert set(np.unique(masks.data).tolist()) == {0, 1}
    for i in range(5):
        np.testing.assert_array_equal(masks.data[i], fixture_mask(i))


def test_s4_csv_without_header_is_read_by_position(tmp_path):
    root = write_avsbench_s4(tmp_path, num_videos=3, header=False)
    s4 = load_avsbench(root)
    assert s4.ids == ["s4vid-0", "s4vid-1", "s4vid-2"]
    assert [r.split for r in s4] == ["train", "val", "test"]
    assert s4["s4vid-1"].category == "playing_violin"


def test_s4_release_parent_folder_is_accepted(tmp_path):
    write_avsbench_s4(tmp_path / "Single-source", num_videos=2)
    assert load_avsbench(tmp_path).ids == ["s4vid-0", "s4vid-1"]


def test_s4_table_view(s4_root):
    table = load_avsbench(s4_root).to_frame()
    assert table.index.tolist() == ["s4vid-0", "s4vid-1", "s4vid-2", "s4vid-3"]
    assert table.loc["s4vid-1", "split"] == "val"
    assert table.loc["s4vid-1", "category"] == "playing_violin"
    assert table["num_frames"].tolist() == [5, 5, 5, 5]
    assert table["duration"].tolist() == [5.0] * 4
    assert table["has_masks"].all()
    assert table.loc["s4vid-0", "audio"].endswith("s4vid-0.wav")


def test_missing_csv_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="s4_meta_data.csv") as caught:
        load_avsbench(tmp_path)
    assert caught.value.path.endswith("s4_meta_data.csv")
    with pytest.raises(DatasetError, match="metadata.csv"):
        load_avsbench(tmp_path, subset="avss")


def test_missing_frame_and_mask_files_name_the_file(tmp_path):
    root = write_avsbench_s4(tmp_path, num_videos=2)
    clip = load_avsbench(root)["s4vid-1"]
    clip.frame_paths[2].unlink()
    with pytest.raises(MediaError, match="s4vid-1_3.png"):
        clip.load_frames()
    clip.masks.paths[4].unlink()
    with pytest.raises(DatasetError, match="s4vid-1_5.png"):
        clip.load_masks()


def test_bad_csv_rows_name_the_line(tmp_path):
    root = write_avsbench_s4(tmp_path, num_videos=2)
    table = root / "s4_meta_data.csv"
    lines = table.read_text().splitlines()
    table.write_text("\n".join([*lines, "s4vid-9,0,dog_barking,training"]) + "\n")
    with pytest.raises(DatasetError, match="line 4: split must be"):
        load_avsbench(root)
    table.write_text("\n".join([*lines, lines[1]]) + "\n")
    with pytest.raises(DatasetError, match="line 4: video 's4vid-0' repeats line 2"):
        load_avsbench(root)


def test_bad_arguments_are_value_errors(s4_root):
    with pytest.raises(ValueError, match="subset"):
        load_avsbench(s4_root, subset="s5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="split"):
        load_avsbench(s4_root, split="training")


# ---- MS3 ---------------------------------------------------------------------------------


def test_ms3_records(ms3_root):
    ms3 = load_avsbench(ms3_root, subset="ms3")
    assert ms3.name == "avsbench-ms3"
    assert ms3.ids == ["ms3vid-0", "ms3vid-1", "ms3vid-2"]
    assert ms3.splits == ["train", "val", "test"]
    assert ms3.categories is None and ms3[0].category is None
    clip = ms3["ms3vid-2"]
    assert clip.frame_paths[0] == ms3_root / "ms3_data/visual_frames/ms3vid-2/ms3vid-2.mp4_1.png"
    assert clip.audio_path == ms3_root / "ms3_data/audio_wav/test/ms3vid-2.wav"
    frames, times = clip.load_frames()
    np.testing.assert_array_equal(frames[4], fixture_frame(2, 4))
    assert times.tolist() == [0.5, 1.5, 2.5, 3.5, 4.5]
    assert clip.load_audio(16000).shape == (80000,)


def test_ms3_palette_masks_any_nonzero_index_is_foreground(ms3_root):
    clip = load_avsbench(ms3_root, subset="ms3")["ms3vid-0"]  # train: all five annotated
    with Image.open(clip.masks.paths[1]) as stored:
        assert stored.mode == "P" and np.asarray(stored).max() == 2
    masks = clip.load_masks()
    assert masks.kind == "binary" and masks.frame_index.tolist() == [0, 1, 2, 3, 4]
    assert set(np.unique(masks.data).tolist()) == {0, 1}
    for i in range(5):
        np.testing.assert_array_equal(masks.data[i], fixture_mask(i))


# ---- AVSS --------------------------------------------------------------------------------


def test_avss_records_labels_and_class_names(avss_root):
    avss = load_avsbench(avss_root, subset="avss")
    assert avss.name == "avsbench-avss"
    assert avss.ids == [f"avss-{v}" for v in range(6)]
    assert [r.extra["label"] for r in avss] == ["v1s", "v1m", "v2"] * 2
    assert [r.split for r in avss] == ["train"] * 3 + ["val"] * 3
    assert [r.num_frames for r in avss] == [5, 5, 10, 5, 5, 10]
    assert [r.duration for r in avss] == [5.0, 5.0, 10.0, 5.0, 5.0, 10.0]
    assert avss.categories is not None and len(avss.categories) == 71
    assert avss.categories[:2] == ["background", "class_01"]
    assert avss["avss-4"].extra["vid"] == "yt4"


def test_avss_frames_and_audio(avss_root):
    clip = load_avsbench(avss_root, subset="avss")["avss-2"]
    frames, times = clip.load_frames()
    assert frames.shape == (10, 32, 32, 3)
    np.testing.assert_allclose(times, np.arange(10) + 0.5)
    # JPEG: close to the stored colour, not equal.
    assert np.abs(frames[3].astype(int) - fixture_frame(2, 3)).max() <= 4
    audio = clip.load_audio(16000)
    assert audio.shape == (160000,)
    assert _dominant_hz(audio, 16000) == pytest.approx(660.0, abs=1.0)


def test_avss_colour_masks_decode_to_class_ids(avss_root):
    avss = load_avsbench(avss_root, subset="avss")
    masks = avss["avss-2"].load_masks()  # v2, train: all ten frames
    assert masks.kind == "semantic" and masks.frame_index.tolist() == list(range(10))
    for i in range(10):
        np.testing.assert_array_equal(masks.data[i], fixture_mask(i) * avss_class(2, i))
    v1s_train = avss["avss-0"].load_masks()
    assert v1s_train.frame_index.tolist() == [0]
    np.testing.assert_array_equal(v1s_train.data[0], fixture_mask(0) * avss_class(0, 0))
    v1s_val = avss["avss-3"].load_masks()
    assert v1s_val.frame_index.tolist() == [0, 1, 2, 3, 4]
    assert np.unique(v1s_val.data[4]).tolist() == [0, avss_class(3, 4)]


def test_avss_unknown_colour_is_a_clear_error(tmp_path):
    root = write_avss(tmp_path, num_videos=3)
    clip = load_avsbench(root, subset="avss")["avss-1"]
    image = np.zeros((32, 32, 3), np.uint8)
    image[5, 5] = (1, 2, 3)
    Image.fromarray(image).save(clip.masks.paths[2])
    with pytest.raises(DatasetError, match=r"2\.png: colour \[1, 2, 3\] is not in the class palette"):
        clip.load_masks()


def test_avss_palette_can_be_overridden(avss_root):
    reversed_palette = avsbench_palette()[::-1]
    clip = load_avsbench(avss_root, subset="avss", palette=reversed_palette)["avss-1"]
    masks = clip.load_masks()
    np.testing.assert_array_equal(masks.data[0], 70 - fixture_mask(0) * avss_class(1, 0))
    with pytest.raises(ValueError, match="label2idx.json names 71"):
        load_avsbench(avss_root, subset="avss", palette=avsbench_palette(10))
    with pytest.raises(ValueError, match=r"\(K, 3\)"):
        load_avsbench(avss_root, subset="avss", palette=np.zeros((71, 4), np.uint8))


def test_avss_without_label2idx_has_no_class_names(tmp_path):
    root = write_avss(tmp_path, num_videos=2, label2idx=False)
    avss = load_avsbench(root, subset="avss")
    assert avss.categories is None
    np.testing.assert_array_equal(avss["avss-1"].load_masks().data[1], fixture_mask(1) * avss_class(1, 1))


def test_avss_bad_metadata_is_a_clear_error(tmp_path):
    root = write_avss(tmp_path, num_videos=2)
    table = root / "metadata.csv"
    lines = table.read_text().splitlines()
    table.write_text("\n".join([*lines, "yt9,avss-9,0,0,,train,v3"]) + "\n")
    with pytest.raises(DatasetError, match="line 4: label must be v1s, v1m or v2"):
        load_avsbench(root, subset="avss")
    table.write_text("\n".join(lines) + "\n")
    (root / "label2idx.json").write_text('{"background": 0, "dog": 2}')
    with pytest.raises(DatasetError, match="label2idx.json: class ids must be"):
        load_avsbench(root, subset="avss")


def test_avss_missing_audio_is_reported_not_dropped(tmp_path):
    root = write_avss(tmp_path, num_videos=2)
    (root / "v1m/avss-1/audio.wav").unlink()
    with pytest.warns(AvlabWarning, match="avss-1/audio.wav"):
        avss = load_avsbench(root, subset="avss")
    assert avss.ids == ["avss-0", "avss-1"]
    assert not avss["avss-1"].has_audio and avss["avss-0"].has_audio


# ---- pickled log-mel features ------------------------------------------------------------


class _RaisesWhenUnpickled:
    def __reduce__(self):
        return (operator.truediv, (1, 0))


@pytest.fixture()
def no_unpickling(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("something was unpickled")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)


def test_without_opt_in_nothing_is_unpickled(tmp_path, no_unpickling):
    root = write_avsbench_s4(tmp_path, num_videos=2, wav=False, log_mel=True)
    s4 = load_avsbench(root)
    clip = s4["s4vid-1"]
    assert not clip.has_audio and clip.audio_path is None
    assert clip.extra["log_mel_path"] == root / "s4_data/audio_log_mel/val/playing_violin/s4vid-1.pkl"
    clip.load_frames()
    clip.load_masks()
    s4.to_frame()
    with pytest.raises(MissingAudioError, match="allow_pickle=True"):
        clip.load_audio(16000)
    with pytest.raises(DatasetError, match="refusing to unpickle.*allow_pickle=True") as caught:
        load_avsbench_log_mel(clip)
    assert caught.value.path.endswith("s4vid-1.pkl")


def test_a_hostile_pickle_is_only_opened_after_opt_in(tmp_path):
    root = write_avsbench_s4(tmp_path, num_videos=1, wav=False, log_mel=True)
    clip = load_avsbench(root)[0]
    clip.extra["log_mel_path"].write_bytes(pickle.dumps(_RaisesWhenUnpickled()))
    with pytest.raises(DatasetError, match="refusing to unpickle"):
        load_avsbench_log_mel(clip)
    with pytest.raises(DatasetError, match="cannot unpickle log-mel.*ZeroDivisionError"):
        load_avsbench_log_mel(clip, allow_pickle=True)


def test_log_mel_after_opt_in(tmp_path):
    root = write_avsbench_s4(tmp_path, num_videos=2, wav=False, log_mel=True)
    opted_in = load_avsbench(root, allow_pickle=True)
    features = load_avsbench_log_mel(opted_in["s4vid-1"])
    assert features.shape == (5, 1, 96, 64) and features.dtype == np.float32
    assert np.all(features == 1.0)
    # Consent given in the call alone also works.
    assert load_avsbench_log_mel(load_avsbench(root)["s4vid-0"], allow_pickle=True).shape == (5, 1, 96, 64)


def test_log_mel_pickled_torch_tensor_as_avsbench_stores_it(tmp_path):
    torch = pytest.importorskip("torch")
    root = write_avsbench_ms3(tmp_path, num_videos=1, wav=False, log_mel=True)
    clip = load_avsbench(root, subset="ms3", allow_pickle=True)[0]
    with open(clip.extra["log_mel_path"], "wb") as file:
        pickle.dump(torch.full((5, 1, 96, 64), 2.5, requires_grad=True), file)
    features = load_avsbench_log_mel(clip)
    assert isinstance(features, np.ndarray) and features.shape == (5, 1, 96, 64)
    assert np.all(features == 2.5)


def test_wav_and_log_mel_together(tmp_path):
    root = write_avsbench_s4(tmp_path, num_videos=1, wav=True, log_mel=True)
    clip = load_avsbench(root)[0]
    assert clip.audio_path.suffix == ".wav" and clip.extra["log_mel_path"].suffix == ".pkl"
    with pytest.raises(DatasetError, match="no log-mel pickle"):
        load_avsbench_log_mel(load_avsbench(write_avsbench_s4(tmp_path / "b", num_videos=1))[0])


def test_clip_with_neither_wav_nor_pickle_is_reported(tmp_path):
    root = write_avsbench_s4(tmp_path, num_videos=2)
    shutil.rmtree(root / "s4_data/audio_wav/val")
    with pytest.warns(AvlabWarning, match="s4vid-1.wav: no wav and no log-mel pickle"):
        s4 = load_avsbench(root)
    assert len(s4) == 2 and not s4["s4vid-1"].has_audio
    with pytest.raises(MissingAudioError, match="s4vid-1"):
        s4["s4vid-1"].load_audio(16000)
