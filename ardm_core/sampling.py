"""Sampling controls and per-position summaries of the model's distributions.

All of it works on a few rows of log-probabilities (k, V) in float64 numpy,
vectorised over rows: no Python loop over characters. Column 0 is ``<unk>``,
which the network gives -inf; it is forced to -inf here again so no transform
can ever pick it. ``[MASK]`` is not a column at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOG2E = 1.0 / np.log(2.0)
TOPK_SHOWN = 5  # candidates reported per filled position


@dataclass(frozen=True)
class SamplingOptions:
    temperature: float = 1.0  # > 0; divides the log-probabilities
    top_k: int = 0  # keep only the k likeliest characters; 0 = off
    top_p: float = 1.0  # keep the smallest set with this much probability (nucleus); 1.0 = off
    greedy: bool = False  # argmax; overrides the above

    def __post_init__(self) -> None:
        if not (isinstance(self.temperature, (int, float)) and np.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be a number > 0 (got {self.temperature!r})")
        if not isinstance(self.top_k, (int, np.integer)) or self.top_k < 0:
            raise ValueError(f"top_k must be an integer >= 0 (got {self.top_k!r}; 0 = off)")
        if not (isinstance(self.top_p, (int, float)) and 0.0 < self.top_p <= 1.0):
            raise ValueError(f"top_p must be in (0, 1] (got {self.top_p!r}; 1.0 = off)")


def sampling_distribution(logp: np.ndarray, opts: SamplingOptions, *, unk_column: bool = True) -> np.ndarray:
    """Probabilities (k, V) to sample from after temperature, top-k and top-p.

    ``unk_column``: column 0 is ``<unk>`` and never sampled (characters); the
    class symbols of an upscaling stage have no such column.
    """
    z = logp / opts.temperature
    if unk_column:
        z[:, 0] = -np.inf
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    if opts.top_k or opts.top_p < 1.0:
        srt = np.argsort(-p, axis=1, kind="stable")  # (k, V) likeliest first
        ps = np.take_along_axis(p, srt, axis=1)
        keep = np.ones_like(ps, dtype=bool)
        if opts.top_k:
            keep[:, opts.top_k :] = False
        if opts.top_p < 1.0:
            before = np.cumsum(ps, axis=1) - ps  # mass strictly before each candidate
            keep &= before < opts.top_p  # the likeliest always survives
        drop = np.zeros_like(keep)
        np.put_along_axis(drop, srt, ~keep, axis=1)
        p[drop] = 0.0
        p /= p.sum(axis=1, keepdims=True)
    return p


def choose(logp: np.ndarray, opts: SamplingOptions, rng: np.random.Generator, *, unk_column: bool = True) -> np.ndarray:
    """One id per row; never <unk> (0) when ``unk_column`` (the rows are characters)."""
    logp = logp.copy()
    if unk_column:
        logp[:, 0] = -np.inf
    if opts.greedy:
        return logp.argmax(axis=1)
    p = sampling_distribution(logp, opts, unk_column=unk_column)
    cdf = np.cumsum(p, axis=1)
    u = rng.random(len(p))[:, None] * cdf[:, -1:]
    ids = (cdf <= u).sum(axis=1)  # first index whose cdf exceeds u: zero-probability ids are skipped
    bad = (ids >= p.shape[1]) | (p[np.arange(len(p)), np.minimum(ids, p.shape[1] - 1)] <= 0)
    if bad.any():  # rounding at the very top of the cdf
        ids[bad] = p[bad].argmax(axis=1)
    return ids


@dataclass
class RowSummary:
    probs: np.ndarray  # (k,) model probability of the chosen id
    bits: np.ndarray  # (k,) -log2 of it
    entropy: np.ndarray  # (k,) bits
    top_ids: np.ndarray  # (k, n) likeliest ids
    top_probs: np.ndarray  # (k, n)


def entropy_bits(logp: np.ndarray) -> np.ndarray:
    p = np.exp(logp)
    return -(p * np.where(p > 0, logp, 0.0)).sum(axis=1) * LOG2E  # 0 * log 0 = 0


def summarize(logp: np.ndarray, chosen: np.ndarray, n_top: int = TOPK_SHOWN) -> RowSummary:
    """What a step reports about each filled position, under the model at temperature 1."""
    k, V = logp.shape
    lp = logp[np.arange(k), chosen]
    n_top = min(n_top, V - 1)
    part = np.argpartition(-logp, n_top - 1, axis=1)[:, :n_top]
    pv = np.take_along_axis(logp, part, axis=1)
    o = np.argsort(-pv, axis=1, kind="stable")
    top_ids = np.take_along_axis(part, o, axis=1)
    return RowSummary(np.exp(lp), -lp * LOG2E, entropy_bits(logp), top_ids, np.exp(np.take_along_axis(pv, o, axis=1)))


__all__ = ["SamplingOptions", "sampling_distribution", "choose", "summarize", "entropy_bits", "RowSummary"]
