"""The long jobs the worker thread runs: generators of plain events (no Qt).

The worker (app.worker) iterates one of these at a time and emits each event
as a signal; tests and the benchmark drive the same generators. The model and
the live decoding session stay here, in ``EngineState``, inside the worker
thread: widgets only ever see the dataclasses below.

Playback control is cooperative: Pause bumps ``FillControl``'s generation
counter, and every job gets its own ``CancelToken`` (so cancelling one job
never touches another, and a later submission cannot undo a Cancel). A fill
checks both between steps, compare between orders, export between frames.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

# Imported here, in the GUI thread, never inside a job: a first import of torch in the worker
# thread while the GUI thread calls into PySide can crash shiboken's import hook.
from ardm_core.budget import document_table, naive_schedule
from ardm_core.checkpoint import ModelFileError, load_model
from ardm_core.device import describe_device, resolve_device, resolve_precision
from ardm_core.paths import upscale_model_dir
from ardm_core.orders import ORDERS
from ardm_core.session import DecodeSession, SamplingOptions, plan_budget, score
from ardm_core.upscale_session import UpscaleSession
from ardm_core.windows import Cancelled

from .frames import render_frames
from .run_record import RunOptions, StepRecord


# -- events ------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: str
    device: str  # what the status bar shows, e.g. "CPU (2 threads)"
    block_size: int
    n_params: int
    loss_by_known: tuple[float, ...] | None  # L_t in bits, for the budget plot
    fingerprint: str


@dataclass(frozen=True)
class ModelFailed:
    path: str
    message: str


@dataclass(frozen=True)
class RunStarted:
    run_id: int
    n_masked: int
    schedule: tuple[int, ...]  # planned characters per step ((): one per step)
    at_step: int = 0  # > 0 for a branch: steps before this one are kept
    n_stages: int = 1  # coarse to fine: stages per position (the first ones write class glyphs)
    legend: tuple[tuple[str, str], ...] = ()  # coarse to fine: (glyph, class name) of the first stage
    model_name: str = ""  # the model computing this run (the upscaling one in coarse-to-fine runs)


@dataclass(frozen=True)
class StepEvent:
    run_id: int
    step: StepRecord


@dataclass(frozen=True)
class RunFinished:
    run_id: int
    steps: int


@dataclass(frozen=True)
class SchedulePlan:
    k: int
    n: int
    budget: tuple[int, ...]  # DP schedule, characters per step
    budget_bits: float
    naive: tuple[int, ...]
    naive_bits: float


@dataclass(frozen=True)
class CompareRow:
    order: str
    total_bits: float
    bits_per_char: float
    network_calls: int
    positions: tuple[int, ...]
    bits: tuple[float, ...]  # per masked position, in ``positions`` order


@dataclass(frozen=True)
class Progress:
    """How far a long job (compare, export) has come: ``done`` of ``total`` units."""

    kind: str
    done: int
    total: int
    label: str = ""


@dataclass(frozen=True)
class ExportDone:
    path: str
    frames: int


# -- shared state ------------------------------------------------------------------
class CancelToken:
    """One job's cancel flag, set from the GUI thread, read by the job between units of work."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


NEVER = CancelToken()  # for callers (tests, benchmarks) that never cancel; nothing may cancel it


class FillControl:
    """Pause, cancel and pacing, shared between the GUI thread and the worker."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0
        self.cancelled = threading.Event()
        self.delay_s = 0.0  # pause between steps (playback speed)

    @property
    def generation(self) -> int:
        return self._generation

    def pause(self) -> None:
        """Ask the running fill to stop after its current step."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def cancel(self) -> None:
        """Closing: every job stops (each job's own token is for cancelling that job alone)."""
        self.cancelled.set()
        self.pause()

    def should_stop(self, generation: int, token: CancelToken = NEVER) -> bool:
        return self.cancelled.is_set() or token.cancelled or generation != self._generation

    def sleep(self, generation: int) -> None:
        """Wait ``delay_s``, waking at once on pause or cancel."""
        if self.delay_s <= 0:
            return
        with self._cond:
            self._cond.wait_for(lambda: self.should_stop(generation), timeout=self.delay_s)


@dataclass(frozen=True)
class StepBase:
    """Recorded steps a rebuilt session starts after: its own steps are numbered and totalled after them."""

    steps: int = 0
    bits: float = 0.0
    calls: int = 0


@dataclass
class EngineState:
    """Lives in the worker thread: the loaded model and the current session."""

    model: Any = None  # ardm_core LoadedModel
    upscale_model: Any = None  # the upscaling model for coarse-to-fine runs, loaded on first use
    session: Any = None  # ardm_core DecodeSession or UpscaleSession
    run_id: int = 0
    options: RunOptions = field(default_factory=RunOptions)
    base: StepBase = field(default_factory=StepBase)  # a session rebuilt from recorded steps starts after these


