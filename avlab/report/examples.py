"""Running trained systems on validation items: the plain arrays the report's figures draw.

Inputs are built by the training package's own validation code (`avlab.train.AVDataModule`,
its datasets and `collate`), so a system sees exactly what validation showed it, and outputs
are turned into masks, spectrograms and scores by the same functions validation uses
(`avlab.eval.mask_iou`, `avlab.models.separate_waveforms`, `avlab.eval.bss_eval`). Frames for
display are decoded from the raw dataset the store was cached from, at the store's frame
sampling and at the masks' size.

- `segmentation_examples`: annotated validation frames showing a sounding object, with the
  ground truth, the predicted probabilities, AViS-Net's attention maps and each frame's IoU.
- `separation_examples`: validation's fixed mixtures of solo clips, separated, with per-source
  SDR, SIR and SAR.
- `vis_examples`: the tracks of a video instance segmentation run (its ``ytvis_results.json``)
  on the frames of their videos.

Example:
    >>> import tempfile
    >>> from avlab.testing import tiny_store
    >>> from avlab.train import fit
    >>> tmp = tempfile.mkdtemp()
    >>> store = tiny_store(tmp)  # SynthAV's train split in tmp/synth, cached
    >>> result = fit(store, "visual_only", system_kwargs={"fpn_width": 8, "hidden_dim": 8}, val_split=None,
    ...              max_epochs=1, batch_size=4, progress=False, root_dir=tmp + "/runs")
    >>> examples = segmentation_examples(store, result.system, source=tmp + "/synth", split="train", num=2)
    >>> examples.frames.shape, examples.probabilities.shape, examples.attention is None
    ((2, 32, 32, 3), (2, 32, 32), True)
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pycocotools import mask as mask_utils
from torch import nn

from avlab.datasets.detect import open_source
from avlab.datasets.manifest import Manifest, VideoRecord
from avlab.eval import bss_eval, mask_iou
from avlab.eval.separation import SILENCE_THRESHOLD, one_blas_thread
from avlab.models import load_system, separate_waveforms, spectrogram_masks, waveforms
from avlab.models.batch import LEVELS
from avlab.store import open_store
from avlab.train.datamodule import AVDataModule, choose_num_stft_frames, store_path
from avlab.train.datasets import MixFrames, NaturalFrames
from avlab.train.frames import StoreFrames, store_info
from avlab.train.items import collate
from avlab.train.losses import best_permutation, warped_targets

__all__ = [
    "SegmentationExamples",
    "SeparationExample",
    "TrackExample",
    "segmentation_examples",
    "separation_examples",
    "vis_examples",
]

Source = str | os.PathLike[str] | Manifest


@dataclass(frozen=True)
class SegmentationExamples:
    """Validation frames with their ground truth and a system's predictions (numpy arrays).

    Attributes:
        video_ids: The video of each frame.
        frame_indices: (N,) each frame's index in its video's cached frames.
        frame_times: (N,) each frame's time in seconds.
        frames: (N, H, W, 3) uint8 frames at the masks' size.
        truth: (N, H, W) bool ground-truth sounding-object masks.
        probabilities: (N, H, W) float32 predicted probabilities (sigmoid of the logits).
        attention: (N, Q, h, w) attention maps (AViS-Net), or None.
        logan_map: (N, h, w) LoGAN's map (AViS-Net), or None.
        ious: (N,) IoU of each prediction (`avlab.eval.mask_iou`, as validation scores it).
    """

    video_ids: list[str]
    frame_indices: np.ndarray
    frame_times: np.ndarray
    frames: np.ndarray
    truth: np.ndarray
    probabilities: np.ndarray
    attention: np.ndarray | None
    logan_map: np.ndarray | None
    ious: np.ndarray

    @property
    def titles(self) -> list[str]:
        """A label per frame: its video and time, for the figures' titles."""
        return [f"{video} @ {time:.2f} s" for video, time in zip(self.video_ids, self.frame_times, strict=True)]


