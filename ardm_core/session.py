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
from typing import Any, Callable, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from .budget import Schedule, budget_schedule, check_steps, document_table, naive_schedule
from .checkpoint import LoadedModel
from .device import PRECISIONS, resolve_precision
from .orders import RNG_TAG_SAMPLE, Plan, order_names, validate_picks
from .sampling import LOG2E, SamplingOptions, choose, entropy_bits, summarize
from .windows import teacher_forced_logprobs, window_logprobs

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


# -- what a session needs from a model ------------------------------------------------------------
@runtime_checkable
class DecodingView(Protocol):
    """What a session reads from a model. A plain ``LoadedModel`` is read through ``CharacterView``;
    one stage of an upscaling model is ``ardm_core.upscale_session.StageView``."""

    net: Any  # net(ids (B, T)) -> log-probs (B, T, V) over the symbols; .mask_id; .cfg.vocab_size
    vocab: Any  # the character vocabulary (encodes the text)
    block_size: int  # D: characters the network sees at once
    loss_by_known: np.ndarray | None  # L_t table for budget planning
    stage: int  # -1 for characters; the stage of an upscaling model otherwise
    symbols: Sequence[str]  # what each output column writes
    token_offset: int  # the input token of symbol i is i + token_offset
    final_stage: bool  # symbols are characters: column 0 is <unk>, never sampled

    @property
    def device(self) -> torch.device: ...

    def blank_tokens(self, n_text: int) -> np.ndarray:
        """(n_text,) the token an undecided position shows."""

    def truth(self, char_ids: np.ndarray) -> np.ndarray:
        """The symbol of each true character (teacher forcing)."""


class CharacterView:
    """A plain model as a session reads it: symbols are its characters, undecided positions show [MASK]."""

    stage = -1
    token_offset = 0
    final_stage = True

    def __init__(self, model: LoadedModel):
        self.model = model
        self.net = model.net
        self.vocab = model.vocab
        self.block_size = int(model.config.block_size)
        self.loss_by_known = model.loss_by_known
        self.symbols = list(model.vocab.chars)

    @property
    def device(self) -> torch.device:
        return self.model.device

    def blank_tokens(self, n_text: int) -> np.ndarray:
        return np.full(n_text, self.net.mask_id, dtype=np.int64)

    def truth(self, char_ids: np.ndarray) -> np.ndarray:
        return char_ids


def decoding_view(model) -> DecodingView:
    if isinstance(model, LoadedModel):
        return CharacterView(model)
    if isinstance(model, DecodingView):
        return model
    raise ValueError(f"a session needs a LoadedModel or a DecodingView, got {type(model).__name__}")


