"""One torch thread for the heads tests.

The tensors here are tiny: on a 2-core machine shared with other work, intra-op threads cost
more in spinning and hand-offs than they save.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
