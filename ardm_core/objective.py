"""The order-agnostic ARDM objective (paper section 3, equation 6).

For each sequence of length D:
  1. draw t ~ U{1..D} and a uniformly random order sigma;
  2. the positions with sigma < t are known (t - 1 of them), the rest masked;
  3. loss = -(D / (D - t + 1)) * sum over masked k of log p(x_k | known).
Its expectation over t and sigma is the negative ELBO, -log p(x) <= E[loss];
divided by D ln 2 it is bits per character. Windows shorter than D (end of a
file) use their own length.

Span orders (``span_mix`` > 0). Users infill contiguous spans, which uniform
orders rarely produce. A span order cuts the window into consecutive spans of
log-uniform length (1..``max_span``), visits the spans in random order and the
positions inside a span in random order. Given t, the next position is uniform
among the still-masked positions of the *current* span, so
D * mean over those of -log p is an unbiased estimate of -log p_sigma(x) for that
order family. Training on a mixture of uniform and span orders therefore still
minimises a valid bound: the negative ELBO of the same network under the
mixed order distribution. The ELBO we report is always the uniform-order one.

Focused t (``t_focus`` > 0). Infilling decodes with few positions masked (a
16-64 character gap in a 256-character window is 6-25% masked), so its steps
are the L_t with t near D. ``t_focus`` draws that share of each batch's t from
the top quarter of the steps (at most 25% masked) instead of all of 1..D. The
rows are not reweighted, so the training objective becomes a weighted sum of
the L_t terms: it is no longer the ELBO, nor a bound on -log p(x). Each L_t
term is still estimated without bias (the loss-by-known table stays right),
and the reported validation ELBO is the uniform one.
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
    uniform: torch.Tensor | None = None  # (B,) bool: row used a uniform order (None = all rows)


def sample_known(
    lengths: torch.Tensor,  # (B,) valid lengths D_i
    T: int,
    *,
    generator: torch.Generator | None = None,
    stratified: bool = True,
    t_focus: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw t and a random order per row; return (t (B,), known (B, T) bool).

    Stratified sampling spreads t evenly across the batch (row i gets a t from
    stratum perm(i)); each row's t is still marginally uniform on 1..D_i, so
    the estimator stays unbiased, but the batch mean is far less noisy.
    """
    t = sample_t(lengths, generator=generator, stratified=stratified, t_focus=t_focus)
    rank = random_rank(lengths, T, generator=generator)
    known = rank < (t - 1)[:, None]
    return t, known


FOCUS_FROM = 0.75  # focused rows draw t from the steps with at most 25% of the window masked


def sample_t(lengths: torch.Tensor, *, generator: torch.Generator | None = None, stratified: bool = True,
             t_focus: float = 0.0) -> torch.Tensor:
    """(B,) the step t of each row, uniform on 1..lengths[i] (stratified across the batch when asked).

    With ``t_focus`` > 0, the first round(t_focus * B) rows draw t uniformly from
    the top quarter of the steps instead (see the module docstring).
    """
    B = lengths.shape[0]
    dev = lengths.device
    u = torch.rand(B, generator=generator, device=dev)
    if stratified:
        strata = torch.randperm(B, generator=generator, device=dev).to(u.dtype)
        u = (strata + u) / B
    n_focus = round(t_focus * B)
    if n_focus:
        u = torch.cat([FOCUS_FROM + (1.0 - FOCUS_FROM) * u[:n_focus], u[n_focus:]])
    return (u * lengths).floor().long().clamp(max=lengths - 1) + 1  # (B,) in 1..D_i


def random_rank(lengths: torch.Tensor, T: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, T) a uniform order per row, as each position's rank sigma(position); padding ranks last."""
    B = lengths.shape[0]
    dev = lengths.device
    scores = torch.rand(B, T, generator=generator, device=dev)
    valid = torch.arange(T, device=dev)[None, :] < lengths[:, None]
    return scores.masked_fill(~valid, 2.0).argsort(dim=1).argsort(dim=1)