@dataclass(frozen=True)
class SeparationExample:
    """One validation mixture of solo clips, separated (numpy arrays; K sources, T STFT frames).

    T is the STFT frames of the window that hold audio; the waveforms are their inverse STFT,
    ``(T - 1) * hop_length`` samples, as validation scores them.

    Attributes:
        labels: The name of each source (its clip's class when the store has categories).
        mixture: (F, T) the mixture's STFT magnitude.
        estimates: (K, F, T) the separated magnitudes: the system's binary masks on the mixture.
        references: (K, F, T) the true sources' magnitudes.
        sdr: (K,) SDR of each source in dB (NaN when validation would skip the mixture).
        sir: (K,) SIR in dB.
        sar: (K,) SAR in dB.
        mixture_waveform: (S,) the mixture.
        estimate_waveforms: (K, S) the separated sources (`avlab.models.separate_waveforms`).
        reference_waveforms: (K, S) the true sources.
        sample_rate: Hz of the waveforms and the STFT.
        hop_length: Samples between STFT frames.
        scored: Whether the mixture is scored (validation skips silent mixtures, references and
            estimates).
        frames: (K, H, W, 3) uint8 each source's frame at the masks' size, or None (no
            `source` dataset given).
        pixel_masks: (K, h, w, F, T) float16 the sound of every pixel of each source's frame:
            the unwarped mask probabilities (`pixel_sounds`) on the feature grid, or None (no
            frames, or a system without pixel sounds).
        mixture_stft: (F, T) complex64 the mixture's STFT, to hear a pixel's sound with the
            mixture's phase; None without `pixel_masks`.
    """

    labels: list[str]
    mixture: np.ndarray
    estimates: np.ndarray
    references: np.ndarray
    sdr: np.ndarray
    sir: np.ndarray
    sar: np.ndarray
    mixture_waveform: np.ndarray
    estimate_waveforms: np.ndarray
    reference_waveforms: np.ndarray
    sample_rate: int
    hop_length: int
    scored: bool
    frames: np.ndarray | None = None
    pixel_masks: np.ndarray | None = None
    mixture_stft: np.ndarray | None = None


@dataclass(frozen=True)
class TrackExample:
    """One video's tracks from a YouTube-VIS results file, on the video's frames.

    Attributes:
        video_id: The raw video's id.
        ytvis_id: The results' integer id of the video.
        frames: (T, H, W, 3) uint8 frames at the masks' size.
        tracks: Track id -> (T, H, W) bool masks; a track's id is its position among the
            video's results (the order the tracker created them).
        labels: Track id -> category name.
        scores: Track id -> score.
    """

    video_id: str
    ytvis_id: int
    frames: np.ndarray
    tracks: dict[int, np.ndarray]
    labels: dict[int, str]
    scores: dict[int, float]


# What the three functions share: the system, its inputs, the store, the raw frames.


def _as_system(system: nn.Module | str | os.PathLike[str]) -> nn.Module:
    if isinstance(system, nn.Module):
        return system
    if isinstance(system, str | os.PathLike):
        return load_system(system)
    raise TypeError(f"expected a system (nn.Module) or a checkpoint path, got {type(system).__name__}")


def _check_frame_level(system: nn.Module, channels: Mapping[str, int]) -> None:
    """The system reads the batch contract of `avlab.models` with the store's feature sizes."""
    if getattr(system, "task", "segmentation") == "vis":  # the registry's task of the system's class
        raise ValueError(f"{type(system).__name__} is a video instance segmentation system: draw its tracks "
                         "with vis_examples (from the run's ytvis_results.json)")
    own = getattr(system, "channels", None)
    cached = tuple(int(channels[level]) for level in LEVELS if level in channels)
    if own is not None and tuple(own) != cached:
        raise ValueError(f"the system reads C3-C5 channels {tuple(own)}, the store holds {cached}: it was "
                         "trained on another store's features, or end to end (its backbone is not here)")


def _opened(store: Any) -> Any:
    """The store as an xarray Dataset (opened here when given a path)."""
    return store if hasattr(store, "avlab") else open_store(store)


def _datamodule(store: Any, system: nn.Module, *, solo_store: Any = None, split: str, seed: int, num_mix: int = 2,
                num_eval_items: int = 1, num_stft_frames: int | None = None) -> AVDataModule:
    """Validation's data module, as `avlab.train.fit` builds it for this system."""
    # Training split = validation split: only that split's frames are read (the tables are shared).
    data = AVDataModule(store, solo_store=solo_store, train_split=split, val_split=split, num_mix=num_mix,
                        augment=False, separation_eval_items=num_eval_items, seed=seed)
    _check_frame_level(system, data.info["channels"])
    multiple = int(getattr(system, "time_multiple", 1))
    if num_stft_frames is None:
        num_stft_frames = choose_num_stft_frames(data.info["num_atime"] or multiple, multiple)
    elif num_stft_frames % multiple:
        raise ValueError(f"num_stft_frames={num_stft_frames} must be a multiple of the system's "
                         f"time_multiple={multiple}")
    data.num_stft_frames = num_stft_frames
    data.setup("validate")
    return data


