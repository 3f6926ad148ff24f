"""Training items in the batch contract of `avlab.models`, built from raw frames, and their collation.

- `natural_item`: a frame of a video whose mixture and sources are known (SynthAV's natural
  mixtures): the mixture's STFT window around the frame, each source's window, and each
  source's region on the frame from ``source_instance`` -> ``instance_mask``.
- `mix_item`: mix-and-separate (PixelPlayer): N frames of different solo clips, their STFT
  windows scaled by volume gains and summed (the STFT is linear, so no audio is decoded); the
  batch's frame is the first clip's, heard with the mixture.
- `collate`: stacks items; where natural and mixed items meet in one batch, the natural ones
  get their own frame as every source's frame.

Example:
    >>> import tempfile
    >>> from avlab.testing import tiny_store
    >>> from avlab.train.frames import StoreFrames
    >>> frames = StoreFrames(tiny_store(tempfile.mkdtemp()).encoding["source"])
    >>> item = natural_item(frames.frame(0), num_sources=3, num_stft_frames=32)
    >>> tuple(item["mixture_mag"].shape), tuple(item["source_region"].shape), item["source_valid"].tolist()
    ((512, 32), (3, 32, 32), [True, True, False])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["StftWindow", "collate", "mix_item", "mixture_logmel", "natural_item", "silent_shown"]

LOGMEL_OFFSET = 0.01  # LogMelFrames.log_offset: log(mel + 0.01)
_VISUAL_PREFIXES = ("visual_", "image")


class StftWindow:
    """Where a frame's STFT window lies: T frames centred on the frame's time, inside the audio.

    Args:
        num_frames: T, frames per window.
        sample_rate: The separation STFT's rate.
        hop_length: The separation STFT's hop.

    Example:
        >>> StftWindow(32).span(0.5, 44)  # 0.5 s is STFT frame 21.5: centred, clipped to the audio
        (6, 32)
    """

    def __init__(self, num_frames: int, *, sample_rate: int = 11025, hop_length: int = 256) -> None:
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        self.num_frames, self.sample_rate, self.hop_length = num_frames, sample_rate, hop_length

    def span(self, time: float, length: int) -> tuple[int, int]:
        """(start, count): the window's first STFT frame and how many frames of audio it holds."""
        centre = time * self.sample_rate / self.hop_length
        start = int(math.floor(centre - self.num_frames / 2 + 0.5))
        start = max(0, min(start, length - self.num_frames))
        return start, min(self.num_frames, length - start)

    def cut(self, stft: np.ndarray, start: int, count: int) -> np.ndarray:
        """Frames ``start : start + count`` of a (..., atime, F) STFT as (..., F, T), zero-padded.

        Example:
            >>> StftWindow(4).cut(np.arange(6.0).reshape(3, 2), 1, 2).tolist()
            [[2.0, 4.0, 0.0, 0.0], [3.0, 5.0, 0.0, 0.0]]
        """
        part = np.asarray(stft)[..., start : start + count, :]  # (..., count, F)
        out = np.zeros((*part.shape[:-2], part.shape[-1], self.num_frames), dtype=part.dtype)
        out[..., : part.shape[-2]] = np.swapaxes(part, -1, -2)
        return out


# Items are built with numpy: on a busy machine, torch's intra-op threads cost more than they
# save on arrays of this size (the same reason as in avlab.store.reader).


def _np(value: Any) -> np.ndarray:
    return value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def _audio_length(raw: Mapping[str, Any]) -> int:
    if "num_atime" in raw:
        return int(raw["num_atime"])
    # Stores pad shorter videos' STFTs with NaN: the audio is the finite prefix.
    return int(np.isfinite(_np(raw["stft"]).real).all(axis=-1).sum())


def _num_sources(raw: Mapping[str, Any], length: int) -> int:
    if "num_sources" in raw:
        return int(raw["num_sources"])
    sources = _np(raw["source_stft"])
    return int(np.isfinite(sources[:, :length].real).all(axis=(1, 2)).sum()) if length else 0


def _tensors(values: Mapping[str, Any]) -> dict[str, Any]:
    def tensor(v: np.ndarray) -> torch.Tensor:
        # (np.ascontiguousarray would turn 0-d arrays into 1-d ones)
        return torch.from_numpy(v if v.flags.c_contiguous else np.ascontiguousarray(v))

    return {k: tensor(v) if isinstance(v, np.ndarray) else v for k, v in values.items()}


