"""The order registry: one signature, named errors, the documented rankings."""

from __future__ import annotations

import numpy as np
import pytest

from ardm_core.orders import ORDERS, OrderState, get_order, order_names, span_depth, validate_explicit

REQUIRED = {"l2r", "r2l", "random", "confidence", "min-entropy", "least-confident", "centre-out", "outside-in", "explicit"}


def state(masked, n_text=20, **kw) -> OrderState:
    m = np.asarray(masked, dtype=np.int64)
    return OrderState(n_text, m, m, **kw)


def full_order(name, masked, n_text=20, **kw) -> list[int]:
    """Step one position at a time through a fixed order."""
    st = state(masked, n_text, **kw)
    out = []
    rem = list(masked)
    while rem:
        st.remaining = np.asarray(rem, dtype=np.int64)
        (p,) = ORDERS[name](st, 1)
        out.append(int(p))
        rem.remove(int(p))
    return out


def test_registry_has_every_order_with_one_signature():
    assert REQUIRED <= set(order_names())
    for name in order_names():
        fn = get_order(name)
        kw = {}
        if fn.dynamic:
            kw = dict(max_prob=np.linspace(0.1, 0.9, 5), entropy=np.linspace(3, 1, 5))
        if name == "explicit":
            kw = dict(explicit=np.array([4, 3, 2, 1, 0]))
        picked = fn(state(range(5), 5, **kw), 2)
        assert len(picked) == 2 and set(picked) <= set(range(5))


def test_unknown_order_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown order 'zigzag'; choose from \[.*'l2r'.*'outside-in'"):
        get_order("zigzag")


def test_fixed_orders():
    masked = [2, 3, 4, 5, 6, 10, 11, 12]
    assert full_order("l2r", masked) == masked
    assert full_order("r2l", masked) == masked[::-1]
    # spans [2..6] and [10..12]: edges first, then inwards (ties left to right)
    assert full_order("outside-in", masked) == [2, 6, 10, 12, 3, 5, 11, 4]
    assert full_order("centre-out", masked) == [4, 3, 5, 11, 2, 6, 10, 12]
    assert full_order("explicit", masked, explicit=np.array([11, 2, 3, 4, 5, 6, 10, 12])) == [11, 2, 3, 4, 5, 6, 10, 12]


def test_size_takes_the_next_in_order_and_survives_gaps():
    st = state([1, 2, 3, 4, 5, 6, 7])
    assert list(ORDERS["outside-in"](st, 3)) == [1, 7, 2]
    st.remaining = np.array([2, 4, 5, 6])  # as after back()/branch: only ranks matter
    assert list(ORDERS["outside-in"](st, 2)) == [2, 6]
    assert list(ORDERS["r2l"](st, 10)) == [6, 5, 4, 2]


def test_random_is_seeded():
    masked = list(range(30))
    a = full_order("random", masked, 30, seed=1)
    assert a == full_order("random", masked, 30, seed=1)
    assert a != full_order("random", masked, 30, seed=2)
    assert sorted(a) == masked


def test_dynamic_orders_follow_confidence():
    st = state([3, 5, 8, 9], max_prob=np.array([0.2, 0.9, 0.5, 0.9]), entropy=np.array([1.0, 3.0, 0.5, 2.0]))
    assert list(ORDERS["confidence"](st, 3)) == [5, 9, 8]  # ties left to right
    assert list(ORDERS["least-confident"](st, 2)) == [3, 8]
    assert list(ORDERS["min-entropy"](st, 2)) == [8, 3]
    with pytest.raises(ValueError):
        ORDERS["confidence"](state([1, 2]), 1)


def test_span_depth():
    assert list(span_depth(np.array([0, 1, 2, 3, 4, 9, 11, 12]))) == [0, 1, 2, 1, 0, 0, 0, 0]


def test_explicit_validation_names_every_problem():
    masked = np.array([1, 2, 3, 4])
    assert list(validate_explicit([4, 3, 2, 1], masked, 10)) == [4, 3, 2, 1]
    with pytest.raises(ValueError) as e:
        validate_explicit([4, 3, 3, 12, -1, 7], masked, 10)
    msg = str(e.value)
    assert "out of range" in msg and "12" in msg and "-1" in msg
    assert "repeated: 3" in msg
    assert "not masked: 7" in msg
    assert "missing masked positions: 1, 2" in msg


def test_one_seed_gives_one_random_order_everywhere_but_compression(tiny_model):
    """Sampling, scoring, evaluation and a bare Plan share the numpy order source; compression
    deliberately uses splitmix64 (its files must decode on any numpy), so its order differs."""
    from ardm_core.compress import window_order
    from ardm_core.evaluate import exact
    from ardm_core.orders import Plan, random_permutation
    from ardm_core.session import DecodeSession, score
    from tests.conftest import SAMPLE_TEXT

    text = SAMPLE_TEXT[:64]
    n, seed = len(text), 11
    want = random_permutation(n, seed)
    s = DecodeSession(tiny_model, text, range(n), order="random", seed=seed)
    for _ in range(n):
        s.step()
    assert [st.positions[0] for st in s.steps] == want.tolist()
    assert np.concatenate(Plan(n, np.arange(n), "random", seed=seed).fixed_steps()).tolist() == want.tolist()
    # evaluation's window 0 uses the same order as a session with that seed: the same exact bits
    ev = exact(tiny_model, text, order="random", seed=seed)
    sc = score(tiny_model, text, range(n), order="random", seed=seed)
    assert ev.bpc * n == pytest.approx(sc.total_bits, rel=1e-5)
    # later windows get their own streams
    assert random_permutation(n, seed, 1).tolist() != want.tolist()
    # compression: splitmix, the same function under another source, a different order
    assert window_order(seed, 0, n).tolist() == random_permutation(n, seed, 0, source="splitmix").tolist()
    assert window_order(seed, 0, n).tolist() != want.tolist()
    with pytest.raises(ValueError, match="unknown order source"):
        random_permutation(4, 0, source="mt19937")
