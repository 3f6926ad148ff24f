"""Loading a generated SynthAV dataset the way real data is loaded: through the YouTube-VIS reader."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from avlab.datasets.manifest import Manifest, VideoRecord
from avlab.datasets.masks import PngMasks
from avlab.datasets.youtube_vis import load_youtube_vis
from avlab.errors import DatasetError

__all__ = ["load_synth", "read_card"]


def load_synth(root: str | os.PathLike[str], *, split: str | Sequence[str], solo: bool = False) -> Manifest:
    """Read a SynthAV dataset written by `generate`.

    Each split goes through `load_youtube_vis` (frames from ``videos/{vid}.mp4`` at the JSON's
    fps, audio from ``audio/{vid}.wav``), and each record gets what SynthAV adds:
    ``sources`` (annotation id as a string -> the performer's wav), ``extra["sounding_masks"]``
    (a `PngMasks` of the per-frame sounding-object masks) and, for solo clips, ``category``.

    Args:
        root: The dataset folder (holding ``dataset_card.json``).
        split: A split name, or several (their records are concatenated).
        solo: Load the split's solo clips instead of its mixtures.

    Returns:
        A `Manifest` named ``"synthav"`` whose categories are ``["background", class names...]``.

    Raises:
        DatasetError: `root` holds no such split.

    Example:
        >>> import tempfile
        >>> from avlab.datasets.synth import generate
        >>> root = generate(tempfile.mkdtemp(), num_videos=1, size=32, fps=4, seconds=1.0,
        ...                 sample_rate=8000, renderer="additive", splits=["train"])
        >>> record = load_synth(root, split="train")[0]
        >>> record.load_frames().frames.shape, record.load_audio(8000).shape
        ((4, 32, 32, 3), (8000,))
        >>> load_synth(root, split="train", solo=True)[0].category in load_synth(root, split="train").categories
        True
    """
    root = Path(root)
    names = [split] if isinstance(split, str) else list(split)
    records: list[VideoRecord] = []
    categories: list[str] | None = None
    for name in names:
        folder = root / name / "solo" if solo else root / name
        annotations = folder / "instances.json"
        if not annotations.is_file():
            raise DatasetError(annotations, f"no SynthAV {'solo clips' if solo else 'split'} {name!r} here "
                                            f"(splits in the dataset card: {_card_splits(root)})")
        manifest = load_youtube_vis(annotations, folder / "videos", audio_root=folder / "audio", split=name)
        categories = manifest.categories
        for record in manifest:
            records.append(_with_synth_fields(record, folder, categories if solo else None))
    return Manifest(records, name="synthav", root=root, categories=categories)


def _with_synth_fields(record: VideoRecord, folder: Path, categories: list[str] | None) -> VideoRecord:
    vid = record.video_id
    source_dir = folder / "sources" / vid
    sources = {str(i): source_dir / f"{i}.wav" for i in record.extra["instance_ids"] if (source_dir / f"{i}.wav").is_file()}
    count = record.num_frames or 0
    sounding = PngMasks(tuple(folder / "masks" / vid / f"{t:05d}.png" for t in range(count)), tuple(range(count)))
    category = None
    if categories is not None and record.extra["category_ids"]:
        category = categories[record.extra["category_ids"][0]]
    return replace(record, sources=sources, category=category, extra={**record.extra, "sounding_masks": sounding})


def read_card(root: str | os.PathLike[str]) -> dict[str, Any]:
    """The dataset card that `generate` wrote: parameters, splits, counts, classes, renderer.

    Raises:
        DatasetError: No readable ``dataset_card.json`` in `root`.

    Example:
        >>> import tempfile
        >>> from avlab.datasets.synth import generate
        >>> root = generate(tempfile.mkdtemp(), num_videos=2, size=32, fps=4, seconds=1.0,
        ...                 sample_rate=8000, renderer="additive", num_solo=0)
        >>> card = read_card(root)
        >>> card["splits"], card["parameters"]["num_videos"], card["counts"]["val"]["videos"]
        (['train', 'val', 'test'], 2, 1)
    """
    path = Path(root) / "dataset_card.json"
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(path, "no SynthAV dataset card here; generate one with avlab.datasets.synth.generate") from None
    except (OSError, ValueError) as error:
        raise DatasetError(path, f"cannot read the dataset card ({error})") from error
    if not isinstance(card, dict) or "splits" not in card or "parameters" not in card:
        raise DatasetError(path, "not a SynthAV dataset card (no 'splits' or 'parameters')")
    return card


def _card_splits(root: Path) -> list[str] | str:
    try:
        return list(read_card(root)["splits"])
    except DatasetError:
        return "no dataset_card.json"
