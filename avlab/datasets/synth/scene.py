"""SynthAV scenes: which objects appear, how they move and overlap, and when each one sounds.

A scene is sampled from a numpy Generator and holds everything the renderers need, so the
pictures, masks and sounds of a clip all follow from one random draw.

Objects move in straight lines and bounce off the frame borders. Depth follows size: a larger
object is nearer, drawn in front of smaller ones, and louder (its loudness is proportional to
its radius). Performers sound in some runs of frames and are silent in others; distractors
(classes not performing in the clip) never sound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from avlab.datasets.synth.classes import SynthClass

__all__ = ["Background", "Scene", "SceneConfig", "SceneObject", "sample_scene"]

BACKGROUND_KINDS = ("gradient", "noise", "stripes", "tiles")


@dataclass(frozen=True)
class SceneConfig:
    """Knobs of the scene sampler.

    Attributes:
        size: Frame side in pixels.
        fps: Frame rate.
        num_frames: Frames per clip.
        classes: The classes to draw from.
        max_objects: Most performers (objects that sound at some point) per clip.
        occlusion: Probability that each further object is aimed to cross an earlier one.
        distractors: Expected number of silent distractors per clip (floor(d) always, one
            more with probability frac(d)).
        duplicates: Probability that a clip with two or more performers has two of one class,
            at clearly different sizes (the larger one nearer and louder).
        min_run: Shortest sounding or silent run of a performer, in seconds (rounded up to
            whole frames). Per-frame audio features hear a window around the frame (AFCV's
            0.96 s): runs shorter than it make a frame's label disagree with what is heard.
    """

    size: int
    fps: float
    num_frames: int
    classes: tuple[SynthClass, ...]
    max_objects: int = 3
    occlusion: float = 0.5
    distractors: float = 0.5
    duplicates: float = 0.25
    min_run: float = 1.0


@dataclass(frozen=True, eq=False)
class SceneObject:
    """One object of a scene.

    Attributes:
        class_id: `SynthClass.id`.
        radius: Size in pixels (the shape fits in a circle of this radius).
        depth: Drawing order: an object with a larger depth is in front.
        centres: (T, 2) float x, y in pixels.
        angles: (T,) rotation in radians.
        sounding: (T,) bool, whether it is heard during each frame's display period.
        loudness: Gain of its sound relative to an object of radius 0.15 * size.
    """

    class_id: int
    radius: float
    depth: int
    centres: np.ndarray = field(repr=False)
    angles: np.ndarray = field(repr=False)
    sounding: np.ndarray = field(repr=False)
    loudness: float

    @property
    def is_performer(self) -> bool:
        return bool(self.sounding.any())


@dataclass(frozen=True, eq=False)
class Background:
    """A static textured background.

    Attributes:
        colour: (3,) float RGB in [0, 1], low saturation so objects stand out.
        kind: One of ``"gradient"``, ``"noise"``, ``"stripes"``, ``"tiles"``.
        angle: Direction of gradients and stripes, radians.
        period: Stripe or tile period as a fraction of the frame side.
        noise: (6, 6) values in [-1, 1], the coarse grid of the ``"noise"`` texture.
        contrast: Amplitude of the texture's brightness variation.
    """

    colour: np.ndarray
    kind: str
    angle: float
    period: float
    noise: np.ndarray = field(repr=False)
    contrast: float


@dataclass(frozen=True, eq=False)
class Scene:
    """A clip's content: the background and the objects, performers first.

    Attributes:
        config: The knobs it was sampled with.
        background: The background.
        objects: Performers, then distractors; this is the annotation order.
    """

    config: SceneConfig
    background: Background
    objects: tuple[SceneObject, ...]

    @property
    def sounding(self) -> np.ndarray:
        """(I, T) bool sounding flags."""
        return np.stack([o.sounding for o in self.objects])


def sample_scene(rng: np.random.Generator, config: SceneConfig, *, solo: bool = False) -> Scene:
    """Draw one scene.

    Args:
        rng: Source of randomness (one per clip keeps clips independent of each other).
        config: The knobs.
        solo: One performer sounding in every frame and no distractor (mix-and-separate clips).

    Returns:
        The `Scene`.

    Example:
        >>> from avlab.datasets.synth.classes import synth_classes
        >>> config = SceneConfig(size=64, fps=8, num_frames=8, classes=synth_classes(4))
        >>> scene = sample_scene(np.random.default_rng(0), config, solo=True)
        >>> len(scene.objects), bool(scene.objects[0].sounding.all())
        (1, True)
    """
    size, frames, classes = config.size, config.num_frames, config.classes
    num_classes = len(classes)
    duplicate = False
    if solo:
        performers = 1
        extra = 0
    else:
        performers = int(rng.integers(1, config.max_objects + 1))
        duplicate = performers >= 2 and rng.random() < config.duplicates
        performers = min(performers, num_classes + int(duplicate))
        whole, part = divmod(config.distractors, 1.0)
        extra = int(whole) + int(rng.random() < part)

    distinct = [int(c) for c in rng.permutation(num_classes)]
    chosen = distinct[: performers - int(duplicate)]
    performer_classes = ([chosen[0]] if duplicate else []) + chosen
    distractor_classes = distinct[len(chosen) : len(chosen) + extra]

    radii: list[float] = []
    for k in range(len(performer_classes) + len(distractor_classes)):
        if solo:
            radii.append(rng.uniform(0.18, 0.26) * size)
        elif duplicate and k == 0:
            radii.append(rng.uniform(0.18, 0.24) * size)
        elif duplicate and k == 1:
            radii.append(radii[0] / rng.uniform(1.6, 1.9))
        else:
            radii.append(rng.uniform(0.11, 0.2) * size)
    radii = [max(r, 4.0) for r in radii]
    # Larger is nearer: depth ranks by radius (ties: later objects in front).
    order = sorted(range(len(radii)), key=lambda k: (radii[k], k))
    depth = {k: rank for rank, k in enumerate(order)}

    times = np.arange(frames) / config.fps
    centres: list[np.ndarray] = []
    objects = []
    for k, class_index in enumerate(performer_classes + distractor_classes):
        radius = radii[k]
        velocity = _velocity(rng, size)
        if k > 0 and rng.random() < config.occlusion:
            # Aim at an earlier object: both occupy nearly the same place at a middle frame.
            other = int(rng.integers(0, k))
            meet = int(rng.integers(frames // 4, max(frames // 4, (3 * frames) // 4) + 1))
            offset = rng.uniform(-0.5, 0.5, 2) * min(radius, radii[other])
            anchor = np.clip(centres[other][meet] + offset, radius, size - radius)
            path = _bounce(anchor[None] + velocity[None] * (times - times[meet])[:, None], radius, size)
        else:
            start = rng.uniform(radius, size - radius, 2)
            path = _bounce(start[None] + velocity[None] * times[:, None], radius, size)
        centres.append(path)
        angles = rng.uniform(0, 2 * np.pi) + rng.uniform(-1.5, 1.5) * times
        performer = k < len(performer_classes)
        if not performer:
            sounding = np.zeros(frames, bool)
        elif solo:
            sounding = np.ones(frames, bool)
        else:
            sounding = _schedule(rng, frames, min_frames=max(1, math.ceil(config.min_run * config.fps - 1e-9)))
        objects.append(SceneObject(
            class_id=classes[class_index].id, radius=float(radius), depth=depth[k], centres=path,
            angles=angles, sounding=sounding, loudness=float(radius / (0.15 * size)) if performer else 0.0,
        ))
    return Scene(config, _background(rng), tuple(objects))


def _velocity(rng: np.random.Generator, size: int) -> np.ndarray:
    speed = rng.uniform(0.15, 0.5) * size  # pixels per second
    heading = rng.uniform(0, 2 * np.pi)
    return speed * np.array([np.cos(heading), np.sin(heading)])


def _bounce(positions: np.ndarray, radius: float, size: int) -> np.ndarray:
    """Fold unconstrained straight-line positions into [radius, size - radius] (reflections)."""
    low, span = radius, size - 2 * radius
    folded = np.mod(positions - low, 2 * span)
    return low + np.where(folded > span, 2 * span - folded, folded)


def _schedule(rng: np.random.Generator, frames: int, *, min_frames: int = 1) -> np.ndarray:
    """Alternating sounding / silent runs of at least `min_frames` (where the clip allows);
    both states occur whenever there are two or more frames."""
    flags = np.zeros(frames, bool)
    state = bool(rng.random() < 0.6)
    start = 0
    shortest = max(1, frames // 8, min(min_frames, frames // 2))
    while start < frames:
        length = int(rng.integers(shortest, max(shortest + 1, frames // 2) + 1))
        flags[start : start + length] = state
        state = not state
        start += length
    if frames >= 2 and (flags.all() or not flags.any()):
        length = max(1, frames // 3, min(min_frames, frames // 2))
        begin = 0 if rng.random() < 0.5 else frames - length  # at an end: no run is cut short
        flags[begin : begin + length] = not flags[0]
    elif frames == 1:
        flags[:] = True
    return flags


def _background(rng: np.random.Generator) -> Background:
    import colorsys

    colour = np.array(colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.04, 0.2), rng.uniform(0.3, 0.7)))
    return Background(
        colour=colour,
        kind=BACKGROUND_KINDS[int(rng.integers(len(BACKGROUND_KINDS)))],
        angle=float(rng.uniform(0, np.pi)),
        period=float(rng.uniform(0.12, 0.35)),
        noise=rng.uniform(-1, 1, (6, 6)),
        contrast=float(rng.uniform(0.05, 0.14)),
    )
