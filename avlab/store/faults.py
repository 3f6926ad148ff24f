"""Named kill points: SIGKILL this process at an exact place in `cache_features`.

A crash is only reproducible if it can be placed. `cache_features` reaches named points while
it works; when the environment variable ``AVLAB_KILL_AT`` names one, the process sends itself
SIGKILL there: a real kill (no exception, no ``finally``, no flush), as a power cut or the OOM
killer would. ``AVLAB_KILL_AT="shard-write:3"`` kills it the 3rd time it reaches
``shard-write`` (counted per process, from 1; ``shard-write`` alone means ``shard-write:1``);
several points are separated by commas and the first one reached kills.

The points, in the order a run reaches them:

====================  ===========================================================================
``create``            the store was wiped and its arrays are being created (once per array)
``sweep``             deleting a ``*.partial`` file a killed writer left (once per file)
``decode``            a worker starts decoding a video (loader threads run ahead of the backbone)
``backbone``          a batch of frames goes through the backbone
``shard-write``       a shard's bytes are in its ``*.partial`` file, not yet renamed into place
``video-written``     all of a video's shards are written, its commit record is not
``commit``            a commit record is in its ``*.partial`` file, not yet renamed into place
``committed``         a video's commit record is in place
``seal-tables``       sealing: the per-video tables are written, the store's attributes are not
``seal-metadata``     sealing: the attributes are written, the consolidated metadata is not
``sealed``            the store is sealed, the writer lock is not yet released
====================  ===========================================================================

Example (a shell; the rerun resumes and sweeps what the killed run left)::

    AVLAB_KILL_AT=shard-write:3 python -c "import avlab; avlab.cache_features('data', 's.zarr')"
    echo $?   # 137: killed by SIGKILL
    python -c "import avlab; avlab.cache_features('data', 's.zarr')"

Reading the variable happens once, at import; with it unset `point` returns at its first test.
`arm` sets the points of a running process (a dask worker: ``client.run(arm, "decode:1",
workers=[address])``).
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter

__all__ = ["POINTS", "arm", "point"]

POINTS = ("create", "sweep", "decode", "backbone", "shard-write", "video-written", "commit", "committed",
          "seal-tables", "seal-metadata", "sealed")

_targets: dict[str, int] = {}
_reached: Counter[str] = Counter()
_lock = threading.Lock()


def arm(spec: str | None) -> None:
    """Kill this process at the points `spec` names (``"name:count,..."``); None or "" disarms.

    Counts restart from zero.

    Raises:
        ValueError: An unknown point or a count below 1.

    Example:
        >>> arm("commit:2"); arm(None)
    """
    targets: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in (spec or "").split(","))):
        name, _, count = item.partition(":")
        if name not in POINTS:
            raise ValueError(f"AVLAB_KILL_AT: unknown kill point {name!r}; known: {', '.join(POINTS)}")
        if count and (not count.isdigit() or int(count) < 1):
            raise ValueError(f"AVLAB_KILL_AT: {item!r} needs a count of 1 or more after the colon")
        targets[name] = int(count) if count else 1
    with _lock:
        _targets.clear()
        _targets.update(targets)
        _reached.clear()


def point(name: str) -> None:
    """Mark that this process reached kill point `name`; dies here if it is armed for this time."""
    if not _targets or name not in _targets:
        return
    with _lock:
        _reached[name] += 1
        if _reached[name] == _targets[name]:
            os.kill(os.getpid(), signal.SIGKILL)


arm(os.environ.get("AVLAB_KILL_AT"))
