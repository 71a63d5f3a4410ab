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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .data import chunk_windows
from .model import ARDMTransformer
from .objective import LN2, Loss, masked_nll
from .budget import MAX_EXACT, Schedule, budget_costs, document_table
from .session import DecodeSession, SamplingOptions, StepTotals, parse_mask, plan_budget, score
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
        scores = torch.rand(B, T, generator=generator, device=dev).masked_fill(~valid, 2.0)
        rank = scores.argsort(1).argsort(1)
    if n_context is None:
        with_ctx = torch.rand(B, generator=generator, device=dev) < context
        n_context = torch.where(with_ctx, (torch.rand(B, generator=generator, device=dev) * lengths).floor().long(),
                                torch.zeros_like(lengths))
    n_gen = lengths - n_context  # positions this row generates
    if t is None:
        u = torch.rand(B, generator=generator, device=dev)
        if stratified:
            u = (torch.randperm(B, generator=generator, device=dev).to(u.dtype) + u) / B
        t = (u * n_gen).floor().long().clamp(max=n_gen - 1) + 1
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


__all__ = ["StageTables", "StageNet", "stage_logprobs", "upscale_loss", "upscale_network", "upscale_elbo",
           "estimate_stage_tables"]


# -- decoding stage by stage -------------------------------------------------------------------------
class StageView:
    """One stage of a loaded upscaling model, shaped like a plain model for ``DecodeSession``.

    ``blank`` holds, per document position, the token an undecided position
    shows at this stage: its class from the stage before ([MASK] at stage 0).
    """

    def __init__(self, model, s: int, blank: np.ndarray | None, tables: StageTables | None = None):
        sm = model.stages
        self.base = model
        self.stage = s
        self.vocab = model.vocab
        self.config = model.config
        self.meta = model.meta
        self.tables = tables or stage_tables(model)
        self.net = StageNet(model.net, self.tables, s)
        tabs = model.stage_loss_by_known
        self.loss_by_known = None if not tabs else tabs[s]
        self.token_offset = sm.token_offset(s)
        self.final_stage = s == sm.S - 1
        self.symbols = list(model.vocab.chars) if self.final_stage else [c.glyph for c in sm.classes[s]]
        self.blank = blank

    @property
    def device(self) -> torch.device:
        return self.base.device

    def choices(self, char_ids: np.ndarray) -> np.ndarray:
        """The stage-s symbol of each character id (the truth, for scoring)."""
        return self.base.stages.assign[self.stage][char_ids]


def stage_tables(model) -> StageTables:
    """The model's lookup tables on its device (cached on the model object)."""
    cached = getattr(model, "_stage_tables", None)
    if cached is None or cached.device != model.device:
        cached = StageTables(model.stages, model.device)
        model._stage_tables = cached
    return cached


def split_budget(model, K: int, n: int, n_text: int) -> list[int]:
    """Steps per stage for a total budget K over n masked of n_text characters.

    Each stage needs at least one step. With L_t tables the split minimises the
    summed expected bits of the stages' own DP schedules; without them (or for
    more than ``MAX_EXACT`` positions) it is as equal as possible.
    """
    S = model.stages.S
    if not isinstance(K, (int, np.integer)) or isinstance(K, bool) or not S <= K <= S * n:
        raise ValueError(f"steps for a {S}-stage upscaling model must be between {S} (one per stage) and {S * n} "
                         f"(one character per step in every stage), got {K!r}")
    tabs = model.stage_loss_by_known
    if not tabs or n > MAX_EXACT:
        q, r = divmod(K, S)
        return [q + (1 if s < r else 0) for s in range(S)]
    kmax = min(n, K - (S - 1))
    costs = [budget_costs(document_table(t, n_text), kmax, start=n_text - n, n=n) for t in tabs]
    # best[s][k]: least cost of stages s.. with k steps in all; stage s takes ks = 1..kmax of them
    best = np.full((S + 1, K + 1), np.inf)
    best[S, 0] = 0.0
    pick = np.zeros((S, K + 1), dtype=np.int64)
    ks = np.arange(1, kmax + 1)
    for s in range(S - 1, -1, -1):
        for k in range(1, K + 1):
            ok = ks[ks <= k]
            c = costs[s][ok - 1] + best[s + 1, k - ok]
            if len(c):
                i = int(np.argmin(c))
                best[s, k], pick[s, k] = c[i], ok[i]
    out, k = [], K
    for s in range(S):
        out.append(int(pick[s, k]))
        k -= out[-1]
    return out


