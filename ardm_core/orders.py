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

A ``Plan`` puts an order to work for one run: optional hand-picked
positions first (one per step), then the rest under the order, in the step
sizes a budget planned. Sampling, scoring, evaluation, compression and each
upscaling stage all step through a Plan. Random orders come from one place,
``random_permutation``, with two sources: numpy's generator (sampling,
scoring, evaluation) and splitmix64 (compression, whose files must decode on
any machine and any numpy version).

Span-based orders treat each maximal run of adjacent masked positions as one
span: ``outside-in`` fills the edges of every span first and works inwards
(rank = distance to the nearest span edge, ties left to right); ``centre-out``
is its reverse (the middle of the widest spans first, then outwards).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

RNG_TAG_ORDER = 0x0D0E  # numpy stream tag of the random order (sampling draws under RNG_TAG_SAMPLE)
RNG_TAG_SAMPLE = 1  # numpy stream tag of the characters a step samples
ORDER_SOURCES = ("numpy", "splitmix")
_M64 = (1 << 64) - 1


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
    stream: int = 0  # for the random order: one independent order per stream (an evaluation's windows)


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


# -- random orders: one source of randomness for every caller -----------------------------
def _splitmix64(state: int) -> tuple[int, int]:
    state = (state + 0x9E3779B97F4A7C15) & _M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return state, z ^ (z >> 31)


def random_permutation(n: int, seed: int, stream: int = 0, *, source: str = "numpy") -> np.ndarray:
    """0..n-1 in a uniformly random fill order fixed by (seed, stream).

    ``numpy``: numpy's generator keyed by (seed, RNG_TAG_ORDER[, stream]); the
    random order of a session and of window ``stream`` of an evaluation.
    ``splitmix``: a Fisher-Yates shuffle driven by splitmix64, integer
    arithmetic only (compression's window order: part of its file format).
    """
    if source == "numpy":
        key = [int(seed) % 2**64, RNG_TAG_ORDER] + ([int(stream)] if stream else [])
        return np.argsort(np.random.default_rng(key).permutation(n), kind="stable")
    if source == "splitmix":
        state, _ = _splitmix64(((seed & 0xFFFFFFFF) << 32) | (stream & 0xFFFFFFFF))
        order = list(range(n))
        for i in range(n - 1, 0, -1):
            state, r = _splitmix64(state)
            j = r % (i + 1)
            order[i], order[j] = order[j], order[i]
        return np.asarray(order, dtype=np.int64)
    raise ValueError(f"unknown order source {source!r}; choose from {list(ORDER_SOURCES)}")


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


def _rank_of(order: np.ndarray) -> np.ndarray:
    """Rank (0 = first) of each element of 0..n-1 given the fill order."""
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
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
    return _take_by_rank(state, size, "random", lambda s: _rank_of(random_permutation(len(s.masked), s.seed, s.stream)))


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


def _position_problems(arr: np.ndarray, masked: np.ndarray, n_text: int, *, complete: bool) -> list[str]:
    """What is wrong with a list of positions meant to be masked ones, each once (and every one if ``complete``)."""
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
    if complete and len(missing):
        problems.append(f"missing masked positions: {_name_some(missing)}")
    return problems


def validate_explicit(explicit, masked: np.ndarray, n_text: int) -> np.ndarray:
    """Check that ``explicit`` lists every masked position exactly once; the error names the culprits."""
    return _checked_positions(explicit, masked, n_text, "explicit order", "list every masked position exactly once",
                              complete=True)


