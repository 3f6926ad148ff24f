"""Computing everything a store holds for one video: decoded inputs, backbone features, ground truth.

Split in two so the cache can overlap them: `load_inputs` (decode, audio features, ground truth:
I/O and numpy, run in a loader thread or a dask worker) and `compute_visual` (the backbone
forward: torch, on the main thread or the worker's device).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from avlab.datasets.manifest import VideoRecord
from avlab.errors import AvlabError, MediaError, MissingAudioError
from avlab.store import schema
from avlab.store.plan import VideoPlan
from avlab.store.recipe import Recipe

__all__ = ["VideoInputs", "compute_visual", "load_inputs", "view_frames", "view_masks"]

# The separation STFT and the raw audio share one rate (SPEC section 2).
SEPARATION_RATE = 11025
LOGMEL_RATE = 16000


@dataclass
class VideoInputs:
    """One video, decoded and ready for the backbone.

    Attributes:
        frames: (V, T, H, W, 3) uint8, one stack per view.
        arrays: Everything but the visual features, by store variable name, without the video
            dim and unpadded (see `avlab.store.schema`).
        notes: Things worth telling the user that did not stop the video (no audio track).
    """

    frames: np.ndarray
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def view_frames(view: str, frames: np.ndarray) -> np.ndarray:
    """One cached view of frames (T, H, W, 3) uint8.

    ``"original"`` is the identity; ``"hflip"`` mirrors left-right; ``"zoom"`` crops the central
    80 % and scales it back up (bilinear). `view_masks` transforms masks alike.

    Example:
        >>> f = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
        >>> bool((view_frames("hflip", f)[:, :, 0] == f[:, :, -1]).all())
        True
    """
    if view == schema.VIEWS_ORIGINAL:
        return frames
    if view == "hflip":
        return frames[:, :, ::-1].copy()
    if view == "zoom":
        height, width = frames.shape[1:3]
        top, left = round(0.1 * height), round(0.1 * width)
        crop = frames[:, top : height - top, left : width - left]
        tensor = torch.from_numpy(np.ascontiguousarray(crop)).permute(0, 3, 1, 2).float()
        zoomed = torch.nn.functional.interpolate(tensor, size=(height, width), mode="bilinear", align_corners=False)
        return zoomed.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    raise ValueError(f"unknown view {view!r}")


def view_masks(view: str, masks: np.ndarray) -> np.ndarray:
    """One cached view of masks (..., h, w): the geometry of `view_frames`, nearest neighbour.

    Example:
        >>> m = np.eye(4, dtype=np.uint8)
        >>> view_masks("hflip", m)[0].tolist()
        [0, 0, 0, 1]
    """
    if view == schema.VIEWS_ORIGINAL:
        return masks
    if view == "hflip":
        return masks[..., ::-1].copy()
    if view == "zoom":
        height, width = masks.shape[-2:]
        top, left = round(0.1 * height), round(0.1 * width)
        return _resize_nearest(masks[..., top : height - top, left : width - left], (height, width))
    raise ValueError(f"unknown view {view!r}")


def _resize_nearest(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of the last two axes (pixel centres mapped, no shift)."""
    height, width = masks.shape[-2:]
    rows = np.minimum(((np.arange(size[0]) + 0.5) * height / size[0]).astype(np.int64), height - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * width / size[1]).astype(np.int64), width - 1)
    return masks[..., rows[:, None], cols[None, :]]


def _align(annotated_times: np.ndarray, cached_times: np.ndarray, period: float) -> np.ndarray:
    """For each annotated time, the cached frame shown within half a period of it, else -1."""
    nearest = np.abs(annotated_times[:, None] - cached_times[None, :]).argmin(axis=1)
    close = np.abs(cached_times[nearest] - annotated_times) <= period / 2 + 1e-6
    return np.where(close, nearest, -1)


