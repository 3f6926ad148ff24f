"""Bad inputs, one table row each: how the input is made, where it enters, what must be said.

Rows entering through `cache_features` put one bad video beside two good ones (a folder, or a
manifest when the bad part is an audio file): the bad video is recorded as ``failed`` with a
reason naming its file, or, where a researcher can still use it, cached as ``done`` with a note
naming the file; the good videos are cached exactly as when cached alone. Rows entering
through a loader or the store raise a `PathError` naming the file and the reason, or just work.

| case                        | enters        | outcome                                              |
|-----------------------------|---------------|------------------------------------------------------|
| truncated mp4               | cache, folder | failed: not a readable media file                    |
| truncated faststart mp4     | cache, folder | failed: truncated or corrupt                         |
| corrupt payload             | cache, folder | failed: decoding failed                              |
| text file named .mp4        | cache, folder | failed: not a readable media file                    |
| empty .mp4                  | cache, folder | failed: empty file                                   |
| missing file                | cache, manif. | failed: file not found                               |
| AVI content named .mp4      | cache, folder | done: FFmpeg reads the content, not the name         |
| no video stream (.mp4 audio)| cache, folder | failed: no video stream (and the loader warns)       |
| wav as the video            | cache, manif. | failed: no video stream                              |
| no audio stream             | cache, folder | done, note: no audio, audio features empty           |
| zero-sample wav             | cache, manif. | failed: no samples                                   |
| NaN / Inf in float wav      | cache, manif. | failed: NaN or infinite samples                      |
| 4 kHz audio                 | cache, folder | done (upsampled), note: nothing above 2000 Hz        |
| 192 kHz audio               | cache, folder | done (downsampled by soxr)                           |
| 6 channels                  | cache, folder | done (averaged to mono)                              |
| 1x1 frames                  | cache, folder | done, note: upscaled to 64x64                        |
| 4K frames                   | cache, folder | done (downscaled)                                    |
| variable frame rate         | cache, folder | done, sampled on the recipe's 8 fps grid             |
| unicode and spaces in paths | cache, folder | done: ids made safe, files read                      |
| frame image missing (YTVIS) | cache, ytvis  | failed: cannot read frame image                      |
| mask of the wrong size      | cache, AVSB.  | failed: masks must share one size                    |
| duplicate ids (folder)      | load_folder   | DatasetError naming both files                       |
| duplicate ids (manifest)    | Manifest      | DatasetError: duplicate video id                     |
| duplicate ids (YTVIS)       | YTVIS loader  | DatasetError: repeats the id                         |
| ``../`` in YTVIS file names | YTVIS loader  | DatasetError: relative path inside the frames folder |
| ``../`` in AVSBench names   | AVSB. loader  | DatasetError: is a path                              |
| YTVIS JSON without a field  | YTVIS loader  | DatasetError: has no 'height' field                  |
| YTVIS JSON, no categories   | YTVIS loader  | DatasetError: has no 'categories' field              |
| YTVIS id retyped            | YTVIS loader  | DatasetError: must be an integer or a string         |
| annotation of unknown video | YTVIS loader  | DatasetError: not in 'videos'                        |
| annotations, too few frames | YTVIS masks   | DatasetError: one per frame                          |
| mask of the wrong size      | AVSB. masks   | DatasetError: masks must share one size              |
| empty folder                | load_folder   | DatasetError: no video files                         |
| empty manifest              | cache         | DatasetError: the dataset has no videos              |
| older schema version        | open_store    | StoreSchemaError naming both versions                |
| older schema version        | cache         | StoreSchemaError naming both versions                |
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from avlab.datasets import Manifest, VideoRecord, load_avsbench, load_folder, load_youtube_vis
from avlab.errors import AvlabWarning, DatasetError, PathError
from avlab.media import read_video, write_audio, write_video
from avlab.store import StoreSchemaError, cache_features, open_store
from avlab.testing.layouts import write_avsbench_s4
from avlab.testing.media import flip_bytes, sine, write_faststart, write_test_video
from avlab.testing.ytvis import write_ytvis_fixture

CACHE = dict(visual="debug", size=64, fps=8.0, progress=False)
GOOD = ("a", "b")


@dataclass(frozen=True)
class Made:
    """What a case's builder made: the source to cache or the call to make, and the file at fault."""

    source: Any
    culprit: Path
    video_id: str = "c"