def _checked_positions(xs, masked: np.ndarray, n_text: int, what: str, rule: str, *, complete: bool) -> np.ndarray:
    try:
        arr = np.asarray(list(xs), dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a list of integer positions") from None
    problems = _position_problems(arr, masked, n_text, complete=complete)
    if problems:
        raise ValueError(f"{what} must {rule}; " + "; ".join(problems))
    return arr


# -- the plan of a run ---------------------------------------------------------------------
class Plan:
    """Which positions each step of a run fills.

    ``picks`` (hand-picked positions, each one step) come first, then every
    other masked position under ``order``, ``sizes[j]`` positions in the j-th
    step after the picks (None: one per step). ``first_step`` is the index of
    the plan's first step in its session (after a replayed prefix). A plan
    that does not cover the masked positions exactly is refused here, before
    any network call. Fixed orders need no model: ``fixed_steps`` lists every
    step up front (teacher forcing). Dynamic orders choose each step from the
    model's probabilities at the remaining positions (``take``).
    """

    def __init__(self, n_text: int, masked: np.ndarray, order: str = "l2r", *, sizes: Sequence[int] | None = None,
                 picks: Sequence[int] = (), seed: int = 0, explicit: Sequence[int] | None = None, first_step: int = 0,
                 remaining: np.ndarray | None = None, stream: int = 0):
        self.masked = np.asarray(masked, dtype=np.int64)
        self.order = order
        self.fn = get_order(order)
        self.dynamic = bool(self.fn.dynamic)
        start = self.masked if remaining is None else np.asarray(remaining, dtype=np.int64)  # still masked at first_step
        self.picks = validate_picks(picks, start, n_text)
        self.first_step = int(first_step)
        n_rest = len(start) - len(self.picks)
        self.sizes = None if sizes is None else tuple(int(k) for k in sizes)
        if self.sizes is not None and (sum(self.sizes) != n_rest or (self.sizes and min(self.sizes) < 1)):
            raise ValueError(f"the step sizes must be positive and cover the {n_rest} positions after the picks "
                             f"exactly (they cover {sum(self.sizes)})")
        if order == "explicit":
            if explicit is None:
                raise ValueError("order 'explicit' needs explicit=[positions], every masked position exactly once")
            explicit = validate_explicit(explicit, self.masked, n_text)
        self._state = OrderState(n_text, self.masked, self.masked, int(seed), explicit, stream=int(stream))

    @property
    def explicit(self) -> np.ndarray | None:
        return self._state.explicit

    def size(self, index: int, n_remaining: int) -> int:
        """Positions that step ``index`` of the session fills, with ``n_remaining`` still masked."""
        j = index - self.first_step - len(self.picks)
        if j < 0:
            return 1
        if self.sizes is None:
            return 1
        return min(n_remaining, self.sizes[j] if j < len(self.sizes) else n_remaining)

    def needs_scores(self, index: int) -> bool:
        """Whether step ``index`` reads the model's view of every remaining position (a dynamic order's step)."""
        return self.dynamic and index - self.first_step >= len(self.picks)

    def take(self, index: int, remaining: np.ndarray, max_prob: np.ndarray | None = None,
             entropy: np.ndarray | None = None) -> np.ndarray:
        """The positions step ``index`` fills, in fill order; ``remaining`` (sorted) are those still masked."""
        j = index - self.first_step
        if 0 <= j < len(self.picks):
            return self.picks[j : j + 1].copy()
        size = self.size(index, len(remaining))
        st = self._state
        st.remaining, st.max_prob, st.entropy = remaining, max_prob, entropy
        picked = np.asarray(self.fn(st, size), dtype=np.int64)
        if len(picked) != size:
            raise RuntimeError(f"order {self.order!r} picked {len(picked)} positions, expected {size}")
        return picked

    def fixed_steps(self, remaining: np.ndarray | None = None) -> list[np.ndarray]:
        """Every step from the plan's first on, for a fixed order (no model needed)."""
        if self.dynamic:
            raise ValueError(f"order {self.order!r} decides each step from the model; it has no fixed steps")
        left = np.ones(len(self.masked), dtype=bool)
        if remaining is not None:
            left[:] = False
            left[np.searchsorted(self.masked, remaining)] = True
        steps = []
        while left.any():
            picked = self.take(self.first_step + len(steps), self.masked[left])
            left[np.searchsorted(self.masked, picked)] = False
            steps.append(picked)
        return steps


def fill_steps(steps: Sequence[np.ndarray], n: int) -> np.ndarray:
    """(n,) the step that fills each position, -1 where known. Teacher forcing shows a position to
    step k's rows iff its fill step is below k (``windows.teacher_forced_logprobs``, compression)."""
    step_of = np.full(n, -1, dtype=np.int64)
    for k, g in enumerate(steps):
        step_of[np.asarray(g, dtype=np.int64)] = k
    return step_of


def validate_picks(picks, masked: np.ndarray, n_text: int) -> np.ndarray:
    """Hand-picked positions: masked, each once, in the given order; the error names the culprits."""
    return _checked_positions(picks, masked, n_text, "picks", "be masked positions, each once", complete=False)


__all__ = ["Plan", "random_permutation", "fill_steps", "validate_picks", "ORDER_SOURCES", "RNG_TAG_ORDER", "RNG_TAG_SAMPLE", "ORDERS", "OrderState", "OrderFn", "order_names", "get_order", "validate_explicit", "span_depth"]
