"""`cache_features`: a manifest in, a Zarr v3 feature store out, resumable and scalable.

The driver plans the store (every video's extent), creates the arrays once, and hands videos to
workers: its own threads (decode one video ahead, write one behind, so decoding, STFTs,
compression and writes overlap the backbone) or a dask cluster (one task per video). A worker
writes only its video's shards, then its commit record; the driver alone seals the store
(per-video tables, consolidated metadata). Rerunning after a crash redoes exactly the videos
without a commit, or whose source files changed.
"""

from __future__ import annotations

import errno
import functools
import os
import time
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import zarr
from zarr.codecs import ZstdCodec

from avlab.backbones import LogMelFrames, SeparationSTFT, visual_bundle
from avlab.datasets.detect import open_source
from avlab.datasets.manifest import Manifest, VideoRecord
from avlab.environment import library_versions, numpy_blas_threads
from avlab.errors import AvlabError, AvlabWarning, DatasetError, StoreWriteError
from avlab.store import faults, schema
from avlab.store.commits import StoreFiles, normalise_store_path
from avlab.store.extract import compute_visual, load_inputs
from avlab.store.groups import array, avlab_attrs, read
from avlab.store.plan import VideoPlan, plan_video
from avlab.store.recipe import Recipe, RecipeMismatchError, fingerprint, recipe_differences
from avlab.store.shards import DirectChunkWriter

__all__ = ["cache_features", "CacheJob"]


