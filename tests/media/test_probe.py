"""`probe` reports what was written: frames, rate, size, duration, audio streams."""

from __future__ import annotations

import pytest
from media_cases import (
    AUDIO_CODEC_NAMES,
    AUDIO_FORMATS,
    CONTAINERS,
    FPS,
    HEIGHT,
    NUM_FRAMES,
    VFR_TIMES,
    VIDEO_CODEC_NAMES,
    WIDTH,
)

from avlab.media import probe
from avlab.testing.media import sine


def test_probe_video_container(clip: str, container_ext: str) -> None:
    info = probe(clip)

    assert info.path == clip
    assert info.has_video and info.has_audio
    assert info.video_codec == VIDEO_CODEC_NAMES[container_ext]
    assert info.num_frames == NUM_FRAMES
    assert info.fps == pytest.approx(FPS)
    assert (info.height, info.width) == (HEIGHT, WIDTH)
    assert info.duration == pytest.approx(NUM_FRAMES / FPS, abs=1e-6)
    (audio,) = info.audio
    assert audio.index == 0
    assert audio.codec == AUDIO_CODEC_NAMES[container_ext]
    assert audio.channels == 1
    assert audio.sample_rate == CONTAINERS[container_ext]["sample_rate"]


def test_probe_mp4_declares_the_audio_duration_without_priming(media) -> None:
    info = probe(media.container("mp4"))

    assert info.audio[0].duration == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize(
    ("channels", "sample_rate"), [(1, 8000), (2, 48000), (6, 48000)], ids=["mono-8k", "stereo-48k", "5.1-48k"]
)
def test_probe_audio_layouts_and_rates(media, channels: int, sample_rate: int) -> None:
    path = media.container("mp4", channels=channels, sample_rate=sample_rate)

    (audio,) = probe(path).audio

    assert (audio.channels, audio.sample_rate) == (channels, sample_rate)


def test_probe_video_without_audio(media, container_ext: str) -> None:
    info = probe(media.container(container_ext, sample_rate=None))

    assert info.audio == ()
    assert not info.has_audio
    assert info.num_frames == NUM_FRAMES


@pytest.mark.parametrize("audio_seconds", [0.5, 1.5], ids=["audio-shorter", "audio-longer"])
def test_probe_duration_is_the_video_streams(media, audio_seconds: float) -> None:
    info = probe(media.container("mp4", audio_seconds=audio_seconds))

    assert info.duration == pytest.approx(1.0)
    assert info.audio[0].duration == pytest.approx(audio_seconds)


def test_probe_webm_measures_duration_from_packets(media) -> None:
    # webm declares neither frame count nor stream duration; the container's own duration
    # also covers the Opus stream's pre-skip.
    path = media.container("webm")

    counted = probe(path)
    header_only = probe(path, count_frames=False)

    assert (counted.num_frames, counted.duration) == (NUM_FRAMES, pytest.approx(1.0, abs=1e-9))
    assert header_only.num_frames == 0
    assert header_only.duration == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("extension", ["mp4", "webm"])
def test_probe_variable_frame_rate(media, extension: str) -> None:
    codec = CONTAINERS[extension]["video_codec"]
    path = media.video(f"vfr.{extension}", num_frames=len(VFR_TIMES), times=VFR_TIMES,
                       sample_rate=None, video_codec=codec)

    info = probe(path)

    assert info.num_frames == len(VFR_TIMES)
    assert info.duration > VFR_TIMES[-1]


@pytest.mark.parametrize("extension", sorted(AUDIO_FORMATS))
@pytest.mark.parametrize("sample_rate", [8000, 48000])
def test_probe_audio_file(media, extension: str, sample_rate: int) -> None:
    path = media.audio(f"tone{sample_rate}.{extension}", sine(0.75, sample_rate), sample_rate)

    info = probe(path)

    assert not info.has_video
    assert (info.fps, info.num_frames, info.width, info.height) == (None, 0, 0, 0)
    (audio,) = info.audio
    assert audio.codec == AUDIO_FORMATS[extension][0]
    assert audio.channels == 1
    # Opus always decodes at 48 kHz, whatever rate went into the encoder.
    assert audio.sample_rate == (48000 if extension == "ogg" else sample_rate)
    # Declared without the encoders' priming: the Ogg Opus pre-skip and LAME's delay.
    assert audio.duration == pytest.approx(0.75, abs=1e-9)
    assert info.duration == pytest.approx(0.75, abs=1e-9)


def test_probe_ogg_opus_duration_excludes_pre_skip(media) -> None:
    # FFmpeg reports an Ogg stream's last granule position, which counts the 312-sample
    # pre-skip: 0.7565 s for 0.75 s of signal.
    path = media.audio("tone48000.ogg", sine(0.75, 48000), 48000)

    assert probe(path).audio[0].duration == pytest.approx(0.75, abs=1e-9)