def _frame_part(raw: Mapping[str, Any]) -> dict[str, Any]:
    out = {key: value for key, value in raw.items() if key.startswith(_VISUAL_PREFIXES)}
    out["logmel"] = _np(raw["logmel"]).astype(np.float32, copy=False)
    mask = raw.get("mask")
    if mask is None:  # a dataset without masks: nothing annotated
        size = next(iter(out.values())).shape[-2:] if "image" not in out else out["image"].shape[-2:]
        mask = np.full(tuple(size), 255, np.uint8)
    mask = _np(mask)
    out["mask"] = mask
    out["annotated"] = np.asarray(bool(_np(raw.get("annotated", 0))) and bool((mask != 255).any()))
    out["silent_shown"] = np.asarray(silent_shown(raw))
    return out


def silent_shown(raw: Mapping[str, Any]) -> bool:
    """Whether the frame shows an object that is silent on it (a distractor, or a resting performer).

    These frames are where hearing matters: an object's looks alone do not say whether it
    sounds now. False when the frame has no instance masks or sounding flags.

    Example:
        >>> masks = np.zeros((2, 4, 4), np.uint8); masks[:, 1:3, 1:3] = 1
        >>> silent_shown({"instance_mask": masks, "sounding": np.array([1, 0], np.int8)})
        True
    """
    if "instance_mask" not in raw or "sounding" not in raw:
        return False
    visible = (_np(raw["instance_mask"]) == 1).any(axis=(-2, -1))  # (I,); 255 padding is not 1
    return bool((visible & (_np(raw["sounding"]) == 0)).any())


def natural_item(
    raw: Mapping[str, Any],
    *,
    num_sources: int,
    num_stft_frames: int,
    window: StftWindow | None = None,
    separation: bool = True,
) -> dict[str, Any]:
    """A frame of a natural mixture in the batch contract.

    Separation keys are added when `separation` and the frame's video has a mixture STFT and
    source STFTs; sources beyond the video's own are padding (``source_valid`` False). A
    source whose instance has no mask on this frame (occluded, out of frame) gets an empty
    region, which systems read as "anywhere".

    Args:
        raw: A raw frame (`avlab.train.frames`).
        num_sources: N, sources per item (padding up to it).
        num_stft_frames: T, STFT frames per window.
        window: The STFT window rule (default: `StftWindow(num_stft_frames)`).
        separation: Add the separation keys when the data allows.

    Returns:
        An item dict of tensors (see `avlab.models`).
    """
    out = _frame_part(raw)
    if not (separation and "stft" in raw and "source_stft" in raw):
        return _tensors(out)
    window = window or StftWindow(num_stft_frames)
    length = _audio_length(raw)
    count_sources = min(num_sources, _num_sources(raw, length))
    if length == 0 or count_sources == 0:
        return _tensors(out)
    start, count = window.span(float(_np(raw["frame_time"])), length)
    mixture = window.cut(_np(raw["stft"]), start, count)  # (F, T), inside the audio: finite
    sources = np.zeros((num_sources, *mixture.shape), mixture.dtype)
    sources[:count_sources] = window.cut(_np(raw["source_stft"])[:count_sources], start, count)
    valid = np.arange(num_sources) < count_sources
    mask_size = out["mask"].shape[-2:]
    regions = np.zeros((num_sources, *mask_size), np.float32)
    categories = np.full(num_sources, -1, np.int64)
    if "instance_id" in raw and "source_instance" in raw:
        instance_ids, owners = _np(raw["instance_id"]), _np(raw["source_instance"])
        instance_mask = _np(raw["instance_mask"]) if "instance_mask" in raw else None  # (I, mh, mw)
        for n in range(count_sources):
            match = np.flatnonzero(instance_ids == owners[n])
            if len(match):
                i = int(match[0])
                if instance_mask is not None:
                    regions[n] = instance_mask[i] == 1
                if "instance_category" in raw:
                    categories[n] = int(_np(raw["instance_category"])[i])
    out.update(
        mixture_stft=mixture,
        mixture_mag=np.abs(mixture),
        source_stft=sources,
        source_mag=np.abs(sources),
        source_valid=valid,
        source_region=regions,
        source_category=categories,
        stft_length=np.asarray(count, np.int64),
    )
    return _tensors(out)


