"""Generating SynthAV: the audio-visual benchmark with full ground truth, written as real files.

Seeding: clip k of split s is drawn from ``SeedSequence(seed, spawn_key=(crc32(s), solo, k))``,
so splits are independent of each other, and a clip does not change when more clips are asked
for. The same arguments (and renderer) give the same masks and byte-identical wav files.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import zlib
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from avlab.datasets.synth.audio import mix, render_source, resolve_renderer, soundfont_path
from avlab.datasets.synth.classes import SynthClass, synth_classes
from avlab.datasets.synth.render import render_scene
from avlab.datasets.synth.scene import SceneConfig, sample_scene
from avlab.datasets.synth.writer import Clip, video_entry, write_clip, write_instances

__all__ = ["generate", "clip_seed"]

CARD = "dataset_card.json"
DEFAULT_SPLITS = ("train", "val", "test")


def generate(
    root: str | os.PathLike[str],
    *,
    num_videos: int | Mapping[str, int],
    size: int = 128,
    fps: float = 8,
    seconds: float = 2.0,
    sample_rate: int = 11025,
    num_classes: int = 8,
    max_objects: int = 3,
    seed: int = 0,
    splits: Sequence[str] | None = None,
    num_solo: int | Mapping[str, int] | None = None,
    occlusion: float = 0.5,
    distractors: float = 0.5,
    duplicates: float = 0.25,
    min_run: float = 1.0,
    renderer: str = "auto",
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Generate a SynthAV dataset under `root`.

    Every clip shows 1..`max_objects` performers (textured shapes of distinct classes moving
    with bounces and occluding each other, larger ones nearer) on a textured background, plus
    silent distractors; each performer plays its class's instrument during some runs of frames
    and is silent in others. Solo clips (one performer, sounding throughout) serve
    mix-and-separate training. Layout under `root`::

        dataset_card.json, README.md
        {split}/videos/{vid}.mp4, audio/{vid}.wav, sources/{vid}/{id}.wav,
                masks/{vid}/{frame:05d}.png, instances.json
        {split}/solo/...             the same for the split's solo clips

    Args:
        root: Output folder.
        num_videos: Clips per split: an int gives the first split (train) that many and every
            other split a quarter (at least 1); a mapping gives each split its count.
        size: Frame side in pixels (even).
        fps: Frame rate; ``seconds * fps`` must be a whole number of frames.
        seconds: Clip length.
        sample_rate: Audio rate in Hz.
        num_classes: Classes used (1..16), the first ones of the fixed class table.
        max_objects: Most performers per clip.
        seed: Base seed.
        splits: Split names (default: the mapping's keys, or train, val, test).
        num_solo: Solo clips per split, by the same rule as `num_videos`; None: as many as
            the split's clips; 0: none.
        occlusion: Probability that each further object is aimed to cross an earlier one.
        distractors: Expected number of silent distractors per clip.
        duplicates: Probability that a clip with two or more performers has two of one class
            (at clearly different sizes, the larger louder).
        min_run: Shortest sounding or silent run of a performer, in seconds (at least the
            audio window that per-frame features hear, so labels agree with the sound).
        renderer: ``"soundfont"`` (General MIDI via tinysoundfont), ``"additive"`` (built-in
            synthesizer), or ``"auto"`` (the soundfont when available). The dataset card
            records which one ran.
        overwrite: Replace an existing SynthAV dataset at `root`.
        progress: Show a progress bar.

    Returns:
        `root`, as a Path; load it with `load_synth`. ``dataset_card.json`` (see `read_card`)
        records the arguments as given under ``"parameters"``, the splits under ``"splits"``,
        and the resolved clip counts under ``"counts"``.

    Raises:
        FileExistsError: `root` already holds SynthAV files and not `overwrite`.
        ValueError: An argument is out of range.

    Example:
        >>> import tempfile, json
        >>> root = generate(tempfile.mkdtemp(), num_videos=1, size=32, fps=4, seconds=1.0,
        ...                 sample_rate=8000, num_solo=0, renderer="additive")
        >>> card = json.loads((root / "dataset_card.json").read_text())
        >>> card["counts"]["train"]["videos"], sorted(p.name for p in (root / "train").iterdir())
        (1, ['audio', 'instances.json', 'masks', 'sources', 'videos'])
    """
    root = Path(root)
    num_frames = _check(size, fps, seconds, sample_rate, max_objects, occlusion, distractors, duplicates)
    if min_run < 0:
        raise ValueError(f"min_run must be >= 0 seconds, got {min_run}")
    if splits is None:
        splits = tuple(num_videos) if isinstance(num_videos, Mapping) else DEFAULT_SPLITS
    splits = tuple(splits)
    if len(set(splits)) != len(splits) or not splits:
        raise ValueError(f"splits must be distinct names, got {splits}")
    videos = _counts(num_videos, splits, "num_videos")
    solos = dict(videos) if num_solo is None else _counts(num_solo, splits, "num_solo")
    used = resolve_renderer(renderer)
    classes = synth_classes(num_classes)
    config = SceneConfig(size=size, fps=fps, num_frames=num_frames, classes=classes, max_objects=max_objects,
                         occlusion=occlusion, distractors=distractors, duplicates=duplicates, min_run=min_run)
    _prepare(root, splits, overwrite)

    from tqdm.auto import tqdm

    bar = tqdm(total=sum(videos.values()) + sum(solos.values()), desc="SynthAV", disable=not progress)
    counts: dict[str, dict[str, int]] = {}
    for split in splits:
        stats: dict[str, int] = {}
        for solo, count in ((False, videos[split]), (True, solos[split])):
            if count == 0:
                continue
            folder = root / split / "solo" if solo else root / split
            entries: list[dict[str, Any]] = []
            annotations: list[dict[str, Any]] = []
            for k in range(count):
                rng = np.random.default_rng(clip_seed(seed, split, solo=solo, index=k))
                video_id = f"{split}_solo_{k:04d}" if solo else f"{split}_{k:04d}"
                clip = _make_clip(rng, config, video_id, len(annotations) + 1, solo=solo, seconds=seconds,
                                  sample_rate=sample_rate, renderer=used)
                write_clip(folder, clip)
                entry, clip_annotations = video_entry(clip, k + 1)
                entries.append(entry)
                annotations.extend(clip_annotations)
                bar.update(1)
            info = {"description": f"SynthAV {split}{' solo' if solo else ''}", "seed": seed, "renderer": used}
            write_instances(folder, entries, annotations, classes, info)
            prefix = "solo_" if solo else ""
            stats[f"{prefix}videos"] = count
            stats[f"{prefix}instances"] = len(annotations)
            stats[f"{prefix}performers"] = sum(any(a["sounding"]) for a in annotations)
            stats[f"{prefix}sounding_frames"] = sum(sum(a["sounding"]) for a in annotations)
        counts[split] = {"videos": 0, "solo_videos": 0, **stats}
    bar.close()

    given = dict(
        num_videos=dict(num_videos) if isinstance(num_videos, Mapping) else num_videos, size=size, fps=fps,
        seconds=seconds, sample_rate=sample_rate, num_classes=num_classes, max_objects=max_objects, seed=seed,
        splits=list(splits), num_solo=dict(num_solo) if isinstance(num_solo, Mapping) else num_solo,
        occlusion=occlusion, distractors=distractors, duplicates=duplicates, min_run=min_run, renderer=renderer,
    )
    card = _card(parameters=given, renderer=used, counts=counts, classes=classes, num_frames=num_frames)
    (root / CARD).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    (root / "README.md").write_text(_readme(card), encoding="utf-8")
    return root


