"""What machine and library versions produced a result: recorded next to every figure."""

from __future__ import annotations

import contextlib
import os
import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Any

__all__ = ["describe_environment", "library_versions"]

_LIBRARIES = ("avlab", "torch", "torchvision", "numpy", "av", "librosa", "zarr", "xarray", "dask")


def library_versions(names: tuple[str, ...] = _LIBRARIES) -> dict[str, str | None]:
    """Installed versions of `names` (None for a missing one), without importing them.

    Example:
        >>> library_versions(("numpy",))["numpy"] is not None
        True
    """
    found: dict[str, str | None] = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def describe_environment() -> dict[str, Any]:
    """The machine (CPU, cores, memory, GPU) and library versions, as a JSON-ready dict."""
    import torch

    memory = None
    with contextlib.suppress(OSError, ValueError, IndexError), open("/proc/meminfo") as meminfo:
        memory = round(int(meminfo.readline().split()[1]) / 2**20, 1)  # kB -> GiB
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), cpu)
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "gpus": gpus,
        "libraries": library_versions(),
    }