def mixture_logmel(logmels: torch.Tensor | np.ndarray, gains: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Approximate log-mel of a mixture from its sources' log-mel patches.

    The patches are ``log(mel magnitude + 0.01)``, and mel magnitudes are linear in the
    spectrum's magnitude, so ``log(sum_n g_n (exp(L_n) - 0.01) + 0.01)`` is exact where the
    sources do not overlap in time-frequency and an upper bound (magnitudes add, complex
    values may cancel) where they do. Cached per-frame log-mels do not add, and the audio is
    not decoded: this is the mix-and-separate batch's log-mel.

    Shape:
        logmels: (N, mel, win).
        gains: (N,) mixing gains (volume / N).
        output: (mel, win) float32.

    Example:
        >>> single = torch.log(torch.full((1, 2, 2), 1.0) + 0.01)
        >>> torch.allclose(mixture_logmel(single, torch.ones(1)), single[0])
        True
    """
    magnitude = np.clip(np.exp(_np(logmels).astype(np.float64)) - LOGMEL_OFFSET, 0, None)  # (N, mel, win)
    mixed = np.tensordot(_np(gains).astype(np.float64), magnitude, axes=1)  # (mel, win)
    return torch.from_numpy(np.log(mixed + LOGMEL_OFFSET).astype(np.float32))


def mix_item(
    raws: Sequence[Mapping[str, Any]],
    gains: Sequence[float],
    *,
    num_sources: int,
    num_stft_frames: int,
    window: StftWindow | None = None,
) -> dict[str, Any]:
    """Mix-and-separate: N solo frames become one mixture item (PixelPlayer's protocol).

    Source n is ``g_n / N`` times clip n's STFT window (``g_n`` the volume gain, PixelPlayer's
    U(0.5, 1.5) in training, 1 in evaluation); the mixture is their sum. PixelPlayer mixes
    waveforms and clips the sum to [-1, 1]; in the STFT domain there is no clipping (SynthAV's
    levels stay below it). Each source's region is its clip's sounding-object mask.

    Args:
        raws: Raw frames of N solo clips; the first is the batch's frame.
        gains: Volume gain per clip.
        num_sources: Sources per item (>= N; padding after).
        num_stft_frames: T.
        window: The STFT window rule.

    Returns:
        An item dict of tensors, with ``source_visual_*`` (or ``source_image``).
    """
    count_in = len(raws)
    if count_in < 1 or len(gains) != count_in or num_sources < count_in:
        raise ValueError(f"need 1 <= N <= num_sources raw frames with one gain each, got {count_in}, {len(gains)}")
    window = window or StftWindow(num_stft_frames)
    scale = np.asarray(gains, np.float64) / count_in  # (N,)
    out = _frame_part(raws[0])
    out["logmel"] = mixture_logmel(np.stack([_np(r["logmel"]) for r in raws]), scale).numpy()
    mask_size = out["mask"].shape[-2:]
    sources, lengths = None, []
    for n, raw in enumerate(raws):
        start, count = window.span(float(_np(raw["frame_time"])), _audio_length(raw))
        part = window.cut(_np(raw["stft"]), start, count)  # (F, T)
        if sources is None:
            sources = np.zeros((num_sources, *part.shape), part.dtype)
        sources[n] = part * part.dtype.type(scale[n])
        lengths.append(count)
    assert sources is not None
    regions = np.zeros((num_sources, *mask_size), np.float32)
    categories = np.full(num_sources, -1, np.int64)
    for n, raw in enumerate(raws):
        regions[n] = _np(raw["mask"]) == 1
        if len(raw.get("instance_category", ())):
            categories[n] = int(_np(raw["instance_category"])[0])
    mixture = sources.sum(axis=0)  # (F, T)
    out.update(
        mixture_stft=mixture,
        mixture_mag=np.abs(mixture),
        source_stft=sources,
        source_mag=np.abs(sources),
        source_valid=np.arange(num_sources) < count_in,
        source_region=regions,
        source_category=categories,
        stft_length=np.asarray(max(lengths), np.int64),
    )
    for key in [k for k in raws[0] if k.startswith(_VISUAL_PREFIXES)]:
        first = _np(raws[0][key])
        frames = np.zeros((num_sources, *first.shape), first.dtype)
        for n, raw in enumerate(raws):
            frames[n] = _np(raw[key])
        out["source_image" if key == "image" else "source_" + key] = frames
    return _tensors(out)


def collate(items: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack items into a batch; natural items in a batch with mixed ones show their own frame per source.

    Raises:
        ValueError: Items disagree on other keys (e.g. one separates and another does not).

    Example:
        >>> a = {"logmel": torch.zeros(64, 96), "visual_c5": torch.ones(4, 1, 1)}
        >>> b = {"logmel": torch.ones(64, 96), "visual_c5": torch.zeros(4, 1, 1)}
        >>> tuple(collate([a, b])["visual_c5"].shape)
        (2, 4, 1, 1)
    """
    keys = set().union(*(item.keys() for item in items))
    per_source = {k for k in keys if k.startswith(("source_visual_", "source_image"))}
    filled = []
    for item in items:
        arrays = {key: _np(value) for key, value in item.items()}
        for key in per_source - arrays.keys():
            own = arrays["image" if key == "source_image" else key[len("source_"):]]
            arrays[key] = np.broadcast_to(own, (arrays["source_region"].shape[0], *own.shape))
        filled.append(arrays)
    missing = {k for k in keys if any(k not in item for item in filled)}
    if missing:
        raise ValueError(f"items disagree on keys {sorted(missing)}: batch frames that all separate, or none")
    return {key: torch.from_numpy(np.stack([item[key] for item in filled])) for key in sorted(keys)}