def clip_seed(seed: int, split: str, *, solo: bool, index: int) -> np.random.SeedSequence:
    """The seed sequence of one clip: ``SeedSequence(seed, spawn_key=(crc32(split), solo, index))``.

    Example:
        >>> a = np.random.default_rng(clip_seed(0, "train", solo=False, index=0)).random()
        >>> b = np.random.default_rng(clip_seed(0, "val", solo=False, index=0)).random()
        >>> a != b
        True
    """
    return np.random.SeedSequence(seed, spawn_key=(zlib.crc32(split.encode("utf-8")), int(solo), index))


def _make_clip(rng: np.random.Generator, config: SceneConfig, video_id: str, first_id: int, *, solo: bool,
               seconds: float, sample_rate: int, renderer: str) -> Clip:
    scene = sample_scene(rng, config, solo=solo)
    by_id = {c.id: c for c in config.classes}
    frames, visible = render_scene(scene, by_id)
    instance_ids = tuple(range(first_id, first_id + len(scene.objects)))
    num_samples = int(round(seconds * sample_rate))
    raw = {
        instance_id: render_source(rng, by_id[obj.class_id], obj.sounding, fps=config.fps, sample_rate=sample_rate,
                                   num_samples=num_samples, renderer=renderer, loudness=obj.loudness)
        for obj, instance_id in zip(scene.objects, instance_ids, strict=True)
        if obj.is_performer
    }
    scaled, mixture = mix(list(raw.values()))
    return Clip(video_id, scene, instance_ids, frames, visible, dict(zip(raw, scaled, strict=True)), mixture,
                config.fps, sample_rate)


def _check(size: int, fps: float, seconds: float, sample_rate: int, max_objects: int, occlusion: float,
           distractors: float, duplicates: float) -> int:
    if size < 16 or size % 2:
        raise ValueError(f"size must be an even number >= 16 (H.264 needs even sides), got {size}")
    if fps <= 0 or seconds <= 0 or sample_rate <= 0:
        raise ValueError("fps, seconds and sample_rate must be positive")
    num_frames = int(round(seconds * fps))
    if num_frames < 1 or abs(num_frames - seconds * fps) > 1e-6:
        raise ValueError(f"seconds * fps must be a whole number of frames, got {seconds} * {fps}")
    if max_objects < 1:
        raise ValueError(f"max_objects must be >= 1, got {max_objects}")
    for name, value in (("occlusion", occlusion), ("duplicates", duplicates)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} is a probability, got {value}")
    if distractors < 0:
        raise ValueError(f"distractors must be >= 0, got {distractors}")
    return num_frames


