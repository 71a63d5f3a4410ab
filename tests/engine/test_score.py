"""score(): exact bits of a given completion under an order (teacher forcing)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ardm_core.evaluate import ordered_bits
from ardm_core.session import DecodeSession, score
from tests.conftest import SAMPLE_TEXT

TEXT = SAMPLE_TEXT[:64]


def stepwise(model, text, masked, **kw) -> np.ndarray:
    """The same score through the session, one network call per step (the reference)."""
    s = DecodeSession(model, text, masked, teacher=True, **kw)
    bits = np.zeros(len(text))
    for st in s.run():
        bits[list(st.positions)] = st.bits
    return bits[s.masked_positions]


@pytest.mark.parametrize("order,make", [("l2r", lambda n: np.arange(n)), ("r2l", lambda n: np.arange(n)[::-1].copy())])
def test_full_window_equals_ordered_bits(tiny_model, order, make):
    ids = torch.as_tensor(tiny_model.vocab.encode(TEXT))
    ref = ordered_bits(tiny_model.net, ids, make(64))
    r = score(tiny_model, TEXT, range(64), order=order)
    assert np.allclose(r.bits, ref, atol=1e-4)
    assert r.total_bits == pytest.approx(ref.sum(), rel=1e-5)
    assert r.bits_per_char == pytest.approx(ref.sum() / 64, rel=1e-5)
    assert r.network_calls == 64 and list(r.positions) == list(range(64))


def test_explicit_order_equals_ordered_bits_on_masked_part(tiny_model):
    rng = np.random.default_rng(0)
    order = rng.permutation(64)
    ids = torch.as_tensor(tiny_model.vocab.encode(TEXT))
    ref = ordered_bits(tiny_model.net, ids, order)
    r = score(tiny_model, TEXT, range(64), order="explicit", explicit=order)
    assert np.allclose(r.bits, ref, atol=1e-4)
    # infilling: the last 20 of that order are masked, the rest is known context
    masked = np.sort(order[44:])
    r2 = score(tiny_model, TEXT, masked, order="explicit", explicit=order[44:])
    assert np.allclose(r2.bits, ref[masked], atol=1e-4)


@pytest.mark.parametrize("order", ["random", "outside-in", "centre-out", "l2r"])
@pytest.mark.parametrize("steps", [None, 1, 5])
def test_batched_equals_stepwise(tiny_model, order, steps):
    masked = [1, 2, 3, 4, 9, 10, 30, 31, 32, 33, 34, 60]
    r = score(tiny_model, TEXT, masked, order=order, steps=steps, seed=3)
    ref = stepwise(tiny_model, TEXT, masked, order=order, steps=steps, seed=3)
    assert np.allclose(r.bits, ref, atol=1e-4)
    assert r.network_calls == (steps or len(masked))


def test_long_document_batched_equals_stepwise(tiny_model):
    text = (SAMPLE_TEXT * 10)[:3000]
    masked = np.sort(np.random.default_rng(1).choice(3000, 40, replace=False))
    for steps in (None, 4):
        r = score(tiny_model, text, masked, order="random", steps=steps, seed=2)
        assert np.allclose(r.bits, stepwise(tiny_model, text, masked, order="random", steps=steps, seed=2), atol=1e-4)


def test_one_step_is_one_forward(tiny_model):
    masked = [5, 6, 7, 20]
    ids = tiny_model.vocab.encode(TEXT)
    inp = ids.copy()
    inp[masked] = tiny_model.net.mask_id
    with torch.inference_mode():
        logp = tiny_model.net(torch.as_tensor(inp)[None])[0].double().numpy()
    expected = -logp[masked, ids[masked]] / math.log(2)
    r = score(tiny_model, TEXT, masked, order="l2r", steps=1)
    assert np.allclose(r.bits, expected, atol=1e-4) and r.network_calls == 1


def test_dynamic_orders_and_unknown_characters(tiny_model):
    text = "It is a truth \u0436 universally acknowledged"
    masked = [3, 4, 14, 20]  # 14 is outside the vocabulary: it costs nothing and is counted
    r = score(tiny_model, text, masked, order="confidence")
    assert r.n_unknown == 1 and r.bits[2] == 0.0 and np.all(r.bits[[0, 1, 3]] > 0)
    assert r.network_calls == 4 and np.isfinite(r.total_bits)


def test_empty_mask_scores_nothing(tiny_model):
    r = score(tiny_model, TEXT, [])
    assert r.total_bits == 0.0 and r.network_calls == 0 and len(r.bits) == 0
