"""Likelihood evaluation: the ELBO estimate and the exact likelihood under one fixed order.

ELBO (paper eq. 6): every window gets a fresh random t and order per pass;
bits per character per pass, and the standard error across passes.
Exact ordered likelihood: teacher forcing, one row per position; a window of
D characters costs D network calls (batched here into fewer forward passes,
but counted as D calls, as in the paper).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .checkpoint import LoadedModel
from .data import chunk_windows
from .objective import LN2, ardm_loss
from .orders import Plan, get_order, order_names
from .windows import teacher_forced_logprobs


@dataclass
class EvalResult:
    bpc: float
    stderr: float
    chars: int
    passes: int
    order: str | None = None  # None for the ELBO
    network_calls: int = 0
    stage_bpc: list[float] | None = None  # upscaling models: the ELBO's share of each stage


@dataclass
class EvalProgress:
    done: int
    total: int


@torch.inference_mode()
def elbo(model: LoadedModel, text: str, *, passes: int = 4, batch_size: int = 32, seed: int = 0,
         progress: Callable[[EvalProgress], None] | None = None) -> EvalResult:
    ids = model.vocab.encode(text)
    wins, lengths = chunk_windows(ids, model.config.block_size)
    dev = model.device
    net = model.net
    net.eval()
    per_pass = []
    g = torch.Generator(device=dev).manual_seed(seed)
    total = passes * len(wins)
    done = 0
    for _ in range(passes):
        nats = 0.0
        for s in range(0, len(wins), batch_size):
            w, ln = wins[s : s + batch_size].to(dev), lengths[s : s + batch_size].to(dev)
            out = ardm_loss(net, w, ln, generator=g, stratified=False)
            nats += float(out.weighted_nll.sum())
            done += len(w)
            if progress:
                progress(EvalProgress(done, total))
        per_pass.append(nats / len(ids) / LN2)
    arr = np.asarray(per_pass)
    se = float(arr.std(ddof=1) / math.sqrt(passes)) if passes > 1 else float("nan")
    return EvalResult(float(arr.mean()), se, len(ids), passes, None, total)


def ordered_bits(net, ids: torch.Tensor, order: np.ndarray, *, rows: int = 64) -> np.ndarray:
    """-log2 p(x_k | x at earlier positions in ``order``) for every position k of one window.

    ``ids`` is (D,); returns (D,) bits indexed by position. D network calls
    (teacher forcing, ``rows`` of them per forward pass).
    """
    x = ids.cpu().numpy().astype(np.int64)
    D = len(x)
    blank = np.full(D, net.mask_id, dtype=np.int64)
    lp = teacher_forced_logprobs(net, x, blank, [np.asarray([p]) for p in np.asarray(order).tolist()], x, D,
                                 device=ids.device, batch_rows=rows)
    return np.where(x == 0, 0.0, -lp / LN2)  # <unk> is never predicted: free context


def exact(model: LoadedModel, text: str, *, order: str = "l2r", seed: int = 0,
          progress: Callable[[EvalProgress], None] | None = None) -> EvalResult:
    """Exact bits per character under one fixed order per window (``orders.Plan``; window i of the random
    order is stream i of ``seed``, so window 0 has the order a session with that seed uses)."""
    ids = model.vocab.encode(text)
    wins, lengths = chunk_windows(ids, model.config.block_size)
    fixed = [name for name in order_names() if not get_order(name).dynamic and name != "explicit"]
    if order not in fixed:
        raise ValueError(f"unknown fixed order {order!r}; choose from {fixed}")
    total_bits, calls = 0.0, 0
    model.net.eval()
    for i in range(len(wins)):
        n = int(lengths[i])
        w = wins[i, :n].to(model.device)
        steps = Plan(n, np.arange(n), order, seed=seed, stream=i).fixed_steps()
        bits = ordered_bits(model.net, w, np.concatenate(steps))
        total_bits += float(bits.sum())
        calls += n
        if progress:
            progress(EvalProgress(i + 1, len(wins)))
    return EvalResult(total_bits / len(ids), 0.0, len(ids), 1, order, calls)


@torch.inference_mode()
def estimate_loss_by_known(model: LoadedModel, text: str, *, rounds: int = 4, batch_size: int = 32, seed: int = 0,
                           progress: Callable[[EvalProgress], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """L_t: expected bits per masked position when t of the D positions are known.

    Every number known k = 0..D-1 gets ``rounds`` random windows with a random
    order; returns (raw means, a non-increasing table). The paper (appendix A)
    sorts its estimates, because more context never hurts a calibrated model;
    with a few samples per k sorting would move noise to the ends, so here the
    nearest non-increasing sequence (isotonic regression, pool adjacent
    violators) is used; on monotone estimates both are the same.
    """
    D = model.config.block_size
    ids = torch.as_tensor(model.vocab.encode(text))
    if len(ids) < D:
        raise ValueError(f"need at least {D} characters to estimate L_t (got {len(ids)})")
    g = torch.Generator().manual_seed(seed)
    sums = np.zeros(D)
    counts = np.zeros(D)
    ks = torch.arange(D).repeat(rounds)
    net = model.net
    dev = model.device
    for s in range(0, len(ks), batch_size):
        k = ks[s : s + batch_size]
        starts = torch.randint(0, len(ids) - D + 1, (len(k),), generator=g)
        x = ids[starts[:, None] + torch.arange(D)[None, :]]
        rank = torch.rand(len(k), D, generator=g).argsort(1).argsort(1)
        known = rank < k[:, None]
        logp = net(x.masked_fill(~known, net.mask_id).to(dev)).cpu()
        tok = logp.gather(-1, x[..., None]).squeeze(-1)
        masked = ~known & (x != 0)
        bits = -torch.where(masked, tok, torch.zeros_like(tok)).sum(1) / masked.sum(1).clamp(min=1) / LN2
        np.add.at(sums, k.numpy(), bits.numpy())
        np.add.at(counts, k.numpy(), 1)
        if progress:
            progress(EvalProgress(s + len(k), len(ks)))
    raw = sums / np.maximum(counts, 1)
    return raw, non_increasing(raw)


def non_increasing(y: np.ndarray) -> np.ndarray:
    """Least-squares non-increasing fit (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, weight]
    for v in np.asarray(y, dtype=np.float64):
        blocks.append([float(v), 1.0])
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:
            m2, w2 = blocks.pop()
            m1, w1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2])
    return np.concatenate([np.full(int(w), m) for m, w in blocks])
