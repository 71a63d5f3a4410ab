"""plan_windows: the vectorised plan equals the plain greedy walk it replaced."""

import numpy as np
import pytest

from ardm_core.windows import plan_windows


def greedy(targets, n_text, D):
    """The reference: walk the sorted targets, one window from each first uncovered target."""
    if n_text <= D:
        return [0], [0] * len(targets)
    starts, owner, i = [], [], 0
    while i < len(targets):
        p = targets[i]
        j = i
        while j < len(targets) and targets[j] < p + D:
            j += 1
        q = targets[j - 1]
        starts.append(min(max(p - (D - (q - p + 1)) // 2, 0), n_text - D))
        owner += [len(starts) - 1] * (j - i)
        i = j
    return starts, owner


@pytest.mark.parametrize("seed", range(40))
def test_plan_matches_the_greedy_walk(seed):
    rng = np.random.default_rng(seed)
    n_text = int(rng.integers(1, 3000))
    D = int(rng.choice([1, 2, 7, 64, 256]))
    k = int(rng.integers(0, n_text + 1))
    targets = np.sort(rng.choice(n_text, size=k, replace=False))
    starts, owner = plan_windows(targets, n_text, D)
    ref_starts, ref_owner = greedy(targets.tolist(), n_text, D)
    assert starts.tolist() == ref_starts and owner.tolist() == ref_owner
    assert starts.dtype == np.int64 and owner.dtype == np.int64
    # every target lies inside its window
    if len(targets) and n_text > D:
        s = starts[owner]
        assert bool(((targets >= s) & (targets < s + D)).all())
