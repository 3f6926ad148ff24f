from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from avlab.datasets.masks import PngMasks
from avlab.datasets.synth import generate, load_synth, read_card
from avlab.datasets.synth.audio import frame_bounds, gate_envelope, melody, render_notes
from avlab.datasets.synth.classes import COLOURS, SHAPES, synth_classes

SIZE, FPS, SECONDS, RATE = 64, 8, 1.0, 8000
FRAMES = int(SECONDS * FPS)
PARAMS = dict(num_videos=4, size=SIZE, fps=FPS, seconds=SECONDS, sample_rate=RATE, num_classes=8,
              max_objects=3, num_solo=1, occlusion=0.6, distractors=0.8, duplicates=1.0)
HAS_SOUNDFONT = importlib.util.find_spec("tinysoundfont") is not None


def _generate(root: Path, **changes) -> Path:
    return generate(root, **{**PARAMS, "renderer": "auto", **changes})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return _generate(tmp_path_factory.mktemp("synth") / "a", seed=3)


@pytest.fixture(scope="module")
def same_seed(tmp_path_factory) -> Path:
    return _generate(tmp_path_factory.mktemp("synth") / "b", seed=3)


@pytest.fixture(scope="module")
def additive(tmp_path_factory) -> Path:
    return _generate(tmp_path_factory.mktemp("synth") / "c", seed=3, renderer="additive")


def _all_records(root: Path):
    for split in ("train", "val", "test"):
        for solo in (False, True):
            yield from load_synth(root, split=split, solo=solo)


def _read(path: Path) -> np.ndarray:
    audio, rate = soundfile.read(path, dtype="float32")
    assert rate == RATE
    return audio


def _files(root: Path, pattern: str) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob(pattern))}


def test_layout_on_disk(dataset):
    assert (dataset / "dataset_card.json").is_file() and (dataset / "README.md").is_file()
    for split, count in (("train", 4), ("val", 1), ("test", 1)):
        for folder in (dataset / split, dataset / split / "solo"):
            ids = sorted(p.stem for p in (folder / "videos").glob("*.mp4"))
            assert len(ids) == (count if folder.name == split else 1)
            assert sorted(p.stem for p in (folder / "audio").glob("*.wav")) == ids
            assert sorted(p.name for p in (folder / "masks").iterdir()) == ids
            assert sorted(p.name for p in (folder / "sources").iterdir()) == ids
            assert (folder / "instances.json").is_file()
    mixture = dataset / "train" / "audio" / "train_0000.wav"
    assert soundfile.info(mixture).subtype == "FLOAT"
    # Only fmt, fact and data chunks: nothing time-dependent (libsndfile's PEAK chunk) in the bytes.
    assert mixture.stat().st_size == 58 + 4 * int(SECONDS * RATE)


def test_same_seed_gives_identical_masks_and_wav_bytes(dataset, same_seed):
    wavs = _files(dataset, "*.wav")
    assert len(wavs) > 10 and wavs == _files(same_seed, "*.wav")
    assert _files(dataset, "*.png") == _files(same_seed, "*.png")
    assert _files(dataset, "instances.json") == _files(same_seed, "instances.json")


def test_different_seed_gives_different_data(dataset, tmp_path):
    other = generate(tmp_path, **{**PARAMS, "num_videos": {"train": 1}, "num_solo": 0, "seed": 4})
    mixture = _read(dataset / "train" / "audio" / "train_0000.wav")
    assert not np.array_equal(mixture, _read(other / "train" / "audio" / "train_0000.wav"))
    a = load_synth(dataset, split="train")[0].load_masks()
    b = load_synth(other, split="train")[0].load_masks()
    assert a.data.shape != b.data.shape or not np.array_equal(a.data, b.data)


def test_splits_are_seeded_independently(dataset, tmp_path):
    # Fewer clips and other splits do not change the clips that remain.
    only_val = generate(tmp_path, **{**PARAMS, "num_videos": {"val": 1}, "num_solo": 0, "seed": 3})
    assert (only_val / "val" / "audio" / "val_0000.wav").read_bytes() == (dataset / "val" / "audio" / "val_0000.wav").read_bytes()
    assert not np.array_equal(_read(dataset / "val" / "audio" / "val_0000.wav")[:100],
                              _read(dataset / "test" / "audio" / "test_0000.wav")[:100])