# -- jobs --------------------------------------------------------------------------
def load_model_job(state: EngineState, path: str, device: str) -> Iterator[Any]:
    try:
        dev = resolve_device(device)
        model = load_model(path, dev)
    except (ModelFileError, ValueError, OSError) as exc:
        yield ModelFailed(path=str(path), message=str(exc))
        return
    state.model, state.session = model, None
    yield model_info(model, describe_device(dev))
    resolve_precision("auto", model.net)  # bf16 or fp32: measured here once (then cached), not in the first fill


def model_info(model: Any, device: str) -> ModelInfo:
    lbk = model.loss_by_known
    return ModelInfo(
        name=model.name, path=str(model.path or ""), device=device, block_size=int(model.config.block_size),
        n_params=int(sum(p.numel() for p in model.net.parameters())),
        loss_by_known=None if lbk is None else tuple(float(x) for x in lbk), fingerprint=model.fingerprint,
    )


def start_fill_job(state: EngineState, run_id: int, text: str, masked: list[int], options: RunOptions) -> Iterator[Any]:
    """Open a new decoding session (no model call yet)."""
    if state.model is None:
        raise RuntimeError("no model is loaded; open a model folder first (File > Open model...)")
    sampling = SamplingOptions(temperature=options.temperature, top_p=options.top_p)
    order, picks, steps = options.order, None, options.steps
    if order == "explicit":  # hand-picked positions first, one per step, then the rest under rest_order
        in_mask = set(masked)
        order, picks, steps = rest_order(options), [p for p in options.explicit if p in in_mask], None
    if options.upscale or getattr(state.model, "is_upscale", False):
        model = upscale_model(state)
        S = model.stages.S
        if steps is not None:
            steps = None if steps >= len(masked) else max(S, steps)  # K is the total over the stages
        state.session = UpscaleSession(model, text, masked, order=order, steps=steps, picks=picks,
                                       sampling=sampling, seed=options.seed, precision="auto")
        legend = tuple((c.glyph, c.name) for c in model.stages.classes[0])
        name = model.name
    else:
        state.session = DecodeSession(state.model, text, masked, order=order, steps=steps, picks=picks,
                                      sampling=sampling, seed=options.seed, precision="auto")
        S, legend, name = 1, (), state.model.name
    state.run_id, state.options, state.base = run_id, options, StepBase()
    sched = getattr(state.session, "schedule", None)
    yield RunStarted(run_id=run_id, n_masked=int(state.session.n_masked),
                     schedule=tuple(int(s) for s in sched.sizes) if sched is not None else (), n_stages=S, legend=legend,
                     model_name=name)


def rebuild_job(state: EngineState, run_id: int, text: str, masked: list[int], prefix: tuple[StepRecord, ...],
                options: RunOptions) -> Iterator[Any]:
    """A session that goes on from the first ``len(prefix)`` recorded steps of a run the worker does not hold.

    A run read from a file (or computed with another model) has no live session
    to branch. The model sees exactly what a branch would see: the text with the
    prefix's characters written in and the other masked positions still masked;
    so a new session over those positions, whose steps are numbered and totalled
    after the prefix, continues the run.
    """
    if prefix and (options.upscale or any(s.stage >= 0 for s in prefix)):
        raise RuntimeError("a coarse-to-fine run can only be resampled part way in the session that computed it; "
                           "go back to step 0 to resample it whole")
    chars = list(text)
    for s in prefix:
        for p, c in zip(s.positions, s.chars):
            chars[p] = c
    done = {p for s in prefix for p in s.positions}
    remaining = [p for p in masked if p not in done]
    if options.steps is not None and remaining:
        options = replace(options, steps=min(options.steps, len(remaining)))
    for ev in start_fill_job(state, run_id, "".join(chars), remaining, options):
        if prefix and isinstance(ev, RunStarted):
            ev = replace(ev, at_step=len(prefix), n_masked=len(masked),
                         schedule=tuple(len(s.positions) for s in prefix) + ev.schedule if ev.schedule else ())
        yield ev
    if prefix:
        state.base = StepBase(len(prefix), prefix[-1].cumulative_bits, prefix[-1].network_calls)


def _record(state: EngineState, step: Any) -> StepRecord:
    """A session's step as the run records it (after the recorded steps a rebuilt session started from)."""
    r = StepRecord.from_step(step)
    b = state.base
    if not b.steps:
        return r
    return replace(r, index=r.index + b.steps, cumulative_bits=r.cumulative_bits + b.bits,
                   network_calls=r.network_calls + b.calls)


def upscale_model(state: EngineState) -> Any:
    """The model for coarse-to-fine runs: the loaded one if it is an upscaling model, else the shipped one."""
    if getattr(state.model, "is_upscale", False):
        return state.model
    if state.upscale_model is None or state.upscale_model.device != state.model.device:
        path = upscale_model_dir()
        if not path.exists():
            raise RuntimeError(f"coarse to fine needs an upscaling model, and none is installed at {path}; "
                               "untick Coarse to fine, or train one with `ardm train --upscale default`")
        state.upscale_model = load_model(path, state.model.device)
    return state.upscale_model


