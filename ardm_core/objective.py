"""The order-agnostic ARDM objective (paper section 3, equation 6).

For each sequence of length D:
  1. draw t ~ U{1..D} and a uniformly random order sigma;
  2. the positions with sigma < t are known (t - 1 of them), the rest masked;
  3. loss = -(D / (D - t + 1)) * sum over masked k of log p(x_k | known).
Its expectation over t and sigma is the negative ELBO, -log p(x) <= E[loss];
divided by D ln 2 it is bits per character. Windows shorter than D (end of a
file) use their own length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

LN2 = math.log(2.0)


@dataclass
class Loss:
    loss: torch.Tensor  # scalar to minimise: weighted NLL per character (nats) + ce term
    bpc: torch.Tensor  # the ELBO estimate for this batch in bits per character (detached)
    weighted_nll: torch.Tensor  # (B,) -(D/(D-t+1)) sum_masked log p, nats
    t: torch.Tensor  # (B,) 1..D_i
    lengths: torch.Tensor  # (B,) D_i
    step_bits: torch.Tensor  # (B,) mean bits per masked position: the L_t sample for t - 1 known


def sample_known(
    lengths: torch.Tensor,  # (B,) valid lengths D_i
    T: int,
    *,
    generator: torch.Generator | None = None,
    stratified: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw t and a random order per row; return (t (B,), known (B, T) bool).

    Stratified sampling spreads t evenly across the batch (row i gets a t from
    stratum perm(i)); each row's t is still marginally uniform on 1..D_i, so
    the estimator stays unbiased, but the batch mean is far less noisy.
    """
    B = lengths.shape[0]
    dev = lengths.device
    u = torch.rand(B, generator=generator, device=dev)
    if stratified:
        strata = torch.randperm(B, generator=generator, device=dev).to(u.dtype)
        u = (strata + u) / B
    t = (u * lengths).floor().long().clamp(max=lengths - 1) + 1  # (B,) in 1..D_i
    # a uniform order: rank positions by random scores; padding ranks last
    scores = torch.rand(B, T, generator=generator, device=dev)
    valid = torch.arange(T, device=dev)[None, :] < lengths[:, None]
    scores = scores.masked_fill(~valid, 2.0)
    rank = scores.argsort(dim=1).argsort(dim=1)  # (B, T): sigma(position)
    known = rank < (t - 1)[:, None]
    return t, known


def masked_nll(logp: torch.Tensor, ids: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """Sum over masked positions of -log p(x_k): (B,). ``logp`` is (B, T, V)."""
    tok = logp.gather(-1, ids.clamp(max=logp.shape[-1] - 1)[..., None]).squeeze(-1)  # (B, T)
    return -torch.where(masked, tok, torch.zeros_like(tok)).sum(1)  # not tok * masked: -inf * 0 is nan


def ardm_loss(
    model,
    ids: torch.Tensor,  # (B, T) character ids; no [MASK]
    lengths: torch.Tensor | None = None,
    *,
    generator: torch.Generator | None = None,
    stratified: bool = True,
    ce_weight: float = 0.0,
    known: torch.Tensor | None = None,  # override the sampled masks (tests)
    t: torch.Tensor | None = None,
) -> Loss:
    B, T = ids.shape
    if lengths is None:
        lengths = torch.full((B,), T, dtype=torch.long, device=ids.device)
    valid = torch.arange(T, device=ids.device)[None, :] < lengths[:, None]
    # 1. sample t and the order
    if known is None:
        t, known = sample_known(lengths, T, generator=generator, stratified=stratified)
    assert t is not None
    # 2. mask the positions the order has not reached
    # <unk> (id 0) is never predicted: such characters are scored as free context
    masked = valid & ~known & (ids != 0)
    inp = ids.masked_fill(~known, model.mask_id)
    logp = model(inp, lengths if bool((lengths < T).any()) else None)  # (B, T, V)
    # 3. weighted NLL: D / (D - t + 1) times the masked sum
    nll = masked_nll(logp, ids, masked)  # (B,)
    n_masked = (lengths - t + 1).to(nll.dtype)
    weighted = nll * lengths.to(nll.dtype) / n_masked
    per_char = weighted.sum() / lengths.sum()
    loss = per_char
    if ce_weight:
        loss = loss + ce_weight * nll.sum() / masked.sum().clamp(min=1)
    return Loss(
        loss=loss,
        bpc=(per_char / LN2).detach(),
        weighted_nll=weighted.detach(),
        t=t,
        lengths=lengths,
        step_bits=(nll / n_masked / LN2).detach(),
    )


def ar_loss(model, ids: torch.Tensor, lengths: torch.Tensor | None = None, **_) -> Loss:
    """Single-order (left-to-right) baseline: exact NLL with a causal network.

    The input is shifted right by one with [MASK] as the start symbol, so
    position k predicts x_k from x_<k. Same Loss fields as ``ardm_loss``.
    """
    B, T = ids.shape
    if lengths is None:
        lengths = torch.full((B,), T, dtype=torch.long, device=ids.device)
    valid = torch.arange(T, device=ids.device)[None, :] < lengths[:, None]
    inp = torch.cat([torch.full((B, 1), model.mask_id, dtype=ids.dtype, device=ids.device), ids[:, :-1]], dim=1)
    logp = model(inp)  # causal: padding at the end cannot leak backwards
    nll = masked_nll(logp, ids, valid & (ids != 0))
    per_char = nll.sum() / lengths.sum()
    ones = torch.ones(B, dtype=torch.long, device=ids.device)
    return Loss(per_char, (per_char / LN2).detach(), nll.detach(), ones, lengths, (nll / lengths / LN2).detach())
