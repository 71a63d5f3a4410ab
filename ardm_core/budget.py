"""Parallel step budgets: how many characters each of K steps fills (paper section 3.1, appendix A).

``L[t]`` is the expected bits per position for the step where t positions are
known (the model's ``loss_by_known`` table, non-increasing). Filling k
positions in one step from t known costs about ``k * L[t]`` bits. The dynamic
programme picks the K step boundaries of least expected cost::

    C[k][t] = min over s < t of C[k-1][s] + (t - s) * L[s],   C[0][start] = 0

and backtracks from ``C[K][start + n]``. For infilling with ``start`` known
characters it plans over the ``n`` remaining positions only.

The exact programme costs O(K n^2) (vectorised over s and t). Above
``MAX_EXACT`` positions the boundaries are restricted to an even grid of
``MAX_EXACT`` points (the L table of a long document is a resampled window
table), then each boundary is moved to its best place between its neighbours
until nothing improves; budgets finer than that grid split steps greedily.
The result is never worse than the equal split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_EXACT = 1024  # positions planned exactly; longer spans use a grid of this many boundaries


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


def _check_k(K: int, n: int) -> None:
    if not isinstance(K, (int, np.integer)) or isinstance(K, bool):
        raise ValueError(f"steps must be an integer (got {K!r})")
    if not 1 <= K <= n:
        raise ValueError(f"steps must be between 1 and {n} (the number of positions to fill), got {K}")


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

    ``costs``, if given, receives the least cost of every budget k = 1..K.
    """
    G = len(B) - 1
    pos = B.astype(np.float64)
    a_slope = Lw[B[:-1]]  # (G,) cost per position of a step starting at boundary s
    C = np.full(G + 1, np.inf)
    C[0] = 0.0
    back = np.zeros((K, G + 1), dtype=np.int64)
    s_idx = np.arange(G)[:, None]
    t_idx = np.arange(G + 1)[None, :]
    invalid = s_idx >= t_idx  # a step must move forward
    for k in range(1, K + 1):
        # M[s, t] = C[s] + (B[t] - B[s]) * L[B[s]]
        M = C[:-1, None] + (pos[None, :] - pos[:-1, None]) * a_slope[:, None]  # (G, G+1)
        M[invalid] = np.inf
        arg = M.argmin(axis=0)
        C = M[arg, np.arange(G + 1)]
        C[0] = np.inf
        back[k - 1] = arg
        if costs is not None:
            costs.append(float(C[G]))
    bounds = [G]
    for k in range(K, 0, -1):
        bounds.append(int(back[k - 1, bounds[-1]]))
    return bounds[::-1]  # K+1 boundary indices, first 0


def budget_schedule(L, K: int, *, start: int = 0, n: int | None = None) -> Schedule:
    """The paper's dynamic programme: the K step sizes of least expected bits for n positions after ``start`` known."""
    Lw, n = _table(L, start, n)
    _check_k(K, n)
    if K == n:
        return _make([1] * n, Lw, start)
    if n <= MAX_EXACT:
        B = np.arange(n + 1)
    else:
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
    best = _make(sizes, Lw, start)
    nv = naive_schedule(L, K, start=start, n=n)
    return nv if nv.expected_bits < best.expected_bits else best


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
    """Least expected bits for every budget K = 1..K_max in one pass of the programme (n <= MAX_EXACT)."""
    Lw, n = _table(L, start, n)
    _check_k(K_max, n)
    if n > MAX_EXACT:
        raise ValueError(f"budget_costs plans at most {MAX_EXACT} positions exactly (got {n}); use budget_schedule per K")
    costs: list[float] = []
    _dp(Lw, np.arange(n + 1), K_max, costs)
    return np.asarray(costs)


def naive_schedule(L, K: int, *, start: int = 0, n: int | None = None) -> Schedule:
    """Equal split (the first n mod K steps one larger), for comparison with the programme."""
    Lw, n = _table(L, start, n)
    _check_k(K, n)
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


__all__ = ["Schedule", "budget_schedule", "budget_costs", "naive_schedule", "schedule_cost", "document_table", "MAX_EXACT"]
