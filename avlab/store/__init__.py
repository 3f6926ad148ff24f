"""The feature store: `cache_features` writes it, `open_store` reads it, `reader` feeds training.

`schema` is the only module that names dimensions, variables and attributes. The store never
imports heads, models or training code.
"""

from __future__ import annotations

from avlab.errors import StoreWriteError
from avlab.store.api import AvlabAccessor, StoreSchemaError, open_store
from avlab.store.cache import cache_features
from avlab.store.commits import StoreBusyError
from avlab.store.reader import ClipDataset, FramePairDataset
from avlab.store.recipe import Recipe, RecipeMismatchError

__all__ = [
    "AvlabAccessor",
    "ClipDataset",
    "FramePairDataset",
    "Recipe",
    "RecipeMismatchError",
    "StoreBusyError",
    "StoreSchemaError",
    "StoreWriteError",
    "cache_features",
    "open_store",
]
