"""Long documents: windows of D around the positions a step fills, one batched call per step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ardm_core.session import DecodeSession
from ardm_core.windows import plan_windows, window_logprobs
from tests.conftest import SAMPLE_TEXT

D = 64  # the tiny model's window


@pytest.fixture(scope="module")
def long_text() -> str:
    return (SAMPLE_TEXT * (20_000 // len(SAMPLE_TEXT) + 1))[:20_000]


@pytest.mark.parametrize("seed", range(5))
def test_plan_covers_every_target_once_with_context_both_sides(seed):
    rng = np.random.default_rng(seed)
    N = 5000
    targets = np.sort(rng.choice(N, rng.integers(1, 200), replace=False))
    starts, owner = plan_windows(targets, N, D)
    assert np.all((starts >= 0) & (starts + D <= N))
    s = starts[owner]
    assert np.all((targets >= s) & (targets < s + D))
    for w in range(len(starts)):  # each cluster sits in the middle of its window
        mine = targets[owner == w]
        left, right = mine[0] - starts[w], starts[w] + D - 1 - mine[-1]
        if 0 < starts[w] < N - D:
            assert abs(left - right) <= 1
    # greedy covering is minimal: windows never overlap in the targets they could hold
    assert all(targets[owner == w + 1][0] >= targets[owner == w][0] + D for w in range(len(starts) - 1))


def test_short_document_is_one_window():
    starts, owner = plan_windows(np.array([0, 5, 30]), 40, D)
    assert list(starts) == [0] and list(owner) == [0, 0, 0]


def test_window_rows_are_the_networks_output_on_that_window(tiny_model, long_text):
    net = tiny_model.net
    ids = torch.as_tensor(tiny_model.vocab.encode(long_text[:3000]))
    targets = np.array([2990, 5, 1500, 1510, 40])  # any order, both document ends
    rows, n_win = window_logprobs(net, ids, targets, D, max_batch=2)  # several forward chunks, still one call
    assert n_win == 3  # {5, 40}, {1500, 1510}, {2990}
    starts, owner = plan_windows(np.sort(targets), 3000, D)
    with torch.inference_mode():
        for p, row in zip(targets, rows):
            st = starts[owner[np.searchsorted(np.sort(targets), p)]]
            ref = net(ids[st : st + D][None])[0, p - st]
            assert torch.allclose(row, ref, atol=1e-5)


@pytest.mark.parametrize("order,steps", [("l2r", 25), ("random", None), ("confidence", 8), ("outside-in", 40)])
def test_scattered_masks_in_a_20000_character_document(tiny_model, long_text, order, steps):
    rng = np.random.default_rng(0)
    masked = np.sort(rng.choice(len(long_text), 120, replace=False))
    masked = np.unique(np.r_[masked, 0, 1, 19_999, np.arange(7000, 7030)])  # ends and one longer span
    s = DecodeSession(tiny_model, long_text, masked, order=order, steps=steps, seed=1)
    for st in s.run():
        assert st.windows >= 1
    out = s.result()
    keep = np.ones(len(long_text), dtype=bool)
    keep[masked] = False
    a, b = np.frombuffer(out.encode("utf-32-le"), np.uint32), np.frombuffer(long_text.encode("utf-32-le"), np.uint32)
    assert np.array_equal(a[keep], b[keep])
    assert all(tiny_model.vocab.contains(out[p]) for p in masked)
    assert s.network_calls == len(s.steps) == (steps or len(masked))
    if steps is not None:  # budget steps fill scattered positions: several windows, still one call each
        assert max(st.windows for st in s.steps) > 1
