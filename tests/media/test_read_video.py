"""`read_video` decodes the frames that were written, at the times they were written.

`test_pattern` encodes each frame's index in its grey level, so every test checks that the
right frame came back, not only how many.
"""

from __future__ import annotations

import numpy as np
import pytest
from media_cases import CONTAINERS, FPS, HEIGHT, NUM_FRAMES, VFR_TIMES, WIDTH

from avlab.media import probe, read_video, write_video
from avlab.testing.media import frame_index_of, test_pattern


def shown_at(grid: np.ndarray, frame_times: np.ndarray) -> np.ndarray:
    """Index of the frame on screen at each grid time: the last one whose timestamp is not after."""
    return np.searchsorted(frame_times, grid + 1e-9, side="right") - 1


def test_read_every_frame(clip: str) -> None:
    frames, times = read_video(clip)

    assert frames.shape == (NUM_FRAMES, HEIGHT, WIDTH, 3)
    assert frames.dtype == np.uint8
    assert times.dtype == np.float64
    np.testing.assert_allclose(times, np.arange(NUM_FRAMES) / FPS, atol=1e-9)
    np.testing.assert_array_equal(frame_index_of(frames), np.arange(NUM_FRAMES))


def test_avi_timestamps_follow_the_frame_rate(media) -> None:
    # Regression: write_video stamped frames with the stream's time base, which the AVI muxer
    # changes when it writes the header, so frame k landed at 150 k / 8 s.
    path = media.container("avi")

    assert probe(path).num_frames == NUM_FRAMES
    np.testing.assert_allclose(read_video(path).times, np.arange(NUM_FRAMES) / FPS, atol=1e-9)


@pytest.mark.parametrize(
    ("fps", "expected"),
    [
        (4, [0, 2, 4, 6]),
        (16, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7]),
        (3, [0, 2, 5]),  # grid 0, 1/3, 2/3 s: the frames on screen, 0, 2.67 and 5.33 floored
        (8, list(range(8))),
    ],
)
def test_fps_resampling_picks_the_frame_on_screen(clip: str, fps: float, expected: list[int]) -> None:
    frames, times = read_video(clip, fps=fps)

    np.testing.assert_allclose(times, np.arange(len(expected)) / fps, atol=1e-9)
    np.testing.assert_array_equal(frame_index_of(frames), expected)


@pytest.mark.parametrize("extension", ["mp4", "webm", "mkv"])
def test_variable_frame_rate_keeps_true_timestamps(media, extension: str) -> None:
    codec = CONTAINERS.get(extension, CONTAINERS["mp4"])["video_codec"]
    path = media.video(f"vfr.{extension}", num_frames=len(VFR_TIMES), times=VFR_TIMES,
                       sample_rate=None, video_codec=codec)

    frames, times = read_video(path)

    np.testing.assert_allclose(times, VFR_TIMES, atol=1e-9)
    np.testing.assert_array_equal(frame_index_of(frames), np.arange(len(VFR_TIMES)))


@pytest.mark.parametrize("extension", ["mp4", "webm", "mkv"])
@pytest.mark.parametrize("fps", [10, 25])
def test_variable_frame_rate_resampled_by_timestamp(media, extension: str, fps: float) -> None:
    codec = CONTAINERS.get(extension, CONTAINERS["mp4"])["video_codec"]
    path = media.video(f"vfr.{extension}", num_frames=len(VFR_TIMES), times=VFR_TIMES,
                       sample_rate=None, video_codec=codec)

    frames, times = read_video(path, fps=fps, end=1.0)

    grid = np.arange(int(np.ceil(fps - 1e-9))) / fps
    np.testing.assert_allclose(times, grid, atol=1e-9)
    np.testing.assert_array_equal(frame_index_of(frames), shown_at(grid, VFR_TIMES))
    # Index arithmetic on the average rate would pick other frames: the file is really irregular.
    average_rate = len(VFR_TIMES) / (VFR_TIMES[-1] + 1 / FPS)
    by_index = np.minimum(np.floor(grid * average_rate).astype(int), len(VFR_TIMES) - 1)
    assert not np.array_equal(shown_at(grid, VFR_TIMES), by_index)


def test_fps_grid_holds_the_last_frame_until_the_declared_end(media) -> None:
    # Regression: with B-frames, mp4 packet durations follow decoding order, so the last
    # frame's own duration (0.28 s here) overstated how long it stays on screen.
    path = media.video("vfr.mp4", num_frames=len(VFR_TIMES), times=VFR_TIMES,
                       sample_rate=None, video_codec="libx264")
    stream_end = probe(path).duration

    _, times = read_video(path, fps=20)

    assert times[-1] < stream_end <= times[-1] + 1 / 20 + 1e-9


