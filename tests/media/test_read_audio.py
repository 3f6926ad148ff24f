"""`read_audio` returns the written signal: its length, rate, content and timing.

Lengths are exact for every format: the library drops encoder priming and padding where the
file says how long they are (mp4/m4a edit lists, Ogg and WebM Opus pre-skip and end trim, the
LAME header of mp3). Content is exact for lossless formats; lossy ones are checked by the
frequency and level of a sine and the energy centroid of a tone burst.
"""

from __future__ import annotations

import numpy as np
import pytest
from media_cases import AUDIO_FORMATS, BURST_AT, CONTAINERS, FPS, NUM_FRAMES

from avlab.errors import MediaError
from avlab.media import frame_audio_windows, probe, read_audio, read_video, write_video
from avlab.testing.media import (
    energy_centroid,
    peak_frequency,
    sine,
    test_pattern,
    tone_burst,
    write_mp3_with_cover,
)

SINE_RMS = 0.5 / np.sqrt(2)  # `sine`'s default amplitude is 0.5
# Alignment tolerance: measured offsets are under 0.03 ms for every codec here.
ALIGN_SECONDS = 1e-4


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def int16_roundtrip(x: np.ndarray) -> np.ndarray:
    """What a 16-bit lossless file holds for float samples `x`."""
    return (np.clip(np.round(x * 32768), -32768, 32767) / 32768).astype(np.float32)


