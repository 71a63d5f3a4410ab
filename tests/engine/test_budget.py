"""budget_schedule: the paper's dynamic programme (section 3.1, appendix A) against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ardm_core import budget
from ardm_core.budget import budget_costs, budget_schedule, document_table, naive_schedule, schedule_cost


def compositions(n: int, k: int):
    """Every way to write n as an ordered sum of k positive parts."""
    for cuts in itertools.combinations(range(1, n), k - 1):
        b = (0, *cuts, n)
        yield [b[i + 1] - b[i] for i in range(k)]


def random_table(rng, D: int) -> np.ndarray:
    return np.sort(rng.uniform(0.5, 5.0, D))[::-1]  # non-increasing, like a trained model's L_t


def assert_least_cost_everywhere(L):
    """Every start and every budget: the plan is valid and costs what the best composition costs."""
    D = len(L)
    for start in range(D):
        n = D - start
        for K in range(1, n + 1):
            best = min(schedule_cost(L, c, start=start) for c in compositions(n, K))
            s = budget_schedule(L, K, start=start)
            assert sum(s.sizes) == n and len(s.sizes) == K and min(s.sizes) >= 1
            assert s.expected_bits == pytest.approx(best, abs=1e-9)
            assert s.expected_bits == pytest.approx(schedule_cost(L, s.sizes, start=start))


@pytest.mark.parametrize("D", [1, 2, 5, 8])
def test_matches_brute_force(D):
    rng = np.random.default_rng(D)
    for _ in range(3):
        assert_least_cost_everywhere(random_table(rng, D))


def test_non_monotone_table_still_optimal():
    rng = np.random.default_rng(7)
    L = rng.uniform(0.5, 5.0, 7)  # the DP itself does not need a sorted table
    for K in range(1, 8):
        best = min(schedule_cost(L, c) for c in compositions(7, K))
        assert budget_schedule(L, K).expected_bits == pytest.approx(best)


def test_extremes_and_known_before():
    L = np.linspace(4.0, 1.0, 64)
    s = budget_schedule(L, 64)
    assert s.sizes == (1,) * 64 and s.known_before == tuple(range(64))
    assert s.expected_bits == pytest.approx(L.sum())
    one = budget_schedule(L, 1)
    assert one.sizes == (64,) and one.known_before == (0,) and one.expected_bits == pytest.approx(64 * L[0])
    inf = budget_schedule(L, 5, start=20)
    assert sum(inf.sizes) == 44 and inf.known_before[0] == 20
    assert inf.known_before == tuple(20 + np.r_[0, np.cumsum(inf.sizes)[:-1]])


def test_cost_never_rises_with_more_steps_and_beats_naive():
    L = np.r_[np.linspace(6, 2.5, 30), np.linspace(2.5, 2.0, 226)]  # steep start, like a real model
    costs = budget_costs(L, 256)  # every budget in one pass of the programme
    assert len(costs) == 256 and costs[-1] == pytest.approx(L.sum())
    assert all(b <= a + 1e-9 for a, b in zip(costs, costs[1:]))
    for K in (1, 2, 3, 20, 100, 255):
        assert budget_schedule(L, K).expected_bits == pytest.approx(costs[K - 1])
    for K in (5, 10, 20, 50, 100):
        dp, nv = budget_schedule(L, K), naive_schedule(L, K)
        assert dp.expected_bits <= nv.expected_bits + 1e-9
        assert max(nv.sizes) - min(nv.sizes) <= 1 and sum(nv.sizes) == 256
    # steps concentrate where L changes fastest: the first step is small
    assert budget_schedule(L, 20).sizes[0] < 256 // 20


def test_long_plans_use_a_grid_and_stay_valid(monkeypatch):
    monkeypatch.setattr(budget, "MAX_EXACT", 32)
    budget._planned.cache_clear()
    L = np.linspace(5.0, 1.0, 300)
    for K in (1, 7, 32, 50, 299, 300):
        s = budget_schedule(L, K)
        assert len(s.sizes) == K and sum(s.sizes) == 300 and min(s.sizes) >= 1
        assert s.expected_bits <= naive_schedule(L, K).expected_bits + 1e-9
    budget._planned.cache_clear()  # the grid plans must not outlive the patch


@pytest.mark.parametrize("K", [0, -1, 11])
def test_bad_budget_names_the_range(K):
    with pytest.raises(ValueError, match="between 1 and 10"):
        budget_schedule(np.ones(10), K)
    with pytest.raises(ValueError, match="between 1 and 10"):
        naive_schedule(np.ones(10), K)


def test_document_table():
    L = np.linspace(4, 1, 64)
    assert np.array_equal(document_table(L, 64), L)
    long = document_table(L, 640)
    assert len(long) == 640 and long[0] == L[0] and long[-1] == L[-1]
    assert np.all(np.diff(long) <= 0)


@pytest.mark.parametrize("D", [3, 6, 9])
def test_tables_with_runs_match_brute_force(D):
    """Plans over the runs of equal L (and K past the number of runs) are still the least-cost plans."""
    rng = np.random.default_rng(100 + D)
    for _ in range(4):
        assert_least_cost_everywhere(np.round(random_table(rng, D) * 2) / 2)  # half-bit steps: runs of equal values


def test_budget_costs_past_the_runs_and_every_position_ties():
    L = np.r_[[5.0] * 4, [3.0] * 6, [1.0] * 6]  # three runs
    costs = budget_costs(L, 16)
    for K in range(1, 17):
        best = min(schedule_cost(L, c) for c in compositions(16, K))
        assert costs[K - 1] == pytest.approx(best)
    # every_position: the earliest boundary wins each tie, over all positions
    s = budget_schedule(L, 5, every_position=True)
    assert s.expected_bits == pytest.approx(costs[4]) and s.sizes == (1, 1, 2, 6, 6)
    assert budget_schedule(L, 5).sizes == (4, 3, 3, 3, 3)  # over the runs: extra steps split the largest runs


def test_long_documents_plan_over_runs_exactly():
    """A document table (a window table resampled) has at most D runs: n = 20,000 plans fast and exactly."""
    L = np.r_[np.linspace(6, 2.5, 30), np.linspace(2.5, 2.0, 226)]
    L = np.round(L * 64) / 64
    table = document_table(L, 20000)
    s = budget_schedule(table, 100)
    assert len(s.sizes) == 100 and sum(s.sizes) == 20000
    # exact: the plan over every position (slower) costs the same
    runs = np.flatnonzero(np.r_[True, table[1:] != table[:-1]])
    assert len(runs) <= 256
    small = document_table(L, 600)
    assert budget_schedule(small, 40).expected_bits == pytest.approx(
        budget_schedule(small, 40, every_position=True).expected_bits, abs=1e-9)