def _counts(count: int | Mapping[str, int], splits: tuple[str, ...], name: str) -> dict[str, int]:
    if isinstance(count, Mapping):
        unknown = set(count) - set(splits)
        if unknown:
            raise ValueError(f"{name} names splits {sorted(unknown)} that are not in {list(splits)}")
        counts = {s: int(count.get(s, 0)) for s in splits}
    else:
        if count < 0 or (name == "num_videos" and count < 1):
            raise ValueError(f"{name} must be {'>= 1' if name == 'num_videos' else '>= 0'}, got {count}")
        counts = {s: int(count) if k == 0 else (max(1, int(count) // 4) if count else 0) for k, s in enumerate(splits)}
    if any(v < 0 for v in counts.values()):
        raise ValueError(f"{name} counts must be >= 0, got {counts}")
    return counts


def _prepare(root: Path, splits: tuple[str, ...], overwrite: bool) -> None:
    card = root / CARD
    targets = [card, root / "README.md", *(root / s for s in splits)]
    if card.is_file():
        # An unreadable card only means fewer folders are known to be SynthAV's.
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            targets += [root / s for s in json.loads(card.read_text(encoding="utf-8"))["splits"]]
    existing = [p for p in dict.fromkeys(targets) if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists; pass overwrite=True to replace the SynthAV dataset at {root}")
    for path in existing:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    root.mkdir(parents=True, exist_ok=True)


def _card(*, parameters: dict[str, Any], renderer: str, counts: dict[str, dict[str, int]],
          classes: tuple[SynthClass, ...], num_frames: int) -> dict[str, Any]:
    try:
        version = metadata.version("avlab")
    except metadata.PackageNotFoundError:
        version = "unknown"
    sf2 = soundfont_path()
    return {
        "name": "SynthAV",
        "format_version": 1,
        "avlab_version": version,
        "parameters": parameters,
        "splits": parameters["splits"],
        "renderer": renderer,
        "soundfont": sf2.name if renderer == "soundfont" and sf2 is not None else None,
        "num_frames": num_frames,
        "seeding": "clip k of split s: numpy SeedSequence(seed, spawn_key=(crc32(s), solo, k))",
        "counts": counts,
        "classes": [c.to_json() for c in classes],
        "layout": {
            "{split}/videos/{vid}.mp4": "H.264 frames, AAC soundtrack of the mixture",
            "{split}/audio/{vid}.wav": "mixture, float32 wav, exactly the sum of the source wavs in id order",
            "{split}/sources/{vid}/{id}.wav": "one float32 wav per performer, named by annotation id",
            "{split}/masks/{vid}/{frame:05d}.png": "sounding objects' visible masks, 0/255",
            "{split}/instances.json": "YouTube-VIS annotations (compressed RLE), with per-frame 'sounding' flags, "
                                      "and per-video fps, sample_rate and duration",
            "{split}/solo/": "solo clips (one performer, sounding throughout), same layout",
        },
    }


def _readme(card: dict[str, Any]) -> str:
    p = card["parameters"]
    lines = [
        "# SynthAV",
        "",
        "A generated audio-visual segmentation and separation benchmark with full ground truth,",
        f"written by avlab {card['avlab_version']}.",
        "",
        f"- {p['size']}x{p['size']} px, {p['fps']} fps, {p['seconds']} s clips ({card['num_frames']} frames), "
        f"audio {p['sample_rate']} Hz mono",
        f"- {p['num_classes']} classes, up to {p['max_objects']} performers per clip; occlusion {p['occlusion']}, "
        f"distractors {p['distractors']}, duplicates {p['duplicates']}, shortest sounding run {p.get('min_run', 0)} s",
        f"- sound rendered with the {card['renderer']} renderer; seed {p['seed']}",
        "",
        "| split | clips | solo clips | instances | performers |",
        "|---|---|---|---|---|",
    ]
    for split, c in card["counts"].items():
        lines.append(f"| {split} | {c['videos']} | {c['solo_videos']} | {c.get('instances', 0)} | {c.get('performers', 0)} |")
    lines += ["", "## Classes", "", "| id | name | instrument | shape | fill | colour |", "|---|---|---|---|---|---|"]
    for c in card["classes"]:
        lines.append(f"| {c['id']} | {c['name']} | {c['instrument']} | {c['shape']} | {c['fill']} | {c['colour_name']} |")
    lines += ["", "## Files", ""]
    lines += [f"- `{path}`: {what}" for path, what in card["layout"].items()]
    lines += ["", "Load with `avlab.datasets.synth.load_synth(root, split=\"train\")`.", ""]
    return "\n".join(lines)
