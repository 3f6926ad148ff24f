"""Manifests: what every dataset loader returns, whatever the dataset's own layout.

A `Manifest` is a sequence of `VideoRecord`s. A record holds references (paths, timestamps,
annotation sources) and decodes nothing until asked: `load_frames()`, `load_audio()`,
`load_masks()` and `load_sources()` do the work, through `avlab.media`.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np
from PIL import Image

from avlab.datasets.masks import Masks, MaskSource
from avlab.errors import DatasetError, MediaError, MissingAudioError
from avlab.media import VideoFrames, read_audio, read_video

__all__ = ["Manifest", "VideoRecord"]


@dataclass(frozen=True, eq=False)
class VideoRecord:
    """One video of a dataset: where its pictures, sound and annotations are.

    Attributes:
        video_id: Unique within the manifest.
        split: ``"train"``, ``"val"``, ``"test"``, or None when the dataset has no splits.
        video_path: A video container holding the pictures (and often the sound).
        frame_paths: Image files, one per frame, for datasets shipped as frames.
        frame_times: (T,) seconds at which the dataset's frames are shown; with a video file
            and no `fps`, `load_frames` samples exactly these times. None: the file's own.
        audio_path: An audio file or a container with an audio stream; None if the video has
            no sound.
        audio_offset: Seconds into `audio_path` at which the clip's time zero lies.
        duration: Clip length in seconds when the dataset says (None: the whole file).
        category: The video's category label, when the dataset gives one.
        masks: Lazy reference to the ground-truth masks, or None.
        sources: Per-source audio files (id -> path), for separation ground truth.
        extra: Dataset-specific fields (sounding intervals, annotation ids, quality, ...).
            Two keys are shared by all loaders: ``"error"``, why the file could not be read
            (the record is kept so one bad file does not hide the rest), and
            ``"audio_note"``, why a record has no audio and what to do instead.
    """

    video_id: str
    split: str | None = None
    video_path: Path | None = None
    frame_paths: tuple[Path, ...] | None = None
    frame_times: np.ndarray | None = field(default=None, repr=False)
    audio_path: Path | None = None
    audio_offset: float = 0.0
    duration: float | None = None
    category: str | None = None
    masks: MaskSource | None = field(default=None, repr=False)
    sources: Mapping[str, Path] = field(default_factory=dict, repr=False)
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.video_path is None and not self.frame_paths:
            raise ValueError(f"record {self.video_id!r} needs a video_path or frame_paths")
        if self.frame_paths and self.frame_times is not None and len(self.frame_times) != len(self.frame_paths):
            raise ValueError(f"record {self.video_id!r}: {len(self.frame_paths)} frame paths but "
                             f"{len(self.frame_times)} frame times")

    @property
    def num_frames(self) -> int | None:
        """Number of dataset frames when known without decoding."""
        if self.frame_paths:
            return len(self.frame_paths)
        return None if self.frame_times is None else len(self.frame_times)

    @property
    def has_audio(self) -> bool:
        return self.audio_path is not None

    def load_frames(
        self, *, fps: float | None = None, size: int | tuple[int, int] | None = None
    ) -> VideoFrames:
        """Decode the video's frames.

        Args:
            fps: Resample to this rate by timestamp; None gives the dataset's frames
                (`frame_times` when the record has them, else every frame of the file).
            size: ``(height, width)`` or an int for a square; None keeps the source size.

        Returns:
            `VideoFrames`: (T, H, W, 3) uint8 frames and (T,) times in seconds.

        Raises:
            MediaError: A frame file or the video file cannot be decoded.
        """
        if self.frame_paths:
            return self._load_image_frames(fps, size)
        assert self.video_path is not None
        end = None if self.duration is None else self.duration
        if fps is None and self.frame_times is not None:
            return read_video(self.video_path, times=self.frame_times, size=size)
        return read_video(self.video_path, fps=fps, size=size, end=end)

    def load_audio(self, sample_rate: int, *, mono: bool = True) -> np.ndarray:
        """Decode the soundtrack on the clip's clock (sample 0 at the clip's time zero).

        Returns:
            float32 samples, (S,) or (C, S) when not `mono`.

        Raises:
            MissingAudioError: The record has no audio (``extra["audio_note"]``, when a loader
                set it, says why and what to do instead).
            MediaError: The audio cannot be decoded, or the loader could not read the file
                (its reason is in ``extra["error"]``).
        """
        if self.audio_path is None:
            where = self.video_path or (self.frame_paths[0].parent if self.frame_paths else self.video_id)
            if self.extra.get("error"):
                raise MediaError(where, f"video {self.video_id!r} is unreadable: {self.extra['error']}")
            raise MissingAudioError(where, self.extra.get("audio_note") or f"video {self.video_id!r} has no audio")
        end = None if self.duration is None else self.audio_offset + self.duration
        return read_audio(self.audio_path, sample_rate=sample_rate, mono=mono,
                          start=self.audio_offset or None, end=end)

    def load_masks(self) -> Masks:
        """Decode the ground-truth masks.

        Raises:
            DatasetError: The dataset has no masks for this video, or they cannot be read.
        """
        if self.masks is None:
            raise DatasetError(self.video_path or self.video_id, f"video {self.video_id!r} has no masks")
        return self.masks.load()

    def load_sources(self, sample_rate: int) -> tuple[list[str], np.ndarray]:
        """Decode the per-source ground-truth audio (mono).

        Returns:
            ``(ids, audio)`` with audio (N, S) float32; shorter sources are zero-padded.

        Raises:
            DatasetError: The record has no source audio.
        """
        if not self.sources:
            raise DatasetError(self.video_path or self.video_id, f"video {self.video_id!r} has no source audio")
        ids = list(self.sources)
        tracks = [read_audio(self.sources[i], sample_rate=sample_rate) for i in ids]
        length = max(len(t) for t in tracks)
        return ids, np.stack([np.pad(t, (0, length - len(t))) for t in tracks])

    def _load_image_frames(self, fps: float | None, size: int | tuple[int, int] | None) -> VideoFrames:
        assert self.frame_paths
        times = self.frame_times if self.frame_times is not None else np.arange(len(self.frame_paths), dtype=np.float64)
        chosen = np.arange(len(self.frame_paths))
        out_times = np.asarray(times, dtype=np.float64)
        if fps is not None:
            # The frame on screen at each grid time, as read_video does for containers.
            # The last image stays on screen for one typical frame period.
            period = float(np.median(np.diff(times))) if len(times) > 1 else 1.0 / fps
            count = int(np.ceil((times[-1] + period - times[0]) * fps - 1e-6))
            grid = times[0] + np.arange(max(count, 1)) / fps
            chosen = np.searchsorted(times, grid + 1e-6, side="right") - 1
            out_times = grid
        height, width = (size, size) if isinstance(size, int) else (size or (None, None))
        frames = []
        for index in chosen:
            path = self.frame_paths[int(index)]
            try:
                with Image.open(path) as opened:
                    image = opened.convert("RGB")
                if height is not None and width is not None:
                    image = image.resize((width, height), Image.Resampling.BILINEAR)
                frames.append(np.asarray(image))
            except (OSError, ValueError) as error:
                raise MediaError(path, f"cannot read frame image ({error})") from error
        return VideoFrames(np.stack(frames), out_times)


class Manifest(Sequence[VideoRecord]):
    """The videos of a dataset, in a stable order, indexable by position or id.

    Args:
        records: The videos; ids must be unique.
        name: Dataset name (``"avsbench-s4"``, ``"synthav"``, ...).
        root: Where the dataset lives.
        categories: Category names, index = category id, when the dataset defines them.

    Example:
        >>> from pathlib import Path
        >>> m = Manifest([VideoRecord("a", split="train", video_path=Path("a.mp4")),
        ...               VideoRecord("b", split="val", video_path=Path("b.mp4"))], name="toy")
        >>> len(m), m["b"].split, [r.video_id for r in m.split("train")]
        (2, 'val', ['a'])
    """

    def __init__(
        self,
        records: Iterable[VideoRecord],
        *,
        name: str,
        root: str | os.PathLike[str] | None = None,
        categories: Sequence[str] | None = None,
    ) -> None:
        self._records = list(records)
        self.name = name
        self.root = None if root is None else Path(root)
        self.categories = list(categories) if categories is not None else None
        self._by_id: dict[str, int] = {}
        for position, record in enumerate(self._records):
            if record.video_id in self._by_id:
                raise DatasetError(self.root or name, f"duplicate video id {record.video_id!r}")
            self._by_id[record.video_id] = position

    def __len__(self) -> int:
        return len(self._records)

    @overload
    def __getitem__(self, key: int | str) -> VideoRecord: ...
    @overload
    def __getitem__(self, key: slice) -> Manifest: ...
    def __getitem__(self, key: int | str | slice) -> VideoRecord | Manifest:
        if isinstance(key, str):
            try:
                return self._records[self._by_id[key]]
            except KeyError:
                raise KeyError(f"no video {key!r} in {self.name}") from None
        if isinstance(key, slice):
            return self._derive(self._records[key])
        return self._records[key]

    def __iter__(self) -> Iterator[VideoRecord]:
        return iter(self._records)

    def __contains__(self, key: object) -> bool:
        return key in self._by_id if isinstance(key, str) else key in self._records

    @property
    def ids(self) -> list[str]:
        return [r.video_id for r in self._records]

    @property
    def splits(self) -> list[str]:
        """The splits present, in order of first appearance."""
        return list(dict.fromkeys(r.split for r in self._records if r.split is not None))

    def split(self, name: str) -> Manifest:
        """The videos of one split."""
        return self.filter(lambda r: r.split == name)

    def filter(self, keep: Callable[[VideoRecord], bool]) -> Manifest:
        """The videos for which `keep(record)` is true, in the same order."""
        return self._derive([r for r in self._records if keep(r)])

    def to_frame(self) -> Any:
        """A pandas DataFrame with one row per video (the table view)."""
        import pandas as pd

        rows = [
            {
                "video_id": r.video_id,
                "split": r.split,
                "category": r.category,
                "num_frames": r.num_frames,
                "duration": r.duration,
                "video": str(r.video_path) if r.video_path else (str(r.frame_paths[0].parent) if r.frame_paths else None),
                "audio": str(r.audio_path) if r.audio_path else None,
                "has_masks": r.masks is not None,
                "num_sources": len(r.sources),
                "error": r.extra.get("error"),
            }
            for r in self._records
        ]
        return pd.DataFrame(rows).set_index("video_id")

    def _derive(self, records: list[VideoRecord]) -> Manifest:
        return Manifest(records, name=self.name, root=self.root, categories=self.categories)

    def __repr__(self) -> str:
        splits = ", ".join(f"{s}: {sum(r.split == s for r in self)}" for s in self.splits)
        return f"<Manifest {self.name!r}: {len(self)} videos{f' ({splits})' if splits else ''}>"

    def _repr_html_(self) -> str:
        head = f"<p><b>{html.escape(repr(self))}</b></p>"
        return head + self.to_frame().head(20).to_html()