def test_stream_that_starts_late_holds_its_first_picture(media) -> None:
    late = np.array([0.5, 0.625, 0.75, 0.875])
    path = media.video("late.mp4", num_frames=len(late), times=late, sample_rate=None)

    frames, times = read_video(path, fps=4)

    np.testing.assert_allclose(times, [0.0, 0.25, 0.5, 0.75], atol=1e-9)
    np.testing.assert_array_equal(frame_index_of(frames), [0, 0, 0, 2])


@pytest.mark.parametrize(("size", "shape"), [(32, (32, 32)), ((24, 40), (24, 40)), ((96, 64), (96, 64))])
def test_size(clip: str, size: int | tuple[int, int], shape: tuple[int, int]) -> None:
    frames, times = read_video(clip, size=size)

    assert frames.shape == (NUM_FRAMES, *shape, 3)
    np.testing.assert_array_equal(frame_index_of(frames), np.arange(NUM_FRAMES))
    assert len(times) == NUM_FRAMES


def test_size_with_fps(clip: str) -> None:
    frames, _ = read_video(clip, fps=4, size=(16, 32))

    assert frames.shape == (4, 16, 32, 3)
    np.testing.assert_array_equal(frame_index_of(frames), [0, 2, 4, 6])


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0.25, 0.75, [2, 3, 4, 5]),
        (0.3, 0.9, [3, 4, 5, 6, 7]),  # between frames: from the first one after 0.3 s
        (0.5, None, [4, 5, 6, 7]),
        (None, 0.25, [0, 1]),
        (0.875, 5.0, [7]),
    ],
)
def test_start_end_trimming(clip: str, start: float | None, end: float | None, expected: list[int]) -> None:
    frames, times = read_video(clip, start=start, end=end)

    np.testing.assert_array_equal(frame_index_of(frames), expected)
    np.testing.assert_allclose(times, np.array(expected) / FPS, atol=1e-9)


def test_start_end_with_fps_samples_the_grid_from_start(clip: str) -> None:
    frames, times = read_video(clip, fps=4, start=0.3, end=0.9)

    np.testing.assert_allclose(times, [0.3, 0.55, 0.8], atol=1e-9)
    np.testing.assert_array_equal(frame_index_of(frames), [2, 4, 6])


def test_times_sampling(clip: str) -> None:
    wanted = np.array([0.0, 0.13, 0.13, 0.5, 0.99, 1.5])

    frames, times = read_video(clip, times=wanted)

    # 1.5 s is past the last frame's 1 s end, so it is dropped; repeats are kept.
    np.testing.assert_allclose(times, wanted[:5])
    np.testing.assert_array_equal(frame_index_of(frames), [0, 1, 1, 4, 7])


def test_times_sampling_on_variable_frame_rate(media) -> None:
    path = media.video("vfr.webm", num_frames=len(VFR_TIMES), times=VFR_TIMES,
                       sample_rate=None, video_codec="libvpx-vp9")
    wanted = np.array([0.04, 0.31, 0.55, 0.61, 0.92])

    frames, times = read_video(path, times=wanted)

    np.testing.assert_allclose(times, wanted)
    np.testing.assert_array_equal(frame_index_of(frames), shown_at(wanted, VFR_TIMES))


@pytest.mark.parametrize("extension", ["mp4", "webm", "avi"])
def test_seeking_lands_on_the_right_frame_with_short_gops(media, extension: str) -> None:
    # Keyframes every 3 frames and B-frames: `start` seeks to a keyframe before it and decodes
    # forward, so each start must still give exactly the frames from there on.
    spec = CONTAINERS[extension]
    options = {"mp4": {"g": "3", "bf": "2"}, "webm": {"g": "3"}, "avi": None}[extension]
    frames = test_pattern(12, HEIGHT, WIDTH)
    path = media.make(f"gop.{extension}", lambda p: write_video(
        p, frames, fps=FPS, video_codec=str(spec["video_codec"]),
        pixel_format=str(spec.get("pixel_format", "yuv420p")), options=options))

    for k in range(1, 12):
        got, times = read_video(path, start=k / FPS, end=(k + 3) / FPS)
        expected = np.arange(k, min(k + 3, 12))
        np.testing.assert_array_equal(frame_index_of(got), expected, err_msg=f"start at frame {k}")
        np.testing.assert_allclose(times, expected / FPS, atol=1e-9)
        got, _ = read_video(path, start=k / FPS + 0.01, fps=FPS, end=(k + 2) / FPS)
        np.testing.assert_array_equal(frame_index_of(got), [k, k + 1][: 12 - k], err_msg=f"grid from frame {k}")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(fps=0), "fps must be positive"),
        (dict(start=0.5, end=0.5), "must be after start"),
        (dict(fps=4, times=[0.0]), "not both"),
        (dict(times=[0.5, 0.1]), "non-decreasing"),
    ],
)
def test_invalid_arguments(clip: str, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        read_video(clip, **kwargs)