def plan_budget(L, K: int, n: int, n_text: int, planner: str = "dp") -> Schedule:
    """Step sizes for K steps over the last n of n_text positions, from a window's L_t table L.

    ``"dp"`` is the paper's programme; ``"naive"``, or a model without an L_t
    table, gets the equal split. K outside 1..n is refused by ``check_steps``.
    """
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
    an L_t table always gets the equal split. ``picks``: hand-picked positions
    filled first, one per step, before the rest follows ``order`` (the budget
    covers the rest). ``teacher``: teacher forcing; every step writes the
    text's own character (or class) instead of sampling, and its bits are the
    cost of the truth (characters outside the vocabulary cost 0).

    ``words`` (ardm_core.lexicon.WordsOptions): real words only, a constraint
    that sees every write (plain character models only).

    A step is two halves, ``step_request`` (which rows the network must
    compute) and ``step_finish`` (choose, write, record): a driver that batches
    several sessions into one network call (``ardm_core.alternatives``) calls
    them around one forward pass.
    """

    def __init__(self, model, text: str, masked, *, order: str = "confidence", steps: int | None = None,
                 explicit: Sequence[int] | None = None, picks: Sequence[int] | None = None,
                 sampling: SamplingOptions = SamplingOptions(), seed: int = 0, planner: str = "dp",
                 precision: str = "fp32", teacher: bool = False, words=None):
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
        self.view = decoding_view(model)
        self.text = text
        self.masked_positions = parse_mask(masked, len(text))
        self.n_masked = len(self.masked_positions)
        self.order = order
        self.sampling = sampling
        self.seed = int(seed)
        self.planner = planner
        self.teacher = bool(teacher)
        self._explicit_arg = explicit
        self.picks: tuple[int, ...] = tuple(validate_picks(picks if picks is not None else (), self.masked_positions,
                                                           len(text)).tolist())
        self.budget = steps
        self.message: str | None = EMPTY_MASK_MESSAGE if self.n_masked == 0 else None
        self.schedule: Schedule | None = None
        if steps is not None and (not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 1):
            check_steps(steps, max(1, self.n_masked - len(self.picks)))
        n_rest = self.n_masked - len(self.picks)
        if steps is not None and n_rest > 0:
            self.schedule = self._plan_budget(steps, n_rest)
        self.plan = Plan(len(text), self.masked_positions, order, sizes=self.schedule.sizes if self.schedule else None,
                         picks=self.picks, seed=self.seed, explicit=explicit)
        self.explicit = self.plan.explicit

        v = self.view
        self.vocab = v.vocab
        self.D = v.block_size
        self.stage = v.stage
        truth = self.vocab.encode(text)  # (N,) int64; <unk> stays as context
        self._teacher = v.truth(truth) if self.teacher else None  # the true symbol of each position
        self._free = truth == 0  # <unk> in the true text: free context when teacher forcing, as in evaluate
        self._blank = np.asarray(v.blank_tokens(len(text)), dtype=np.int64)
        self._ids = truth.copy()
        self._ids[self.masked_positions] = self._blank[self.masked_positions]
        self._doc = torch.as_tensor(self._ids, device=v.device)  # updated in place, never re-encoded
        self._open = np.ones(self.n_masked, dtype=bool)  # still masked, indexed like masked_positions
        # real words only (ardm_core.lexicon.WordsOptions): a constraint that sees every write
        self.words = words
        self._words = None
        if words is not None:
            if not isinstance(v, CharacterView):
                raise ValueError("real words only works with a plain (character) model, not a stage of an upscaling model")
            self._words = words.constraint(self.vocab.chars, text, self.masked_positions)
        self.steps: list[DecodeStep] = []
        self._step_ids: list[np.ndarray] = []
        self.total_network_calls = 0  # including calls of steps later undone

    # -- planning ---------------------------------------------------------------------------
    def _plan_budget(self, K: int, n: int) -> Schedule:
        return plan_budget(self.view.loss_by_known, K, n, len(self.text), self.planner)

    # -- state --------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return not self._open.any()

    def remaining_positions(self) -> np.ndarray:
        """Positions still masked (sorted)."""
        return self.masked_positions[self._open]

    def input_tokens(self) -> np.ndarray:
        """(len(text),) the tokens the network sees now: known characters, decided symbols, blanks (a copy)."""
        return self._ids.copy()

    def _write(self, positions: np.ndarray, ids: np.ndarray) -> None:
        tokens = ids + self.view.token_offset
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
        return self.view.symbols[i] if (i or not self.view.final_stage) else self.text[p]  # <unk> keeps the original

    # -- stepping ----------------------------------------------------------------------------
    def step(self, *, cancel: Callable[[], bool] | None = None) -> DecodeStep | None:
        """Fill the next positions (one network call); None when done.

        ``cancel`` is asked between batches of windows (a step over a long document
        runs thousands); when it returns True, ``windows.Cancelled`` is raised and
        nothing is written, so the session can step again later."""
        if self.done:
            return None
        t0 = time.perf_counter()
        req = self.step_request()
        with self.network_context():
            rows_t, n_win = window_logprobs(self.view.net, self._doc, req.targets, self.D, cancel=cancel)
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
        """The first half of ``step``: which rows the next step needs (no model call). Callers that batch
        several sessions into one network call (``ardm_core.alternatives``) call this, run the network,
        then ``step_finish``."""
        if self.done:
            raise RuntimeError("the session is done")
        index = len(self.steps)
        remaining = self.masked_positions[self._open]
        size = self.plan.size(index, len(remaining))
        if self.plan.needs_scores(index):  # the order needs the model's view of every remaining position
            return StepRequest(index, remaining, size, None, remaining)
        picked = self.plan.take(index, remaining)
        return StepRequest(index, remaining, size, picked, picked)

    def step_finish(self, req: StepRequest, rows_t: torch.Tensor, n_win: int, t0: float | None = None) -> DecodeStep:
        """The second half of ``step``: choose and write the characters from the rows (k, V) at ``req.targets``."""
        t0 = time.perf_counter() if t0 is None else t0
        index, remaining = req.index, req.remaining
        rows_all = rows_t.double().cpu().numpy()
        if req.picked is None:
            picked = self.plan.take(index, remaining, np.exp(rows_all.max(axis=1)), entropy_bits(rows_all))
            rows = rows_all[np.searchsorted(remaining, picked)]
        else:
            picked, rows = req.picked, rows_all
        cbits: tuple[float, ...] = ()
        rng = np.random.default_rng([self.seed % 2**64, RNG_TAG_SAMPLE, index])
        if self._teacher is not None:
            ids = self._teacher[picked]
        elif self._words is not None:
            ids, cbits = self._choose_words(picked, rows, rng)
        else:
            ids = choose(rows, self.sampling, rng, unk_column=self.view.final_stage)
        s = summarize(rows, ids)
        bits = s.bits
        if self._teacher is not None and self._free[picked].any():
            bits = np.where(self._free[picked], 0.0, bits)
        self._write(picked, ids)
        self.total_network_calls += 1
        chars = self.view.symbols
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

    _BRANCH_KEYS = ("seed", "order", "sampling", "steps", "explicit", "planner", "picks", "words")

    def _future_sizes(self, at_step: int) -> list[int] | None:
        """Sizes of the steps after ``at_step`` as this session took or planned them (None: one per step)."""
        if self.plan.sizes is None:
            return None
        taken = [len(st.positions) for st in self.steps[at_step:]]
        j = len(self.steps) - self.plan.first_step - len(self.plan.picks)  # plan steps after the picks so far
        return taken + [1] * max(0, -j) + list(self.plan.sizes[max(0, j):])

    def branch(self, at_step: int, **changes) -> "DecodeSession":
        """A new session holding this one's first ``at_step`` steps, then stepping on with ``changes``.

        ``steps`` in ``changes`` is the budget for the positions still masked
        after the branch point and its hand-picked ones (None: one per step);
        without it the branch keeps this session's plan. Hand-picked positions
        not filled by the kept steps come next, as in this session. Nothing of
        this session changes.
        """
        unknown = sorted(set(changes) - set(self._BRANCH_KEYS))
        if unknown:
            raise ValueError(f"cannot change {unknown} in a branch; choose from {list(self._BRANCH_KEYS)}")
        if not isinstance(at_step, (int, np.integer)) or isinstance(at_step, bool) or not 0 <= at_step <= len(self.steps):
            raise ValueError(f"at_step must be between 0 and {len(self.steps)} (steps taken), got {at_step!r}")
        at_step = int(at_step)
        kw = dict(order=self.order, explicit=self._explicit_arg, picks=self.picks, sampling=self.sampling, seed=self.seed,
                  planner=self.planner, precision=self.precision, teacher=self.teacher, words=self.words)
        kw.update({k: v for k, v in changes.items() if k != "steps"})
        new = DecodeSession(self.model, self.text, self.masked_positions, steps=None, **kw)
        for st, ids in zip(self.steps[:at_step], self._step_ids[:at_step]):
            new._write(np.asarray(st.positions, dtype=np.int64), ids)
            new.steps.append(st)
            new._step_ids.append(ids)
        new.total_network_calls = new.network_calls  # the calls that produced the prefix
        open_now = set(new.remaining_positions().tolist())
        picks_left = [p for p in new.picks if p in open_now]
        n_rest = len(open_now) - len(picks_left)
        sizes = None
        if "steps" in changes:
            K = changes["steps"]
            new.budget = K
            if K is not None and n_rest:
                new.schedule = new._plan_budget(K, n_rest)
                sizes = new.schedule.sizes
        else:
            new.budget, new.schedule = self.budget, self.schedule
            future = self._future_sizes(at_step)
            if future is not None and n_rest:
                sizes = future[len(picks_left):]
                if sum(sizes) != n_rest:  # the picks changed: the same number of steps for the rest
                    sizes = new._plan_budget(max(1, min(n_rest, len(sizes))), n_rest).sizes
        new.plan = Plan(len(self.text), self.masked_positions, new.order, sizes=sizes, picks=picks_left, seed=new.seed,
                        explicit=new.plan.explicit, first_step=at_step, remaining=new.remaining_positions())
        return new

    # -- results --------------------------------------------------------------------------------
    def current_chars(self) -> list[str | None]:
        """One entry per character of the text: None where still masked."""
        out: list[str | None] = list(self.text)
        off = self.view.token_offset
        for p, i, o in zip(self.masked_positions.tolist(), self._ids[self.masked_positions].tolist(), self._open.tolist()):
            out[p] = None if o else self._symbol(i - off, p)
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


def score(model, text: str, masked, *, order: str = "l2r", explicit: Sequence[int] | None = None,
          picks: Sequence[int] | None = None, steps: int | None = None, seed: int = 0, planner: str = "dp",
          batch_rows: int = 64) -> ScoreResult:
    """Exact bits of the characters of ``text`` at ``masked`` under ``order`` (teacher forcing).

    With a budget K the positions of one step are predicted together (the
    paper's parallel factorisation), so the result is the cost of K-step
    generation. Fixed orders batch up to ``batch_rows`` steps per forward
    pass; every step still counts as one network call (as in the paper).
    ``model`` is a LoadedModel or a DecodingView (one stage of an upscaling model).
    """
    s = DecodeSession(model, text, masked, order=order, steps=steps, explicit=explicit, picks=picks, seed=seed,
                      planner=planner, teacher=True)
    n_unknown = int(s._free[s.masked_positions].sum())
    if s.n_masked == 0:
        return ScoreResult(order, np.zeros(0), s.masked_positions, 0.0, 0.0, 0, 0, 0, None)
    if s.plan.dynamic:
        for _ in s.run():
            pass
        bits = np.zeros(len(text))
        for st in s.steps:
            bits[list(st.positions)] = st.bits
        n_steps = len(s.steps)
    else:
        groups = s.plan.fixed_steps()
        shown = s.input_tokens()
        shown[s.masked_positions] = s._teacher[s.masked_positions] + s.view.token_offset  # a filled position's token
        lp = teacher_forced_logprobs(s.view.net, shown, s._blank, groups, s._teacher, s.D, device=s.view.device,
                                     batch_rows=batch_rows)
        bits = np.where(s._free, 0.0, -lp * LOG2E)  # <unk>: free context
        n_steps = len(groups)
    b = bits[s.masked_positions]
    total = float(b.sum())
    return ScoreResult(order, b, s.masked_positions, total, total / s.n_masked, n_steps, n_steps, n_unknown, s.schedule)


__all__ = ["DecodeSession", "DecodeStep", "StepRequest", "DecodingView", "CharacterView", "SamplingOptions",
           "ScoreResult", "score", "parse_mask", "plan_budget", "order_names", "PLANNERS"]