class UpscaleSession(StepTotals):
    """Coarse to fine: fill every masked position's class, stage by stage, then the characters.

    The same interface as ``DecodeSession`` (step, run, back, branch,
    current_chars, result). Each stage runs as a ``DecodeSession`` over the
    masked positions with the same order and sampling options; ``steps`` is the
    total budget, split between the stages by ``split_budget``. Steps carry
    ``stage``; their ``chars`` are class glyphs before the last stage.
    """

    def __init__(self, model, text: str, masked, *, order: str = "confidence", steps: int | None = None,
                 explicit=None, sampling=None, seed: int = 0, planner: str = "dp", precision: str = "fp32"):
        if not getattr(model, "is_upscale", False):
            raise ValueError(f"{model.name} is not an upscaling model; coarse-to-fine needs one (for example assets/models/upscale)")
        if not isinstance(text, str):
            raise ValueError("text must be a string")
        self.model = model
        self.text = text
        self.masked_positions = parse_mask(masked, len(text))
        self.n_masked = len(self.masked_positions)
        self.S = model.stages.S
        self.kw = dict(order=order, explicit=explicit, sampling=sampling or SamplingOptions(), seed=seed,
                       planner=planner, precision=precision)
        self.budget = steps
        self.stage_steps: list[int | None] = [None] * self.S
        if steps is not None and self.n_masked:
            self.stage_steps = split_budget(model, steps, self.n_masked, len(text))
        self._tables = stage_tables(model)
        first = DecodeSession(StageView(model, 0, None, self._tables), text, self.masked_positions,
                              steps=self.stage_steps[0], **self.kw)
        self.message = first.message
        self._subs = [first]
        self.steps: list = []
        self.total_network_calls = 0

    # -- plan ---------------------------------------------------------------------------------
    @property
    def schedule(self) -> Schedule | None:
        """Characters per step over all stages, when a budget was given: each stage's plan, as its session makes it."""
        if self.budget is None or not self.n_masked:
            return None
        tabs = self.model.stage_loss_by_known or [None] * self.S
        plans = []
        for s, k in enumerate(self.stage_steps):
            sub = self._subs[s] if s < len(self._subs) else None
            if sub is not None and sub.schedule is not None:
                plans.append(sub.schedule)  # what the stage's session planned (after a branch: for the rest)
            elif k is not None:
                plans.append(plan_budget(tabs[s], k, self.n_masked, len(self.text), self.kw["planner"]))
        return Schedule(tuple(x for p in plans for x in p.sizes), tuple(x for p in plans for x in p.known_before),
                        sum(p.expected_bits for p in plans))

    # -- state --------------------------------------------------------------------------------
    @property
    def stage(self) -> int:
        return len(self._subs) - 1

    @property
    def done(self) -> bool:
        return self.n_masked == 0 or (len(self._subs) == self.S and self._subs[-1].done)

    def _next_stage(self):
        prev = self._subs[-1]
        s = len(self._subs)
        blank = prev._ids.copy()  # undecided positions show their class from the stage before
        sub = DecodeSession(StageView(self.model, s, blank, self._tables), self.text, self.masked_positions,
                            steps=self.stage_steps[s], **self.kw)
        self._subs.append(sub)
        return sub

    def step(self):
        if self.done:
            return None
        sub = self._subs[-1]
        if sub.done:
            sub = self._next_stage()
        st = sub.step()
        out = replace(st, index=len(self.steps), cumulative_bits=self.total_bits + st.step_bits,
                      network_calls=self.network_calls + 1)
        self.total_network_calls += 1
        self.steps.append(out)
        return out

    def run(self):
        while not self.done:
            yield self.step()

    def back(self):
        if not self.steps:
            return None
        if not self._subs[-1].steps and len(self._subs) > 1:
            self._subs.pop()
        self._subs[-1].back()
        return self.steps.pop()

    def branch(self, at_step: int, **changes) -> "UpscaleSession":
        """A new session with this one's first ``at_step`` steps, stepping on with ``changes``.

        ``steps`` in ``changes`` is the budget for the rest: the steps still to
        take in the stage where the branch falls plus every later stage.
        """
        if not isinstance(at_step, (int, np.integer)) or not 0 <= at_step <= len(self.steps):
            raise ValueError(f"at_step must be between 0 and {len(self.steps)} (steps taken), got {at_step!r}")
        kw = {**self.kw, **{k: v for k, v in changes.items() if k != "steps"}}
        new = UpscaleSession.__new__(UpscaleSession)
        new.__dict__.update(self.__dict__)
        new.kw, new.steps, new._subs = kw, list(self.steps[:at_step]), []
        new.total_network_calls = new.network_calls
        left = at_step
        sub_changes = {k: v for k, v in changes.items() if k != "steps"}
        for s, sub in enumerate(self._subs):
            n = len(sub.steps)
            if left >= n and sub.done and s < len(self._subs) - 1:
                new._subs.append(sub.branch(n))
                left -= n
                continue
            new._subs.append(sub.branch(left, **sub_changes))
            break
        if "steps" in changes:
            K = changes["steps"]
            cur = new._subs[-1]
            rem = int(cur._open.sum())
            parts = (1 if rem else 0) + self.S - len(new._subs)  # stages with steps still to take
            if K is None:
                ks = [None] * parts
            else:
                if not isinstance(K, (int, np.integer)) or isinstance(K, bool) or not parts <= K:
                    raise ValueError(f"steps must be an integer of at least {parts} (one per stage still to run), got {K!r}")
                q, r = divmod(int(K), parts)  # an equal split between the stages left
                ks = [q + (1 if i < r else 0) for i in range(parts)]
                if rem and ks[0] > rem:
                    extra, ks[0] = ks[0] - rem, rem
                    if len(ks) > 1:
                        ks[1] += extra
            if rem:
                new._subs[-1] = cur.branch(len(cur.steps), steps=ks.pop(0))
            new.stage_steps = list(self.stage_steps[: len(new._subs)]) + ks
            new.budget = K
        return new

    # -- results ------------------------------------------------------------------------------
    def current_chars(self) -> list[str | None]:
        """Per character: the text, the finest decided symbol (a class glyph before the last stage), or None."""
        out = self._subs[-1].current_chars()
        if len(self._subs) > 1:
            prev = self._subs[-2].current_chars()
            for p in self.masked_positions.tolist():
                if out[p] is None:
                    out[p] = prev[p]
        return out

    def stage_of_positions(self) -> np.ndarray:
        """(n_masked,) the last stage decided at each masked position (-1: none yet)."""
        out = np.full(self.n_masked, len(self._subs) - 2, dtype=np.int64)
        out[~self._subs[-1]._open] = len(self._subs) - 1
        return out

    def result(self) -> str:
        if not self.done:
            raise RuntimeError("the session is not done: positions are still to decide")
        return self._subs[-1].result()