def advance_job(state: EngineState, control: FillControl, generation: int, n: int | None,
                token: CancelToken = NEVER) -> Iterator[Any]:
    """Compute up to ``n`` steps (all when None); stops within one step on pause or cancel."""
    session = state.session
    if session is None:
        return
    done = 0
    while not session.done and (n is None or done < n):
        if control.should_stop(generation, token):
            return
        try:
            step = step_session(session, lambda: control.should_stop(generation, token))
        except Cancelled:
            return  # stopped between windows: the session is as before the step
        if step is None:
            break
        yield StepEvent(run_id=state.run_id, step=_record(state, step))
        done += 1
        if not session.done:
            control.sleep(generation)
    if session.done:
        yield RunFinished(run_id=state.run_id, steps=state.base.steps + len(session.steps))


def step_session(session: Any, cancel) -> Any:
    """One step of ``session``; a plain session's step asks ``cancel`` between its batches of windows.

    A step over a long document (thousands of windows) stops part way when the
    user pauses, cancels or quits; ``Cancelled`` is raised and nothing is
    written. Other sessions (coarse to fine) stop between steps.
    """
    if not isinstance(session, DecodeSession):
        return session.step()
    return session.step(cancel=cancel)


def branch_job(state: EngineState, run_id: int, at_step: int, options: RunOptions) -> Iterator[Any]:
    """Keep the first ``at_step`` steps and resample the rest with new options (a new seed)."""
    if state.session is None:
        raise RuntimeError("there is no run to resample; press Run first")
    sampling = SamplingOptions(temperature=options.temperature, top_p=options.top_p)
    changes: dict[str, Any] = {"seed": options.seed, "sampling": sampling}
    if options.order == "explicit":
        changes["order"] = rest_order(options)  # the session keeps its picks
    else:
        changes.update(order=options.order, picks=())
    if at_step < state.base.steps:
        raise RuntimeError("the worker's session starts after this step; rebuild it from the recorded steps")
    state.session = state.session.branch(at_step - state.base.steps, **changes)
    state.run_id, state.options = run_id, options
    sched = getattr(state.session, "schedule", None)
    stages = getattr(state.session.model, "stages", None)
    yield RunStarted(run_id=run_id, n_masked=int(state.session.n_masked),
                     schedule=tuple(int(s) for s in sched.sizes) if sched is not None else (), at_step=at_step,
                     n_stages=stages.S if stages is not None else 1,
                     legend=tuple((c.glyph, c.name) for c in stages.classes[0]) if stages is not None else ())


def rest_order(options: RunOptions) -> str:
    """The order of the positions not picked by hand (left to right unless rest_order names another)."""
    o = options.rest_order
    return o if o in ORDERS and o != "explicit" else "l2r"


def plan_job(state: EngineState, k: int, n_text: int, n: int) -> Iterator[Any]:
    """The paper's DP schedule for budget K over the n masked of n_text characters, and the naive split.

    Planned exactly as the session plans it: the window's L_t table resampled
    to the document, starting from the n_text - n characters already known.
    """
    model = state.model
    if model is None or model.loss_by_known is None or n <= 0 or k <= 0 or n_text < n:
        return
    k = min(k, n)
    b = plan_budget(model.loss_by_known, k, n, n_text)  # the session's own plan (cached: computed once)
    nv = naive_schedule(document_table(model.loss_by_known, n_text), k, start=n_text - n, n=n)
    yield SchedulePlan(k=k, n=n, budget=tuple(int(s) for s in b.sizes), budget_bits=float(b.expected_bits),
                       naive=tuple(int(s) for s in nv.sizes), naive_bits=float(nv.expected_bits))


def compare_job(state: EngineState, control: FillControl, text: str, masked: list[int], orders: list[str],
                steps: int | None, seed: int, token: CancelToken = NEVER) -> Iterator[Any]:
    """Bits of the original text behind the masks under each order (teacher forcing)."""
    if state.model is None:
        raise RuntimeError("no model is loaded")
    for i, order in enumerate(orders):
        if control.cancelled.is_set() or token.cancelled:
            return
        yield Progress("compare", i, len(orders), f"Scoring under {order} ({i + 1} of {len(orders)})")
        r = score(state.model, text, masked, order=order, steps=steps, seed=seed)
        yield CompareRow(order=order, total_bits=float(r.total_bits), bits_per_char=float(r.bits_per_char),
                         network_calls=int(r.network_calls), positions=tuple(int(p) for p in r.positions),
                         bits=tuple(float(b) for b in r.bits))


def export_frames_job(control: FillControl, run: Any, n_steps: int, path: str, fmt: str,
                      token: CancelToken = NEVER, explained: Any = None) -> Iterator[Any]:
    """Render frames of ``run`` (the caller hands over a snapshot: nothing else may change it meanwhile);
    ``explained``: the frames.FrameHeat overlay that is on, if any."""
    count, total = 0, n_steps + 1
    every = max(1, total // 100)
    for count in render_frames(run, n_steps, Path(path), fmt, explained):
        if control.cancelled.is_set() or token.cancelled:
            return
        if count % every == 0:
            yield Progress("export", count, total, f"Rendering frame {count} of {total}")
    yield ExportDone(path=path, frames=count)
