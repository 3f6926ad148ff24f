"""Reading a store: `open_store` gives a lazy xarray Dataset, and ``ds.avlab`` knows the rest."""

from __future__ import annotations

import html
import os
import warnings
from typing import Any

import numpy as np
import xarray as xr

from avlab.errors import AvlabError, PathError
from avlab.store import schema
from avlab.store.commits import StoreFiles, normalise_store_path

__all__ = ["open_store", "AvlabAccessor", "StoreSchemaError"]


class StoreSchemaError(PathError):
    """The path holds no avlab store, or one written by an incompatible schema version.

    ``str(error)`` is ``"{store}: {reason}"``; the reason names the versions when they differ.
    """


def open_store(path: str | os.PathLike[str]) -> xr.Dataset:
    """Open a feature store lazily (nothing is read until values are asked for).

    Dask chunks follow the shards: one video x `frames_per_shard` frames, so a computation
    over the store reads each shard once.

    Args:
        path: The store's path or fsspec URL.

    Returns:
        An `xarray.Dataset` with the ``avlab`` accessor (`AvlabAccessor`).

    Raises:
        StoreSchemaError: Not an avlab store, or an incompatible schema version.
    """
    url = normalise_store_path(path)
    with warnings.catch_warnings():
        # Consolidated metadata is not in the Zarr v3 spec yet; zarr says so on every open.
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        # A store whose run did not finish has none yet; it is small, unconsolidated reads are fine.
        warnings.filterwarnings("ignore", message="Failed to open Zarr store with consolidated", category=RuntimeWarning)
        try:
            raw = xr.open_zarr(url, consolidated=None, chunks=None, zarr_format=3)
        except (FileNotFoundError, KeyError, ValueError, TypeError) as error:
            raise StoreSchemaError(url, f"not a readable Zarr v3 store ({error})") from error
    if schema.ATTRS_KEY not in raw.attrs:
        raise StoreSchemaError(url, f"a Zarr store, but not written by avlab (no '{schema.ATTRS_KEY}' attributes)")
    attrs = raw.attrs[schema.ATTRS_KEY]
    problem = schema.attrs_problem(attrs)
    if problem is None and schema.VIEW in raw.dims and raw.sizes[schema.VIEW] != len(attrs["views"]):
        problem = f"the store has {raw.sizes[schema.VIEW]} views but its attributes name {len(attrs['views'])}"
    if problem is not None:
        raise StoreSchemaError(url, problem)
    chunks: dict[str, int] = {schema.VIDEO: 1}
    for variable in raw.variables.values():
        shards = variable.encoding.get("shards") or variable.encoding.get("chunks")
        if shards and schema.FRAME in variable.dims:
            chunks[schema.FRAME] = max(chunks.get(schema.FRAME, 0), shards[variable.dims.index(schema.FRAME)])
    ds = raw.chunk({dim: size for dim, size in chunks.items() if dim in raw.dims})
    # The per-video tables are small: keep them in memory, they index everything else.
    # Strings become plain Python str objects (numpy's StringDType does not cast to '<U').
    tables = [n for n in schema.DRIVER_TABLES if n in ds]
    ds = ds.assign({n: ds[n].load().astype(object) if n in schema.STRING_TABLES else ds[n].load() for n in tables})
    if not attrs.get("sealed") and schema.STATUS in ds:
        # A run that did not finish never wrote the tables: its commit records say which videos
        # are whole (done or failed); every other one is pending, whatever its shards hold.
        committed = StoreFiles(url).tables(ds.sizes[schema.VIDEO])
        ds = ds.assign({n: ds[n].copy(data=values) for n, values in committed.items() if n in ds})
    if schema.VIDEO_ID in ds:
        ds = ds.assign_coords({schema.VIDEO: ds[schema.VIDEO_ID].values.astype(str)})
    if "views" in attrs:
        ds = ds.assign_coords({schema.VIEW: list(attrs["views"])})
    ds.encoding["source"] = url
    return ds