@dataclass(frozen=True)
class Case:
    """One bad input.

    Attributes:
        name: Row id.
        enters: ``"cache"`` (cached beside good videos) or ``"call"`` (a loader or the store).
        build: ``(folder, good videos folder) -> Made``.
        outcome: ``"failed"`` / ``"done"`` for caching; ``"raises"`` for calls.
        says: Regex the recorded reason or the error must match (besides naming the file).
        error: The error class a call raises.
    """

    name: str
    enters: str
    build: Callable[[Path, Path], Made]
    outcome: str
    says: str = ""
    error: type[Exception] = DatasetError


# Builders of cached cases: a folder with copies of the good videos and one bad "c.*".

def _folder(tmp: Path, goods: Path) -> Path:
    shutil.copytree(goods, tmp / "data")
    return tmp / "data"


def in_folder(write: Callable[[Path], Path]) -> Callable[[Path, Path], Made]:
    def build(tmp: Path, goods: Path) -> Made:
        folder = _folder(tmp, goods)
        return Made(folder, write(folder))
    return build


def in_manifest(video: Callable[[Path, Path], Path], audio: Callable[[Path], Path] | None = None,
                culprit: str = "video") -> Callable[[Path, Path], Made]:
    """Good records a and b plus record c with the given video (and audio) file."""
    def build(tmp: Path, goods: Path) -> Made:
        records = [VideoRecord(v, video_path=goods / f"{v}.mp4", audio_path=goods / f"{v}.mp4") for v in GOOD]
        video_path = video(tmp, goods)
        audio_path = audio(tmp) if audio is not None else video_path
        records.append(VideoRecord("c", video_path=video_path, audio_path=audio_path))
        return Made(Manifest(records, name="mixed"), video_path if culprit == "video" else audio_path)
    return build


def good_mp4(name: str = "c.mp4", **options: Any) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        settings = dict(num_frames=8, fps=8, height=32, width=32) | options
        return Path(write_test_video(folder / name, **settings))
    return write


def _good_bytes(folder: Path) -> bytes:
    return (folder / "a.mp4").read_bytes()


