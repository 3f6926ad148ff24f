"""One BLAS thread for the metric tests.

The BSS Eval factorisations are small (at most 2048 x 2048): on a 2-core machine shared with
other work, OpenBLAS's spinning worker threads made them about 4x slower than one thread.
threadpoolctl comes with scikit-learn (a librosa dependency); without it the tests run as they are.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread() -> Iterator[None]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
