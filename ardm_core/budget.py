"""Parallel step budgets: how many characters each of K steps fills (paper section 3.1, appendix A).

``L[t]`` is the expected bits per position for the step where t positions are
known (the model's ``loss_by_known`` table, non-increasing). Filling k
positions in one step from t known costs about ``k * L[t]`` bits. The dynamic
programme picks the K step boundaries of least expected cost::

    C[k][t] = min over s < t of C[k-1][s] + (t - s) * L[s],   C[0][start] = 0

and backtracks from ``C[K][start + n]``. For infilling with ``start`` known
characters it plans over the ``n`` remaining positions only.

Why it answers in milliseconds (sizes it must handle: a window of D = 256,
documents of 1,000 to 20,000 masked characters, K up to n):

1. Only run starts can matter. When L is non-increasing, a step that starts
   inside a run of equal L values can start at the run's first position
   instead: the step before it then costs ``L[previous start] >= L[run]`` per
   position less, and nothing else changes. So the programme runs over the R
   run starts only (R <= 256 for any document table, since it is a resampled
   window table; 69 for the shipped model), with K' = min(K, R) steps; with
   K > R every run already starts a step and the extra steps split runs,
   which costs nothing. Exact, and tested against brute force.
2. Layer k only needs boundaries from which the remaining K - k steps can
   still reach the end, so each layer is a (G - K + 1)-square triangle.

A table that is not non-increasing is planned over every position (the same
programme, exact). ``every_position=True`` does so for any table: its ties go
to the earliest boundary over all positions, the plan compression's file
format is defined by. Above ``MAX_EXACT`` candidate boundaries the boundaries
are restricted to an even grid, then each is moved to its best place between
its neighbours until nothing improves (never worse than the equal split).

Plans are cached by table, budget and span, so the budget plot's plan and the
session's plan are computed once.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

MAX_EXACT = 1024  # candidate boundaries planned exactly; more use a grid of this many
PLAN_CACHE = 128  # plans kept (table, K, span): the slider's plan is the session's plan


@dataclass(frozen=True)
class Schedule:
    sizes: tuple[int, ...]  # characters per step, sum = n
    known_before: tuple[int, ...]  # absolute number known before each step (start + cumulative)
    expected_bits: float  # sum_i sizes[i] * L[known_before[i]]

    @property
    def steps(self) -> int:
        return len(self.sizes)

    @property
    def n(self) -> int:
        return sum(self.sizes)

    def expected_bpc(self) -> float:
        return self.expected_bits / max(1, self.n)


def _table(L, start: int, n: int | None) -> tuple[np.ndarray, int]:
    L = np.asarray(L, dtype=np.float64).ravel()
    if L.size == 0:
        raise ValueError("the L_t table is empty")
    if not np.all(np.isfinite(L)):
        raise ValueError("the L_t table holds non-finite values")
    if start < 0:
        raise ValueError(f"start must be >= 0 (got {start})")
    if n is None:
        n = len(L) - start
    if n < 1:
        raise ValueError(f"nothing to plan: n = {n}")
    # more context than the table covers costs no more than its last entry
    idx = np.minimum(np.arange(start, start + n), len(L) - 1)
    return L[idx], n


def check_steps(K, n: int) -> int:
    """The one check of a step budget K against n positions to fill; returns K as an int."""
    if not isinstance(K, (int, np.integer)) or isinstance(K, bool) or not 1 <= K <= n:
        raise ValueError(f"steps must be an integer between 1 and {n} (the number of positions to fill), got {K!r}")
    return int(K)


def _make(sizes, Lw: np.ndarray, start: int) -> Schedule:
    sizes = tuple(int(s) for s in sizes)
    rel = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64)
    cost = float(np.sum(np.asarray(sizes) * Lw[rel]))
    return Schedule(sizes, tuple(int(start + r) for r in rel), cost)


def schedule_cost(L, sizes, *, start: int = 0) -> float:
    """Expected bits of any step sizes under L (for comparisons and tests)."""
    Lw, _ = _table(L, start, sum(sizes))
    return _make(sizes, Lw, start).expected_bits


def _dp(Lw: np.ndarray, B: np.ndarray, K: int, costs: list | None = None) -> list[int]:
    """Least-cost K steps with boundaries among B (B[0] = 0, B[-1] = n, increasing). Returns boundary indices.

    Ties go to the earliest boundary. ``costs``, if given, receives the least
    cost of every budget k = 1..K (then every layer covers every boundary).
    """
    G = len(B) - 1
    pos = B.astype(np.float64)
    slope = Lw[B[:-1]]  # (G,) cost per position of a step starting at boundary s
    C = np.full(G + 1, np.inf)
    C[0] = 0.0
    back = np.zeros((K, G + 1), dtype=np.int64)
    for k in range(1, K + 1):
        hi = G if costs is not None else G - (K - k)  # the last boundary layer k may end at
        s, t = slice(k - 1, hi), slice(k, hi + 1)  # s in [k-1, hi-1], t in [k, hi]
        w = hi - k + 1
        # M[s, t] = C[s] + (B[t] - B[s]) * L[B[s]]; a step must move forward (s < t)
        M = C[s, None] + (pos[None, t] - pos[s, None]) * slope[s, None]  # (w, w)
        M[np.arange(w)[:, None] > np.arange(w)[None, :]] = np.inf
        arg = M.argmin(axis=0)
        C = np.full(G + 1, np.inf)
        C[t] = M[arg, np.arange(w)]
        back[k - 1, t] = arg + (k - 1)
        if costs is not None:
            costs.append(float(C[G]))
    bounds = [G]
    for k in range(K, 0, -1):
        bounds.append(int(back[k - 1, bounds[-1]]))
    return bounds[::-1]  # K+1 boundary indices, first 0


def _non_increasing(Lw: np.ndarray) -> bool:
    return bool(np.all(Lw[1:] <= Lw[:-1]))


def _run_starts(Lw: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.r_[True, Lw[1:] != Lw[:-1]])


def _split_runs(runs: np.ndarray, K: int) -> list[int]:
    """K step sizes from runs of equal L (each run at least one step): the largest piece is split first."""
    pieces = [1] * len(runs)
    heap = [(-int(r), j) for j, r in enumerate(runs)]
    heapq.heapify(heap)
    for _ in range(K - len(runs)):
        _, j = heapq.heappop(heap)
        pieces[j] += 1
        heapq.heappush(heap, (-(-(-int(runs[j]) // pieces[j])), j))
    out: list[int] = []
    for r, p in zip(runs.tolist(), pieces):
        q, extra = divmod(r, p)
        out += [q + 1] * extra + [q] * (p - extra)
    return out


@lru_cache(maxsize=PLAN_CACHE)
def _planned(L_bytes: bytes, K: int, every_position: bool) -> tuple[int, ...]:
    Lw = np.frombuffer(L_bytes, dtype=np.float64)
    n = len(Lw)
    if K == n:
        return (1,) * n
    monotone = not every_position and _non_increasing(Lw)
    starts = _run_starts(Lw) if monotone else np.arange(n)
    if len(starts) <= MAX_EXACT:
        B = np.r_[starts, n]
        b = _dp(Lw, B, min(K, len(starts)))
        sizes = np.diff(B[b])
        if len(sizes) == K:
            return tuple(int(x) for x in sizes)
        return tuple(_split_runs(sizes, K))  # K > runs: every run starts a step already
    # too many boundaries for the exact programme: a grid, then local moves
    B = np.unique(np.round(np.linspace(0, n, MAX_EXACT + 1)).astype(np.int64))
    G = len(B) - 1
    b = _dp(Lw, B, min(K, G))
    sizes = list(np.diff(B[b]))
    while len(sizes) < K:  # budget finer than the grid: split the step whose split saves most
        rel = np.r_[0, np.cumsum(sizes)[:-1]]
        gain = [(sz - sz // 2) * (Lw[r] - Lw[r + sz // 2]) if sz > 1 else -1.0 for r, sz in zip(rel, sizes)]
        i = int(np.argmax([g + 1e-12 * sz for g, sz in zip(gain, sizes)]))
        sz = sizes[i]
        sizes[i : i + 1] = [sz // 2, sz - sz // 2]
    sizes = _refine(Lw, sizes)
    q, r = divmod(n, K)
    naive = [q + 1] * r + [q] * (K - r)
    if _make(naive, Lw, 0).expected_bits < _make(sizes, Lw, 0).expected_bits:
        sizes = naive
    return tuple(int(x) for x in sizes)


def budget_schedule(L, K: int, *, start: int = 0, n: int | None = None, every_position: bool = False) -> Schedule:
    """The paper's dynamic programme: the K step sizes of least expected bits for n positions after ``start`` known.

    ``every_position``: plan over every position with ties to the earliest
    boundary (compression's format), not over the runs of L.
    """
    Lw, n = _table(L, start, n)
    K = check_steps(K, n)
    return _make(_planned(Lw.tobytes(), K, bool(every_position)), Lw, start)


def _refine(Lw: np.ndarray, sizes: list[int], sweeps: int = 20) -> list[int]:
    """Coordinate descent: put each boundary where it is cheapest between its neighbours."""
    b = np.r_[0, np.cumsum(sizes)].astype(np.int64)
    for _ in range(sweeps):
        moved = False
        for i in range(1, len(b) - 1):
            lo, hi = b[i - 1], b[i + 1]
            cand = np.arange(lo + 1, hi)  # the step from lo costs (c - lo) L[lo], the next (hi - c) L[c]
            cost = (cand - lo) * Lw[lo] + (hi - cand) * Lw[cand]
            c = int(cand[np.argmin(cost)])
            if c != b[i] and cost.min() < (b[i] - lo) * Lw[lo] + (hi - b[i]) * Lw[b[i]] - 1e-12:
                b[i], moved = c, True
        if not moved:
            break
    return list(np.diff(b))


def budget_costs(L, K_max: int, *, start: int = 0, n: int | None = None) -> np.ndarray:
    """Least expected bits for every budget K = 1..K_max in one pass of the programme.

    Exact for a non-increasing table (over its runs; budgets past the number of
    runs cost the same as that number) and for any table of at most
    ``MAX_EXACT`` positions.
    """
    Lw, n = _table(L, start, n)
    K_max = check_steps(K_max, n)
    starts = _run_starts(Lw) if _non_increasing(Lw) else np.arange(n)
    if len(starts) > MAX_EXACT:
        raise ValueError(f"budget_costs plans at most {MAX_EXACT} boundaries exactly (got {len(starts)}); "
                         "use budget_schedule per K")
    costs: list[float] = []
    _dp(Lw, np.r_[starts, n], min(K_max, len(starts)), costs)
    return np.asarray(costs + [costs[-1]] * (K_max - len(costs)))


def naive_schedule(L, K: int, *, start: int = 0, n: int | None = None) -> Schedule:
    """Equal split (the first n mod K steps one larger), for comparison with the programme."""
    Lw, n = _table(L, start, n)
    K = check_steps(K, n)
    q, r = divmod(n, K)
    return _make([q + 1] * r + [q] * (K - r), Lw, start)


def document_table(L, n_text: int) -> np.ndarray:
    """Resample a window's L_t table (length D) to a document of ``n_text`` characters.

    The known fraction is what matters to a window: t known of n_text reads
    ``L[t * D // n_text]``. For n_text = D this is L itself.
    """
    L = np.asarray(L, dtype=np.float64).ravel()
    D = len(L)
    return L[np.minimum(D - 1, (np.arange(n_text) * D) // max(1, n_text))]


__all__ = ["Schedule", "budget_schedule", "budget_costs", "naive_schedule", "schedule_cost", "document_table",
           "check_steps", "MAX_EXACT"]