@pytest.mark.parametrize("fixture", ["dataset", "additive"])
def test_sounding_flags_agree_with_source_energy(fixture, request):
    root = request.getfixturevalue(fixture)
    bounds = frame_bounds(FRAMES, FPS, RATE)
    checked = 0
    for record in _all_records(root):
        masks = record.load_masks()
        for instance_id, flags in zip(masks.instance_ids, masks.sounding, strict=True):
            if not flags.any():
                assert str(instance_id) not in record.sources  # distractors have no source
                continue
            audio = _read(record.sources[str(instance_id)])
            assert audio.shape == (int(SECONDS * RATE),)
            rms = np.array([np.sqrt(np.mean(audio[a:b] ** 2)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
            assert np.all(rms[flags] > 0.02), (record.video_id, instance_id, rms)
            assert np.all(rms[~flags] == 0.0), (record.video_id, instance_id, rms)
            checked += 1
    assert checked >= 8


@pytest.mark.parametrize("fixture", ["dataset", "additive"])
def test_mixture_is_exactly_the_sum_of_sources(fixture, request):
    for record in _all_records(request.getfixturevalue(fixture)):
        mixture = _read(record.audio_path)
        total = np.zeros_like(mixture)
        for instance_id in sorted(record.sources, key=int):
            total += _read(record.sources[instance_id])
        np.testing.assert_array_equal(total, mixture)
        assert 0.05 < np.abs(mixture).max() <= 0.9


def test_json_masks_agree_with_png_sounding_masks(dataset):
    for record in _all_records(dataset):
        masks = record.load_masks()
        png = record.extra["sounding_masks"]
        assert isinstance(png, PngMasks)
        np.testing.assert_array_equal(png.load().data, masks.union(sounding_only=True))
        assert masks.data.shape == (len(masks.instance_ids), FRAMES, SIZE, SIZE)
        # Visible masks of one frame never overlap (occlusion is resolved).
        assert masks.data.sum(axis=0).max() <= 1


def _erode(mask: np.ndarray, steps: int) -> np.ndarray:
    mask = mask.astype(bool)
    for _ in range(steps):
        padded = np.pad(mask, 1)
        mask = (padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:])
    return mask


def test_masks_agree_with_decoded_video(dataset):
    classes = {c.id: c for c in synth_classes(8)}
    palette = {name: np.array(rgb, float) / sum(rgb) for name, rgb in COLOURS.items()}
    checked = 0
    for record in _all_records(dataset):
        frames = record.load_frames().frames
        masks = record.load_masks()
        for k, category in enumerate(masks.category_ids):
            for t in range(FRAMES):
                inside = _erode(masks.data[k, t], 2)
                if inside.sum() < 12:
                    continue
                mean = frames[t][inside].astype(float).mean(axis=0)
                chroma = mean / mean.sum()
                nearest = min(palette, key=lambda name: np.abs(palette[name] - chroma).sum())
                assert nearest == classes[int(category)].colour_name, (record.video_id, k, t, mean)
                checked += 1
    assert checked > 50


def test_duplicates_larger_instance_is_louder(dataset):
    bounds = frame_bounds(FRAMES, FPS, RATE)
    pairs = 0
    for record in load_synth(dataset, split=["train", "val", "test"]):
        masks = record.load_masks()
        annotations = _annotations(record)
        for category in set(masks.category_ids.tolist()):
            same = [a for a in annotations if a["category_id"] == category and any(a["sounding"])]
            if len(same) < 2:
                continue
            small, large = sorted(same, key=lambda a: a["radius"])
            assert large["radius"] >= 1.5 * small["radius"]
            levels = []
            for a in (small, large):
                audio = _read(record.sources[str(a["id"])])
                on = np.concatenate([audio[bounds[t]:bounds[t + 1]] for t in range(FRAMES) if a["sounding"][t]])
                levels.append(np.sqrt(np.mean(on**2)))
            assert levels[1] > 1.4 * levels[0]
            # Nearer means in front: the larger one is never hidden behind the smaller one.
            areas = [np.array([x or 0 for x in a["areas"]]) for a in (small, large)]
            assert areas[1].min() > 0
            pairs += 1
    assert pairs >= 1


def _annotations(record):
    document = json.loads(record.masks.path.read_text())
    return [a for a in document["annotations"] if a["video_id"] == record.extra["ytvis_id"]]


def test_load_synth_round_trip(dataset):
    manifest = load_synth(dataset, split="train")
    assert manifest.name == "synthav" and len(manifest) == 4 and manifest.splits == ["train"]
    assert manifest.categories == ["background", *(c.name for c in synth_classes(8))]
    document = json.loads((dataset / "train" / "instances.json").read_text())
    for record, video in zip(manifest, document["videos"], strict=True):
        assert record.split == "train" and record.video_id == video["name"]
        assert record.video_path == dataset / "train" / "videos" / f"{record.video_id}.mp4"
        assert record.audio_path == dataset / "train" / "audio" / f"{record.video_id}.wav"
        frames, times = record.load_frames()
        assert frames.shape == (video["length"], video["height"], video["width"], 3)
        np.testing.assert_allclose(times, np.arange(video["length"]) / FPS)
        assert record.load_audio(RATE).shape == (int(SECONDS * RATE),)
        # The mp4's own soundtrack carries the mixture too.
        from avlab.media import read_audio

        soundtrack = read_audio(record.video_path, sample_rate=RATE)
        mixture = record.load_audio(RATE)
        n = min(len(soundtrack), len(mixture))
        assert np.corrcoef(soundtrack[:n], mixture[:n])[0, 1] > 0.9
        ids, sources = record.load_sources(RATE)
        assert ids == sorted(ids, key=int) and sources.shape == (len(ids), int(SECONDS * RATE))
        masks = record.load_masks()
        assert [str(i) for i, s in zip(masks.instance_ids, masks.sounding, strict=True) if s.any()] == ids
    both = load_synth(dataset, split=["train", "val"])
    assert both.splits == ["train", "val"] and len(both) == 5


def test_solo_clips(dataset):
    for split in ("train", "val", "test"):
        (record,) = load_synth(dataset, split=split, solo=True)
        masks = record.load_masks()
        assert masks.sounding.shape == (1, FRAMES) and masks.sounding.all()
        assert list(record.sources) == [str(masks.instance_ids[0])]
        assert record.category == load_synth(dataset, split=split, solo=True).categories[masks.category_ids[0]]
        np.testing.assert_array_equal(_read(record.sources[str(masks.instance_ids[0])]), _read(record.audio_path))


def test_dataset_card_records_parameters(dataset):
    card = read_card(dataset)
    assert card == json.loads((dataset / "dataset_card.json").read_text())
    parameters = card["parameters"]
    for name in ("size", "fps", "seconds", "sample_rate", "num_classes", "max_objects", "occlusion",
                 "distractors", "duplicates"):
        assert parameters[name] == PARAMS[name]
    assert parameters["seed"] == 3 and parameters["renderer"] == "auto"
    assert parameters["num_videos"] == 4 and parameters["num_solo"] == 1  # as given
    assert card["splits"] == parameters["splits"] == ["train", "val", "test"]
    assert {s: c["videos"] for s, c in card["counts"].items()} == {"train": 4, "val": 1, "test": 1}
    assert {s: c["solo_videos"] for s, c in card["counts"].items()} == {"train": 1, "val": 1, "test": 1}
    assert card["renderer"] == ("soundfont" if HAS_SOUNDFONT else "additive")
    assert card["counts"]["train"]["videos"] == 4 and card["counts"]["val"]["solo_videos"] == 1
    document = json.loads((dataset / "train" / "instances.json").read_text())
    assert card["counts"]["train"]["instances"] == len(document["annotations"])
    assert [c["name"] for c in card["classes"]] == [c.name for c in synth_classes(8)]
    assert {"instrument", "shape", "colour", "program"} <= set(document["categories"][0])
    assert card["avlab_version"]
    assert "SynthAV" in (dataset / "README.md").read_text()


@pytest.mark.skipif(not HAS_SOUNDFONT, reason="tinysoundfont is not installed")
def test_renderers_share_the_scene_but_not_the_sound(dataset, additive):
    card = json.loads((additive / "dataset_card.json").read_text())
    assert card["renderer"] == "additive"
    a, b = load_synth(dataset, split="train")[0], load_synth(additive, split="train")[0]
    np.testing.assert_array_equal(a.load_masks().data, b.load_masks().data)
    assert not np.array_equal(_read(a.audio_path), _read(b.audio_path))


def test_rendered_notes_are_tonal_at_the_class_pitch():
    violin = synth_classes(1)[0]
    rng = np.random.default_rng(0)
    notes = melody(rng, violin, 0.0, 1.0)
    note = notes[0]
    span = (int(note.start * RATE) + 400, int(note.end * RATE) - 200)
    renderers = ["additive", "soundfont"] if HAS_SOUNDFONT else ["additive"]
    for renderer in renderers:
        audio = render_notes(notes, violin, RATE, RATE, renderer=renderer)
        segment = audio[span[0]:span[1]] * np.hanning(span[1] - span[0])
        spectrum = np.abs(np.fft.rfft(segment, 1 << 15))
        peak = np.fft.rfftfreq(1 << 15, 1 / RATE)[np.argmax(spectrum)]
        f0 = 440.0 * 2 ** ((note.key - 69) / 12)
        harmonic = peak / f0
        assert abs(harmonic - round(harmonic)) < 0.05 and round(harmonic) >= 1, (renderer, peak, f0)


def test_gate_envelope_is_zero_outside_and_positive_inside():
    flags = np.array([False, True, True, False, True])
    envelope = gate_envelope(flags, 4, 1000, 1250)
    bounds = frame_bounds(5, 4, 1000)
    for t, flag in enumerate(flags):
        part = envelope[bounds[t]:bounds[t + 1]]
        assert (part > 0).all() if flag else (part == 0).all()
    assert envelope[250:500].min() > 0 and envelope[300] == 1.0 and envelope[250] < 1.0


def test_classes_are_distinct():
    classes = synth_classes(16)
    assert len({(c.shape, c.colour_name) for c in classes}) == 16
    assert {c.shape for c in classes[:8]} == set(SHAPES)
    assert len({c.colour_name for c in classes[:8]}) == 8
    with pytest.raises(ValueError):
        synth_classes(17)


def test_existing_dataset_needs_overwrite(tmp_path):
    small = {**PARAMS, "num_videos": {"train": 1}, "num_solo": 0, "renderer": "additive"}
    generate(tmp_path, **small)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        generate(tmp_path, **small)
    generate(tmp_path, **{**small, "num_videos": {"val": 1}}, overwrite=True)
    assert not (tmp_path / "train").exists() and (tmp_path / "val" / "instances.json").is_file()


@pytest.mark.parametrize(
    "changes",
    [{"seconds": 1.1}, {"size": 63}, {"occlusion": 1.5}, {"num_classes": 0}, {"renderer": "fm"},
     {"num_videos": {"train": 1}, "splits": ["val"]}, {"min_run": -1.0}],
)
def test_invalid_arguments(tmp_path, changes):
    with pytest.raises(ValueError):
        generate(tmp_path, **{**PARAMS, **changes})
    assert not (tmp_path / "dataset_card.json").exists()


def test_missing_split_is_a_dataset_error(dataset):
    from avlab.errors import DatasetError

    with pytest.raises(DatasetError, match="splits in the dataset card"):
        load_synth(dataset, split="holdout")


def test_auto_renderer_falls_back_to_additive_without_the_soundfont(monkeypatch):
    from avlab.datasets.synth import audio

    monkeypatch.setattr(audio, "soundfont_path", lambda: None)
    assert audio.resolve_renderer("auto") == "additive"
    with pytest.raises(RuntimeError, match="renderer='additive'"):
        audio.resolve_renderer("soundfont")


@pytest.mark.skipif(not HAS_SOUNDFONT, reason="tinysoundfont is not installed")
def test_soundfont_renders_are_reproducible_whatever_came_before():
    classes = synth_classes(3)
    notes = melody(np.random.default_rng(1), classes[0], 0.0, 0.5)
    first = render_notes(notes, classes[0], RATE // 2, RATE, renderer="soundfont")
    render_notes(melody(np.random.default_rng(2), classes[2], 0.0, 0.5), classes[2], RATE // 2, RATE, renderer="soundfont")
    np.testing.assert_array_equal(render_notes(notes, classes[0], RATE // 2, RATE, renderer="soundfont"), first)


@pytest.mark.skipif(not HAS_SOUNDFONT, reason="tinysoundfont is not installed")
def test_every_class_key_is_audible_in_the_soundfont():
    from avlab.datasets.synth.audio import Note

    for cls in synth_classes(16):
        low, high = cls.pitch_range
        scale = {low + 12 * octave + degree for octave in range(8) for degree in (0, 2, 4, 7, 9)}
        for key in sorted(k for k in scale if k <= high):  # the keys melodies use
            audio = render_notes([Note(0.0, 0.3, key)], cls, int(0.3 * RATE), RATE, renderer="soundfont")
            assert np.sqrt(np.mean(audio[int(0.1 * RATE):] ** 2)) > 0.005, (cls.name, key)


def _runs(flags: np.ndarray) -> list[int]:
    edges = np.flatnonzero(np.diff(flags.astype(np.int8))) + 1
    return np.diff(np.concatenate([[0], edges, [len(flags)]])).tolist()


@pytest.mark.parametrize("min_run", [0.0, 1.0, 1.5])
def test_sounding_runs_last_at_least_min_run_except_at_the_clip_end(min_run):
    # Per-frame audio hears about a second around the frame: shorter runs mislabel what is heard.
    from avlab.datasets.synth.scene import SceneConfig, sample_scene

    config = SceneConfig(size=64, fps=4, num_frames=24, classes=synth_classes(8), min_run=min_run)
    shortest = max(1, int(np.ceil(min_run * config.fps)))
    seen_both = 0
    for seed in range(40):
        for obj in sample_scene(np.random.default_rng(seed), config).objects:
            if obj.loudness == 0:  # a distractor: silent throughout
                assert not obj.sounding.any()
                continue
            runs = _runs(obj.sounding)
            assert all(r >= shortest for r in runs[:-1]), (seed, runs)
            seen_both += obj.sounding.any() and not obj.sounding.all()
    assert seen_both > 0
