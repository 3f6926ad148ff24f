"""Recognising a dataset from its folder, so `cache_features("path/")` needs no loader name."""

from __future__ import annotations

import os
from pathlib import Path

from avlab.datasets.ave import load_ave
from avlab.datasets.avsbench import load_avsbench
from avlab.datasets.folder import load_folder
from avlab.datasets.manifest import Manifest
from avlab.datasets.music import load_music
from avlab.datasets.synth import load_synth, read_card
from avlab.errors import DatasetError

__all__ = ["open_source"]


def open_source(source: Manifest | str | os.PathLike[str]) -> Manifest:
    """A manifest for `source`: itself if it is one, else the dataset its folder holds.

    Recognised, in order: SynthAV (``dataset_card.json``: every split), AVSBench S4
    (``s4_meta_data.csv``), MS3 (``ms3_meta_data.csv``), AVSS (``metadata.csv`` with
    ``v1s``/``v1m``/``v2`` folders), AVE (``Annotations.txt``), MUSIC (``solo/`` or ``duet/``),
    and otherwise any folder of video files. YouTube-VIS needs its JSON and frame folder: load
    it with `load_youtube_vis` and pass the manifest.

    Raises:
        DatasetError: The path does not exist or holds no recognisable dataset or videos.

    Example:
        >>> import tempfile
        >>> from avlab.datasets.synth import generate
        >>> root = generate(tempfile.mkdtemp(), num_videos=1, size=32, fps=4, seconds=1.0,
        ...                 sample_rate=8000, renderer="additive", num_solo=0)
        >>> open_source(root)
        <Manifest 'synthav': 3 videos (train: 1, val: 1, test: 1)>
    """
    if isinstance(source, Manifest):
        return source
    root = Path(source)
    if not root.exists():
        raise DatasetError(root, "no such file or folder")
    if not root.is_dir():
        raise DatasetError(root, "expected a dataset folder (for a YouTube-VIS JSON use load_youtube_vis)")
    if (root / "dataset_card.json").is_file():
        return load_synth(root, split=read_card(root)["splits"])
    if (root / "s4_meta_data.csv").is_file():
        return load_avsbench(root, subset="s4")
    if (root / "ms3_meta_data.csv").is_file():
        return load_avsbench(root, subset="ms3")
    if (root / "metadata.csv").is_file() and any((root / label).is_dir() for label in ("v1s", "v1m", "v2")):
        return load_avsbench(root, subset="avss")
    if (root / "Annotations.txt").is_file():
        return load_ave(root)
    if (root / "solo").is_dir() or (root / "duet").is_dir():
        return load_music(root)
    return load_folder(root)