@contextlib.contextmanager
def _evaluating(system: nn.Module, batch: Mapping[str, torch.Tensor]) -> Iterator[dict[str, torch.Tensor]]:
    """The batch on the system's device, the system in eval and inference mode (restored after)."""
    device = next(system.parameters()).device
    was_training = system.training
    system.eval()
    try:
        with torch.inference_mode():
            yield {key: value.to(device) for key, value in batch.items()}
    finally:
        system.train(was_training)


def _forward(system: nn.Module, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The system's outputs in eval mode, as validation computes them (mask logits at the mask size)."""
    with _evaluating(system, batch) as inputs:
        out = system(inputs, output_size=tuple(batch["mask"].shape[-2:]))
    return {key: value.detach().cpu() for key, value in out.items() if isinstance(value, torch.Tensor)}


def _frames_at(source: Source, wanted: Sequence[tuple[str, int, float]], *, fps: float | None,
               size: tuple[int, int]) -> np.ndarray:
    """RGB frames ``(video id, frame index, time)`` decoded as the store's cache decoded them, at `size`.

    Raises:
        ValueError: A video is not in `source`, or its frames are not at the store's times.
    """
    manifest = open_source(source)
    decoded: dict[str, Any] = {}
    frames = []
    for video_id, index, time in wanted:
        if video_id not in decoded:
            if video_id not in manifest:
                raise ValueError(f"video {video_id!r} is in the store but not in {manifest.name} ({source}): "
                                 "pass the dataset the store was cached from")
            decoded[video_id] = manifest[video_id].load_frames(fps=fps, size=size)
        video = decoded[video_id]
        if index >= len(video.frames) or abs(float(video.times[index]) - time) > 1e-3:
            found = f"{float(video.times[index]):.3f} s" if index < len(video.frames) else "no such frame"
            raise ValueError(f"{video_id}: the store's frame {index} is at {time:.3f} s, the decoded one at {found}: "
                             "is `source` the dataset the store was cached from?")
        frames.append(video.frames[index])
    return np.stack(frames).astype(np.uint8)


# Segmentation.


def segmentation_examples(
    store: Any,
    system: nn.Module | str | os.PathLike[str],
    *,
    source: Source,
    split: str = "val",
    num: int = 4,
    seed: int = 0,
    num_stft_frames: int | None = None,
) -> SegmentationExamples:
    """Run a frame-level system on annotated validation frames that show a sounding object.

    The frames are validation's own items (`AVDataModule`'s first validation loader:
    annotated frames, original view, the separation window `fit` picks), so predictions and
    IoUs are those validation computed for these frames.

    Args:
        store: The feature store the system was trained on (path, or opened by `open_store`
            / `cache_features`).
        system: A trained system (`FitResult.system`) or its checkpoint (`load_system`).
        source: The raw dataset the store was cached from (a SynthAV root or a `Manifest`),
            for the RGB frames.
        split: The split to draw frames from.
        num: Frames to return (fewer when the split has fewer).
        seed: Seed of the choice of frames.
        num_stft_frames: T of the separation window, when the run set it (default: `fit`'s).

    Returns:
        `SegmentationExamples`, frames in (video, time) order.

    Raises:
        ValueError: No annotated frame of `split` shows a sounding object; the system is not
            a frame-level system for this store; `source` does not hold the store's videos.
    """
    if num < 1:
        raise ValueError(f"num must be at least 1, got {num}")
    model = _as_system(system)
    path = store_path(store)
    data = _datamodule(path, model, split=split, seed=seed, num_stft_frames=num_stft_frames)
    dataset = data.val_sets[0]  # the split's annotated frames
    assert isinstance(dataset, NaturalFrames)
    table = dataset.frames
    assert isinstance(table, StoreFrames)
    raws = [table.frame(position) for position in dataset.positions]
    candidates = [i for i, raw in enumerate(raws) if bool((np.asarray(raw["mask"]) == 1).any())]
    if not candidates:
        raise ValueError(f"{path}: no annotated frame of split {split!r} shows a sounding object")
    rng = np.random.default_rng(seed)
    chosen = [int(i) for i in rng.choice(candidates, size=min(num, len(candidates)), replace=False)]
    chosen.sort(key=lambda i: table.items[dataset.positions[i]])  # (video, frame) order
    batch = collate([dataset[i] for i in chosen])
    out = _forward(model, batch)
    if "mask_logits" not in out:
        raise ValueError(f"{type(model).__name__} returns no mask_logits: not a frame-level segmentation system")
    logits = out["mask_logits"].float()  # (N, H, W)
    truth = (batch["mask"] == 1).numpy()
    videos = [table.items[dataset.positions[i]] for i in chosen]  # (store position, frame index)
    names = [table.clips.video_ids[video] for video, _ in videos]
    times = np.asarray([float(raws[i]["frame_time"]) for i in chosen], np.float64)
    frames_hw = (int(truth.shape[-2]), int(truth.shape[-1]))
    fps = _opened(store).avlab.recipe.get("frames", {}).get("fps")
    frames = _frames_at(source, [(name, t, time) for name, (_, t), time in zip(names, videos, times, strict=True)],
                        fps=fps, size=frames_hw)
    attention = out.get("attention")
    logan = out.get("logan_map")
    return SegmentationExamples(
        video_ids=names,
        frame_indices=np.asarray([t for _, t in videos], np.int64),
        frame_times=times,
        frames=frames,
        truth=truth,
        probabilities=torch.sigmoid(logits).numpy().astype(np.float32),
        attention=None if attention is None else attention.float().numpy(),
        logan_map=None if logan is None else logan.float().numpy(),
        ious=mask_iou(logits, truth),
    )


# Separation.


def separation_examples(
    store: Any,
    solo_store: Any,
    system: nn.Module | str | os.PathLike[str],
    *,
    num: int = 2,
    seed: int = 0,
    split: str = "val",
    num_mix: int = 2,
    num_stft_frames: int | None = None,
    threshold: float = 0.5,
    source: Source | None = None,
) -> list[SeparationExample]:
    """Separate validation's fixed mixtures of solo clips, and score each source.

    The mixtures are the first `num` of validation's second loader (`AVDataModule` with a
    solo store: `num_mix` clips of the split at volume 1, drawn from ``seed + 1``): with the
    run's `fit` seed, exactly the first mixtures its validation scored. Separation follows
    validation (`avlab.models.separate_waveforms`: binary masks at `threshold` on the mixture,
    the best source order for permutation-invariant systems), and each source is scored by
    `avlab.eval.bss_eval`, the BSS Eval of validation's `SeparationMeter`.

    With `source`, each example also holds its sources' frames and, for systems with
    ``pixel_sounds`` (PixelPlayer, CoSeg, AViS-Net), the sound of every pixel of each frame:
    what `avlab.widgets.SeparationViewer` plays when a pixel is clicked.

    Args:
        store: The feature store of natural mixtures the system was trained on (it fixes the
            number of source slots).
        solo_store: The store of solo clips (path or opened); it must hold `split`.
        system: A trained separating system, or its checkpoint.
        num: Mixtures to return.
        seed: The seed the run was trained with (`fit`'s `seed`).
        split: The split of solo clips.
        num_mix: Clips per mixture (`fit`'s `num_mix`).
        num_stft_frames: T of the separation window, when the run set it (default: `fit`'s).
        threshold: Binary threshold of the unwarped masks (the task's ``separation_threshold``).
        source: The raw dataset the solo store was cached from (a SynthAV root or a
            `Manifest`), for the frames; None: no frames and no pixel sounds.

    Returns:
        One `SeparationExample` per mixture.

    Raises:
        ValueError: The system does not separate, or the solo store has no `split` clips.

    Example:
        >>> import tempfile
        >>> from avlab.models import create_system, system_preset
        >>> from avlab.testing import tiny_store
        >>> store = tiny_store(tempfile.mkdtemp())
        >>> silent = create_system("avisnet", channels=(8, 16, 32), separation=False,
        ...                        **system_preset("avisnet", "tiny"))
        >>> separation_examples(store, store, silent)
        Traceback (most recent call last):
        ...
        ValueError: AViSNet does not separate (built with separation=False): no separation examples
    """
    if num < 1:
        raise ValueError(f"num must be at least 1, got {num}")
    model = _as_system(system)
    if not getattr(model, "separates", False):
        raise ValueError(f"{type(model).__name__} does not separate (built with separation=False): "
                         "no separation examples")
    solo_path = store_path(solo_store)
    if split not in store_info(solo_path)["splits"]:
        raise ValueError(f"{solo_path}: no solo clips in split {split!r}; validation's mixtures are made of them")
    data = _datamodule(store_path(store), model, solo_store=solo_path, split=split, seed=seed, num_mix=num_mix,
                       num_eval_items=num, num_stft_frames=num_stft_frames)
    if len(data.val_sets) < 2:
        raise ValueError(f"{store_path(store)}: its frames carry no separation targets, so validation mixes no "
                         "solo clips")
    mixtures = data.val_sets[1]  # validation's fixed solo mixtures
    assert isinstance(mixtures, MixFrames)
    batch = collate([mixtures[i] for i in range(len(mixtures))])
    out = _forward(model, batch)
    if "separation_logits" not in out:
        raise ValueError(f"{type(model).__name__} returned no separation_logits for a mixture batch")
    logits = out["separation_logits"].float()  # (B, N, rows, T)
    if getattr(model, "permutation_invariant", False):
        # As validation: each slot takes the source it fits best.
        targets, weights = warped_targets(batch["source_mag"], batch["mixture_mag"], logits.shape[-2])
        inverse = best_permutation(logits, targets, weights).argsort(dim=1)
        logits = logits.gather(1, inverse[:, :, None, None].expand_as(logits))
    window = data.window()
    lengths = [int(n) for n in batch["stft_length"].tolist()]
    estimate_waves = separate_waveforms(logits, batch["mixture_stft"], lengths, threshold=threshold)
    reference_waves = waveforms(batch["source_stft"], lengths)
    mixture_waves = waveforms(batch["mixture_stft"], lengths)
    masks = spectrogram_masks(logits, bins=int(batch["mixture_mag"].shape[-2]), threshold=threshold).numpy()
    categories = list(store_info(solo_path)["categories"])
    frames, pixel_masks = _pixel_sounds(model, batch, mixtures, solo_store, source)
    examples = []
    for b, count in enumerate(lengths):
        real = batch["source_valid"][b].numpy().astype(bool)
        samples = max(0, (count - 1) * window.hop_length)
        mixture = batch["mixture_mag"][b, :, :count].numpy()  # (F, T)
        references = reference_waves[b][real][:, :samples].astype(np.float32)  # (K, S)
        estimates = estimate_waves[b][real][:, :samples].astype(np.float32)
        mixture_wave = mixture_waves[b][:samples].astype(np.float32)
        silent = (np.abs(references).sum(axis=1) <= SILENCE_THRESHOLD) | (np.abs(estimates).sum(axis=1) <= SILENCE_THRESHOLD)
        scored = bool(np.any(mixture_wave != 0) and not silent.any())
        nan = np.full(int(real.sum()), np.nan)
        scores = {"sdr": nan, "sir": nan, "sar": nan}
        if scored:
            with one_blas_thread():
                scores = bss_eval(references, estimates)
        labels = []
        for k, category in enumerate(batch["source_category"][b][real].tolist()):
            labels.append(categories[category] if 0 <= category < len(categories) else f"source {k + 1}")
        examples.append(SeparationExample(
            labels=labels,
            mixture=mixture.astype(np.float32),
            estimates=(mixture[None] * masks[b][real][:, :, :count]).astype(np.float32),
            references=batch["source_mag"][b][real][:, :, :count].numpy().astype(np.float32),
            sdr=np.asarray(scores["sdr"], np.float64),
            sir=np.asarray(scores["sir"], np.float64),
            sar=np.asarray(scores["sar"], np.float64),
            mixture_waveform=mixture_wave,
            estimate_waveforms=estimates,
            reference_waveforms=references,
            sample_rate=window.sample_rate,
            hop_length=window.hop_length,
            scored=scored,
            frames=None if frames is None else frames[b][real],
            pixel_masks=None if pixel_masks is None else pixel_masks[b][real][..., :count].astype(np.float16),
            mixture_stft=None if pixel_masks is None else batch["mixture_stft"][b, :, :count].numpy().astype(np.complex64),
        ))
    return examples


def _pixel_sounds(model: nn.Module, batch: Mapping[str, torch.Tensor], mixtures: MixFrames, solo_store: Any,
                  source: Source | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Each mixture's source frames (B, N, H, W, 3) and pixel masks (B, N, h, w, F, T), or None."""
    if source is None:
        return None, None
    table = mixtures.frames
    assert isinstance(table, StoreFrames)
    n = int(batch["source_region"].shape[1])
    size = (int(batch["source_region"].shape[-2]), int(batch["source_region"].shape[-1]))
    wanted = []
    for item in range(len(mixtures)):
        for position in mixtures.positions(item):
            video, index = table.items[position]
            wanted.append((table.clips.video_ids[video], index, float(table.frame(position)["frame_time"])))
    fps = _opened(solo_store).avlab.recipe.get("frames", {}).get("fps")
    decoded = _frames_at(source, wanted, fps=fps, size=size).reshape(len(mixtures), -1, *size, 3)
    frames = np.zeros((len(mixtures), n, *size, 3), np.uint8)  # padding sources stay black
    frames[:, :decoded.shape[1]] = decoded
    pixel_sounds: Callable[[Mapping[str, torch.Tensor]], torch.Tensor] | None = getattr(model, "pixel_sounds", None)
    if pixel_sounds is None:
        return frames, None
    with _evaluating(model, batch) as inputs:
        logits = pixel_sounds(inputs).float().cpu()  # (B, V, h, w, rows, T)
    b, views, h, w = logits.shape[:4]
    if views != n:
        return frames, None  # the sources share the batch's frame: no frame of their own to click
    bins = int(batch["mixture_mag"].shape[-2])
    masks = spectrogram_masks(logits.flatten(1, 3), bins=bins, threshold=None)  # (B, V*h*w, F, T)
    return frames, masks.view(b, views, h, w, bins, -1).numpy()


# Video instance segmentation.


def _decode(segmentation: Mapping[str, Any] | None, size: tuple[int, int]) -> np.ndarray:
    """One frame's mask from a compressed or uncompressed RLE; None: empty."""
    if segmentation is None:
        return np.zeros(size, bool)
    if not isinstance(segmentation, Mapping) or "counts" not in segmentation:
        raise ValueError("expected RLE segmentations ({'size', 'counts'}) or null, as VIS validation writes")
    counts = segmentation["counts"]
    if isinstance(counts, list):
        rle = mask_utils.frPyObjects(dict(segmentation), *size)
    else:
        rle = {"size": list(segmentation["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    with warnings.catch_warnings():
        # pycocotools' decoder trips numpy 2's copy-keyword deprecation; its fallback is right.
        warnings.filterwarnings("ignore", message=r"__array__ implementation doesn't accept a copy keyword",
                                category=DeprecationWarning)
        return np.asarray(mask_utils.decode(rle), bool)


def _video_record(manifest: Manifest, names: Sequence[str], ytvis_id: int, split: str, numbering: str) -> VideoRecord:
    if not 1 <= ytvis_id <= len(names):
        raise ValueError(f"results video {ytvis_id} is not among the {len(names)} videos of {numbering}")
    name = names[ytvis_id - 1]
    if name not in manifest:
        raise ValueError(f"results video {ytvis_id} is {name!r} in {numbering}, which is not in {manifest.name}")
    record = manifest[name]
    if record.split != split:
        raise ValueError(f"results video {ytvis_id} is {name!r} of split {record.split!r} in {numbering}, not "
                         f"{split!r}: the run numbered its videos otherwise (pass `store` for a run on a store, or "
                         "the split's manifest for an end-to-end run)")
    return record


def vis_examples(
    results_json: str | os.PathLike[str],
    source: Source,
    *,
    split: str = "val",
    num_videos: int = 2,
    score_threshold: float = 0.3,
    store: Any = None,
    fps: float | None = None,
) -> list[TrackExample]:
    """The tracks of a YouTube-VIS results file on their videos' frames.

    VIS validation writes ``ytvis_results.json`` in the run folder, numbering videos as
    `avlab.train.vis_data.ytvis_ground_truth` does: the frame table's video positions + 1.
    A run on a store numbers the store's videos (every split, in the store's order); an
    end-to-end run numbers the videos of its validation split. Here video k is the k-th video
    of `store` when given, else the k-th of `source`: pass the dataset folder the store was
    cached from (its videos in the same order), or for an end-to-end run the split's manifest
    (``load_synth(root, split="val")``).

    Args:
        results_json: The results file: a list of ``{video_id, category_id, score,
            segmentations}`` with an RLE or null per frame.
        source: The raw dataset (a SynthAV root or a `Manifest`).
        split: The split the results are on; a results video of another split is an error.
        num_videos: Videos to return: the first ones (by id) with a track kept.
        score_threshold: Tracks scoring below this are left out.
        store: The feature store the run validated on (names the videos, gives the frame rate
            and the category names).
        fps: The frame rate the run sampled videos at (default: the store's, else the
            dataset's own frames).

    Returns:
        One `TrackExample` per video.

    Raises:
        ValueError: The file is not a results list, a video id does not name a video of
            `split`, a segmentation is not an RLE, or fewer frames decode than the results have.

    Example:
        >>> import json, tempfile
        >>> from avlab.datasets.synth import generate, load_synth
        >>> tmp = tempfile.mkdtemp()
        >>> root = generate(tmp + "/synth", num_videos=1, size=32, fps=4, seconds=1.0, renderer="additive",
        ...                 splits=["val"], num_solo=0)
        >>> mask = np.zeros((32, 32), np.uint8); mask[4:12, 8:20] = 1
        >>> rle = mask_utils.encode(np.asfortranarray(mask)); rle["counts"] = rle["counts"].decode("ascii")
        >>> track = {"video_id": 1, "category_id": 1, "score": 0.9, "segmentations": [rle, None, rle, rle]}
        >>> _ = Path(tmp, "ytvis_results.json").write_text(json.dumps([track]))
        >>> [example] = vis_examples(Path(tmp, "ytvis_results.json"), load_synth(root, split="val"))
        >>> example.frames.shape, int(example.tracks[0].sum()), example.scores
        ((4, 32, 32, 3), 288, {0: 0.9})
    """
    results = json.loads(Path(results_json).read_text(encoding="utf-8"))
    if not isinstance(results, list) or not all(isinstance(r, Mapping) and "video_id" in r for r in results):
        raise ValueError(f"{results_json}: not a YouTube-VIS results list ({{video_id, category_id, score, "
                         "segmentations}} per track)")
    manifest = open_source(source)
    categories = list(manifest.categories or [])
    if store is not None:
        opened = _opened(store)
        names = [str(v) for v in opened["video_id"].values]
        categories = list(opened.avlab.categories or categories)
        if fps is None:
            fps = opened.avlab.recipe.get("frames", {}).get("fps")
        numbering = f"the store {store_path(store)}"
    else:
        names = manifest.ids
        numbering = f"{manifest.name} ({len(names)} videos)"
    by_video: dict[int, list[Mapping[str, Any]]] = {}
    for result in results:
        by_video.setdefault(int(result["video_id"]), []).append(result)
    examples: list[TrackExample] = []
    for ytvis_id in sorted(by_video):
        if len(examples) >= num_videos:
            break
        tracks = by_video[ytvis_id]  # in the tracker's creation order: position = track id
        kept = [k for k, r in enumerate(tracks) if float(r["score"]) >= score_threshold]
        if not kept:
            continue
        record = _video_record(manifest, names, ytvis_id, split, numbering)
        sized = [s for r in tracks for s in r["segmentations"] if s is not None]
        if not sized:
            continue
        size = (int(sized[0]["size"][0]), int(sized[0]["size"][1]))
        count = len(tracks[0]["segmentations"])
        masks = {k: np.stack([_decode(s, size) for s in tracks[k]["segmentations"]]) for k in kept}  # (T, H, W)
        decoded = record.load_frames(fps=fps, size=size)
        if len(decoded.frames) < count:
            raise ValueError(f"{record.video_id}: {len(decoded.frames)} frames decoded at fps={fps}, the results "
                             f"have {count}: pass the run's frame rate as fps (or its store)")
        labels = {}
        for k in kept:
            category = int(tracks[k]["category_id"])
            labels[k] = categories[category] if 0 <= category < len(categories) else str(category)
        examples.append(TrackExample(
            video_id=record.video_id,
            ytvis_id=ytvis_id,
            frames=np.asarray(decoded.frames[:count], np.uint8),
            tracks=masks,
            labels=labels,
            scores={k: float(tracks[k]["score"]) for k in kept},
        ))
    return examples