@dataclass
class UpscaleScore:
    order: str
    positions: np.ndarray  # the masked positions
    bits: np.ndarray  # (n_masked,) bits per masked position, all stages summed
    stage_bits: list[float]  # total bits of each stage
    total_bits: float
    bits_per_char: float
    network_calls: int
    stage_steps: list[int | None]
    n_unknown: int = 0  # masked characters outside the vocabulary: 0 bits


def upscale_score(model, text: str, masked, *, order: str = "l2r", steps: int | None = None, seed: int = 0,
                  planner: str = "dp", explicit=None) -> UpscaleScore:
    """Exact bits of the text's masked characters under coarse-to-fine decoding (teacher forcing)."""
    pos = parse_mask(masked, len(text))
    S = model.stages.S
    ks = split_budget(model, steps, len(pos), len(text)) if steps is not None and len(pos) else [None] * S
    truth = model.vocab.encode(text)
    tables = stage_tables(model)
    bits = np.zeros(len(pos))
    stage_bits, calls = [], 0
    for s in range(S):
        blank = None if s == 0 else model.stages.tokens(truth, s - 1)
        r = score(StageView(model, s, blank, tables), text, pos, order=order, steps=ks[s], seed=seed, planner=planner,
                  explicit=explicit)
        bits += r.bits
        stage_bits.append(float(r.total_bits))
        calls += r.network_calls
    total = float(bits.sum())
    return UpscaleScore(order, pos, bits, stage_bits, total, total / max(1, len(pos)), calls, ks, int((truth[pos] == 0).sum()))


__all__ += ["StageView", "UpscaleSession", "UpscaleScore", "upscale_score", "split_budget", "stage_tables"]
