"""Generation orders: which masked positions are filled next.

An OA-ARDM is trained for every order at once (paper section 3), so the same
network can fill left to right, by confidence or in a hand-picked order. Every
order here has one signature::

    order(state: OrderState, size: int) -> np.ndarray   # the next ``size`` positions, in fill order

``state.remaining`` holds the positions still masked. Fixed orders rank the
masked positions once (cached in ``state.cache``) and take the ``size`` lowest
ranks among those remaining, so stepping back or branching never confuses
them. Dynamic orders (``fn.dynamic``) read the model's confidence at every
remaining position, which the session computes in the same network call that
fills the step, and decide anew each step.

Span-based orders treat each maximal run of adjacent masked positions as one
span: ``outside-in`` fills the edges of every span first and works inwards
(rank = distance to the nearest span edge, ties left to right); ``centre-out``
is its reverse (the middle of the widest spans first, then outwards).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class OrderState:
    n_text: int  # document length
    masked: np.ndarray  # (n,) all positions to fill, sorted
    remaining: np.ndarray  # (m,) positions still masked, sorted
    seed: int = 0  # for the random order
    explicit: np.ndarray | None = None  # for the explicit order, validated
    max_prob: np.ndarray | None = None  # (m,) model probability of the likeliest char, dynamic orders only
    entropy: np.ndarray | None = None  # (m,) bits, dynamic orders only
    cache: dict = field(default_factory=dict)  # per-session memo (ranks of fixed orders)


OrderFn = Callable[[OrderState, int], np.ndarray]
ORDERS: dict[str, OrderFn] = {}


def _register(name: str, *, dynamic: bool = False, help: str = ""):
    def deco(fn):
        fn.dynamic = dynamic  # type: ignore[attr-defined]
        fn.order_name = name  # type: ignore[attr-defined]
        fn.help = help  # type: ignore[attr-defined]
        ORDERS[name] = fn
        return fn

    return deco


def order_names() -> list[str]:
    return list(ORDERS)


def get_order(name: str) -> OrderFn:
    try:
        return ORDERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown order {name!r}; choose from {order_names()}") from None


# -- fixed orders: a rank per masked position -----------------------------------------
def _take_by_rank(state: OrderState, size: int, key: str, make_rank: Callable[[OrderState], np.ndarray]) -> np.ndarray:
    rank = state.cache.get(key)
    if rank is None:
        rank = np.full(state.n_text, np.iinfo(np.int64).max, dtype=np.int64)  # document-indexed
        rank[state.masked] = make_rank(state)
        state.cache[key] = rank
    rem = state.remaining
    size = min(size, len(rem))
    r = rank[rem]
    if size < len(rem):
        part = np.argpartition(r, size - 1)[:size]
    else:
        part = np.arange(len(rem))
    return rem[part[np.argsort(r[part], kind="stable")]]


def _argsort_rank(keys: np.ndarray) -> np.ndarray:
    """Rank (0 = first) of each element when sorted by ``keys`` (stable: ties left to right)."""
    order = np.argsort(keys, kind="stable")
    rank = np.empty(len(keys), dtype=np.int64)
    rank[order] = np.arange(len(keys))
    return rank


def span_depth(masked: np.ndarray) -> np.ndarray:
    """Distance of each masked position (sorted) to the nearest edge of its span (0 = an edge)."""
    n = len(masked)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    new_span = np.r_[True, np.diff(masked) != 1]
    starts = np.flatnonzero(new_span)
    ends = np.r_[starts[1:], n] - 1
    span_id = np.cumsum(new_span) - 1
    i = np.arange(n)
    return np.minimum(i - starts[span_id], ends[span_id] - i)


@_register("l2r", help="left to right")
def left_to_right(state: OrderState, size: int) -> np.ndarray:
    return state.remaining[:size]


@_register("r2l", help="right to left")
def right_to_left(state: OrderState, size: int) -> np.ndarray:
    return state.remaining[::-1][:size].copy()


@_register("random", help="a uniformly random order fixed by the seed")
def random_order(state: OrderState, size: int) -> np.ndarray:
    def rank(s: OrderState) -> np.ndarray:
        return np.random.default_rng([s.seed % 2**64, 0x0D0E]).permutation(len(s.masked))

    return _take_by_rank(state, size, "random", rank)


@_register("centre-out", help="the middle of each masked span first, then outwards")
def centre_out(state: OrderState, size: int) -> np.ndarray:
    return _take_by_rank(state, size, "centre-out", lambda s: _argsort_rank(-span_depth(s.masked)))


@_register("outside-in", help="the edges of each masked span first, then inwards")
def outside_in(state: OrderState, size: int) -> np.ndarray:
    return _take_by_rank(state, size, "outside-in", lambda s: _argsort_rank(span_depth(s.masked)))


@_register("explicit", help="a user-given list of positions (every masked position exactly once)")
def explicit_order(state: OrderState, size: int) -> np.ndarray:
    if state.explicit is None:
        raise ValueError("order 'explicit' needs the list of positions (explicit=...)")

    def rank(s: OrderState) -> np.ndarray:
        r = np.empty(s.n_text, dtype=np.int64)
        r[s.explicit] = np.arange(len(s.explicit))
        return r[s.masked]

    return _take_by_rank(state, size, "explicit", rank)


# -- dynamic orders: decided anew each step from the model's distributions -----------------
def _take_best(state: OrderState, size: int, score: np.ndarray) -> np.ndarray:
    """The ``size`` remaining positions with the highest score, best first (ties left to right)."""
    size = min(size, len(state.remaining))
    order = np.lexsort((state.remaining, -score))[:size]
    return state.remaining[order]


def _need_scores(state: OrderState) -> None:
    if state.max_prob is None or state.entropy is None:
        raise ValueError("a dynamic order needs the model's probabilities at the remaining positions")


@_register("confidence", dynamic=True, help="the most probable prediction first, decided anew each step")
def most_confident(state: OrderState, size: int) -> np.ndarray:
    _need_scores(state)
    return _take_best(state, size, state.max_prob)


@_register("min-entropy", dynamic=True, help="the lowest-entropy prediction first, decided anew each step")
def lowest_entropy(state: OrderState, size: int) -> np.ndarray:
    _need_scores(state)
    return _take_best(state, size, -state.entropy)


@_register("least-confident", dynamic=True, help="the least probable prediction first, decided anew each step")
def least_confident(state: OrderState, size: int) -> np.ndarray:
    _need_scores(state)
    return _take_best(state, size, -state.max_prob)


# -- validation ----------------------------------------------------------------------------
def _name_some(xs, limit: int = 10) -> str:
    xs = [int(x) for x in xs]
    s = ", ".join(map(str, xs[:limit]))
    return s + (f", ... ({len(xs)} in all)" if len(xs) > limit else "")


def validate_explicit(explicit, masked: np.ndarray, n_text: int) -> np.ndarray:
    """Check that ``explicit`` lists every masked position exactly once; the error names the culprits."""
    try:
        arr = np.asarray(list(explicit), dtype=np.int64)
    except (TypeError, ValueError):
        raise ValueError("explicit order must be a list of integer positions") from None
    problems = []
    out_of_range = arr[(arr < 0) | (arr >= n_text)]
    if len(out_of_range):
        problems.append(f"out of range (text has {n_text} characters): {_name_some(out_of_range)}")
    inside = arr[(arr >= 0) & (arr < n_text)]
    uniq, counts = np.unique(inside, return_counts=True)
    repeated = uniq[counts > 1]
    if len(repeated):
        problems.append(f"repeated: {_name_some(repeated)}")
    not_masked = np.setdiff1d(uniq, masked)
    if len(not_masked):
        problems.append(f"not masked: {_name_some(not_masked)}")
    missing = np.setdiff1d(masked, uniq)
    if len(missing):
        problems.append(f"missing masked positions: {_name_some(missing)}")
    if problems:
        raise ValueError("explicit order must list every masked position exactly once; " + "; ".join(problems))
    return arr


__all__ = ["ORDERS", "OrderState", "OrderFn", "order_names", "get_order", "validate_explicit", "span_depth"]
