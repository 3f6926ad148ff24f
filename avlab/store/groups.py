"""Typed access to a store's zarr groups (zarr's own annotations return unions for every lookup)."""

from __future__ import annotations

from typing import Any, cast

import zarr

from avlab.store import schema


def array(group: zarr.Group, name: str) -> zarr.Array:
    """The array `name` of `group` (KeyError when absent, TypeError for a subgroup)."""
    node = group[name]
    if not isinstance(node, zarr.Array):
        raise TypeError(f"{name} is a group, not an array")
    return node


def avlab_attrs(group: zarr.Group) -> dict[str, Any]:
    """avlab's attributes of a store's root group ({} when it has none)."""
    value = dict(group.attrs).get(schema.ATTRS_KEY)
    return dict(cast(dict[str, Any], value)) if isinstance(value, dict) else {}


def read(group: zarr.Group, name: str) -> Any:
    """All of array `name` as a numpy array."""
    import numpy as np

    return np.asarray(array(group, name)[...])