def cache_features(
    source: Manifest | str | os.PathLike[str],
    store: str | os.PathLike[str] | None = None,
    *,
    visual: str = "resnet18",
    layers: Sequence[str] = ("c3", "c4", "c5"),
    weights: str | os.PathLike[str] | None = None,
    size: int | tuple[int, int] = 224,
    fps: float | None = None,
    audio: Sequence[str] = ("stft", "logmel_frames"),
    ground_truth: bool = True,
    mask_size: int | tuple[int, int] | None = None,
    augment: Sequence[str] = (),
    augment_splits: Sequence[str] = ("train",),
    raw_sample_rate: int = 11025,
    dtype: str = "float16",
    compression: str | None = "zstd",
    client: Any = None,
    device: str = "auto",
    batch_size: int = 32,
    num_workers: int = 1,
    overwrite: bool = False,
    retry_failed: bool = False,
    progress: bool = True,
) -> Any:
    """Cache frozen-backbone visual features, audio features and ground truth into a Zarr store.

    Args:
        source: A `Manifest`, or a folder a loader recognises (`avlab.datasets.open_source`).
        store: Path or fsspec URL of the store (``featurestore/NAME.zarr``, ``s3://...``).
            None: ``featurestore/{dataset}-{visual}-{fingerprint[:8]}.zarr``, so another
            recipe lands in another store.
        visual: Backbone bundle (`avlab.backbones.list_visual_bundles()`).
        layers: Levels to cache.
        weights: None (random, seeded), ``"imagenet"`` (from the torch hub cache; offline, an
            error says which file to put where) or a checkpoint path.
        size: Frame size for the backbone, an int (square) or (height, width).
        fps: Sampling rate; None caches the dataset's own frames (annotated frames, or every
            frame of a raw video: pass an fps for folders of long videos).
        audio: ``"stft"`` (complex separation STFT, 11025 Hz, 1022/256), ``"logmel_frames"``
            (96 x 64 log-mel patch centred on each frame), ``"raw"`` (the waveform).
        ground_truth: Cache masks, instance masks and ids, sounding flags and per-source STFTs
            when the dataset has them.
        mask_size: Resolution of cached masks (default: `size`).
        augment: Extra views of each frame of `augment_splits` (``"hflip"``, ``"zoom"``),
            masks transformed alike: heads on frozen features overfit, and flips help.
        augment_splits: Splits that get the extra views.
        raw_sample_rate: Rate of the raw waveform with ``"raw"``.
        dtype: Stored feature dtype (``"float16"``; ``"float32"`` to check precision).
        compression: ``"zstd"`` (level 1: about 1.7x smaller on ReLU features) or None
            (faster reads from a warm page cache; see benchmarks/results/bench_store.md).
        client: A dask.distributed Client: videos run as tasks on its workers.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        batch_size: Frames per backbone forward pass.
        num_workers: Loader threads decoding ahead of the backbone (serial mode).
        overwrite: Replace a store made with another recipe or other videos.
        retry_failed: Retry videos that failed in an earlier run (changed files always are).
        progress: Show a progress bar (videos, frames/s).

    Returns:
        The store, opened with `avlab.open_store`.

    Raises:
        RecipeMismatchError: The store exists with another recipe (the message names the
            fields) or other videos, and not `overwrite`.
        StoreBusyError: Another live process is writing the store.
        StoreSchemaError: The store was written by another schema version, and not `overwrite`.
        DatasetError: The dataset has no videos.
        StoreWriteError: The disk filled up; the store still opens, and a rerun resumes.

    Example:
        >>> import tempfile
        >>> from avlab.datasets.synth import generate
        >>> tmp = tempfile.mkdtemp()
        >>> root = generate(tmp + "/synth", num_videos=1, size=32, fps=4, seconds=1.0,
        ...                 renderer="additive", splits=["train"], num_solo=0)
        >>> ds = cache_features(root, tmp + "/store.zarr", visual="debug", size=32, progress=False)
        >>> ds.visual_c3.shape, ds.avlab.status.tolist()
        ((1, 1, 4, 8, 4, 4), ['done'])
    """
    manifest = open_source(source)
    if len(manifest) == 0:
        raise DatasetError(manifest.root or manifest.name, "the dataset has no videos")
    size_hw = (size, size) if isinstance(size, int) else tuple(size)
    masks_hw = None if mask_size is None else ((mask_size, mask_size) if isinstance(mask_size, int) else tuple(mask_size))
    recipe = Recipe(
        visual=visual, layers=tuple(layers), weights=None if weights is None else os.fspath(weights),
        size=size_hw, fps=fps, audio=tuple(audio), raw_sample_rate=raw_sample_rate,  # type: ignore[arg-type]
        ground_truth=ground_truth, mask_size=masks_hw, augment=tuple(augment),  # type: ignore[arg-type]
        augment_splits=tuple(augment_splits), dtype=dtype, compression=compression,
    )
    torch_device = _resolve_device(device)
    if store is None:
        provisional = CacheJob.create("", recipe, torch_device, batch_size)
        store = f"featurestore/{manifest.name}-{visual}-{provisional.fingerprint[:8]}.zarr"
    store = normalise_store_path(store)
    job = CacheJob.create(store, recipe, torch_device, batch_size)
    files = StoreFiles(store)
    try:
        files.acquire()
    except OSError as error:
        _raise_if_disk_full(store, error)
        raise
    try:
        plans = _plan(manifest, recipe, progress)
        group = _open_or_create(job, files, manifest, plans, overwrite)
        commits = files.commits()
        todo = [i for i, plan in enumerate(plans)
                if i not in commits or commits[i].get("source_hash") != plan.source_hash
                or (retry_failed and commits[i].get("status") == schema.STATUS_FAILED)]
        _unseal(group, files, [i for i in todo if i in commits])
        files.sweep()
        work = [(i, manifest[i], plans[i], job.views_for(manifest[i])) for i in todo]
        runner = _run_dask if client is not None else functools.partial(_run_threads, num_workers=num_workers)
        with numpy_blas_threads(1):  # the backbone has the cores: see numpy_blas_threads
            runner(work, job, client=client, progress=progress, total=len(plans), done=len(plans) - len(todo))
        files.sweep()  # what a dask worker that died mid-write left behind
        failed = _seal(group, files, plans)
        faults.point("sealed")
    except OSError as error:
        _raise_if_disk_full(store, error)
        raise
    finally:
        files.release()
    if failed:
        listing = "; ".join(f"{vid}: {reason}" for vid, reason in failed[:10])
        more = f" (and {len(failed) - 10} more)" if len(failed) > 10 else ""
        warnings.warn(f"{len(failed)} of {len(plans)} videos failed and were recorded as such in "
                      f"{job.store}: {listing}{more}", AvlabWarning, stacklevel=2)
    from avlab.store.api import open_store

    return open_store(store)


