"""Tiny models run fastest on one intra-op thread, and the suite stays quick on a busy
machine. Test folders opt in from their conftest (package-scoped, restored afterwards)."""

from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def one_torch_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