@xr.register_dataset_accessor("avlab")
class AvlabAccessor:
    """``ds.avlab``: what a store was made with, its videos and their status, and readers.

    Example:
        >>> import tempfile
        >>> from avlab.testing import tiny_store
        >>> ds = tiny_store(tempfile.mkdtemp())
        >>> ds.avlab.recipe["visual"]["backbone"], len(ds.avlab.videos)
        ('debug', 2)
    """

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self._ds.attrs.get(schema.ATTRS_KEY, {}))

    @property
    def recipe(self) -> dict[str, Any]:
        """The fingerprinted recipe: backbone, weights identity, frames, audio, dtype, precision."""
        return dict(self.attrs.get("recipe", {}))

    @property
    def fingerprint(self) -> str:
        return str(self.attrs.get("fingerprint", ""))

    @property
    def levels(self) -> list[str]:
        return [lvl for lvl in self.attrs.get("levels", []) if schema.visual_var(lvl) in self._ds]

    @property
    def categories(self) -> list[str] | None:
        return self.attrs.get("categories")

    @property
    def videos(self) -> Any:
        """A pandas DataFrame, one row per video: split, category, status, error and counts."""
        columns = [n for n in schema.DRIVER_TABLES if n in self._ds and n != schema.VIDEO_ID]
        frame = self._ds[columns].to_dataframe()
        frame.index.name = schema.VIDEO
        return frame

    @property
    def status(self) -> Any:
        """Per-video status (``done`` / ``failed`` / ``pending``) as a pandas Series."""
        return self._ds[schema.STATUS].to_series()

    @property
    def failures(self) -> dict[str, str]:
        """Failed videos and their reasons."""
        status = self._ds[schema.STATUS].values.astype(str)
        errors = self._ds[schema.ERROR].values.astype(str)
        ids = self._ds[schema.VIDEO].values.astype(str)
        return {v: e for v, s, e in zip(ids, status, errors, strict=True) if s == schema.STATUS_FAILED}

    def split(self, name: str, *, done_only: bool = True) -> xr.Dataset:
        """The videos of one split (cached successfully, unless `done_only` is False)."""
        keep = self._ds[schema.SPLIT].values.astype(str) == name
        if done_only:
            keep &= self._ds[schema.STATUS].values.astype(str) == schema.STATUS_DONE
        return self._ds.isel({schema.VIDEO: np.flatnonzero(keep)})

    def split_done(self) -> xr.Dataset:
        """Every video cached successfully, whatever its split."""
        keep = self._ds[schema.STATUS].values.astype(str) == schema.STATUS_DONE
        return self._ds.isel({schema.VIDEO: np.flatnonzero(keep)})

    def to_torch(self, kind: str = "clips", **options: Any) -> Any:
        """A torch Dataset over this store: ``"clips"`` (`ClipDataset`) or ``"pairs"`` (`FramePairDataset`).

        The store is reopened from its path inside each DataLoader worker; the videos of this
        Dataset (e.g. after `split`) are the ones read.
        """
        from avlab.store.reader import ClipDataset, FramePairDataset

        source = self._ds.encoding.get("source")
        if source is None:
            raise AvlabError("this Dataset was not opened with avlab.open_store: no store path to read from")
        videos = [str(v) for v in self._ds[schema.VIDEO].values]
        cls = {"clips": ClipDataset, "pairs": FramePairDataset}.get(kind)
        if cls is None:
            raise ValueError(f"kind must be 'clips' or 'pairs', got {kind!r}")
        return cls(source, videos=videos, **options)

    def _repr_html_(self) -> str:
        attrs = self.attrs
        recipe = attrs.get("recipe", {})
        visual = recipe.get("visual", {})
        status = self._ds[schema.STATUS].values.astype(str) if schema.STATUS in self._ds else np.array([])
        counts = {s: int((status == s).sum()) for s in (schema.STATUS_DONE, schema.STATUS_FAILED, schema.STATUS_PENDING)}
        rows = [
            ("videos", f"{self._ds.sizes.get(schema.VIDEO, 0)} ({', '.join(f'{k} {v}' for k, v in counts.items())})"),
            ("backbone", f"{visual.get('backbone')} ({visual.get('weights')})"),
            ("levels", ", ".join(f"{lvl} {tuple(self._ds[schema.visual_var(lvl)].shape[3:])}" for lvl in self.levels)),
            ("frames", str(recipe.get("frames"))),
            ("audio", ", ".join(recipe.get("audio", {}).get("kinds", []))),
            ("dtype / precision", f"{recipe.get('dtype')} / {recipe.get('precision')}"),
            ("fingerprint", self.fingerprint[:16]),
            ("sealed", str(attrs.get("sealed"))),
        ]
        body = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>"
                       f"{html.escape(v)}</td></tr>" for k, v in rows)
        failures = self.failures
        failed = "".join(f"<li>{html.escape(v)}: {html.escape(e)}</li>" for v, e in list(failures.items())[:10])
        return (f"<div><b>avlab feature store</b> <code>{html.escape(str(self._ds.encoding.get('source', '')))}</code>"
                f"<table>{body}</table>" + (f"<p>failed:</p><ul>{failed}</ul>" if failed else "") + "</div>")
