"""Array inputs of the metrics: numpy arrays, torch tensors (any device) or nested lists."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def to_numpy(x: Any) -> np.ndarray:
    """`x` as a numpy array, detached and copied to host memory when it is a tensor.

    Example:
        >>> to_numpy(torch.ones(2)).tolist()
        [1.0, 1.0]
    """
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def to_tensor(x: Any) -> torch.Tensor:
    """`x` as a CPU tensor of its own dtype, detached.

    Example:
        >>> to_tensor(np.zeros(2, np.float32)).dtype
        torch.float32
    """
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    return torch.as_tensor(np.asarray(x))


def is_floating(x: Any) -> bool:
    """Whether `x` holds floating-point values (logits) rather than bool or integer labels.

    Example:
        >>> is_floating(np.zeros(2)), is_floating(np.zeros(2, bool))
        (True, False)
    """
    if isinstance(x, torch.Tensor):
        return x.is_floating_point()
    return np.issubdtype(np.asarray(x).dtype, np.floating)
