"""Unreadable media raise `MediaError` naming the file and the reason, never a PyAV error."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
from media_cases import NUM_FRAMES

from avlab.errors import AvlabError, MediaError, MissingAudioError
from avlab.media import probe, read_audio, read_video
from avlab.testing.media import flip_bytes, sine, write_faststart

READERS: dict[str, Callable[[str], object]] = {
    "probe": probe,
    "read_video": read_video,
    "read_audio": lambda path: read_audio(path, sample_rate=16000),
}


def mp4_boxes(path: str) -> dict[bytes, tuple[int, int]]:
    """Top-level mp4 boxes: type -> (start, end) byte offsets."""
    data, boxes, at = Path(path).read_bytes(), {}, 0
    while at + 8 <= len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        boxes[data[at + 4 : at + 8]] = (at, at + size)
        at += size
    return boxes


@pytest.fixture(scope="module")
def bad_files(media, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Broken files, each made from the good 8-frame mp4 (index at its end) or from nothing."""
    root = tmp_path_factory.mktemp("bad")
    good = media.container("mp4")
    data = Path(good).read_bytes()
    boxes = mp4_boxes(good)
    assert boxes[b"mdat"][0] < boxes[b"moov"][0]  # PyAV writes the index last

    def write(name: str, content: bytes) -> str:
        (root / name).write_bytes(content)
        return str(root / name)

    faststart = write_faststart(good, root / "faststart.mp4")
    fast = Path(faststart).read_bytes()
    folder = root / "folder.mp4"
    folder.mkdir()
    return {
        "missing": str(root / "missing.mp4"),
        "folder": str(folder),
        "empty": write("empty.mp4", b""),
        "text": write("notes.mp4", b"this is not a video\n" * 20),
        "truncated": write("truncated.mp4", data[: len(data) // 2]),
        "truncated-header": write("truncated_header.mp4", data[:24]),
        "truncated-faststart": write("truncated_faststart.mp4", fast[: len(fast) * 3 // 5]),
        "flipped-everywhere": flip_bytes(good, root / "flipped_everywhere.mp4", step=13),
        "flipped-payload": flip_bytes(good, root / "flipped_payload.mp4",
                                      start=boxes[b"mdat"][0] + 8, stop=boxes[b"mdat"][1]),
    }


# What each broken file must say, for each reader that must refuse it. probe reads headers only,
# so it cannot see damage to the media data behind an intact index.
CASES = [
    ("missing", READERS, "file not found"),
    ("folder", READERS, "not a regular file"),
    ("empty", READERS, "empty file"),
    ("text", READERS, "not a readable media file"),
    ("truncated", READERS, "not a readable media file"),
    ("truncated-header", READERS, "not a readable media file"),
    ("truncated-faststart", ["read_video"], "truncated or corrupt"),
    ("truncated-faststart", ["read_audio"], "decoding failed"),
    ("flipped-everywhere", READERS, "not a readable media file"),
    ("flipped-payload", ["read_video", "read_audio"], "decoding failed"),
]


@pytest.mark.parametrize(
    ("case", "reader", "reason"),
    [(case, reader, reason) for case, readers, reason in CASES for reader in readers],
)
def test_bad_file_raises_media_error(bad_files: dict[str, str], case: str, reader: str, reason: str) -> None:
    path = bad_files[case]

    with pytest.raises(MediaError) as error:
        READERS[reader](path)

    assert error.value.path == path
    assert path in str(error.value)
    assert reason in str(error.value)


def test_headers_of_a_damaged_payload_still_probe(bad_files: dict[str, str]) -> None:
    # The index is intact, so probe answers from it; decoding is what finds the damage.
    assert probe(bad_files["flipped-payload"]).num_frames == NUM_FRAMES
    assert probe(bad_files["truncated-faststart"]).num_frames == NUM_FRAMES


def test_truncated_faststart_mp4_still_reads_the_part_before_the_cut(bad_files: dict[str, str]) -> None:
    # Only reading past the cut is an error; a range before it is complete.
    frames, times = read_video(bad_files["truncated-faststart"], end=0.25)

    assert len(frames) == 2
    assert list(times) == [0.0, 0.125]


@pytest.mark.parametrize("extension", ["mp4", "webm", "avi"])
def test_video_without_audio_raises_missing_audio(media, extension: str) -> None:
    path = media.container(extension, sample_rate=None)

    with pytest.raises(MissingAudioError, match="no audio stream") as error:
        read_audio(path, sample_rate=16000)

    assert path in str(error.value)
    assert isinstance(error.value, MediaError)


def test_audio_file_has_no_video_stream(media) -> None:
    path = media.audio("tone16000.wav", sine(0.75, 16000), 16000)

    with pytest.raises(MediaError, match="no video stream") as error:
        read_video(path)

    assert path in str(error.value)


def test_range_without_frames_raises(media) -> None:
    path = media.container("mp4")

    with pytest.raises(MediaError, match=r"no decodable video frame in \[2.000, 3.000\)") as error:
        read_video(path, start=2.0, end=3.0)

    assert path in str(error.value)


def test_range_past_an_undeclared_audio_end_raises(media) -> None:
    path = media.container("webm")  # declares no audio duration

    with pytest.raises(MediaError, match="no samples") as error:
        read_audio(path, sample_rate=16000, start=2.0)

    assert path in str(error.value)


def test_errors_accept_path_objects(tmp_path: Path) -> None:
    missing = tmp_path / "nope.webm"

    with pytest.raises(MediaError) as error:
        read_video(missing)

    assert error.value.path == str(missing)
    assert str(error.value) == f"{missing}: file not found"


@pytest.mark.parametrize("error_type", [MediaError, MissingAudioError])
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_media_errors_pickle_round_trip(error_type: type[MediaError], protocol: int) -> None:
    error = error_type("clips/a b.mp4", "decoding failed (Invalid data)")

    copy = pickle.loads(pickle.dumps(error, protocol=protocol))

    assert type(copy) is error_type
    assert isinstance(copy, AvlabError)
    assert (copy.path, copy.reason, str(copy)) == (error.path, error.reason, str(error))


def test_raised_media_error_pickles(bad_files: dict[str, str]) -> None:
    with pytest.raises(MediaError) as error:
        read_audio(bad_files["text"], sample_rate=16000)

    copy = pickle.loads(pickle.dumps(error.value))

    assert str(copy) == str(error.value)
    assert copy.path == bad_files["text"]


def test_encoder_limits_are_clear_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import numpy as np
    import pytest

    from avlab.media import read_video, write_audio
    from avlab.testing.media import write_test_video

    with pytest.raises(ValueError, match="Opus encodes only at"):
        write_audio(tmp_path / "a.ogg", np.zeros(4410, np.float32), 44100)
    path = write_test_video(tmp_path / "v.mp4", num_frames=4, fps=4)
    with pytest.raises(ValueError, match="non-empty"):
        read_video(path, times=np.array([]))
