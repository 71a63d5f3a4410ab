"""The decoding session: fill masked positions of a text step by step, accounting for every bit.

Method (paper section 3, ARDM_NOTES "Sampling"): start from the known
characters, run the network once per step, fill the positions the order picks
next, write them in, repeat. With a step budget K (paper section 3.1) each step
fills the number of positions that ``budget_schedule`` planned, chosen by the
order (for dynamic orders: the most confident ones). One step is one network
call, however many windows a long document needs (see ``ardm_core.windows``).

Characters of the text outside the vocabulary are ``<unk>``: context only,
never generated. A masked position is always filled with a vocabulary
character, whatever stood there. Randomness comes from ``seed`` and the step
index alone, so a session (and a branch that keeps the seed) replays exactly.

The app, the CLI and compression use only this module's public names
(docs/ENGINE_API.md).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from .budget import Schedule, budget_schedule, document_table, naive_schedule
from .checkpoint import LoadedModel
from .device import PRECISIONS, resolve_precision
from .orders import OrderState, get_order, order_names, validate_explicit
from .sampling import LOG2E, SamplingOptions, choose, entropy_bits, summarize
from .windows import plan_windows, window_logprobs

PLANNERS = ("dp", "naive")  # budget_schedule (the paper's programme) or an equal split
# PRECISIONS (ardm_core.device): fp32 (exact), bf16 (matrix products in bfloat16, probabilities move
# by ~1e-3: fine for sampling, not for compression), auto (bf16 only where it measured faster here)
EMPTY_MASK_MESSAGE = "nothing to fill: no positions are masked"


@dataclass(frozen=True)
class DecodeStep:
    index: int  # 0-based step number
    positions: tuple[int, ...]  # document positions filled in this step, in fill order
    chars: str  # characters written, same order as positions
    probs: tuple[float, ...]  # model probability (temperature 1) of each chosen character
    entropy: tuple[float, ...]  # entropy (bits) of each position's model distribution
    topk: tuple[tuple[tuple[str, float], ...], ...]  # per position: top-5 (char, prob) under the model
    bits: tuple[float, ...]  # -log2 p(chosen char) per position
    step_bits: float  # sum(bits)
    cumulative_bits: float  # bits of all steps so far
    network_calls: int  # calls so far, this step included
    ms: float  # wall milliseconds of this step
    windows: int = 1  # windows batched into this step's one network call
    known_before: int = 0  # characters known (not masked) in the document before this step
    stage: int = -1  # depth upscaling: the stage this step decides (0 = coarsest); -1 for a plain model
    constrained_bits: tuple[float, ...] = ()  # real words only: -log2 p(chosen char) under the constrained, renormalised distribution


@dataclass(frozen=True)
class StepRequest:
    """What one step needs from the network: log-probabilities at ``targets`` (see ``DecodeSession.step_request``)."""

    index: int
    remaining: np.ndarray  # positions still masked
    size: int  # positions this step fills
    picked: np.ndarray | None  # fixed orders: the positions, in fill order; dynamic orders: None (decided from the rows)
    targets: np.ndarray  # positions whose rows the step needs


def plan_budget(L, K: int, n: int, n_text: int, planner: str = "dp") -> Schedule:
    """Step sizes for K steps over the last n of n_text positions, from a window's L_t table L.

    ``"dp"`` is the paper's programme; ``"naive"``, or a model without an L_t
    table, gets the equal split.
    """
    if not 1 <= K <= n:
        raise ValueError(f"steps must be between 1 and {n} (the number of masked characters), got {K}")
    has_table = L is not None and len(L)
    table = document_table(L, n_text) if has_table else np.ones(n_text)
    plan = budget_schedule if (planner == "dp" and has_table) else naive_schedule
    return plan(table, K, start=n_text - n, n=n)


def parse_mask(masked, n_text: int) -> np.ndarray:
    """Sorted unique positions from an iterable of positions or a bool array of len(text)."""
    arr = np.asarray(masked if not isinstance(masked, (set, frozenset)) else sorted(masked))
    if arr.dtype == bool:
        if arr.shape != (n_text,):
            raise ValueError(f"a boolean mask must have one entry per character ({n_text}), got shape {arr.shape}")
        return np.flatnonzero(arr).astype(np.int64)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError("masked must be integer positions or a boolean array with one entry per character")
    arr = np.unique(arr.astype(np.int64))
    bad = arr[(arr < 0) | (arr >= n_text)]
    if len(bad):
        shown = ", ".join(map(str, bad[:10].tolist())) + (" ..." if len(bad) > 10 else "")
        raise ValueError(f"masked positions out of range (text has {n_text} characters): {shown}")
    return arr


class StepTotals:
    """Totals read off the last recorded step (``self.steps``)."""

    steps: list

    @property
    def network_calls(self) -> int:
        return self.steps[-1].network_calls if self.steps else 0

    @property
    def total_bits(self) -> float:
        return self.steps[-1].cumulative_bits if self.steps else 0.0


class DecodeSession(StepTotals):
    """Iterate ``step()`` (or ``run()``) to fill ``masked`` positions of ``text``.

    ``steps`` is the budget K (None: one position per step); ``planner`` picks
    the per-step sizes for a budget: ``"dp"`` (default, least expected bits
    under the model's L_t table) or ``"naive"`` (equal split). A model without
    an L_t table always gets the equal split.
    """

    def __init__(self, model: LoadedModel, text: str, masked, *, order: str = "confidence", steps: int | None = None,
                 explicit: Sequence[int] | None = None, sampling: SamplingOptions = SamplingOptions(), seed: int = 0,
                 planner: str = "dp", precision: str = "fp32", words=None):
        if not isinstance(text, str):
            raise ValueError("text must be a string")
        if not isinstance(sampling, SamplingOptions):
            raise ValueError("sampling must be a SamplingOptions")
        if planner not in PLANNERS:
            raise ValueError(f"unknown planner {planner!r}; choose from {list(PLANNERS)}")
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; choose from {list(PRECISIONS)}")
        self.precision = resolve_precision(precision, model.net)  # "auto" becomes what pays on this machine
        self.model = model
        self.text = text
        self.masked_positions = parse_mask(masked, len(text))
        self.n_masked = len(self.masked_positions)
        self.order = order
        self._order_fn = get_order(order)
        self._explicit_arg = explicit
        self.explicit = None
        if order == "explicit":
            if explicit is None:
                raise ValueError("order 'explicit' needs explicit=[positions], every masked position exactly once")
            self.explicit = validate_explicit(explicit, self.masked_positions, len(text))
        self.sampling = sampling
        self.seed = int(seed)
        self.planner = planner
        self.budget = steps
        self.message: str | None = None
        self.schedule: Schedule | None = None
        self._plan: list[int] | None = None
        if steps is not None and (not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 1):
            raise ValueError(f"steps must be an integer between 1 and {max(1, self.n_masked)} (got {steps!r})")
        if self.n_masked == 0:
            self.message = EMPTY_MASK_MESSAGE
        elif steps is not None:
            self.schedule = self._plan_budget(int(steps), self.n_masked)
            self._plan = list(self.schedule.sizes)

        self.vocab = model.vocab
        self.D = model.config.block_size
        self._mask_id = model.net.mask_id
        # a stage of an upscaling model (ardm_core.upscale.StageView) reads the same way, with its own
        # symbols, the token each symbol is written as, and per-position tokens for "not decided yet"
        self._symbols: list[str] = getattr(model, "symbols", None) or self.vocab.chars
        self._offset = int(getattr(model, "token_offset", 0))
        self._final = bool(getattr(model, "final_stage", True))  # symbols are characters (<unk> = 0)
        self.stage = int(getattr(model, "stage", -1))
        # real words only (ardm_core.lexicon.WordsOptions): a constraint that sees every write
        self.words = words
        self._words = None
        if words is not None:
            if getattr(model, "symbols", None) is not None or getattr(model, "is_upscale", False) or not self._final or self._offset:
                raise ValueError("real words only works with a plain (character) model, not a stage of an upscaling model")
            self._words = words.constraint(self.vocab.chars, text, self.masked_positions)
        self._ids = self.vocab.encode(text)  # (N,) int64; <unk> stays as context
        blank = getattr(model, "blank", None)
        self._blank = np.full(len(text), self._mask_id, dtype=np.int64) if blank is None else np.asarray(blank, dtype=np.int64)
        self._ids[self.masked_positions] = self._blank[self.masked_positions]
        self._doc = torch.as_tensor(self._ids, device=model.device)  # updated in place, never re-encoded
        self._open = np.ones(self.n_masked, dtype=bool)  # still masked, indexed like masked_positions
        self._state = OrderState(len(text), self.masked_positions, self.masked_positions, self.seed, self.explicit)
        self._forced: np.ndarray | None = None  # teacher forcing (scoring): the true symbol per position
        self._free = np.zeros(len(text), dtype=bool)  # scoring: <unk> in the true text, counted as 0 bits
        self.steps: list[DecodeStep] = []
        self._step_ids: list[np.ndarray] = []
        self.total_network_calls = 0  # including calls of steps later undone

    # -- planning ---------------------------------------------------------------------------
    def _plan_budget(self, K: int, n: int) -> Schedule:
        return plan_budget(self.model.loss_by_known, K, n, len(self.text), self.planner)

    def _size(self, index: int, remaining: int) -> int:
        if self._plan is None:
            return 1
        return min(remaining, self._plan[index] if index < len(self._plan) else remaining)

    # -- state --------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return not self._open.any()

    def remaining_positions(self) -> np.ndarray:
        return self.masked_positions[self._open]

    def _write(self, positions: np.ndarray, ids: np.ndarray) -> None:
        tokens = ids + self._offset
        self._ids[positions] = tokens
        self._doc[torch.as_tensor(positions, device=self._doc.device)] = torch.as_tensor(tokens, device=self._doc.device)
        self._open[np.searchsorted(self.masked_positions, positions)] = False
        if self._words is not None:
            for p, i in zip(positions.tolist(), ids.tolist()):
                self._words.fill(p, self._symbol(i, p))

    def _unwrite(self, positions: np.ndarray) -> None:
        self._ids[positions] = self._blank[positions]
        self._doc[torch.as_tensor(positions, device=self._doc.device)] = torch.as_tensor(self._blank[positions], device=self._doc.device)
        self._open[np.searchsorted(self.masked_positions, positions)] = True
        if self._words is not None:
            for p in positions.tolist():
                self._words.fill(p, None)

    def _symbol(self, i: int, p: int) -> str:
        return self._symbols[i] if (i or not self._final) else self.text[p]  # <unk> keeps the original

    # -- stepping ----------------------------------------------------------------------------
    def step(self) -> DecodeStep | None:
        """Fill the next positions (one network call); None when done."""
        if self.done:
            return None
        t0 = time.perf_counter()
        req = self.step_request()
        with self.network_context():
            rows_t, n_win = window_logprobs(self.model.net, self._doc, req.targets, self.D)
        return self.step_finish(req, rows_t, n_win, t0)

    def network_context(self):
        """The context every forward pass of this session runs in (no autograd; bf16 when asked)."""
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        stack.enter_context(torch.autocast(self._doc.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"))
        return stack

    @property
    def document_ids(self) -> torch.Tensor:
        """(N,) the ids the network sees now (known, filled, or the blank token where masked); read only."""
        return self._doc

    @property
    def unconstrained_regions(self) -> list[tuple[int, int]]:
        """Real words only: (start, end) of regions that no lexicon fill could satisfy, filled unconstrained."""
        return list(self._words.report.unconstrained) if self._words is not None else []

    def step_request(self) -> StepRequest:
        """The first half of ``step``: which rows the next step needs. Callers that batch several sessions
        into one network call (``ardm_core.alternatives``) call this, run the network, then ``step_finish``."""
        if self.done:
            raise RuntimeError("the session is done")
        index = len(self.steps)
        remaining = self.masked_positions[self._open]
        size = self._size(index, len(remaining))
        st = self._state
        st.remaining, st.max_prob, st.entropy = remaining, None, None
        if self._order_fn.dynamic:  # the order needs the model's view of every remaining position
            return StepRequest(index, remaining, size, None, remaining)
        picked = np.asarray(self._order_fn(st, size), dtype=np.int64)
        return StepRequest(index, remaining, size, picked, picked)

    def step_finish(self, req: StepRequest, rows_t: torch.Tensor, n_win: int, t0: float | None = None) -> DecodeStep:
        """The second half of ``step``: choose and write the characters from the rows (k, V) at ``req.targets``."""
        t0 = time.perf_counter() if t0 is None else t0
        index, remaining, size, st = req.index, req.remaining, req.size, self._state
        if req.picked is None:
            rows_all = rows_t.double().cpu().numpy()
            st.max_prob, st.entropy = np.exp(rows_all.max(axis=1)), entropy_bits(rows_all)
            picked = np.asarray(self._order_fn(st, size), dtype=np.int64)
            rows = rows_all[np.searchsorted(remaining, picked)]
        else:
            picked = req.picked
            rows = rows_t.double().cpu().numpy()
        if len(picked) != size:
            raise RuntimeError(f"order {self.order!r} picked {len(picked)} positions, expected {size}")
        cbits: tuple[float, ...] = ()
        if self._forced is not None:
            ids = self._forced[picked]
        elif self._words is not None:
            ids, cbits = self._choose_words(picked, rows, np.random.default_rng([self.seed % 2**64, 1, index]))
        else:
            ids = choose(rows, self.sampling, np.random.default_rng([self.seed % 2**64, 1, index]), unk_column=self._final)
        s = summarize(rows, ids)
        bits = s.bits
        if self._forced is not None and self._free[picked].any():  # <unk> in the true text: free context, as in evaluate
            bits = np.where(self._free[picked], 0.0, bits)
        self._write(picked, ids)
        self.total_network_calls += 1
        chars = self._symbols
        step_bits = float(bits.sum())
        out = DecodeStep(
            index=index,
            positions=tuple(picked.tolist()),
            chars="".join(self._symbol(i, p) for i, p in zip(ids.tolist(), picked.tolist())),
            probs=tuple(s.probs.tolist()),
            entropy=tuple(s.entropy.tolist()),
            topk=tuple(tuple((chars[i], p) for i, p in zip(ti, tp)) for ti, tp in zip(s.top_ids.tolist(), s.top_probs.tolist())),
            bits=tuple(bits.tolist()),
            step_bits=step_bits,
            cumulative_bits=self.total_bits + step_bits,
            network_calls=self.network_calls + 1,
            ms=(time.perf_counter() - t0) * 1000.0,
            windows=n_win,
            known_before=len(self.text) - len(remaining),
            stage=self.stage,
            constrained_bits=cbits,
        )
        self.steps.append(out)
        self._step_ids.append(ids)
        return out

    def _choose_words(self, picked: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, tuple]:
        """Real words only: the positions of one step, in fill order, each from the same network output
        restricted to the characters that keep a lexicon completion possible given those already chosen
        (so positions filled in parallel stay consistent). Returns ids and constrained bits."""
        ids = np.empty(len(picked), dtype=np.int64)
        cbits = []
        for j, p in enumerate(picked.tolist()):
            adj, _ = self._words.adjust(p, rows[j])
            i = int(choose(adj[None, :], self.sampling, rng)[0])
            ids[j] = i
            cbits.append(float(-adj[i] * LOG2E))
            self._words.fill(p, self._symbol(i, p))
        return ids, tuple(cbits)

    def run(self) -> Iterator[DecodeStep]:
        """Steps until done (a generator: the caller may stop between steps)."""
        while not self.done:
            yield self.step()

    def back(self) -> DecodeStep | None:
        """Undo the last step and return it; None if there is nothing to undo."""
        if not self.steps:
            return None
        st = self.steps.pop()
        self._step_ids.pop()
        self._unwrite(np.asarray(st.positions, dtype=np.int64))
        return st

    _BRANCH_KEYS = ("seed", "order", "sampling", "steps", "explicit", "planner", "words")

    def branch(self, at_step: int, **changes) -> "DecodeSession":
        """A new session holding this one's first ``at_step`` steps, then stepping on with ``changes``.

        ``steps`` in ``changes`` is the budget for the positions still masked
        after the branch point (None: one per step); without it the branch
        keeps this session's plan. Nothing of this session changes.
        """
        unknown = sorted(set(changes) - set(self._BRANCH_KEYS))
        if unknown:
            raise ValueError(f"cannot change {unknown} in a branch; choose from {list(self._BRANCH_KEYS)}")
        if not isinstance(at_step, (int, np.integer)) or not 0 <= at_step <= len(self.steps):
            raise ValueError(f"at_step must be between 0 and {len(self.steps)} (steps taken), got {at_step!r}")
        kw = dict(order=self.order, explicit=self._explicit_arg, sampling=self.sampling, seed=self.seed, planner=self.planner,
                  precision=self.precision, words=self.words)
        kw.update({k: v for k, v in changes.items() if k != "steps"})
        new = DecodeSession(self.model, self.text, self.masked_positions, steps=None, **kw)
        new._forced, new._free = self._forced, self._free
        for st, ids in zip(self.steps[:at_step], self._step_ids[:at_step]):
            new._write(np.asarray(st.positions, dtype=np.int64), ids)
            new.steps.append(st)
            new._step_ids.append(ids)
        prefix = [len(st.positions) for st in new.steps]
        new.total_network_calls = new.network_calls  # the calls that produced the prefix
        if "steps" in changes:
            K, n_rem = changes["steps"], int(new._open.sum())
            new.budget = K
            if K is not None and n_rem:
                if not isinstance(K, (int, np.integer)) or isinstance(K, bool):
                    raise ValueError(f"steps must be an integer between 1 and {n_rem} (got {K!r})")
                new.schedule = new._plan_budget(int(K), n_rem)
                new._plan = prefix + list(new.schedule.sizes)
        else:
            new.budget, new.schedule, new._plan = self.budget, self.schedule, self._plan
        return new

    # -- results --------------------------------------------------------------------------------
    def current_chars(self) -> list[str | None]:
        """One entry per character of the text: None where still masked."""
        out: list[str | None] = list(self.text)
        for p, i, o in zip(self.masked_positions.tolist(), self._ids[self.masked_positions].tolist(), self._open.tolist()):
            out[p] = None if o else self._symbol(i - self._offset, p)
        return out

    def result(self) -> str:
        """The filled text; raises RuntimeError while positions are still masked."""
        if not self.done:
            raise RuntimeError(f"the session is not done: {int(self._open.sum())} positions still masked")
        return "".join(self.current_chars())  # type: ignore[arg-type]


# -- scoring ------------------------------------------------------------------------------------
@dataclass
class ScoreResult:
    order: str
    bits: np.ndarray  # (n_masked,) bits per masked position, in masked_positions order
    positions: np.ndarray  # the masked positions
    total_bits: float
    bits_per_char: float
    network_calls: int
    steps: int = 0  # steps taken (= network calls)
    n_unknown: int = 0  # masked characters outside the vocabulary: counted as 0 bits, like evaluate
    schedule: Schedule | None = None  # the budget plan, when steps was given


def score(model: LoadedModel, text: str, masked, *, order: str = "l2r", explicit: Sequence[int] | None = None,
          steps: int | None = None, seed: int = 0, planner: str = "dp", batch_rows: int = 64) -> ScoreResult:
    """Exact bits of the characters of ``text`` at ``masked`` under ``order`` (teacher forcing).

    With a budget K the positions of one step are predicted together (the
    paper's parallel factorisation), so the result is the cost of K-step
    generation. Fixed orders batch up to ``batch_rows`` steps per forward
    pass; every step still counts as one network call (as in the paper).
    """
    s = DecodeSession(model, text, masked, order=order, steps=steps, explicit=explicit, seed=seed, planner=planner)
    truth = model.vocab.encode(text)
    s._free = truth == 0
    s._forced = model.choices(truth) if hasattr(model, "choices") else truth  # the true symbol of each position
    n_unknown = int((truth[s.masked_positions] == 0).sum())
    if s.n_masked == 0:
        return ScoreResult(order, np.zeros(0), s.masked_positions, 0.0, 0.0, 0, 0, 0, None)
    if s._order_fn.dynamic:
        for _ in s.run():
            pass
        bits = np.zeros(len(text))
        for st in s.steps:
            bits[list(st.positions)] = st.bits
        n_steps = len(s.steps)
    else:
        bits, n_steps = _score_fixed(s, truth, batch_rows)
    b = bits[s.masked_positions]
    total = float(b.sum())
    return ScoreResult(order, b, s.masked_positions, total, total / s.n_masked, n_steps, n_steps, n_unknown, s.schedule)


@torch.inference_mode()
def _score_fixed(s: DecodeSession, truth: np.ndarray, batch_rows: int) -> tuple[np.ndarray, int]:
    """Teacher-forced bits for a fixed order, many steps per forward pass. Returns (bits by position, steps)."""
    N, D = len(s.text), s.D
    # 1. the order's steps, without the model
    step_of = np.full(N, -1, dtype=np.int64)  # step at which a masked position is filled; -1 = known
    st, open_ = s._state, np.ones(s.n_masked, dtype=bool)
    groups = []
    while open_.any():
        st.remaining = s.masked_positions[open_]
        picked = np.asarray(s._order_fn(st, s._size(len(groups), len(st.remaining))), dtype=np.int64)
        step_of[picked] = len(groups)
        open_[np.searchsorted(s.masked_positions, picked)] = False
        groups.append(np.sort(picked))
    # 2. one row per (step, window): the window around that step's positions
    W = min(N, D)
    row_step, row_start, tgt_row, tgt_pos = [], [], [], []
    for k, g in enumerate(groups):
        starts, owner = plan_windows(g, N, D)
        tgt_row.append(owner + len(row_step))
        tgt_pos.append(g)
        row_step.extend([k] * len(starts))
        row_start.extend(starts.tolist())
    row_step, row_start = np.asarray(row_step), np.asarray(row_start)
    tgt_row, tgt_pos = np.concatenate(tgt_row), np.concatenate(tgt_pos)
    # 3. forward in chunks; a position is visible in a row iff it is known or filled before that row's step
    dev = s.model.device
    target_t = torch.as_tensor(s._forced, device=dev)  # the true symbol per position
    shown = truth.copy()  # what the network sees once a position is filled: its symbol's token
    shown[s.masked_positions] = s._forced[s.masked_positions] + s._offset
    truth_t = torch.as_tensor(shown, device=dev)
    blank_t = torch.as_tensor(s._blank, device=dev)
    free_t = torch.as_tensor(s._free, device=dev)
    step_t = torch.as_tensor(step_of, device=dev)
    offs = torch.arange(W, device=dev)
    bits = np.zeros(N)
    for r0 in range(0, len(row_step), batch_rows):
        r1 = min(len(row_step), r0 + batch_rows)
        idx = torch.as_tensor(row_start[r0:r1], device=dev)[:, None] + offs[None, :]  # (b, W)
        hidden = step_t[idx] >= torch.as_tensor(row_step[r0:r1], device=dev)[:, None]
        logp = s.model.net(torch.where(hidden, blank_t[idx], truth_t[idx]))  # (b, W, V)
        sel = (tgt_row >= r0) & (tgt_row < r1)
        rr, pp = tgt_row[sel], tgt_pos[sel]
        pp_t = torch.as_tensor(pp, device=dev)
        lp = logp[torch.as_tensor(rr - r0, device=dev), torch.as_tensor(pp - row_start[rr], device=dev), target_t[pp_t]]
        lp = lp.masked_fill(free_t[pp_t], 0.0)  # <unk>: free context
        bits[pp] = (-lp.double() * LOG2E).cpu().numpy()
    return bits, len(groups)


__all__ = ["DecodeSession", "DecodeStep", "StepRequest", "SamplingOptions", "ScoreResult", "score", "parse_mask", "order_names", "PLANNERS"]