def _raise_if_disk_full(store: str, error: OSError) -> None:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        raise StoreWriteError(store, f"the disk is full ({error.strerror}: {error.filename or 'while writing'}); "
                                     "videos committed so far are kept: free space and rerun to resume") from error


def _unseal(group: zarr.Group, files: StoreFiles, redo: list[int]) -> None:
    """Mark committed videos about to be rewritten pending, before any of their shards change:
    a run killed mid-rewrite must not leave them looking done."""
    if not redo:
        return
    status = read(group, schema.STATUS).astype(object)
    status[redo] = schema.STATUS_PENDING
    array(group, schema.STATUS)[:] = status
    attrs = avlab_attrs(group)
    attrs.update(sealed=False)
    group.attrs[schema.ATTRS_KEY] = attrs
    for index in redo:
        files.forget(index)


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass(frozen=True)
class CacheJob:
    """Everything a worker needs to cache one video (picklable: it travels to dask workers).

    Attributes:
        store: Path or URL of the store.
        recipe: The user's settings.
        recipe_values: The fingerprinted recipe (what changes values).
        device: Device name for the backbone.
        batch_size: Frames per forward pass.
    """

    store: str
    recipe: Recipe
    recipe_values: dict[str, Any]
    device: str
    batch_size: int

    @classmethod
    def create(cls, store: str, recipe: Recipe, device: torch.device, batch_size: int) -> CacheJob:
        bundle = visual_bundle(recipe.visual)
        values = {
            "schema_version": schema.SCHEMA_VERSION,
            "visual": bundle.fingerprint(recipe.weights, layers=recipe.layers),
            "frames": {"size": list(recipe.size), "fps": recipe.fps, "decoder": "pyav",
                       "resize": "swscale default (bicubic)", "views": list(recipe.views),
                       "augment_splits": list(recipe.augment_splits) if recipe.augment else []},
            "audio": {
                "kinds": sorted(recipe.audio),
                "stft": SeparationSTFT().params() if "stft" in recipe.audio else None,
                "logmel_frames": LogMelFrames().params() if "logmel_frames" in recipe.audio else None,
                "raw_sample_rate": recipe.raw_sample_rate if "raw" in recipe.audio else None,
            },
            "ground_truth": {"enabled": recipe.ground_truth, "mask_size": list(recipe.cached_mask_size)},
            "dtype": recipe.dtype,
            "precision": "float16-autocast" if device.type == "cuda" else "float32",
        }
        return cls(store=store, recipe=recipe, recipe_values=values, device=str(device), batch_size=batch_size)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.recipe_values)

    def views_for(self, record: VideoRecord) -> tuple[str, ...]:
        """The views cached for a video: augmented ones only for the augmented splits."""
        if record.split in self.recipe.augment_splits:
            return self.recipe.views
        return self.recipe.views[:1]


# Planning and creating the store (driver).

def _plan(manifest: Manifest, recipe: Recipe, progress: bool) -> list[VideoPlan]:
    from tqdm.auto import tqdm

    return [plan_video(r, fps=recipe.fps) for r in tqdm(manifest, desc="planning", disable=not progress, leave=False)]


