"""Sampling transforms: temperature, top-k, top-p, greedy; <unk> is never drawn."""

from __future__ import annotations

import numpy as np
import pytest

from ardm_core.sampling import SamplingOptions, choose, sampling_distribution, summarize


def logp_rows(k=4, V=12, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(k, V)) * 2
    z[:, 0] = 10.0  # even if <unk> looked likeliest, it must never be chosen
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def test_unk_is_never_sampled():
    lp = logp_rows()
    rng = np.random.default_rng(1)
    for opts in (SamplingOptions(), SamplingOptions(temperature=5.0), SamplingOptions(top_k=3), SamplingOptions(top_p=0.5),
                 SamplingOptions(greedy=True)):
        ids = np.concatenate([choose(lp, opts, rng) for _ in range(200)])
        assert ids.min() >= 1 and ids.max() < lp.shape[1]


def test_top_k_and_top_p_keep_the_right_sets():
    lp = logp_rows()
    p = sampling_distribution(lp, SamplingOptions(top_k=3))
    assert np.all((p > 0).sum(1) == 3) and np.allclose(p.sum(1), 1)
    base = sampling_distribution(lp, SamplingOptions())
    assert np.all(base[:, 0] == 0)
    q = sampling_distribution(lp, SamplingOptions(top_p=0.6))
    for b, row in zip(base, q):
        kept = np.sort(b[row > 0])[::-1]
        assert kept.sum() >= 0.6 - 1e-12 and kept[:-1].sum() < 0.6  # smallest set reaching the mass
        assert b[row > 0].min() >= b[row == 0].max()  # the likeliest ones


def test_temperature_sharpens_and_flattens():
    lp = logp_rows()
    h = lambda p: -(p * np.log(np.where(p > 0, p, 1))).sum(1)  # noqa: E731
    base = sampling_distribution(lp, SamplingOptions())
    assert np.all(h(sampling_distribution(lp, SamplingOptions(temperature=0.5))) < h(base))
    assert np.all(h(sampling_distribution(lp, SamplingOptions(temperature=2.0))) > h(base))


@pytest.mark.filterwarnings("ignore:divide by zero")
def test_sampling_follows_the_distribution():
    lp = np.log(np.array([[0.0, 0.7, 0.2, 0.1]]))
    rng = np.random.default_rng(0)
    draws = np.array([choose(lp, SamplingOptions(), rng)[0] for _ in range(4000)])
    freq = np.bincount(draws, minlength=4) / len(draws)
    assert np.allclose(freq, [0, 0.7, 0.2, 0.1], atol=0.03)


@pytest.mark.filterwarnings("ignore:divide by zero")
def test_summary():
    lp = np.log(np.array([[0.0, 0.5, 0.25, 0.125, 0.0625, 0.0625]]))
    s = summarize(lp, np.array([2]))
    assert s.probs[0] == 0.25 and s.bits[0] == 2.0
    assert np.isclose(s.entropy[0], 0.5 * 1 + 0.25 * 2 + 0.125 * 3 + 2 * 0.0625 * 4)
    assert list(s.top_ids[0]) == [1, 2, 3, 4, 5]
