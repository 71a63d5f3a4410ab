"""Coarse-to-fine decoding with a depth-upscaling model: every masked character's class first, then the character.

Each stage runs as an ordinary ``DecodeSession`` over the masked positions,
reading the upscaling network through ``StageView`` (a ``DecodingView``:
the stage's symbols, and per position the token an undecided position shows,
its class from the stage before). Stage s+1 starts from the tokens stage s
left (``DecodeSession.input_tokens``). A budget K is split between the stages
by ``split_steps``, which minimises the summed expected bits of the stages'
own plans (``budget.budget_costs``, the planner every session uses); a branch
splits the budget for its rest the same way. The model, its tables and its
objective live in ``ardm_core.upscale``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import torch

from .budget import Schedule, budget_costs, document_table
from .session import DecodeSession, SamplingOptions, StepTotals, parse_mask, plan_budget, score
from .upscale import StageNet, StageTables, stage_tables


class StageView:
    """One stage of a loaded upscaling model, read by ``DecodeSession`` and ``score`` like a plain model.

    ``blank`` holds, per document position, the token an undecided position
    shows at this stage: its class from the stage before ([MASK] at stage 0).
    """

    def __init__(self, model, s: int, blank: np.ndarray | None, tables: StageTables | None = None):
        sm = model.stages
        self.base = model
        self.stage = s
        self.vocab = model.vocab
        self.block_size = int(model.config.block_size)
        self.tables = tables or stage_tables(model)
        self.net = StageNet(model.net, self.tables, s)
        tabs = model.stage_loss_by_known
        self.loss_by_known = None if not tabs else tabs[s]
        self.token_offset = sm.token_offset(s)
        self.final_stage = s == sm.S - 1
        self.symbols = list(model.vocab.chars) if self.final_stage else [c.glyph for c in sm.classes[s]]
        self.blank = None if blank is None else np.asarray(blank, dtype=np.int64)

    @property
    def device(self) -> torch.device:
        return self.base.device

    def blank_tokens(self, n_text: int) -> np.ndarray:
        if self.blank is None:
            return np.full(n_text, self.net.mask_id, dtype=np.int64)
        return self.blank

    def truth(self, char_ids: np.ndarray) -> np.ndarray:
        """The stage-s symbol of each character id (the truth, for scoring)."""
        return self.base.stages.assign[self.stage][char_ids]


def split_steps(tables: Sequence[np.ndarray | None], K: int, spans: Sequence[int], n_text: int) -> list[int]:
    """Steps per stage for a budget K over stages filling ``spans[i]`` positions each (the last of n_text).

    Each stage takes between 1 and its span. With L_t tables the split
    minimises the summed expected bits of the stages' own plans; without them
    it is as equal as the spans allow.
    """
    P = len(spans)
    hi = int(sum(spans))
    if not isinstance(K, (int, np.integer)) or isinstance(K, bool) or not P <= K <= hi:
        raise ValueError(f"steps for {P} stage(s) must be between {P} (one per stage) and {hi} "
                         f"(one character per step in every stage), got {K!r}")
    K = int(K)
    if any(t is None for t in tables):
        ks = [1] * P
        for _ in range(K - P):  # one more step to the stage with the most characters per step
            i = max(range(P), key=lambda j: (spans[j] / ks[j] if ks[j] < spans[j] else -1.0, -j))
            ks[i] += 1
        return ks
    costs = []
    for t, n in zip(tables, spans):
        kmax = min(n, K - (P - 1))
        costs.append(budget_costs(document_table(t, n_text), kmax, start=n_text - n, n=n))
    # best[i][k]: least cost of stages i.. with k steps in all; stage i takes 1..len(costs[i]) of them
    best = np.full((P + 1, K + 1), np.inf)
    best[P, 0] = 0.0
    pick = np.zeros((P, K + 1), dtype=np.int64)
    for i in range(P - 1, -1, -1):
        ks = np.arange(1, len(costs[i]) + 1)
        for k in range(1, K + 1):
            ok = ks[ks <= k]
            c = costs[i][ok - 1] + best[i + 1, k - ok]
            if len(c):
                j = int(np.argmin(c))
                best[i, k], pick[i, k] = c[j], ok[j]
    out, k = [], K
    for i in range(P):
        out.append(int(pick[i, k]))
        k -= out[-1]
    return out


def split_budget(model, K: int, n: int, n_text: int) -> list[int]:
    """Steps per stage for a total budget K over n masked of n_text characters (every stage fills n)."""
    S = model.stages.S
    tabs = model.stage_loss_by_known or [None] * S
    return split_steps(tabs, K, [n] * S, n_text)


class UpscaleSession(StepTotals):
    """Coarse to fine: fill every masked position's class, stage by stage, then the characters.

    The same interface as ``DecodeSession`` (step, run, back, branch,
    current_chars, result). Each stage runs as a ``DecodeSession`` over the
    masked positions with the same order, picks and sampling options;
    ``steps`` is the total budget, split between the stages by
    ``split_budget``. Steps carry ``stage``; their ``chars`` are class glyphs
    before the last stage.
    """

    def __init__(self, model, text: str, masked, *, order: str = "confidence", steps: int | None = None,
                 explicit=None, picks=None, sampling=None, seed: int = 0, planner: str = "dp", precision: str = "fp32"):
        if not getattr(model, "is_upscale", False):
            raise ValueError(f"{model.name} is not an upscaling model; coarse-to-fine needs one (for example assets/models/upscale)")
        if not isinstance(text, str):
            raise ValueError("text must be a string")
        self.model = model
        self.text = text
        self.masked_positions = parse_mask(masked, len(text))
        self.n_masked = len(self.masked_positions)
        self.S = model.stages.S
        self.kw = dict(order=order, explicit=explicit, picks=picks, sampling=sampling or SamplingOptions(), seed=seed,
                       planner=planner, precision=precision)
        self.budget = steps
        self.stage_steps: list[int | None] = [None] * self.S
        n_rest = self.n_masked - len(picks or ())
        if steps is not None and n_rest:
            self.stage_steps = split_budget(model, steps, n_rest, len(text))
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
        n_rest = self.n_masked - len(self.kw["picks"] or ())
        plans = []
        for s, k in enumerate(self.stage_steps):
            sub = self._subs[s] if s < len(self._subs) else None
            if sub is not None and sub.schedule is not None:
                plans.append(sub.schedule)  # what the stage's session planned (after a branch: for the rest)
            elif k is not None and n_rest:
                plans.append(plan_budget(tabs[s], k, n_rest, len(self.text), self.kw["planner"]))
        return Schedule(tuple(x for p in plans for x in p.sizes), tuple(x for p in plans for x in p.known_before),
                        sum(p.expected_bits for p in plans))

    # -- state --------------------------------------------------------------------------------
    @property
    def stage(self) -> int:
        return len(self._subs) - 1

    @property
    def done(self) -> bool:
        return self.n_masked == 0 or (len(self._subs) == self.S and self._subs[-1].done)

    def _next_stage(self) -> DecodeSession:
        s = len(self._subs)
        blank = self._subs[-1].input_tokens()  # undecided positions show their class from the stage before
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
        take in the stage where the branch falls plus every later stage, split
        between them as ``split_steps`` plans it.
        """
        if not isinstance(at_step, (int, np.integer)) or isinstance(at_step, bool) or not 0 <= at_step <= len(self.steps):
            raise ValueError(f"at_step must be between 0 and {len(self.steps)} (steps taken), got {at_step!r}")
        sub_changes = {k: v for k, v in changes.items() if k != "steps"}
        new = UpscaleSession.__new__(UpscaleSession)
        new.__dict__.update(self.__dict__)
        new.kw, new.steps, new._subs = {**self.kw, **sub_changes}, list(self.steps[:at_step]), []
        new.total_network_calls = new.network_calls
        left = at_step
        for s, sub in enumerate(self._subs):
            n = len(sub.steps)
            if left >= n and sub.done and s < len(self._subs) - 1:
                new._subs.append(sub.branch(n))
                left -= n
                continue
            new._subs.append(sub.branch(left, **sub_changes))
            break
        if "steps" in changes:
            new._rebudget(changes["steps"])
        return new

    def _rebudget(self, K) -> None:
        """Plan the budget K over the rest of this (freshly branched) session."""
        cur = self._subs[-1]
        picks_left = set(cur.picks) & set(cur.remaining_positions().tolist())
        rem = len(cur.remaining_positions()) - len(picks_left)  # still to plan in the stage now running
        n_rest = self.n_masked - len(self.kw["picks"] or ())
        later = list(range(len(self._subs), self.S))
        stages = ([len(self._subs) - 1] if rem else []) + later
        if K is None:
            ks: list[int | None] = [None] * len(stages)
        else:
            tabs = self.model.stage_loss_by_known or [None] * self.S
            spans = ([rem] if rem else []) + [n_rest] * len(later)
            ks = list(split_steps([tabs[s] for s in stages], K, spans, len(self.text)))
        if rem:
            self._subs[-1] = cur.branch(len(cur.steps), steps=ks.pop(0))
        self.stage_steps = list(self.stage_steps[: len(self._subs)]) + ks
        self.budget = K

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
        decided = ~np.isin(self.masked_positions, self._subs[-1].remaining_positions())
        out[decided] = len(self._subs) - 1
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
                  planner: str = "dp", explicit=None, picks=None) -> UpscaleScore:
    """Exact bits of the text's masked characters under coarse-to-fine decoding (teacher forcing)."""
    pos = parse_mask(masked, len(text))
    S = model.stages.S
    n_rest = len(pos) - len(picks or ())
    ks = split_budget(model, steps, n_rest, len(text)) if steps is not None and n_rest else [None] * S
    truth = model.vocab.encode(text)
    tables = stage_tables(model)
    bits = np.zeros(len(pos))
    stage_bits, calls = [], 0
    for s in range(S):
        blank = None if s == 0 else model.stages.tokens(truth, s - 1)
        r = score(StageView(model, s, blank, tables), text, pos, order=order, steps=ks[s], seed=seed, planner=planner,
                  explicit=explicit, picks=picks)
        bits += r.bits
        stage_bits.append(float(r.total_bits))
        calls += r.network_calls
    total = float(bits.sum())
    return UpscaleScore(order, pos, bits, stage_bits, total, total / max(1, len(pos)), calls, ks, int((truth[pos] == 0).sum()))


__all__ = ["StageView", "UpscaleSession", "UpscaleScore", "upscale_score", "split_budget", "split_steps"]
