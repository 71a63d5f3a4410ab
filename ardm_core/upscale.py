"""Depth upscaling: generate every character's class first, then the character.

Method (paper section 4; ARDM_NOTES "Depth upscaling"). A stage map l_s sends
each character to a class at stage s (0..S-1, the last the identity). The
model factorises p(x) = prod_s p(l_s(x) | l_{s-1}(x)): stage s is an
order-agnostic ARDM over the D positions whose inputs show, at every
position, either its stage-s symbol (already decided in this stage) or its
stage s-1 class (still to decide; [MASK] at stage 0). The network is told the
stage, and its output is restricted to the children of each position's class,
so a class with one member (space, newline) costs nothing at the next stage.

-log p(x) <= sum_s L_s, each L_s the OA-ARDM bound of its stage; training
draws one stage per window and multiplies by S (unbiased), evaluation sums
all stages. Both are reported in bits per character, comparable with a plain
model's ELBO.

Infilling: characters the user knows are known at every stage. Training
shows them as characters (never as classes) in a random share of windows
(``context``): a random set of positions is fully known and the staged
bound runs over the rest, which is exactly the infilling condition.

This module holds the model side (stage tables, the staged objective,
building and evaluating the network); decoding stage by stage is
``ardm_core.upscale_session``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .data import chunk_windows
from .model import ARDMTransformer
from .objective import LN2, Loss, masked_nll, random_rank, sample_t
from .stages import StageMap


# -- the network, read one stage at a time ------------------------------------------------------
class StageTables:
    """Per-stage lookup tensors on one device (built once per model and device)."""

    def __init__(self, sm: StageMap, device):
        self.sm = sm
        self.device = device
        self.assign = [torch.as_tensor(a, device=device) for a in sm.assign]
        self.offset = [sm.token_offset(s) for s in range(sm.S)]
        self.allowed = [torch.as_tensor(sm.allowed_table(s), device=device) for s in range(sm.S)]
        self.slices = [sm.output_slice(s) for s in range(sm.S)]

    def tokens(self, ids: torch.Tensor, s: int) -> torch.Tensor:
        if s < 0:
            return torch.full_like(ids, self.sm.V)
        return self.assign[s][ids] + self.offset[s]


def stage_logprobs(net, tables: StageTables, inp: torch.Tensor, s: int,
                   lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Log-probabilities (B, T, K_s) over stage-s symbols, restricted to each position's class.

    ``net`` may be wrapped in DistributedDataParallel (called through the
    wrapper so gradients synchronise).
    """
    stage = torch.full((inp.shape[0],), s, dtype=torch.long, device=inp.device)
    logits = net(inp, lengths, stage, raw=True)[..., tables.slices[s]]
    logits = logits.masked_fill(~tables.allowed[s][inp], float("-inf"))
    return F.log_softmax(logits, dim=-1)