def _open_or_create(job: CacheJob, files: StoreFiles, manifest: Manifest, plans: list[VideoPlan],
                    overwrite: bool) -> zarr.Group:
    ids = manifest.ids
    try:
        existing = zarr.open_group(job.store, mode="r")
        attrs = avlab_attrs(existing) or None
    except (FileNotFoundError, KeyError, ValueError, zarr.errors.GroupNotFoundError):
        existing, attrs = None, None
    if existing is not None and attrs is not None and not overwrite:
        if attrs.get("schema_version") != schema.SCHEMA_VERSION:
            from avlab.store.api import StoreSchemaError

            raise StoreSchemaError(job.store, f"written with store schema version {attrs.get('schema_version')}; "
                                              f"this avlab writes version {schema.SCHEMA_VERSION}. Use "
                                              "overwrite=True to re-cache it, or another store path.")
        if attrs.get("fingerprint") != job.fingerprint:
            differences = recipe_differences(attrs.get("recipe", {}), job.recipe_values)
            raise RecipeMismatchError(
                f"{job.store} was cached with another recipe; differing fields:\n  " + "\n  ".join(differences)
                + "\nUse another store path, or overwrite=True to replace it.")
        stored_ids = [str(v) for v in read(existing, schema.VIDEO_ID)]
        if stored_ids != ids:
            raise RecipeMismatchError(
                f"{job.store} holds {len(stored_ids)} other videos than the {len(ids)} asked for; "
                "use another store path, or overwrite=True to replace it.")
        group = zarr.open_group(job.store, mode="r+")
        too_long = [r.video_id for r, p in zip(manifest, plans, strict=True)
                    if p.num_frames > array(group, schema.FRAME_TIME).shape[1]]
        if too_long:
            raise RecipeMismatchError(f"{job.store}: videos changed and no longer fit the store "
                                      f"({', '.join(too_long[:5])}); use overwrite=True")
        return group
    files.clear_store()
    group = zarr.open_group(job.store, mode="a")
    specs = _layout(job, manifest, plans)
    for spec in specs:
        faults.point("create")
        group.create_array(
            spec.name, shape=spec.shape, dtype=spec.dtype, chunks=spec.chunks, shards=spec.shards,
            fill_value=spec.fill_value, compressors=ZstdCodec(level=1) if spec.compress else None,
            dimension_names=spec.dims, config={"write_empty_chunks": False},
        )
    array(group, schema.VIDEO_ID)[:] = np.array(ids, dtype=object)
    array(group, schema.SPLIT)[:] = np.array([r.split or "" for r in manifest], dtype=object)
    array(group, schema.CATEGORY)[:] = np.array([r.category or "" for r in manifest], dtype=object)
    array(group, schema.STATUS)[:] = np.array([schema.STATUS_PENDING] * len(ids), dtype=object)
    group.attrs[schema.ATTRS_KEY] = {
        "schema_version": schema.SCHEMA_VERSION,
        "recipe": job.recipe_values,
        "fingerprint": job.fingerprint,
        "versions": library_versions(),
        "categories": manifest.categories,
        "dataset": manifest.name,
        "views": list(job.recipe.views),
        "levels": list(job.recipe.layers),
        "encoding": {"compression": job.recipe.compression, "zstd_level": 1 if job.recipe.compression else None},
        "sealed": False,
    }
    return group