def load_inputs(record: VideoRecord, plan: VideoPlan, recipe: Recipe, *, views: tuple[str, ...],
                stft: Any, logmel: Any) -> VideoInputs:
    """Decode one video and compute everything except the visual features.

    Args:
        record: The video.
        plan: Its planned extent (frames beyond `plan.num_frames` are dropped).
        recipe: The store's recipe.
        views: The views to cache for this video.
        stft: The separation STFT front-end (`avlab.backbones.SeparationSTFT`).
        logmel: The per-frame log-mel front-end (`avlab.backbones.LogMelFrames`).

    Raises:
        AvlabError: The video cannot be decoded; the cache records the reason.
    """
    decoded = record.load_frames(fps=recipe.fps, size=recipe.size)
    frames, times = decoded.frames[: plan.num_frames], decoded.times[: plan.num_frames]
    if len(frames) == 0:
        raise MediaError(record.video_path or record.video_id, "no frame decoded")
    arrays: dict[str, np.ndarray] = {schema.FRAME_TIME: times.astype(np.float64)}
    notes: list[str] = []
    if recipe.audio:
        try:
            _audio_features(record, plan, recipe, times, arrays, stft, logmel)
        except MissingAudioError as error:
            notes.append(f"no audio: {error}; audio features left empty")
    notes.extend(_source_notes(record, recipe))
    gt_masks = None
    if recipe.ground_truth:
        audio_length = int(round(plan.duration * SEPARATION_RATE))
        gt_masks = _ground_truth(record, recipe, times, arrays, stft, notes, audio_length)
    stacks, mask_views, instance_views = [], [], []
    for view in views:
        stacks.append(view_frames(view, frames))
        if gt_masks is not None:
            mask, instances = gt_masks
            mask_views.append(view_masks(view, mask))
            if instances is not None:
                instance_views.append(view_masks(view, instances))
    if mask_views:
        arrays[schema.MASK] = np.stack(mask_views)  # (V, T, h, w)
    if instance_views:
        arrays[schema.INSTANCE_MASK] = np.stack(instance_views)  # (V, T, I, h, w)
    return VideoInputs(frames=np.stack(stacks), arrays=arrays, notes=notes)


def _source_notes(record: VideoRecord, recipe: Recipe) -> list[str]:
    """What was lost converting a usable source to the recipe: frames a quarter of the cached
    size or less (upscaled), audio sampled below a rate the audio features use (no high band)."""
    from avlab.media import probe

    notes = []
    if record.video_path is not None:
        info = probe(record.video_path, count_frames=False)
        # Some upscaling is routine (a 160 px dataset cached at 224); a quarter or less is not.
        if info.has_video and (4 * info.height <= recipe.size[0] or 4 * info.width <= recipe.size[1]):
            notes.append(f"{record.video_path}: frames are {info.width}x{info.height} (WxH), upscaled to "
                         f"{recipe.size[1]}x{recipe.size[0]}")
    used = max(SEPARATION_RATE if {"stft", "raw"} & set(recipe.audio) else 0,
               LOGMEL_RATE if "logmel_frames" in recipe.audio else 0)
    if record.audio_path is not None and used:
        audio = probe(record.audio_path, count_frames=False).audio
        if audio and audio[0].sample_rate < used:
            notes.append(f"{record.audio_path}: audio is sampled at {audio[0].sample_rate} Hz, below the "
                         f"{used} Hz of the audio features: nothing above {audio[0].sample_rate // 2} Hz")
    return notes


def _audio_features(record: VideoRecord, plan: VideoPlan, recipe: Recipe, times: np.ndarray,
                    arrays: dict[str, np.ndarray], stft: Any, logmel: Any) -> None:
    length = int(round(plan.duration * SEPARATION_RATE))
    if "stft" in recipe.audio or "raw" in recipe.audio:
        audio = _fit(record.load_audio(SEPARATION_RATE), length)
        if "stft" in recipe.audio:
            arrays[schema.STFT] = stft(audio).T  # (atime, freq)
        if "raw" in recipe.audio:
            arrays[schema.AUDIO] = audio if recipe.raw_sample_rate == SEPARATION_RATE else \
                _fit(record.load_audio(recipe.raw_sample_rate), int(round(plan.duration * recipe.raw_sample_rate)))
    if "logmel_frames" in recipe.audio:
        audio16 = record.load_audio(LOGMEL_RATE)
        arrays[schema.LOGMEL] = logmel(audio16, times)  # (T, mel, win)


def _fit(audio: np.ndarray, length: int) -> np.ndarray:
    """Trim or zero-pad to the planned length: every video's STFT then has a known extent."""
    return audio[:length] if len(audio) >= length else np.pad(audio, (0, length - len(audio)))