@pytest.mark.parametrize("native", [True, False], ids=["native-rate", "16k"])
def test_container_soundtrack(clip: str, container_ext: str, native: bool) -> None:
    rate = int(CONTAINERS[container_ext]["sample_rate"]) if native else 16000

    audio = read_audio(clip, sample_rate=rate)

    assert audio.dtype == np.float32
    assert audio.shape == (NUM_FRAMES // FPS * rate,)
    assert peak_frequency(audio, rate) == pytest.approx(440, abs=1)
    assert rms(audio) == pytest.approx(SINE_RMS, rel=0.03)


@pytest.mark.parametrize("extension", [e for e, (_, lossless) in AUDIO_FORMATS.items() if lossless])
@pytest.mark.parametrize("rate", [8000, 48000])
def test_lossless_files_decode_exactly(media, tone, extension: str, rate: int) -> None:
    path = media.audio(f"tone{rate}.{extension}", tone(rate), rate)

    audio = read_audio(path, sample_rate=rate)

    np.testing.assert_array_equal(audio, int16_roundtrip(tone(rate)))


@pytest.mark.parametrize("extension", [e for e, (_, lossless) in AUDIO_FORMATS.items() if not lossless])
@pytest.mark.parametrize("rate", [8000, 48000])
def test_lossy_files_keep_length_tone_and_phase(media, tone, extension: str, rate: int) -> None:
    path = media.audio(f"tone{rate}.{extension}", tone(rate), rate)

    audio = read_audio(path, sample_rate=rate)

    assert audio.shape == tone(rate).shape
    assert peak_frequency(audio, rate) == pytest.approx(440, abs=1.5)
    assert rms(audio) == pytest.approx(SINE_RMS, rel=0.05)
    # In phase with what was written: a shift of a few samples would lower the correlation.
    assert np.corrcoef(audio, tone(rate))[0, 1] > 0.99


def test_mp3_is_not_delayed_by_encoder_priming(media) -> None:
    # Regression: the mp3 decoder drops LAME's 1105-sample delay but stamps the first frame at
    # 1105 samples, which read_audio padded back in front as silence: 138 ms late at 8 kHz.
    burst = tone_burst(0.75, 8000, at=0.25)
    path = media.audio("burst8000.mp3", burst, 8000)

    audio = read_audio(path, sample_rate=8000)

    assert audio.shape == burst.shape
    assert energy_centroid(audio, 8000) == pytest.approx(0.25, abs=ALIGN_SECONDS)


def test_raw_adts_aac_keeps_its_priming(media) -> None:
    # ADTS streams do not say how much priming the encoder added (FFmpeg's adds one 1024-sample
    # frame), so the result starts with it: documented, not trimmed.
    burst = tone_burst(0.75, 16000, at=0.25)
    path = media.audio("burst16000.aac", burst, 16000)

    audio = read_audio(path, sample_rate=16000)

    assert len(burst) + 1024 <= len(audio) <= len(burst) + 2 * 1024
    assert energy_centroid(audio, 16000) == pytest.approx(0.25 + 1024 / 16000, abs=ALIGN_SECONDS)


@pytest.mark.parametrize("file_rate", [8000, 44100, 48000])
@pytest.mark.parametrize("rate", [8000, 11025, 16000, 48000])
def test_resampled_length_and_frequency(media, tone, file_rate: int, rate: int) -> None:
    path = media.audio(f"tone{file_rate}.wav", tone(file_rate), file_rate)

    audio = read_audio(path, sample_rate=rate)

    assert audio.shape == (round(0.75 * rate),)
    assert peak_frequency(audio, rate) == pytest.approx(440, abs=1 / 0.75)
    assert rms(audio[200:-200]) == pytest.approx(SINE_RMS, rel=0.01)


def test_resampling_filters_what_the_new_rate_cannot_hold(media) -> None:
    # 6 kHz is above 8 kHz's Nyquist frequency: dropping samples would alias it to 2 kHz at
    # full level; a proper resampler removes it.
    path = media.audio("6khz48000.wav", sine(0.75, 48000, frequency=6000.0), 48000)

    audio = read_audio(path, sample_rate=8000)

    assert audio.shape == (6000,)
    assert rms(audio) < 0.01 * SINE_RMS


@pytest.mark.parametrize(("channels", "rate"), [(2, 48000), (6, 48000), (2, 8000)])
def test_multichannel(media, channels: int, rate: int) -> None:
    path = media.container("mp4", channels=channels, sample_rate=rate)

    audio = read_audio(path, sample_rate=16000, mono=False)
    mono = read_audio(path, sample_rate=16000)

    assert audio.shape == (channels, 16000)
    assert audio.dtype == np.float32
    # `sine` puts channel c at 440 (c + 1) Hz. The AAC encoder low-passes the 5.1 LFE channel
    # (index 3), so its 1760 Hz tone is gone.
    tones = [c for c in range(channels) if not (channels == 6 and c == 3)]
    np.testing.assert_allclose(peak_frequency(audio[tones], 16000), 440.0 * (np.array(tones) + 1), atol=1)
    np.testing.assert_allclose(mono, audio.mean(axis=0), atol=1e-6)


def test_mono_file_as_channels(media) -> None:
    audio = read_audio(media.container("mp4"), sample_rate=16000, mono=False)

    assert audio.shape == (1, 16000)


@pytest.mark.parametrize("extension", ["mp4", "webm", "avi"])
def test_soundtrack_shorter_than_the_video(media, extension: str) -> None:
    path = media.container(extension, audio_seconds=0.5)

    assert read_audio(path, sample_rate=16000).shape == (8000,)
    # Asking past its end gives what there is.
    assert read_audio(path, sample_rate=16000, start=0.25, end=1.0).shape == (4000,)
    with pytest.raises(MediaError) as error:
        read_audio(path, sample_rate=16000, start=0.75)
    assert path in str(error.value)


@pytest.mark.parametrize("extension", ["mp4", "webm", "avi"])
def test_soundtrack_longer_than_the_video(media, extension: str) -> None:
    path = media.container(extension, audio_seconds=1.5)

    audio = read_audio(path, sample_rate=16000)

    assert audio.shape == (24000,)
    assert rms(audio[-4000:]) == pytest.approx(SINE_RMS, rel=0.05)


@pytest.mark.parametrize("extension", sorted(CONTAINERS))
def test_burst_lands_at_its_time_on_the_video_clock(media, extension: str) -> None:
    path = media.burst_video(extension)

    _, times = read_video(path)
    audio = read_audio(path, sample_rate=16000)

    # The burst was written centred on frame 3's presentation time.
    assert times[3] == pytest.approx(BURST_AT, abs=1e-9)
    assert energy_centroid(audio, 16000) == pytest.approx(times[3], abs=ALIGN_SECONDS)
    # Each 0.96 s window is centred on its frame: the burst sits 0.48 s + (0.375 s - tau) into
    # it, for the frames 0 to 6 whose windows hold all of its 50 ms.
    windows = frame_audio_windows(audio, 16000, times)  # (T, W)
    for k in range(7):
        expected = 0.48 + BURST_AT - times[k]
        assert energy_centroid(windows[k], 16000) == pytest.approx(expected, abs=ALIGN_SECONDS)


@pytest.mark.parametrize("extension", sorted(AUDIO_FORMATS))
@pytest.mark.parametrize("rate", [8000, 48000])
def test_burst_lands_at_its_time_in_audio_files(media, extension: str, rate: int) -> None:
    path = media.audio(f"burst{rate}.{extension}", tone_burst(0.75, rate, at=0.25), rate)

    for out in (rate, 16000):
        audio = read_audio(path, sample_rate=out)
        assert audio.shape == (int(0.75 * out),)
        assert energy_centroid(audio, out) == pytest.approx(0.25, abs=ALIGN_SECONDS)


SPANS = [(0.25, 0.5), (0.5, None), (0.1, 0.6), (None, 0.3)]


@pytest.mark.parametrize(("start", "end"), SPANS)
@pytest.mark.parametrize("rate", [None, 16000], ids=["native", "16k"])
@pytest.mark.parametrize("extension", sorted(AUDIO_FORMATS) + ["mp4", "webm", "avi"])
def test_start_end_are_sample_accurate(media, tone, extension: str, rate: int | None,
                                       start: float | None, end: float | None) -> None:
    # A span must equal the same samples cut from the whole decoded stream, including after the
    # seek that a late start triggers (decoder pre-roll) and at the resampler's edges.
    if extension in CONTAINERS:
        path, native = media.container(extension), int(CONTAINERS[extension]["sample_rate"])
    else:
        path, native = media.audio(f"tone48000.{extension}", tone(48000), 48000), 48000
    rate = rate or native
    whole = read_audio(path, sample_rate=rate)
    first = round((start or 0) * rate)
    last = len(whole) if end is None else round(end * rate)

    span = read_audio(path, sample_rate=rate, start=start, end=end)

    assert span.shape == (last - first,)
    # AAC decoders fill noise-substituted bands from a generator whose state depends on what was
    # decoded before, so after a seek those bands differ by about 2e-4.
    lossless = rate == native and (extension in ("wav", "flac", "avi"))
    np.testing.assert_allclose(span, whole[first:last], atol=0 if lossless else 1e-3)


def test_start_end_in_channels_layout(media) -> None:
    path = media.container("mp4", channels=2, sample_rate=48000)

    span = read_audio(path, sample_rate=16000, mono=False, start=0.25, end=0.5)

    assert span.shape == (2, 4000)


def test_webm_opus_without_declared_end_is_trimmed_exactly(media) -> None:
    # WebM declares no audio duration: the length comes from Opus' own end trimming.
    path = media.container("webm", audio_seconds=0.77)

    assert read_audio(path, sample_rate=48000).shape == (int(0.77 * 48000),)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [(dict(sample_rate=0), "sample_rate must be positive"), (dict(sample_rate=16000, start=0.5, end=0.2), "after start")],
)
def test_invalid_arguments(clip: str, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        read_audio(clip, **kwargs)


@pytest.mark.parametrize(
    ("extension", "audio_codec", "clock"),
    [("mp4", "aac", 0.0), ("mkv", "flac", 0.0), ("webm", "libopus", 1e-3)],
    ids=["mp4-aac", "mkv-flac", "webm-opus"],
)
def test_soundtrack_that_starts_late_is_padded_with_zeros(media, extension: str, audio_codec: str,
                                                          clock: float) -> None:
    # The soundtrack starts 0.25 s into the video, with a burst 0.25 s into it: 0.5 s on the
    # video's clock. WebM stamps the start in whole milliseconds (`clock`), so there the start,
    # and with it the burst and the end, may move by up to a millisecond.
    rate = 48000 if audio_codec == "libopus" else 16000
    codec = "libvpx-vp9" if extension == "webm" else "libx264"
    path = media.make(f"late_audio_{audio_codec}.{extension}", lambda p: write_video(
        p, test_pattern(NUM_FRAMES, 48, 64), fps=FPS, audio=tone_burst(0.5, rate, at=0.25),
        sample_rate=rate, audio_start=0.25, video_codec=codec, audio_codec=audio_codec))
    slack = round(clock * 16000)

    audio = read_audio(path, sample_rate=16000)
    span = read_audio(path, sample_rate=16000, start=0.125, end=0.625)

    assert abs(len(audio) - 12000) <= slack
    assert not audio[: 4000 - slack - 48].any()  # silence until the soundtrack starts (48: soxr)
    assert energy_centroid(audio, 16000) == pytest.approx(0.5, abs=ALIGN_SECONDS + clock)
    assert span.shape == (8000,)
    assert not span[: 2000 - slack - 48].any()
    assert energy_centroid(span, 16000) == pytest.approx(0.5 - 0.125, abs=ALIGN_SECONDS + clock)


def test_mp3_with_cover_art_is_an_audio_file(media) -> None:
    # FFmpeg lists an mp3's cover picture as a video stream; it must not make the file count as
    # a video, whose clock would put the mp3 priming back in front of the signal.
    burst = tone_burst(0.75, 16000, at=0.25)
    path = media.make("cover.mp3", lambda p: write_mp3_with_cover(p, burst, 16000))

    info = probe(path)
    audio = read_audio(path, sample_rate=16000)

    assert not info.has_video and info.duration == pytest.approx(0.75)
    assert audio.shape == burst.shape
    assert energy_centroid(audio, 16000) == pytest.approx(0.25, abs=ALIGN_SECONDS)
    with pytest.raises(MediaError, match="no video stream"):
        read_video(path)
