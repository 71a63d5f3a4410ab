"""Engine tests run tiny models: one intra-op thread is fastest for them and keeps
the suite quick on a busy machine (restored afterwards for other test folders)."""

from __future__ import annotations

import pytest

from tests.threads import one_torch_thread


@pytest.fixture(scope="package", autouse=True)
def _one_thread():
    with one_torch_thread():
        yield
