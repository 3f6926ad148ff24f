"""Drawing SynthAV scenes: RGB frames and the visible mask of every object.

Shapes are rasterised at pixel centres with hard edges, so the masks are exactly the pixels
each object colours. Objects are drawn far to near; an object's visible mask is its shape
minus the shapes of all nearer objects.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from avlab.datasets.synth.classes import SynthClass
from avlab.datasets.synth.scene import Background, Scene

__all__ = ["render_background", "render_scene", "shape_mask"]

_DARK = 0.45  # brightness of the second colour of patterned fills


def render_scene(scene: Scene, classes: dict[int, SynthClass]) -> tuple[np.ndarray, np.ndarray]:
    """Draw every frame of a scene.

    Args:
        scene: The scene.
        classes: Class id -> `SynthClass`.

    Returns:
        ``(frames, visible)``.

    Shape:
        frames: (T, H, W, 3) uint8; visible: (I, T, H, W) uint8 0/1, objects in scene order.

    Example:
        >>> from avlab.datasets.synth.classes import synth_classes
        >>> from avlab.datasets.synth.scene import SceneConfig, sample_scene
        >>> config = SceneConfig(size=32, fps=4, num_frames=2, classes=synth_classes(3))
        >>> scene = sample_scene(np.random.default_rng(1), config)
        >>> frames, visible = render_scene(scene, {c.id: c for c in config.classes})
        >>> frames.shape, visible.shape[1:]
        ((2, 32, 32, 3), (2, 32, 32))
    """
    config = scene.config
    size, frames_count = config.size, config.num_frames
    background = render_background(scene.background, size)
    frames = np.empty((frames_count, size, size, 3), np.float32)
    visible = np.zeros((len(scene.objects), frames_count, size, size), np.uint8)
    far_to_near = sorted(range(len(scene.objects)), key=lambda k: scene.objects[k].depth)
    for t in range(frames_count):
        picture = background.copy()
        covered = np.zeros((size, size), bool)
        shapes = {}
        for k in far_to_near:
            obj = scene.objects[k]
            cls = classes[obj.class_id]
            cx, cy = obj.centres[t]
            mask, u, v = shape_mask(cls.shape, float(cx), float(cy), obj.radius, float(obj.angles[t]), size)
            colour = np.asarray(cls.colour, np.float32) / 255.0
            dark = _pattern(cls.fill, u, v, obj.radius)
            region = picture[mask]
            region[:] = colour
            region[dark] *= _DARK
            picture[mask] = region
            shapes[k] = mask
        for k in reversed(far_to_near):
            visible[k, t] = shapes[k] & ~covered
            covered |= shapes[k]
        frames[t] = picture
    return np.clip(np.rint(frames * 255.0), 0, 255).astype(np.uint8), visible


def shape_mask(
    shape: str, cx: float, cy: float, radius: float, angle: float, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rasterise one shape on a square frame.

    Args:
        shape: One of `avlab.datasets.synth.classes.SHAPES`.
        cx: Centre x in pixels (pixel j covers [j, j + 1)).
        cy: Centre y in pixels.
        radius: The shape fits in a circle of this radius.
        angle: Rotation, radians.
        size: Frame side.

    Returns:
        ``(mask, u, v)``: the (size, size) bool mask, and the object-frame coordinates (in
        pixels, rotated with the object) of the pixels inside it, for textures.

    Example:
        >>> mask, _, _ = shape_mask("square", 8.0, 8.0, 4.0, 0.0, 16)
        >>> int(mask.sum())
        36
    """
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dx, dy = x - cx, y - cy
    c, s = np.cos(angle), np.sin(angle)
    u, v = (dx * c + dy * s) / radius, (-dx * s + dy * c) / radius  # normalised object frame
    if shape == "circle":
        inside = u * u + v * v <= 1.0
    elif shape == "ring":
        rho = u * u + v * v
        inside = (rho <= 1.0) & (rho >= 0.5**2)
    elif shape == "square":
        inside = np.maximum(np.abs(u), np.abs(v)) <= 0.75
    elif shape == "diamond":
        inside = np.abs(u) + np.abs(v) <= 1.0
    elif shape == "cross":
        au, av = np.abs(u), np.abs(v)
        inside = ((au <= 0.32) & (av <= 0.95)) | ((av <= 0.32) & (au <= 0.95))
    elif shape in ("triangle", "hexagon", "star"):
        inside = _inside_polygon(u, v, _polygon(shape))
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return inside, u[inside] * radius, v[inside] * radius


def render_background(background: Background, size: int) -> np.ndarray:
    """Draw a static background texture.

    Returns:
        (size, size, 3) float32 RGB in [0, 1].
    """
    y, x = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / size
    along = x * np.cos(background.angle) + y * np.sin(background.angle)
    if background.kind == "gradient":
        texture = 2.0 * along - 1.0
    elif background.kind == "stripes":
        texture = np.sin(2 * np.pi * along / background.period)
    elif background.kind == "tiles":
        texture = np.where((np.floor(x / background.period) + np.floor(y / background.period)) % 2 == 0, 1.0, -1.0)
    else:
        coarse = Image.fromarray(background.noise.astype(np.float32), mode="F")
        texture = np.asarray(coarse.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)
    shade = 1.0 + background.contrast * np.clip(texture, -1.0, 1.0)
    return np.clip(shade[..., None] * background.colour[None, None, :], 0.0, 1.0).astype(np.float32)


def _pattern(fill: str, u: np.ndarray, v: np.ndarray, radius: float) -> np.ndarray:
    """Which pixels of a patterned fill take the dark shade (u, v in pixels, object frame)."""
    period = max(4.0, radius * 0.55)
    if fill == "solid":
        return np.zeros(u.shape, bool)
    if fill == "striped":
        return np.floor(u / (period / 2)) % 2 == 1
    if fill == "checkered":
        return (np.floor(u / (period / 2)) + np.floor(v / (period / 2))) % 2 == 1
    if fill == "dotted":
        du = np.mod(u, period) - period / 2
        dv = np.mod(v, period) - period / 2
        return du * du + dv * dv <= (0.28 * period) ** 2
    raise ValueError(f"unknown fill {fill!r}")


def _polygon(shape: str) -> np.ndarray:
    """(V, 2) vertices in the unit circle, pointing up (negative v)."""
    if shape == "triangle":
        angles = -np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        return np.stack([np.cos(angles), np.sin(angles)], axis=1)
    if shape == "hexagon":
        angles = np.arange(6) * np.pi / 3
        return np.stack([np.cos(angles), np.sin(angles)], axis=1)
    angles = -np.pi / 2 + np.arange(10) * np.pi / 5
    radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _inside_polygon(u: np.ndarray, v: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Even-odd rule point-in-polygon test, vectorised over points."""
    inside = np.zeros(u.shape, bool)
    for (x0, y0), (x1, y1) in zip(vertices, np.roll(vertices, -1, axis=0), strict=True):
        crosses = (y0 > v) != (y1 > v)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = x0 + (v - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (u < at)
    return inside