def truncated(folder: Path) -> Path:
    data = _good_bytes(folder)
    (folder / "c.mp4").write_bytes(data[: len(data) // 2])
    return folder / "c.mp4"


def truncated_faststart(folder: Path) -> Path:
    fast = Path(write_faststart(folder / "a.mp4", folder.parent / "fast.mp4")).read_bytes()
    (folder / "c.mp4").write_bytes(fast[: len(fast) * 3 // 5])
    return folder / "c.mp4"


def corrupt_payload(folder: Path) -> Path:
    data = _good_bytes(folder)
    mdat = data.index(b"mdat")
    return Path(flip_bytes(folder / "a.mp4", folder / "c.mp4", start=mdat + 4, stop=data.index(b"moov") - 4))


def text_as_mp4(folder: Path) -> Path:
    (folder / "c.mp4").write_text("this is not a video\n" * 20)
    return folder / "c.mp4"


def empty_mp4(folder: Path) -> Path:
    (folder / "c.mp4").write_bytes(b"")
    return folder / "c.mp4"


def avi_named_mp4(folder: Path) -> Path:
    write_test_video(folder.parent / "x.avi", num_frames=8, fps=8, height=32, width=32, video_codec="mjpeg",
                     pixel_format="yuvj420p", audio_codec="pcm_s16le")
    return Path(shutil.move(folder.parent / "x.avi", folder / "c.mp4"))


def audio_only_mp4(folder: Path) -> Path:
    write_audio(folder.parent / "x.m4a", sine(1.0, 16000), 16000)
    return Path(shutil.move(folder.parent / "x.m4a", folder / "c.mp4"))


def frames_1x1(folder: Path) -> Path:
    # H.264 needs even sizes; MJPEG in 4:4:4 encodes a single pixel.
    return Path(write_video(folder / "c.avi", np.full((8, 1, 1, 3), 128, np.uint8), fps=8, audio=sine(1.0, 16000),
                            sample_rate=16000, video_codec="mjpeg", audio_codec="pcm_s16le",
                            pixel_format="yuvj444p"))


def frames_4k(folder: Path) -> Path:
    return Path(write_video(folder / "c.mp4", np.zeros((2, 2160, 3840, 3), np.uint8), fps=8, audio=sine(0.25, 16000),
                            sample_rate=16000, options={"preset": "ultrafast"}))


def vfr(folder: Path) -> Path:
    # mkv: an mp4 of B-frames with irregular timestamps declares a duration from its decoding
    # timestamps, shorter than its last frame (see the report of issue 10).
    times = np.array([0.0, 0.05, 0.1, 0.3, 0.4, 0.45, 0.7, 0.9])
    return good_mp4("c.mkv", times=times)(folder)


def unicode_names(folder: Path) -> Path:
    (folder / "ñandú café").mkdir()
    return good_mp4("ñandú café/clip 1 (live).mp4")(folder)


def wav_file(samples: np.ndarray, name: str) -> Callable[[Path], Path]:
    def write(tmp: Path) -> Path:
        sf.write(tmp / name, samples, 16000, subtype="FLOAT")
        return tmp / name
    return write


def _nan_inf() -> np.ndarray:
    samples = sine(1.0, 16000)
    samples[100], samples[200] = np.nan, np.inf
    return samples


def ytvis_missing_frame(tmp: Path, goods: Path) -> Made:
    fx = write_ytvis_fixture(tmp / "ytvis")
    culprit = sorted((fx.frames_root / "vid_b").iterdir())[2]
    culprit.unlink()
    return Made(load_youtube_vis(fx.annotations, fx.frames_root), culprit, "vid_b")


def avsbench_mask_wrong_size(tmp: Path, goods: Path) -> Made:
    root = write_avsbench_s4(tmp / "s4", num_videos=3, splits=("val",))
    culprit = sorted(root.glob("s4_data/gt_masks/val/*/s4vid-1/s4vid-1_3.png"))[0]
    Image.new("L", (20, 12)).save(culprit)
    return Made(load_avsbench(root, subset="s4"), culprit, "s4vid-1")


# Builders of call cases: a zero-argument call and the file it must name.

def ytvis_json(edit: Callable[[dict[str, Any]], None], *, masks: bool = False) -> Callable[[Path, Path], Made]:
    def build(tmp: Path, goods: Path) -> Made:
        fx = write_ytvis_fixture(tmp / "ytvis")
        data = json.loads(fx.annotations.read_text())
        edit(data)
        fx.annotations.write_text(json.dumps(data))
        if masks:
            return Made(lambda: load_youtube_vis(fx.annotations, fx.frames_root)["vid_a"].load_masks(), fx.annotations)
        return Made(lambda: load_youtube_vis(fx.annotations, fx.frames_root), fx.annotations)
    return build


def _duplicate_id(data: dict[str, Any]) -> None:
    data["videos"][1]["id"] = data["videos"][0]["id"]


def _escape(data: dict[str, Any]) -> None:
    data["videos"][0]["file_names"] = [f"../outside/{Path(n).name}" for n in data["videos"][0]["file_names"]]


def _drop_height(data: dict[str, Any]) -> None:
    del data["videos"][0]["height"]


def _drop_categories(data: dict[str, Any]) -> None:
    del data["categories"]


def _id_as_list(data: dict[str, Any]) -> None:
    data["videos"][0]["id"] = [1]


def _unknown_video(data: dict[str, Any]) -> None:
    data["annotations"][0]["video_id"] = 999


def _too_few_frames(data: dict[str, Any]) -> None:
    for annotation in data["annotations"]:
        annotation["segmentations"] = annotation["segmentations"][:-1]


def folder_duplicates(tmp: Path, goods: Path) -> Made:
    folder = _folder(tmp, goods)
    good_mp4("a.mkv")(folder)
    return Made(lambda: load_folder(folder), folder)


def manifest_duplicates(tmp: Path, goods: Path) -> Made:
    records = [VideoRecord("a", video_path=goods / f"{v}.mp4") for v in GOOD]
    return Made(lambda: Manifest(records, name="twice", root=goods), goods)


def avsbench_escape(tmp: Path, goods: Path) -> Made:
    root = write_avsbench_s4(tmp / "s4", num_videos=2)
    table = root / "s4_meta_data.csv"
    table.write_text(table.read_text().replace("s4vid-1,", "../s4vid-1,"))
    return Made(lambda: load_avsbench(root, subset="s4"), table)


def avsbench_mask_call(tmp: Path, goods: Path) -> Made:
    made = avsbench_mask_wrong_size(tmp, goods)
    return Made(lambda: made.source[made.video_id].load_masks(), made.culprit)


def empty_folder(tmp: Path, goods: Path) -> Made:
    (tmp / "empty").mkdir()
    return Made(lambda: load_folder(tmp / "empty"), tmp / "empty")


def empty_manifest(tmp: Path, goods: Path) -> Made:
    return Made(lambda: cache_features(Manifest([], name="none", root=tmp), tmp / "s.zarr", **CACHE), tmp)


def _old_store(tmp: Path, goods: Path) -> Path:
    store = tmp / "old.zarr"
    cache_features(goods, store, **CACHE)
    metadata = json.loads((store / "zarr.json").read_text())
    metadata["attributes"]["avlab"]["schema_version"] = 0
    (store / "zarr.json").write_text(json.dumps(metadata))
    return store


def old_store_open(tmp: Path, goods: Path) -> Made:
    store = _old_store(tmp, goods)
    return Made(lambda: open_store(store), store)


def old_store_cache(tmp: Path, goods: Path) -> Made:
    store = _old_store(tmp, goods)
    return Made(lambda: cache_features(goods, store, **CACHE), store)


CASES = [
    Case("truncated-mp4", "cache", in_folder(truncated), "failed", "not a readable media file"),
    Case("truncated-faststart", "cache", in_folder(truncated_faststart), "failed", "truncated or corrupt|decoding failed"),
    Case("corrupt-payload", "cache", in_folder(corrupt_payload), "failed", "decoding failed|truncated or corrupt"),
    Case("text-named-mp4", "cache", in_folder(text_as_mp4), "failed", "not a readable media file"),
    Case("empty-mp4", "cache", in_folder(empty_mp4), "failed", r"empty file \(0 bytes\)"),
    Case("missing-file", "cache", in_manifest(lambda tmp, goods: tmp / "gone.mp4"), "failed", "file not found"),
    Case("avi-named-mp4", "cache", in_folder(avi_named_mp4), "done"),
    Case("no-video-stream", "cache", in_folder(audio_only_mp4), "failed", "no video stream"),
    Case("wav-as-video", "cache", in_manifest(lambda tmp, goods: wav_file(sine(1.0, 16000), "c.wav")(tmp)),
         "failed", "no video stream"),
    Case("no-audio-stream", "cache", in_folder(good_mp4(sample_rate=None)), "done", "no audio: .*has no audio"),
    Case("zero-samples", "cache", in_manifest(lambda tmp, goods: goods / "a.mp4",
                                              wav_file(np.zeros(0, np.float32), "zero.wav"), "audio"),
         "failed", "no samples"),
    Case("nan-inf-wav", "cache", in_manifest(lambda tmp, goods: goods / "a.mp4", wav_file(_nan_inf(), "nan.wav"),
                                             "audio"), "failed", "NaN or infinite samples"),
    Case("audio-4khz", "cache", in_folder(good_mp4("c.mkv", sample_rate=4000, audio_codec="pcm_s16le")),
         "done", "sampled at 4000 Hz.*nothing above 2000 Hz"),
    Case("audio-192khz", "cache", in_folder(good_mp4("c.mkv", sample_rate=192000, audio_codec="pcm_s16le")), "done"),
    Case("audio-6-channels", "cache", in_folder(good_mp4(channels=6)), "done"),
    Case("frames-1x1", "cache", in_folder(frames_1x1), "done", "frames are 1x1 .*upscaled to 64x64"),
    Case("frames-4k", "cache", in_folder(frames_4k), "done"),
    Case("variable-frame-rate", "cache", in_folder(vfr), "done"),
    Case("unicode-and-spaces", "cache", in_folder(unicode_names), "done"),
    Case("ytvis-frame-missing", "cache", ytvis_missing_frame, "failed", "cannot read frame image"),
    Case("avsbench-mask-size", "cache", avsbench_mask_wrong_size, "failed", "masks must share one size"),
    Case("duplicate-ids-folder", "call", folder_duplicates, "raises", r"a\.mkv and .*a\.mp4 both give video id 'a'"),
    Case("duplicate-ids-manifest", "call", manifest_duplicates, "raises", "duplicate video id 'a'"),
    Case("duplicate-ids-ytvis", "call", ytvis_json(_duplicate_id), "raises", r"videos\[1\] repeats the id"),
    Case("dotdot-ytvis", "call", ytvis_json(_escape), "raises", "relative path inside the frames folder"),
    Case("dotdot-avsbench", "call", avsbench_escape, "raises", "'../s4vid-1' is a path"),
    Case("ytvis-missing-field", "call", ytvis_json(_drop_height), "raises", r"videos\[0\] has no 'height' field"),
    Case("ytvis-no-categories", "call", ytvis_json(_drop_categories), "raises", "has no 'categories' field"),
    Case("ytvis-id-retyped", "call", ytvis_json(_id_as_list), "raises", "'id' must be an integer or a string"),
    Case("ytvis-unknown-video", "call", ytvis_json(_unknown_video), "raises", "video_id 999, which is not in"),
    Case("ytvis-annotations-short", "call", ytvis_json(_too_few_frames, masks=True), "raises", "one per frame"),
    Case("avsbench-mask-size-load", "call", avsbench_mask_call, "raises", "masks must share one size"),
    Case("empty-folder", "call", empty_folder, "raises", "no video files"),
    Case("empty-manifest", "call", empty_manifest, "raises", "the dataset has no videos"),
    Case("old-schema-open", "call", old_store_open, "raises", "schema version 0; this avlab reads version 1",
         StoreSchemaError),
    Case("old-schema-cache", "call", old_store_cache, "raises", "schema version 0; this avlab writes version 1",
         StoreSchemaError),
]


@pytest.fixture(scope="module")
def goods(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("goods")
    for name in GOOD:
        write_test_video(folder / f"{name}.mp4", num_frames=8, fps=8, height=32, width=32)
    return folder


@pytest.fixture(scope="module")
def alone(goods: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The good videos cached by themselves."""
    return cache_features(goods, tmp_path_factory.mktemp("alone") / "s.zarr", **CACHE)


def test_the_table_has_enough_cases() -> None:
    assert len(CASES) >= 28
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [c for c in CASES if c.enters == "cache"], ids=lambda c: c.name)
def test_a_bad_video_is_recorded_and_the_rest_are_cached(case: Case, goods: Path, alone: Any, tmp_path: Path) -> None:
    made = case.build(tmp_path, goods)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = cache_features(made.source, tmp_path / "store.zarr", **CACHE)
    said = [str(w.message) for w in caught if issubclass(w.category, AvlabWarning)]

    bad = made.video_id if made.video_id in ds.video.values else next(v for v in ds.video.values if v not in GOOD)
    status = ds.avlab.status.to_dict()
    reason = str(ds.error.sel(video=bad).values)
    assert status[bad] == case.outcome, reason
    assert all(status[v] == "done" for v in ds.video.values if v != bad)
    if case.outcome == "failed":
        assert str(made.culprit) in reason
        assert any(str(made.culprit) in message for message in said)  # the run's warning lists it
        assert np.isnan(ds.visual_c3.sel(video=bad).values).all()
    else:
        assert said == []
        assert np.isfinite(ds.visual_c3.sel(video=bad).values[0, : int(ds.num_frames.sel(video=bad))]).all()
    if case.says:
        assert re.search(case.says, reason), reason
        if case.outcome == "done":
            assert str(made.culprit) in reason
    else:
        assert reason == ""
    for video in GOOD if set(GOOD) <= set(ds.video.values) else ():
        _assert_cached_alike(ds, alone, video)


def _assert_cached_alike(ds: Any, alone: Any, video: str) -> None:
    frames = int(alone.num_frames.sel(video=video))
    assert int(ds.num_frames.sel(video=video)) == frames
    for name in ("visual_c3", "visual_c4", "visual_c5", "logmel", "frame_time"):
        np.testing.assert_array_equal(ds[name].sel(video=video).values[..., :frames, :, :, :]
                                      if ds[name].ndim == 6 else ds[name].sel(video=video).values[:frames],
                                      alone[name].sel(video=video).values[..., :frames, :, :, :]
                                      if alone[name].ndim == 6 else alone[name].sel(video=video).values[:frames])
    atime = int(alone.num_atime.sel(video=video))
    np.testing.assert_array_equal(ds.stft.sel(video=video).values[:atime], alone.stft.sel(video=video).values[:atime])


@pytest.mark.parametrize("case", [c for c in CASES if c.enters == "call"], ids=lambda c: c.name)
def test_a_bad_input_raises_a_clear_error(case: Case, goods: Path, tmp_path: Path) -> None:
    made = case.build(tmp_path, goods)

    with pytest.raises(case.error, match=case.says) as error:
        made.source()

    assert isinstance(error.value, PathError)
    assert error.value.path == str(made.culprit)
    assert str(error.value) == f"{made.culprit}: {error.value.reason}"


def test_variable_frame_rate_is_sampled_on_the_recipe_grid(goods: Path, tmp_path: Path) -> None:
    folder = _folder(tmp_path, goods)
    vfr(folder)
    ds = cache_features(folder, tmp_path / "s.zarr", **CACHE)
    # Frames shown at 0, .05, .1, .3, .4, .45, .7, .9 and the last until 1.025 s: the frame on
    # screen at each k / 8 s.
    assert int(ds.num_frames.sel(video="c")) == 9
    np.testing.assert_allclose(ds.frame_time.sel(video="c").values, np.arange(9) / 8)
    shown = read_video(folder / "c.mkv").frames  # (8, H, W, 3), one per timestamp
    alone = cache_features(Manifest([VideoRecord("c", video_path=folder / "c.mkv")], name="c"),
                           tmp_path / "c.zarr", **{**CACHE, "audio": (), "fps": None})
    expected = [0, 2, 2, 3, 5, 5, 6, 6, 7]  # the frame on screen at k / 8
    assert len(shown) == 8
    np.testing.assert_array_equal(ds.visual_c3.sel(video="c").values[0],
                                  alone.visual_c3.sel(video="c").values[0][expected])


def test_unicode_and_spaces_give_safe_ids_and_read_the_file(goods: Path, tmp_path: Path) -> None:
    folder = _folder(tmp_path, goods)
    unicode_names(folder)
    ds = cache_features(folder, tmp_path / "s.zarr", **CACHE)
    assert list(ds.video.values) == ["a", "b", "ñandú_café/clip_1_live_"]
    assert ds.avlab.status.tolist() == ["done"] * 3


def test_an_older_store_is_recached_with_overwrite(goods: Path, tmp_path: Path, alone: Any) -> None:
    store = _old_store(tmp_path, goods)
    ds = cache_features(goods, store, overwrite=True, **CACHE)
    assert ds.avlab.attrs["schema_version"] == 1
    _assert_cached_alike(ds, alone, "a")