def _ground_truth(record: VideoRecord, recipe: Recipe, times: np.ndarray, arrays: dict[str, np.ndarray],
                  stft: Any, notes: list[str], audio_length: int) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Cache-resolution masks aligned to the cached frames, plus instances and sources.

    Returns:
        ``(mask (T, h, w), instance_mask (T, I, h, w) or None)`` in the original view, for
        `view_masks` to transform per view; None when the record has no masks.
    """
    if record.sources and "stft" in recipe.audio:
        ids, sources = record.load_sources(SEPARATION_RATE)
        spectra = np.stack([stft(_fit(s, audio_length)).T for s in sources])  # (N, atime, freq)
        arrays[schema.SOURCE_STFT] = spectra
        arrays[schema.SOURCE_INSTANCE] = np.array([int(i) if str(i).lstrip("-").isdigit() else -1 for i in ids],
                                                  dtype=np.int64)
    if record.masks is None:
        return None
    masks = record.load_masks()
    dataset_times = record.frame_times if record.frame_times is not None else times
    period = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
    target = _align(np.asarray(dataset_times, np.float64)[masks.frame_index], times, period)  # (A,)
    keep = target >= 0
    size = recipe.cached_mask_size
    num_frames = len(times)
    annotated = np.zeros(num_frames, np.int8)
    annotated[target[keep]] = 1
    arrays[schema.ANNOTATED] = annotated
    mask = np.full((num_frames, *size), 255, np.uint8)
    instance_mask = None
    if masks.kind == "instance":
        assert masks.instance_ids is not None and masks.category_ids is not None
        count = len(masks.instance_ids)
        data = _resize_nearest(masks.data[:, keep], size)  # (I, A', h, w)
        instance_mask = np.full((num_frames, count, *size), 255, np.uint8)
        instance_mask[target[keep]] = data.transpose(1, 0, 2, 3)
        arrays[schema.INSTANCE_ID] = masks.instance_ids.astype(np.int64)
        arrays[schema.INSTANCE_CATEGORY] = masks.category_ids.astype(np.int64)
        if masks.sounding is not None:
            sounding = np.full((num_frames, count), -1, np.int8)
            sounding[target[keep]] = masks.sounding[:, keep].T.astype(np.int8)
            arrays[schema.SOUNDING] = sounding
            mask[target[keep]] = _resize_nearest(masks.union(sounding_only=True)[keep], size)
        else:
            notes.append("no sounding flags: the sounding-object mask is left empty")
    else:
        mask[target[keep]] = _resize_nearest(masks.data[keep], size)
    return mask, instance_mask


def compute_visual(model: torch.nn.Module, frames: np.ndarray, *, layers: tuple[str, ...], batch_size: int,
                   device: torch.device, dtype: str) -> dict[str, np.ndarray]:
    """Run the frozen backbone over every view and frame.

    Args:
        model: A loaded visual bundle (takes (B, 3, H, W) floats in [0, 1]).
        frames: (V, T, H, W, 3) uint8.
        layers: Levels to return.
        batch_size: Frames per forward pass.
        device: Where to run; on CUDA, under float16 autocast.
        dtype: Stored dtype ("float16" or "float32").

    Returns:
        Level -> (V, T, C, h, w) arrays of `dtype`.

    Raises:
        AvlabError: Non-finite features, or features too large for float16.
    """
    views, num_frames = frames.shape[:2]
    flat = torch.from_numpy(frames.reshape(views * num_frames, *frames.shape[2:]))  # (V*T, H, W, 3)
    outputs: dict[str, list[np.ndarray]] = {level: [] for level in layers}
    autocast = device.type == "cuda"
    stored = getattr(torch, dtype)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.float16, enabled=autocast):
        for start in range(0, len(flat), batch_size):
            batch = flat[start : start + batch_size].to(device, non_blocking=True)
            images = batch.permute(0, 3, 1, 2).float().div_(255.0)  # (B, 3, H, W)
            features = model(images)
            for level in layers:
                outputs[level].append(features[level].to(stored).cpu().numpy())
    result = {}
    for level, parts in outputs.items():
        stacked = np.concatenate(parts)
        # One check after the cast catches both non-finite features and float16 overflow.
        # numpy's isfinite, not torch's: torch's took 20x longer on CPU (benchmarks/bench_store.py).
        if not np.isfinite(stacked).all():
            raise AvlabError(f"backbone features at {level} are not finite in {dtype} "
                             f"(NaN or infinite values, or |x| > {np.finfo(dtype).max})")
        result[level] = stacked.reshape(views, num_frames, *stacked.shape[1:])
    return result
