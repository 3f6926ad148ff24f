"""What machine and library versions produced a result, and the thread limits avlab runs under."""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import Any

__all__ = ["describe_environment", "library_versions", "numpy_blas_threads"]

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


@contextlib.contextmanager
def numpy_blas_threads(count: int = 1) -> Iterator[None]:
    """numpy's BLAS (OpenBLAS) limited to `count` threads within the block; torch's are untouched.

    avlab calls numpy's matmul from loader threads (log-mel patches while caching, mixture
    log-mels while training) beside a torch model that already keeps every core busy. OpenBLAS
    then wakes its own pool, whose threads spin against torch's: a log-mel patch took 24 ms
    beside a busy ResNet-18 on 2 cores, 3.2 ms with one BLAS thread. The limit is process-wide
    while the block runs (threadpoolctl) and restored after it.

    Example:
        >>> import numpy as np
        >>> with numpy_blas_threads(1):
        ...     float((np.ones((2, 3)) @ np.ones(3)).sum())
        6.0
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=count, user_api="blas"):
        yield


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
