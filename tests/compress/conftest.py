"""Shared options for the compression tests: small windows keep every test fast."""

from __future__ import annotations

import pytest

WINDOW = 16  # characters per window in most tests (the tiny model's block is 64)
STEPS = 4


@pytest.fixture
def opts() -> dict:
    return {"window": WINDOW, "steps": STEPS}
