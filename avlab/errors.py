"""The exceptions avlab raises.

Every error about a file names the file and the reason, so a failure deep inside a week-long
extraction can be acted on from its message alone.

Example:
    >>> from avlab.errors import MediaError
    >>> str(MediaError("clips/a.mp4", "no video stream"))
    'clips/a.mp4: no video stream'
"""

from __future__ import annotations

import os

__all__ = [
    "AvlabError",
    "PathError",
    "AvlabWarning",
    "MediaError",
    "MissingAudioError",
    "DatasetError",
    "WeightsError",
    "WeightsNotFoundError",
    "StoreWriteError",
]


class AvlabError(Exception):
    """Base class of every error avlab raises on purpose."""


class AvlabWarning(UserWarning):
    """Something was wrong but avlab carried on: skipped files, unreadable videos, ...

    The message names every file concerned. The test suite turns these into errors, so a
    test that expects one must catch it with ``pytest.warns(AvlabWarning)``.
    """


class PathError(AvlabError):
    """An error about one file or folder: ``str(error)`` is ``"{path}: {reason}"``.

    Attributes:
        path: The file or folder at fault.
        reason: What is wrong with it, in words.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Keeps the (path, reason) pair when the error crosses a process boundary (dask, spawn).
        return (type(self), (self.path, self.reason))


class MediaError(PathError):
    """A media file cannot be read: missing, empty, corrupt, truncated, or lacking a stream.

    Attributes:
        path: The file at fault.
        reason: What is wrong with it, in words.
    """



class MissingAudioError(MediaError):
    """The file has no audio stream, but audio was required."""


class DatasetError(PathError):
    """A dataset folder or annotation file does not have the expected layout or content.

    Attributes:
        path: The file or folder at fault.
        reason: What is wrong, in words.
    """



class WeightsError(PathError):
    """A weights file cannot be used: unreadable, or its keys or shapes do not fit the model.

    Attributes:
        path: The weights file at fault.
        reason: What is wrong, in words, naming a few of the offending keys.
    """



class WeightsNotFoundError(WeightsError):
    """A weights file is not where it was looked for. avlab never downloads weights.

    The message names the file, the folder to put it in and, for published weights, the URL
    it comes from.

    Example:
        >>> str(WeightsNotFoundError("hub/checkpoints/r18.pth", "not found"))
        'hub/checkpoints/r18.pth: not found'
    """


class StoreWriteError(PathError):
    """A feature store cannot be written: the disk is full, or the filesystem refuses the write.

    The store stays openable; videos committed before the error are kept, and rerunning
    `avlab.cache_features` once the cause is fixed resumes from there.

    Attributes:
        path: The store.
        reason: What failed, in words (the file, when the filesystem named it).

    Example:
        >>> str(StoreWriteError("s.zarr", "the disk is full"))
        's.zarr: the disk is full'
    """
