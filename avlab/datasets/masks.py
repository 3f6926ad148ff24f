"""Ground-truth masks of one video, and lazy references to masks stored as image files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
from PIL import Image

from avlab.errors import DatasetError

__all__ = ["Masks", "MaskSource", "PngMasks", "read_mask_png"]

MaskKind = Literal["binary", "semantic", "instance"]


@dataclass(frozen=True, eq=False)
class Masks:
    """The masks of one video, on the frames that are annotated.

    Attributes:
        kind: ``"binary"`` (sounding object vs background, AVSBench S4/MS3), ``"semantic"``
            (class id per pixel, AVSS; 0 is background) or ``"instance"`` (one mask per object,
            YouTube-VIS, SynthAV).
        data: uint8; (T, H, W) for binary (0/1) and semantic (class ids), (I, T, H, W) 0/1
            for instance masks (an instance absent from a frame has an empty mask there).
        frame_index: (T,) int64, the position of each annotated frame among the record's
            frames (AVSBench S4 train annotates only the first of five).
        instance_ids: (I,) int64 track ids, instance masks only.
        category_ids: (I,) int64 category ids, instance masks only.
        sounding: (I, T) bool, whether each instance sounds in each frame, when known.

    Example:
        >>> m = Masks("binary", np.zeros((2, 4, 4), np.uint8), np.array([0, 3]))
        >>> m.num_frames, m.size
        (2, (4, 4))
    """

    kind: MaskKind
    data: np.ndarray
    frame_index: np.ndarray
    instance_ids: np.ndarray | None = None
    category_ids: np.ndarray | None = None
    sounding: np.ndarray | None = None

    def __post_init__(self) -> None:
        expected = 4 if self.kind == "instance" else 3
        if self.data.ndim != expected:
            raise ValueError(f"{self.kind} masks must have {expected} dims, got {self.data.shape}")
        if self.data.shape[-3] != len(self.frame_index):
            raise ValueError("frame_index must have one entry per annotated frame")

    @property
    def num_frames(self) -> int:
        return int(self.data.shape[-3])

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the masks."""
        return int(self.data.shape[-2]), int(self.data.shape[-1])

    def union(self, *, sounding_only: bool = False) -> np.ndarray:
        """One binary mask per frame: any object (or any sounding object), (T, H, W) uint8."""
        if self.kind != "instance":
            return (self.data > 0).astype(np.uint8)
        data = self.data
        if sounding_only:
            if self.sounding is None:
                raise ValueError("these masks carry no sounding flags")
            data = data * self.sounding[:, :, None, None]
        return data.max(axis=0, initial=0).astype(np.uint8)


class MaskSource(Protocol):
    """Something a `VideoRecord` keeps to load its masks only when asked."""

    def load(self) -> Masks: ...


def read_mask_png(path: Path, *, palette: np.ndarray | None = None) -> np.ndarray:
    """Read one mask image.

    Args:
        path: A PNG: palette indices (any non-zero index is foreground, MS3), greyscale
            (foreground from 128 up, as AVSBench's ``convert("1")`` reads its 0/255 masks; a
            0/1 image is taken as is), or RGB colours when `palette` is given.
        palette: (K, 3) uint8 colours; pixel colour ``palette[k]`` becomes class id k.

    Returns:
        (H, W) uint8: 0/1 without a palette, class ids with one.

    Raises:
        DatasetError: The file is missing or not an image, or a colour is not in the palette.
    """
    try:
        with Image.open(path) as image:
            if palette is None:
                if image.mode in ("P", "1"):
                    return (np.asarray(image) > 0).astype(np.uint8)
                grey = np.asarray(image if image.mode == "L" else image.convert("L"))
                # Anti-aliased or JPEG-damaged edges split at mid-grey; 0/1 masks stay 0/1.
                return (grey >= (128 if grey.max(initial=0) > 1 else 1)).astype(np.uint8)
            rgb = np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as error:
        raise DatasetError(path, f"cannot read mask image ({error})") from error
    codes = rgb.astype(np.int64) @ np.array([65536, 256, 1])  # (H, W) one int per colour
    keys = palette.astype(np.int64) @ np.array([65536, 256, 1])  # (K,)
    order = np.argsort(keys)
    position = np.searchsorted(keys[order], codes).clip(0, len(keys) - 1)
    found = keys[order][position] == codes
    if not found.all():
        bad = rgb[~found][0].tolist()
        raise DatasetError(path, f"colour {bad} is not in the class palette")
    return order[position].astype(np.uint8)


@dataclass(frozen=True, eq=False)
class PngMasks:
    """Masks stored as one image per annotated frame (AVSBench, SynthAV's sounding masks).

    Attributes:
        paths: One image per annotated frame.
        frame_index: (T,) position of each annotated frame among the record's frames.
        kind: ``"binary"`` or ``"semantic"``.
        palette: (K, 3) colours of a semantic RGB mask (AVSS), None otherwise.
    """

    paths: Sequence[Path]
    frame_index: Sequence[int]
    kind: MaskKind = "binary"
    palette: np.ndarray | None = field(default=None, repr=False)

    def load(self) -> Masks:
        """Read every mask image.

        Raises:
            DatasetError: An image is missing or unreadable, or its size differs from the first
                mask's (the message names the file and both sizes).
        """
        frames = [read_mask_png(Path(p), palette=self.palette) for p in self.paths]
        for path, frame in zip(self.paths, frames, strict=True):
            if frame.shape != frames[0].shape:
                raise DatasetError(path, f"mask is {frame.shape[1]}x{frame.shape[0]} (WxH) but {self.paths[0]} "
                                         f"is {frames[0].shape[1]}x{frames[0].shape[0]}: a video's masks must "
                                         f"share one size")
        return Masks(self.kind, np.stack(frames), np.asarray(self.frame_index, dtype=np.int64))