def _layout(job: CacheJob, manifest: Manifest, plans: list[VideoPlan]) -> list[schema.ArraySpec]:
    recipe = job.recipe
    bundle = visual_bundle(recipe.visual)
    levels = {}
    for level in recipe.layers:
        stride = bundle.strides[level]
        levels[level] = (bundle.channels[level], -(-recipe.size[0] // stride), -(-recipe.size[1] // stride))
    max_seconds = max(p.duration for p in plans)
    stft_shape = logmel_shape = max_samples = None
    if "stft" in recipe.audio:
        spec = SeparationSTFT()
        stft_shape = (spec.num_frames(int(round(max_seconds * spec.sample_rate))), spec.num_bins)
    if "logmel_frames" in recipe.audio:
        logmel = LogMelFrames()
        logmel_shape = (logmel.n_mels, logmel.num_frames)
    if "raw" in recipe.audio:
        max_samples = int(round(max_seconds * recipe.raw_sample_rate))
    return schema.build_layout(
        num_videos=len(plans), views=recipe.views, max_frames=max(p.num_frames for p in plans),
        levels=levels, dtype=recipe.dtype, stft_shape=stft_shape, logmel_shape=logmel_shape,
        max_samples=max_samples, mask_size=recipe.cached_mask_size if recipe.ground_truth else None,
        max_instances=max(p.num_instances for p in plans) if recipe.ground_truth else 0,
        max_sources=max(p.num_sources for p in plans) if recipe.ground_truth and stft_shape else 0,
        compress=recipe.compression == "zstd",
    )


# Caching one video (worker side: threads of the driver, or a dask worker process).

@functools.lru_cache(maxsize=4)
def _worker_model(visual: str, weights: str | None, layers: tuple[str, ...], device: str) -> torch.nn.Module:
    return visual_bundle(visual).load(weights, layers=layers).to(device)


@functools.lru_cache(maxsize=1)
def _front_ends() -> tuple[SeparationSTFT, LogMelFrames]:
    return SeparationSTFT(), LogMelFrames()


class _VideoWriter:
    """Writes a video's slice of every worker array: directly to chunk files on local disks
    (`avlab.store.shards.DirectChunkWriter`, the same bytes as zarr), through zarr elsewhere."""

    def __init__(self, store: str) -> None:
        group = zarr.open_group(store, mode="r+")
        self.arrays = {name: array for name, array in group.arrays() if name not in schema.DRIVER_TABLES}
        self.direct: dict[str, DirectChunkWriter] = {}
        if os.path.isdir(store):
            for name in self.arrays:
                writer = DirectChunkWriter.open(os.path.join(store, name))
                if writer is not None:
                    self.direct[name] = writer

    def write(self, index: int, blocks: dict[str, np.ndarray]) -> None:
        """Write the whole `video` slice of every array, so every shard is whole.

        Arrays the video has no data for are written with their fill value, which removes what
        a killed earlier attempt may have left.
        """
        for name, target in self.arrays.items():
            extent = target.shape[1:]
            block = blocks.get(name)
            if block is None or block.shape != extent:
                padded = np.full(extent, target.fill_value, dtype=target.dtype)
                if block is not None:
                    padded[tuple(slice(0, d) for d in block.shape)] = block
                block = padded
            if name in self.direct:
                self.direct[name].write(index, block)
            else:
                target[index] = block
        faults.point("video-written")


def _fail_record(record: VideoRecord, plan: VideoPlan, error: BaseException) -> dict[str, Any]:
    reason = str(error) if isinstance(error, AvlabError) else f"{type(error).__name__}: {error}"
    return {"video_id": record.video_id, "status": schema.STATUS_FAILED, "error": reason,
            "source_hash": plan.source_hash}


def _done_record(record: VideoRecord, plan: VideoPlan, blocks: dict[str, np.ndarray], views: tuple[str, ...],
                 notes: list[str]) -> dict[str, Any]:
    return {
        "video_id": record.video_id, "status": schema.STATUS_DONE, "error": "; ".join(notes),
        "source_hash": plan.source_hash, "num_frames": int(blocks[schema.FRAME_TIME].shape[0]),
        "num_atime": int(blocks[schema.STFT].shape[0]) if schema.STFT in blocks else 0,
        "num_samples": int(blocks[schema.AUDIO].shape[0]) if schema.AUDIO in blocks else 0,
        "num_views": len(views),
        "num_instances": int(blocks[schema.INSTANCE_ID].shape[0]) if schema.INSTANCE_ID in blocks else 0,
        "num_sources": int(blocks[schema.SOURCE_STFT].shape[0]) if schema.SOURCE_STFT in blocks else 0,
    }


def cache_video(job: CacheJob, index: int, record: VideoRecord, plan: VideoPlan, views: tuple[str, ...]) -> dict[str, Any]:
    """Cache one video start to finish and commit it; returns its commit record.

    This is the dask task; the threaded runner does the same steps overlapped across videos.
    """
    with numpy_blas_threads(1):  # in a dask worker process too: the backbone has the cores
        return _cache_video(job, index, record, plan, views)


def _cache_video(job: CacheJob, index: int, record: VideoRecord, plan: VideoPlan, views: tuple[str, ...]) -> dict[str, Any]:
    stft, logmel = _front_ends()
    try:
        faults.point("decode")
        inputs = load_inputs(record, plan, job.recipe, views=views, stft=stft, logmel=logmel)
        model = _worker_model(job.recipe.visual, job.recipe.weights, job.recipe.layers, job.device)
        faults.point("backbone")
        visual = compute_visual(model, inputs.frames, layers=job.recipe.layers, batch_size=job.batch_size,
                                device=torch.device(job.device), dtype=job.recipe.dtype)
        blocks = {**inputs.arrays, **{schema.visual_var(k): v for k, v in visual.items()}}
        commit = _done_record(record, plan, blocks, views, inputs.notes)
    except Exception as error:  # noqa: BLE001 - any failure of one video is recorded, the rest go on
        blocks, commit = {}, _fail_record(record, plan, error)
    _VideoWriter(job.store).write(index, blocks)
    StoreFiles(job.store).commit(index, commit)
    return commit


Work = list[tuple[int, VideoRecord, VideoPlan, tuple[str, ...]]]


def _run_threads(work: Work, job: CacheJob, *, num_workers: int, progress: bool, total: int, done: int,
                 **_: Any) -> None:
    """Decode ahead in loader threads, run the backbone here, write behind in a writer thread."""
    from tqdm.auto import tqdm

    stft, logmel = _front_ends()
    model = _worker_model(job.recipe.visual, job.recipe.weights, job.recipe.layers, job.device) if work else None
    writer_of_videos = _VideoWriter(job.store) if work else None
    files = StoreFiles(job.store)
    device = torch.device(job.device)

    def load(item: tuple[int, VideoRecord, VideoPlan, tuple[str, ...]]) -> Any:
        _, record, plan, views = item
        try:
            faults.point("decode")
            return load_inputs(record, plan, job.recipe, views=views, stft=stft, logmel=logmel)
        except Exception as error:  # noqa: BLE001 - recorded as this video's failure
            return error

    def write(index: int, blocks: dict[str, np.ndarray], commit: dict[str, Any]) -> None:
        writer_of_videos.write(index, blocks)  # type: ignore[union-attr]
        files.commit(index, commit)

    bar = tqdm(total=total, initial=done, desc="caching", unit="video", disable=not progress)
    frames_done, started = 0, time.perf_counter()
    # Short videos (AVSBench: 5 frames) would make small, slow batches: frames of consecutive
    # videos share backbone batches, and each video's features are split off afterwards.
    gathered: list[tuple[int, VideoRecord, VideoPlan, tuple[str, ...], Any]] = []

    def run_backbone(frames: np.ndarray) -> dict[str, np.ndarray]:
        faults.point("backbone")
        return compute_visual(model, frames, layers=job.recipe.layers,  # type: ignore[arg-type]
                              batch_size=job.batch_size, device=device, dtype=job.recipe.dtype)

    def flush() -> None:
        nonlocal frames_done
        if not gathered:
            return
        stacks = [inputs.frames.reshape(-1, *inputs.frames.shape[2:]) for *_, inputs in gathered]
        try:
            together = run_backbone(np.concatenate(stacks)[None])  # level -> (1, sum V*T, C, h, w)
            bounds = np.cumsum([0] + [len(stack) for stack in stacks])
            per_video: list[dict[str, np.ndarray] | None] = [
                {level: values[0, bounds[k] : bounds[k + 1]] for level, values in together.items()}
                for k in range(len(stacks))]
        except AvlabError:
            per_video = [None] * len(gathered)  # find the video at fault: one at a time below
        for (index, record, plan, views, inputs), visual in zip(gathered, per_video, strict=True):
            try:
                if visual is None:
                    visual = run_backbone(inputs.frames)
                else:
                    visual = {level: v.reshape(*inputs.frames.shape[:2], *v.shape[1:]) for level, v in visual.items()}
                blocks = {**inputs.arrays, **{schema.visual_var(k): v for k, v in visual.items()}}
                commit = _done_record(record, plan, blocks, views, inputs.notes)
                frames_done += inputs.frames.shape[0] * inputs.frames.shape[1]
            except Exception as error:  # noqa: BLE001 - recorded as this video's failure
                blocks, commit = {}, _fail_record(record, plan, error)
            submit(index, blocks, commit)
        gathered.clear()

    with ThreadPoolExecutor(max(1, num_workers), thread_name_prefix="avlab-load") as loaders, \
            ThreadPoolExecutor(1, thread_name_prefix="avlab-write") as writer:
        ahead: deque[Future[Any]] = deque()
        pending_writes: deque[Future[None]] = deque()

        def submit(index: int, blocks: dict[str, np.ndarray], commit: dict[str, Any]) -> None:
            pending_writes.append(writer.submit(write, index, blocks, commit))
            while len(pending_writes) > 2:
                pending_writes.popleft().result()
            bar.update(1)
            bar.set_postfix(frames_per_s=f"{frames_done / max(1e-9, time.perf_counter() - started):.0f}")

        queue: Iterator[Any] = iter(work)
        for item in _take(queue, max(2, num_workers + 1)):
            ahead.append(loaders.submit(load, item))
        for index, record, plan, views in work:
            inputs = ahead.popleft().result()
            for item in _take(queue, 1):
                ahead.append(loaders.submit(load, item))
            if isinstance(inputs, BaseException):
                submit(index, {}, _fail_record(record, plan, inputs))
                continue
            gathered.append((index, record, plan, views, inputs))
            if sum(g[-1].frames.shape[0] * g[-1].frames.shape[1] for g in gathered) >= job.batch_size:
                flush()
        flush()
        for future in pending_writes:
            future.result()
    bar.close()


def _take(iterator: Iterator[Any], count: int) -> list[Any]:
    items = []
    for _ in range(count):
        try:
            items.append(next(iterator))
        except StopIteration:
            break
    return items


def _run_dask(work: Work, job: CacheJob, *, client: Any, progress: bool, total: int, done: int, **_: Any) -> None:
    """One task per video on the cluster.

    A task whose worker dies is rerun on another worker (dask's ``allowed-failures`` times);
    a video that kills every worker trying it (a crashing decoder, memory) is recorded as failed
    and the others go on.
    """
    from distributed import KilledWorker, as_completed
    from tqdm.auto import tqdm

    keys: dict[str, tuple[int, VideoRecord, VideoPlan]] = {}
    futures = []
    for index, record, plan, views in work:
        key = f"avlab-cache-{job.fingerprint[:8]}-{index}"
        keys[key] = (index, record, plan)
        futures.append(client.submit(cache_video, job, index, record, plan, views, pure=False, retries=2, key=key))
    bar = tqdm(total=total, initial=done, desc="caching", unit="video", disable=not progress)
    for future in as_completed(futures):
        try:
            future.result()
        except KilledWorker as error:
            index, record, plan = keys[future.key]
            _VideoWriter(job.store).write(index, {})  # what the dead workers left of it
            StoreFiles(job.store).commit(index, _fail_record(record, plan, error))
        bar.update(1)
    bar.close()


# Sealing (driver only).

def _seal(group: zarr.Group, files: StoreFiles, plans: list[VideoPlan]) -> list[tuple[str, str]]:
    """Write the per-video tables from the commit records and consolidate the metadata."""
    tables = files.tables(len(plans))
    ids = [str(v) for v in read(group, schema.VIDEO_ID)]
    status = tables[schema.STATUS].tolist()
    failed = [(ids[i], tables[schema.ERROR][i]) for i, s in enumerate(status) if s == schema.STATUS_FAILED]
    for name, values in tables.items():
        array(group, name)[:] = values
    faults.point("seal-tables")
    attrs = avlab_attrs(group)
    attrs.update(sealed=all(s != schema.STATUS_PENDING for s in status),
                 num_done=status.count(schema.STATUS_DONE), num_failed=status.count(schema.STATUS_FAILED))
    group.attrs[schema.ATTRS_KEY] = attrs
    faults.point("seal-metadata")
    with warnings.catch_warnings():
        # Consolidated metadata is not in the Zarr v3 spec yet; zarr says so on every call.
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        # Commit records are plain JSON files inside the `_avlab/commits` group.
        warnings.filterwarnings("ignore", message="Object at .* is not recognized", category=UserWarning)
        zarr.consolidate_metadata(group.store)
    return failed