def sample_span_order(
    lengths: torch.Tensor,  # (B,) valid lengths D_i
    T: int,
    *,
    generator: torch.Generator | None = None,
    max_span: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A span order per row: (rank (B, T), span id (B, T)); padding ranks last.

    Spans are consecutive, of log-uniform length in 1..max_span; spans come in a
    random order and positions within a span in a random order.
    """
    B = lengths.shape[0]
    dev = lengths.device
    u = torch.rand(B, T, generator=generator, device=dev)
    span_len = torch.exp(u * math.log(max_span + 1)).floor().long().clamp(1, max_span)  # (B, T) draws
    ends = span_len.cumsum(1)  # (B, T): exclusive end of span j
    pos = torch.arange(T, device=dev)
    span = (pos[None, :, None] >= ends[:, None, :]).sum(-1)  # (B, T): span id of each position
    span_rank = torch.rand(B, T, generator=generator, device=dev).argsort(1).argsort(1)  # rank of span j
    within = torch.rand(B, T, generator=generator, device=dev).argsort(1).argsort(1)  # distinct 0..T-1
    key = span_rank.gather(1, span) * T + within
    valid = pos[None, :] < lengths[:, None]
    key = key.masked_fill(~valid, T * T + T)
    rank = key.argsort(1).argsort(1)
    return rank, span


def span_order_targets(rank: torch.Tensor, span: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For span orders at step t: (known (B, T), scored (B, T)).

    ``scored`` are the masked positions of the span that holds the t-th position:
    the only candidates for the next step, each equally likely.
    """
    known = rank < (t - 1)[:, None]
    current = span.gather(1, (rank == (t - 1)[:, None]).long().argmax(1, keepdim=True))  # (B, 1)
    return known, (~known) & (span == current)


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
    span_mix: float = 0.0,  # fraction of rows that use a span order instead of a uniform one
    max_span: int = 64,
    span_order: tuple[torch.Tensor, torch.Tensor] | None = None,  # (rank, span) for every row (tests)
    t_focus: float = 0.0,  # share of rows whose t comes from the infilling steps (not a bound; see above)
) -> Loss:
    B, T = ids.shape
    if lengths is None:
        lengths = torch.full((B,), T, dtype=torch.long, device=ids.device)
    valid = torch.arange(T, device=ids.device)[None, :] < lengths[:, None]
    # 1. sample t and the order
    if known is None:
        t, known = sample_known(lengths, T, generator=generator, stratified=stratified, t_focus=t_focus)
    assert t is not None
    # <unk> (id 0) is never predicted: such characters are scored as free context
    scored = valid & ~known & (ids != 0)
    n_masked = lengths - t + 1  # (B,) candidates for the next step under a uniform order
    uniform = torch.ones(B, dtype=torch.bool, device=ids.device)
    if span_mix > 0 or span_order is not None:
        if span_order is None:
            span_order = sample_span_order(lengths, T, generator=generator, max_span=max_span)
            uniform = torch.rand(B, generator=generator, device=ids.device) >= span_mix
        else:
            uniform = torch.zeros(B, dtype=torch.bool, device=ids.device)
        s_known, s_scored = span_order_targets(*span_order, t)
        known = torch.where(uniform[:, None], known, s_known)
        scored = torch.where(uniform[:, None], scored, valid & s_scored & (ids != 0))
        # a span row's next position is uniform over its current span's masked positions
        n_masked = torch.where(uniform, n_masked, (valid & s_scored).sum(1))
    # 2. mask the positions the order has not reached
    inp = ids.masked_fill(~known, model.mask_id)
    logp = model(inp, lengths if bool((lengths < T).any()) else None)  # (B, T, V)
    # 3. weighted NLL: D / (number of candidates for the next step) times their summed NLL
    nll = masked_nll(logp, ids, scored)  # (B,)
    n_masked = n_masked.to(nll.dtype)
    weighted = nll * lengths.to(nll.dtype) / n_masked
    per_char = weighted.sum() / lengths.sum()
    loss = per_char
    if ce_weight:
        loss = loss + ce_weight * nll.sum() / scored.sum().clamp(min=1)
    return Loss(
        loss=loss,
        bpc=(per_char / LN2).detach(),
        weighted_nll=weighted.detach(),
        t=t,
        lengths=lengths,
        step_bits=(nll / n_masked / LN2).detach(),
        uniform=uniform,
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
