"""Engine tests run tiny models: one intra-op thread is fastest for them and keeps
the suite quick on a busy machine (restored afterwards for other test folders)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="package", autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
