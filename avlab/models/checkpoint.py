"""Saving and loading systems: a checkpoint rebuilds its model with no extra arguments.

A checkpoint is a dict read with ``torch.load(..., weights_only=True)`` (no pickled classes):
the system's registry record under ``"hyper_parameters"`` (``"system"``: its name,
``"system_kwargs"``: its constructor arguments) and its weights under ``"state_dict"``. The
training task's Lightning checkpoints have that layout, with the weights prefixed
``"system."``; `save_system` writes the same layout without Lightning.

Example:
    >>> import tempfile, os
    >>> from avlab.models import create_system
    >>> model = create_system("visual_only", channels=(8, 16, 32), fpn_width=8, hidden_dim=8)
    >>> path = os.path.join(tempfile.mkdtemp(), "visual_only.ckpt")
    >>> save_system(model, path)
    >>> again = load_system(path)
    >>> all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    True
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from avlab.errors import AvlabError, WeightsError, WeightsNotFoundError
from avlab.models._registry import create_system, system_config

__all__ = ["load_system", "read_checkpoint", "save_system", "system_state_dict"]

PREFIX = "system."  # the training task holds the system as its `system` attribute


def read_checkpoint(path: str | os.PathLike[str], *, map_location: str = "cpu") -> dict[str, Any]:
    """Load a checkpoint file with ``torch.load(weights_only=True)``: tensors and builtins only.

    Nothing in the file can run code: a pickle that names any other class or function is
    refused, and the error names the file.

    Raises:
        WeightsNotFoundError: No such file.
        WeightsError: Truncated, corrupt, not a dict, or holding more than tensors and builtins.

    Example:
        >>> import tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "c.ckpt")
        >>> torch.save({"state_dict": {"w": torch.zeros(1)}}, path)
        >>> sorted(read_checkpoint(path))
        ['state_dict']
    """
    if not Path(path).is_file():
        raise WeightsNotFoundError(path, "checkpoint not found")
    try:
        data = torch.load(os.fspath(path), map_location=map_location, weights_only=True)
    except Exception as error:  # zip, pickle and torch errors alike
        raise WeightsError(path, f"cannot be read with torch.load(weights_only=True): "
                                 f"{type(error).__name__}: {error}") from error
    if not isinstance(data, Mapping):
        raise WeightsError(path, f"holds a {type(data).__name__}, not a checkpoint dict")
    return dict(data)


def system_state_dict(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The system's weights in a checkpoint dict, without the task's ``system.`` prefix.

    Example:
        >>> system_state_dict({"state_dict": {"system.fpn.w": torch.ones(1), "backbone.x": torch.ones(1)}})
        {'fpn.w': tensor([1.])}
    """
    state = checkpoint["state_dict"]
    if any(key.startswith(PREFIX) for key in state):
        return {key[len(PREFIX):]: value for key, value in state.items() if key.startswith(PREFIX)}
    return dict(state)


def load_system(checkpoint: str | os.PathLike[str] | Mapping[str, Any], *, map_location: str = "cpu") -> nn.Module:
    """Rebuild a system from a checkpoint (the task's Lightning checkpoint or `save_system`'s).

    Args:
        checkpoint: A checkpoint path, or a checkpoint dict already loaded.
        map_location: Where to load the tensors.

    Returns:
        The system with its weights, in eval mode.

    Raises:
        WeightsError: The file cannot be read safely (see `read_checkpoint`).
        AvlabError: The file holds no avlab system record.
    """
    if isinstance(checkpoint, Mapping):
        data, where = checkpoint, "checkpoint"
    else:
        data = read_checkpoint(checkpoint, map_location=map_location)
        where = os.fspath(checkpoint)
    params = data.get("hyper_parameters", {})
    if "system" not in params or "state_dict" not in data:
        raise AvlabError(f"{where}: no avlab system in this checkpoint (no hyper_parameters['system'])")
    system = create_system(params["system"], **dict(params.get("system_kwargs", {})))
    system.load_state_dict(system_state_dict(data))
    return system.eval()


def save_system(system: nn.Module, path: str | os.PathLike[str]) -> None:
    """Save a registered system so that `load_system` rebuilds it.

    Args:
        system: An instance of a registered system.
        path: Where to write.
    """
    config = system_config(system)
    state = {PREFIX + key: value.detach().cpu() for key, value in system.state_dict().items()}
    torch.save({"hyper_parameters": {"system": config["name"], "system_kwargs": config["kwargs"]},
                "state_dict": state}, os.fspath(path))
