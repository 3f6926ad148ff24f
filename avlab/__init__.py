"""avlab: audio-visual segmentation research, from real media to cached features to heads.

The notebook verbs live here; everything else is one import away in the subpackages
(`avlab.media`, `avlab.datasets`, ...).

Example:
    >>> import avlab
    >>> manifest = avlab.load_synth  # loaders, media readers and the store's verbs, all here
    >>> "cache_features" in avlab.__all__ and "open_store" in dir(avlab)
    True
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from avlab.datasets import (
    Manifest,
    Masks,
    VideoRecord,
    load_ave,
    load_avsbench,
    load_folder,
    load_music,
    load_synth,
    load_youtube_vis,
)
from avlab.errors import AvlabError, DatasetError, MediaError, MissingAudioError
from avlab.media import (
    AudioStreamInfo,
    MediaInfo,
    VideoFrames,
    frame_audio_windows,
    probe,
    read_audio,
    read_video,
)

# The store pulls in torch, zarr and xarray: imported on first use, so `import avlab` and the
# `avlab` command start fast.
_LAZY = {
    "ClipDataset": "avlab.store",
    "FramePairDataset": "avlab.store",
    "RecipeMismatchError": "avlab.store",
    "cache_features": "avlab.store",
    "open_store": "avlab.store",
    "evaluate": "avlab.eval",
    "fit": "avlab.train",
    "finetune_backbone": "avlab.train",
    "create_system": "avlab.models",
    "list_systems": "avlab.models",
    "load_system": "avlab.models",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'avlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


try:
    __version__ = version("avlab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    # media: decode with real timestamps
    "AudioStreamInfo",
    "MediaInfo",
    "VideoFrames",
    "frame_audio_windows",
    "probe",
    "read_audio",
    "read_video",
    # datasets: manifests from the field's formats
    "Manifest",
    "Masks",
    "VideoRecord",
    "load_ave",
    "load_avsbench",
    "load_folder",
    "load_music",
    "load_synth",
    "load_youtube_vis",
    # feature store: cache once, train heads from it
    "ClipDataset",
    "FramePairDataset",
    "cache_features",
    "open_store",
    # systems and training from the store (or end to end)
    "create_system",
    "list_systems",
    "load_system",
    "fit",
    "finetune_backbone",
    # scoring against the store's ground truth
    "evaluate",
    # errors
    "AvlabError",
    "DatasetError",
    "MediaError",
    "MissingAudioError",
    "RecipeMismatchError",
]
