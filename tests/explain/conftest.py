"""Explain tests run tiny models on one thread (restored afterwards)."""

from __future__ import annotations

import pytest

from tests.threads import one_torch_thread


@pytest.fixture(scope="package", autouse=True)
def _one_thread():
    with one_torch_thread():
        yield
