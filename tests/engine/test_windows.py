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


def test_picked_rows_equal_the_full_forward_on_every_path(tiny_model, long_text, monkeypatch):
    """Few rows per window: the network computes its last block at them only; many rows, or a network
    without ``rows``: the whole forward. All three give the full forward's values at the pairs asked."""
    from ardm_core import windows
    from ardm_core.windows import picked_logprobs, window_logprobs_many

    net = tiny_model.net
    ids = torch.as_tensor(tiny_model.vocab.encode(long_text[:D * 3])).view(3, D)
    calls = []
    real = type(net).forward
    monkeypatch.setattr(type(net), "forward", lambda self, *a, **k: (calls.append("rows" in k), real(self, *a, **k))[1])
    with torch.inference_mode():
        full = real(net, ids)
        for win, off in (([2, 0, 0, 2], [63, 5, 0, 1]), ([1] * 60, list(range(60)))):
            win, off = torch.tensor(win), torch.tensor(off)
            assert torch.allclose(picked_logprobs(net, ids, win, off), full[win, off], atol=1e-5)
        assert calls == [True, False]  # 2 of 64 rows: rows only; 60 of 64: the whole forward

        class Plain(torch.nn.Module):  # a view of the network that takes no rows (an upscaling stage's)
            cfg = net.cfg

            def forward(self, x):
                return net(x)

        got = picked_logprobs(Plain(), ids, torch.tensor([0, 1]), torch.tensor([3, 4]))
        assert torch.allclose(got, full[[0, 1], [3, 4]], atol=1e-5)
    docs = [torch.as_tensor(tiny_model.vocab.encode(long_text[i:i + 2000])) for i in (0, 500)]
    targets = [np.array([1999, 3, 900]), np.array([10, 11, 1500])]
    many, n = window_logprobs_many(net, docs, targets, D, max_batch=2)
    assert n == 5
    monkeypatch.setattr(windows, "ROWS_SHARE", -1.0)  # the reference: every window's whole forward
    for doc, tg, got in zip(docs, targets, many):
        assert torch.allclose(got, window_logprobs(net, doc, tg, D)[0], atol=1e-5)
    assert calls[-1] is False
