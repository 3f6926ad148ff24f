"""`evaluate`: predictions (or a model) against the ground truth cached in a feature store.

The store holds every reference the metrics need (masks, instance masks, source STFTs), so
scoring needs no raw data. Results come back as an `xarray.Dataset` indexed by video, with the
dataset-level summary in its attributes: a table, a plot or a comparison is one call away.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
import xarray as xr

from avlab.errors import AvlabError
from avlab.eval._arrays import to_numpy
from avlab.eval.avsbench import AVSBenchMeter
from avlab.eval.masks import accuracy_at_iou, mask_iou
from avlab.eval.separation import SeparationMeter

__all__ = ["evaluate"]

Task = Literal["segmentation", "separation"]


def evaluate(
    predictions_or_model: Mapping[str, Any] | Callable[[dict[str, Any]], Any],
    store: str | os.PathLike[str] | xr.Dataset,
    *,
    task: Task = "segmentation",
    split: str | None = None,
    threshold: float = 0.75,
    empty: Literal["one", "skip", "zero"] = "one",
) -> xr.Dataset:
    """Score predictions against a store's ground truth, per video and over the whole set.

    Args:
        predictions_or_model: Either a mapping from video id to that video's prediction, or a
            callable given each video as one `avlab.store.ClipDataset` item (all its frames)
            that returns the prediction. A prediction is, for ``"segmentation"``, mask logits
            or binary masks (T, H, W) over the video's cached frames at the store's mask
            size; for ``"separation"``, the separated waveforms (N, S) at 11025 Hz, in the
            order of the store's sources for that video.
        store: A store path (or an opened store).
        task: ``"segmentation"`` (sounding-object masks: AVSBench mIoU and F-score, dataset
            mode, and accuracy at IoU `threshold`) or ``"separation"`` (SDR, SIR, SAR, mixture
            SDR and NSDR by the Sound of Pixels protocol).
        split: Score only this split's videos.
        threshold: IoU of the accuracy figure (AViS-Net: 0.75).
        empty: How a frame whose prediction and ground truth are both empty counts in the
            accuracy (see `accuracy_at_iou`).

    Returns:
        Per-video variables on ``video`` (``miou``, ``fscore``, ``accuracy``, ``num_frames``
        for segmentation; ``sdr``, ``sir``, ``sar``, ``sdr_mix``, ``nsdr``, ``num_sources``
        for separation) and ``attrs["summary"]``, the figures over all frames or samples.
        Videos without ground truth for the task are left out.

    Raises:
        AvlabError: A prediction is missing or has the wrong shape, or the store has no
            ground truth for the task.
    """
    from avlab.store import ClipDataset, open_store

    ds = store if isinstance(store, xr.Dataset) else open_store(store)
    path = ds.encoding.get("source")
    if path is None:
        raise AvlabError("evaluate needs a store opened with avlab.open_store (or its path)")
    needed = {"segmentation": ("mask", "annotated"), "separation": ("stft", "source_stft")}[task]
    missing = [name for name in needed if name not in ds]
    if missing:
        raise AvlabError(f"{path}: the store has no {', '.join(missing)}: it was cached without the "
                         f"ground truth {task} needs")
    videos = ds.avlab.split(split) if split is not None else ds.avlab.split_done()
    ids = [str(v) for v in videos.video.values]
    include = list(needed) + (["source_instance"] if task == "separation" else [])
    clips = ClipDataset(path, videos=ids, clip_length=int(ds.sizes["frame"]), levels=[], include=include)
    if task == "segmentation":
        return _segmentation(predictions_or_model, clips, threshold=threshold, empty=empty)
    return _separation(predictions_or_model, clips)


def _prediction(source: Mapping[str, Any] | Callable[[dict[str, Any]], Any], video_id: str,
                item: dict[str, Any]) -> np.ndarray:
    if callable(source) and not isinstance(source, Mapping):
        return to_numpy(source(item))
    if video_id not in source:
        raise AvlabError(f"no prediction for video {video_id!r}")
    return to_numpy(source[video_id])


def _segmentation(source: Any, clips: Any, *, threshold: float, empty: Any) -> xr.Dataset:
    meter = AVSBenchMeter(mode="dataset")
    rows: dict[str, list[float]] = {"miou": [], "fscore": [], "accuracy": [], "num_frames": []}
    kept: list[str] = []
    all_pred, all_gt = [], []
    for item in clips:
        video_id = clips.video_ids[item["video"]]
        gt = item["mask"].numpy()  # (T, h, w), 255 where unannotated
        annotated = item["annotated"].numpy() == 1
        if not annotated.any():
            continue
        prediction = _prediction(source, video_id, item)
        if prediction.shape[1:] != gt.shape[1:] or len(prediction) < annotated.nonzero()[0].max() + 1:
            raise AvlabError(f"prediction for {video_id!r} has shape {prediction.shape}; expected "
                             f"({len(gt)}, {gt.shape[1]}, {gt.shape[2]}) masks over the cached frames")
        frames = np.flatnonzero(annotated)
        pred, truth = prediction[frames], (gt[frames] > 0).astype(np.uint8)
        logits = pred if np.issubdtype(pred.dtype, np.floating) else np.where(pred > 0, 20.0, -20.0)
        video_meter = AVSBenchMeter(mode="dataset")
        video_meter.update(logits, truth)
        meter.update(logits, truth)
        scores = video_meter.compute()
        rows["miou"].append(scores["miou"])
        rows["fscore"].append(scores["fscore"])
        rows["accuracy"].append(accuracy_at_iou(pred, truth, threshold=threshold, empty=empty))
        rows["num_frames"].append(len(frames))
        all_pred.append(pred)
        all_gt.append(truth)
        kept.append(video_id)
    if not kept:
        raise AvlabError("no video of the selection has annotated frames")
    summary = meter.compute()
    summary["accuracy"] = accuracy_at_iou(np.concatenate(all_pred), np.concatenate(all_gt), threshold=threshold,
                                          empty=empty)
    summary["mean_iou_per_frame"] = float(np.mean(mask_iou(np.concatenate(all_pred), np.concatenate(all_gt))))
    summary["num_frames"] = int(sum(rows["num_frames"]))
    return _dataset(kept, rows, summary, task="segmentation", threshold=threshold)


def _separation(source: Any, clips: Any) -> xr.Dataset:
    from avlab.backbones import SeparationSTFT

    stft = SeparationSTFT()
    meter = SeparationMeter()
    rows: dict[str, list[float]] = {k: [] for k in ("sdr", "sir", "sar", "sdr_mix", "nsdr", "num_sources")}
    kept: list[str] = []
    for item in clips:
        video_id = clips.video_ids[item["video"]]
        spectra = item["source_stft"].numpy()  # (N, atime, freq), NaN-padded
        present = ~np.isnan(spectra.real).all(axis=(1, 2))
        if not present.any():
            continue
        mixture_spec = item["stft"].numpy()
        valid = ~np.isnan(mixture_spec.real).all(axis=1)
        length = (int(valid.sum()) - 1) * stft.hop_length
        references = stft.inverse(spectra[present][:, valid].transpose(0, 2, 1), length)  # (N, S)
        mixture = stft.inverse(mixture_spec[valid].T, length)  # (S,)
        estimates = _prediction(source, video_id, item)
        if estimates.ndim != 2 or len(estimates) != len(references):
            raise AvlabError(f"prediction for {video_id!r} has shape {estimates.shape}; expected "
                             f"({len(references)}, samples) waveforms, one per source")
        samples = min(references.shape[1], estimates.shape[1])
        video_meter = SeparationMeter()
        video_meter.update(references[:, :samples], estimates[:, :samples], mixture[:samples])
        meter.update(references[:, :samples], estimates[:, :samples], mixture[:samples])
        scores = video_meter.compute()
        for name in ("sdr", "sir", "sar", "sdr_mix", "nsdr"):
            rows[name].append(scores[name])
        rows["num_sources"].append(int(present.sum()))
        kept.append(video_id)
    if not kept:
        raise AvlabError("no video of the selection has ground-truth sources")
    return _dataset(kept, rows, meter.compute(), task="separation")


def _dataset(videos: list[str], rows: dict[str, list[float]], summary: dict[str, Any], **attrs: Any) -> xr.Dataset:
    data = {name: ("video", np.asarray(values)) for name, values in rows.items()}
    return xr.Dataset(data, coords={"video": videos}, attrs={"summary": summary, **attrs})