class StageNet:
    """A plain-looking network for one stage: ``net(ids) -> (B, T, K_s)`` log-probs.

    Used by the decoding session, which treats stage s like any model whose
    vocabulary is the stage's symbols.
    """

    def __init__(self, net: ARDMTransformer, tables: StageTables, s: int):
        self.net, self.tables, self.s = net, tables, s
        self.cfg = replace(net.cfg, vocab_size=tables.sm.sizes[s])
        self.mask_id = net.mask_id

    def __call__(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return stage_logprobs(self.net, self.tables, ids, self.s, lengths)

    def parameters(self):
        return self.net.parameters()


# -- training objective ----------------------------------------------------------------------------
def upscale_loss(
    model,
    ids: torch.Tensor,  # (B, T) character ids
    lengths: torch.Tensor | None = None,
    *,
    tables: StageTables,
    generator: torch.Generator | None = None,
    stratified: bool = True,
    ce_weight: float = 0.0,
    context: float = 0.0,  # share of rows with a random fully known context set
    stage: torch.Tensor | None = None,  # overrides (tests): (B,) stage, (B, T) rank, (B,) t, (B,) context size
    rank: torch.Tensor | None = None,
    t: torch.Tensor | None = None,
    n_context: torch.Tensor | None = None,
) -> Loss:
    """The staged OA-ARDM bound: one stage per row, times S; bits per character."""
    B, T = ids.shape
    dev = ids.device
    S = tables.sm.S
    if lengths is None:
        lengths = torch.full((B,), T, dtype=torch.long, device=dev)
    valid = torch.arange(T, device=dev)[None, :] < lengths[:, None]
    if stage is None:
        stage = (torch.randperm(B, generator=generator, device=dev) + int(torch.randint(S, (1,), generator=generator, device=dev))) % S
    if rank is None:
        rank = random_rank(lengths, T, generator=generator)
    if n_context is None:
        with_ctx = torch.rand(B, generator=generator, device=dev) < context
        n_context = torch.where(with_ctx, (torch.rand(B, generator=generator, device=dev) * lengths).floor().long(),
                                torch.zeros_like(lengths))
    n_gen = lengths - n_context  # positions this row generates
    if t is None:
        t = sample_t(n_gen, generator=generator, stratified=stratified)
    ctx = rank < n_context[:, None]
    decided = ~ctx & (rank < (n_context + t - 1)[:, None])
    todo = valid & ~ctx & ~decided
    inp = ids.clone()  # context (and padding) shows the characters
    nll = torch.zeros(B, device=dev, dtype=next(model.parameters()).dtype)
    for s in range(S):
        rows = stage == s
        if not bool(rows.any()):
            continue
        x = ids[rows]
        inp_s = torch.where(decided[rows], tables.tokens(x, s), torch.where(todo[rows], tables.tokens(x, s - 1), x))
        inp[rows] = inp_s
        ln = lengths[rows]
        logp = stage_logprobs(model, tables, inp_s, s, ln if bool((ln < T).any()) else None)
        target = tables.assign[s][x]
        nll[rows] = masked_nll(logp, target, todo[rows] & (x != 0))
    weighted = nll * n_gen.to(nll.dtype) / (n_gen - t + 1).to(nll.dtype)
    per_char = S * weighted.sum() / n_gen.sum()
    loss = per_char
    if ce_weight:
        loss = loss + ce_weight * nll.sum() / (todo & (ids != 0)).sum().clamp(min=1)
    return Loss(loss=loss, bpc=(per_char / LN2).detach(), weighted_nll=(S * weighted).detach(), t=t, lengths=lengths,
                step_bits=(nll / (n_gen - t + 1) / LN2).detach(), uniform=torch.zeros(B, dtype=torch.bool, device=dev))


# -- building an upscaling network -------------------------------------------------------------------
def upscale_network(sm: StageMap, base: ARDMTransformer | None = None, cfg=None) -> ARDMTransformer:
    """A network for ``sm``: fresh from ``cfg``, or warm-started from a plain model ``base``.

    Warm start copies every weight; each class token's embedding starts as the
    mean of its characters' embeddings, each class output row as the mean of its
    characters' rows plus log(members), and the stage embedding at zero, so the
    last stage starts out as the plain model.
    """
    src_cfg = base.cfg if base is not None else cfg
    if src_cfg.n_class_tokens:
        raise ValueError("the starting model is already an upscaling model")
    if src_cfg.vocab_size != sm.V:
        raise ValueError(f"the stage map is for {sm.V} characters, the model has {src_cfg.vocab_size}")
    new_cfg = replace(src_cfg, n_stage=sm.S, n_class_tokens=sm.n_class_tokens)
    net = ARDMTransformer(new_cfg)
    if base is None:
        return net
    V = sm.V
    with torch.no_grad():
        state = net.state_dict()
        for k, v in base.state_dict().items():
            if k in ("tok.weight", "head.weight", "head.bias"):
                continue
            state[k].copy_(v)
        tok, head_w, head_b = base.tok.weight, base.head.weight, base.head.bias
        state["tok.weight"][: V + 1].copy_(tok)
        state["head.weight"][:V].copy_(head_w)
        state["head.bias"][:V].copy_(head_b)
        for s in range(sm.S - 1):
            for j in range(sm.sizes[s]):
                members = torch.as_tensor(np.flatnonzero(sm.assign[s] == j))
                members = members[members != 0] if len(members) > 1 else members
                row = sm.token_offset(s) + j
                out = sm.output_slice(s).start + j
                state["tok.weight"][row].copy_(tok[members].mean(0))
                state["head.weight"][out].copy_(head_w[members].mean(0))
                state["head.bias"][out].copy_(head_b[members].mean() + math.log(len(members)))
        state["stage_emb.weight"].zero_()
        net.load_state_dict(state)
    return net


# -- evaluation --------------------------------------------------------------------------------------
@torch.inference_mode()
def upscale_elbo(net: ARDMTransformer, tables: StageTables, ids: np.ndarray, block: int, *, passes: int = 2,
                 batch_size: int = 32, seed: int = 0, progress: Callable[[int, int], None] | None = None) -> tuple[float, float, list[float]]:
    """Staged ELBO in bits per character: (mean, standard error over passes, bits per stage).

    Every window is evaluated at every stage (a fresh t and order per stage and
    pass), so no stage sampling noise enters.
    """
    wins, lengths = chunk_windows(ids, block)
    dev = tables.device
    g = torch.Generator(device=dev).manual_seed(seed)
    S = tables.sm.S
    per_pass, per_stage = [], np.zeros(S)
    total, done = passes * S * len(wins), 0
    for _ in range(passes):
        nats = np.zeros(S)
        for s in range(S):
            for b in range(0, len(wins), batch_size):
                w, ln = wins[b : b + batch_size].to(dev), lengths[b : b + batch_size].to(dev)
                out = upscale_loss(net, w, ln, tables=tables, generator=g, stratified=False,
                                   stage=torch.full((len(w),), s, dtype=torch.long, device=dev))
                nats[s] += float(out.weighted_nll.sum()) / S
                done += len(w)
                if progress:
                    progress(done, total)
        per_pass.append(nats.sum() / len(ids) / LN2)
        per_stage += nats / len(ids) / LN2 / passes
    arr = np.asarray(per_pass)
    se = float(arr.std(ddof=1) / math.sqrt(passes)) if passes > 1 else float("nan")
    return float(arr.mean()), se, per_stage.tolist()


@torch.inference_mode()
def estimate_stage_tables(net: ARDMTransformer, tables: StageTables, ids: np.ndarray, block: int, *, rounds: int = 4,
                          batch_size: int = 32, seed: int = 0) -> list[np.ndarray]:
    """L_t for every stage (raw means per number decided, then made non-increasing)."""
    from .evaluate import non_increasing

    D = block
    x_all = torch.as_tensor(ids)
    if len(x_all) < D:
        raise ValueError(f"need at least {D} characters to estimate L_t (got {len(x_all)})")
    g = torch.Generator().manual_seed(seed)
    out = []
    for s in range(tables.sm.S):
        sums, counts = np.zeros(D), np.zeros(D)
        ks = torch.arange(D).repeat(rounds)
        for b in range(0, len(ks), batch_size):
            k = ks[b : b + batch_size]
            starts = torch.randint(0, len(x_all) - D + 1, (len(k),), generator=g)
            x = x_all[starts[:, None] + torch.arange(D)[None, :]].to(tables.device)
            rank = torch.rand(len(k), D, generator=g).argsort(1).argsort(1).to(tables.device)
            res = upscale_loss(net, x, tables=tables, stage=torch.full((len(k),), s, dtype=torch.long, device=tables.device),
                               rank=rank, t=(k + 1).to(tables.device), n_context=torch.zeros(len(k), dtype=torch.long, device=tables.device))
            np.add.at(sums, k.numpy(), res.step_bits.cpu().numpy())
            np.add.at(counts, k.numpy(), 1)
        out.append(non_increasing(sums / np.maximum(counts, 1)))
    return out


def stage_tables(model) -> StageTables:
    """The model's lookup tables on its device (cached on the model object)."""
    cached = getattr(model, "_stage_tables", None)
    if cached is None or cached.device != model.device:
        cached = StageTables(model.stages, model.device)
        model._stage_tables = cached
    return cached


__all__ = ["StageTables", "StageNet", "stage_logprobs", "stage_tables", "upscale_loss", "upscale_network", "upscale_elbo",
           "estimate_stage_tables"]
