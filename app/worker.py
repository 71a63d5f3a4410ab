"""One worker object in one QThread runs every model call (napari/superqt style).

``EngineClient`` lives in the GUI thread and is the only way widgets reach the
model: each method queues a job (a generator from app.jobs) into the worker
thread and returns at once. The worker iterates the generator, emitting each
yielded dataclass through ``event``; an exception becomes ``errored`` (the
thread lives on and takes the next job); ``finished`` says a job ended and
whether it stopped early. Pause and Cancel go through ``FillControl`` (a lock
and an Event, no Qt), so they take effect within one step even while the
worker's event loop is busy.
"""

from __future__ import annotations

import itertools
import traceback
import weakref
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator

from PySide6.QtCore import QObject, QThread, Signal, Slot

from . import jobs
from .run_record import RunOptions


_THREADS: "weakref.WeakSet[QThread]" = weakref.WeakSet()  # every worker thread, for leak checks


def running_worker_threads() -> list[QThread]:
    """Worker threads still running (tests fail if one outlives its window)."""
    return [t for t in list(_THREADS) if t.isRunning()]


@dataclass(frozen=True)
class Job:
    id: int
    kind: str  # "load", "start", "advance", "branch", "rebuild", "plan", "compare", "export"
    make: Callable[[jobs.CancelToken], Iterator[Any]]
    token: jobs.CancelToken


@dataclass(frozen=True)
class JobFinished:
    id: int
    kind: str
    stopped: bool  # ended early by pause or cancel


@dataclass(frozen=True)
class JobError:
    id: int
    kind: str
    message: str
    details: str  # the traceback, for the "details" part of a message


def frozen_copy(run: Any, n_steps: int) -> Any:
    """A copy of a RunRecord's first n_steps steps that nothing in the GUI thread holds (steps are frozen)."""
    return replace(run, steps=list(run.steps[:n_steps]), options=replace(run.options))


class Worker(QObject):
    """Runs jobs one at a time in its own thread; never touches widgets."""

    event = Signal(object)
    finished = Signal(object)  # JobFinished
    errored = Signal(object)  # JobError

    def __init__(self, control: jobs.FillControl) -> None:
        super().__init__()
        self.control = control
        self.state = jobs.EngineState()

    @Slot(object)
    def run_job(self, job: Job) -> None:
        generation = self.control.generation
        stopped = job.token.cancelled
        try:
            if stopped:  # cancelled while it waited in the queue
                return
            for ev in job.make(job.token):
                self.event.emit(ev)
            stopped = self.control.should_stop(generation, job.token)
        except Exception as exc:  # noqa: BLE001 - every failure must reach the window
            self.errored.emit(JobError(job.id, job.kind, f"{type(exc).__name__}: {exc}", traceback.format_exc()))
        finally:
            self.finished.emit(JobFinished(job.id, job.kind, stopped))


class EngineClient(QObject):
    """The GUI thread's handle on the worker thread."""

    event = Signal(object)
    finished = Signal(object)
    errored = Signal(object)
    _submit = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.control = jobs.FillControl()
        self._ids = itertools.count(1)
        self._thread = QThread()
        self._thread.setObjectName("ardm-worker")
        self._worker = Worker(self.control)
        self._worker.moveToThread(self._thread)
        self._submit.connect(self._worker.run_job)
        self._worker.event.connect(self.event)
        self._worker.finished.connect(self._on_finished)
        self._worker.errored.connect(self.errored)
        self._pending: dict[int, str] = {}
        self._tokens: dict[int, jobs.CancelToken] = {}
        _THREADS.add(self._thread)
        self._thread.start()

    # -- bookkeeping ----------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def pending_kinds(self) -> list[str]:
        return list(self._pending.values())

    def _queue(self, kind: str, make: Callable[[jobs.CancelToken], Iterator[Any]]) -> int:
        """Queue a job with its own cancel token (``cancel`` sets the tokens of the kinds it names)."""
        if not self._thread.isRunning():
            raise RuntimeError("the worker thread has stopped")
        job = Job(next(self._ids), kind, make, jobs.CancelToken())
        self._pending[job.id] = kind
        self._tokens[job.id] = job.token
        self._submit.emit(job)
        return job.id

    def _on_finished(self, done: JobFinished) -> None:
        self._pending.pop(done.id, None)
        self._tokens.pop(done.id, None)
        self.finished.emit(done)

    # -- jobs -------------------------------------------------------------------------
    def load_model(self, path: str, device: str = "auto") -> int:
        st = self._worker.state
        return self._queue("load", lambda _t: jobs.load_model_job(st, path, device))

    def start_fill(self, run_id: int, text: str, masked: list[int], options: RunOptions) -> int:
        st = self._worker.state
        return self._queue("start", lambda _t: jobs.start_fill_job(st, run_id, text, list(masked), options))

    def advance(self, n: int | None = None) -> int:
        """Compute ``n`` more steps (None: until done or paused)."""
        st, ctl = self._worker.state, self.control
        gen = ctl.generation  # a pause pressed after this call stops this job

        return self._queue("advance", lambda t: jobs.advance_job(st, ctl, gen, n, t))

    def branch(self, run_id: int, at_step: int, options: RunOptions) -> int:
        st = self._worker.state
        return self._queue("branch", lambda _t: jobs.branch_job(st, run_id, at_step, options))

    def rebuild(self, run_id: int, text: str, masked, prefix: tuple, options: RunOptions) -> int:
        """A session going on from a recorded run's first ``len(prefix)`` steps (jobs.rebuild_job)."""
        st = self._worker.state
        masked, prefix = list(masked), tuple(prefix)
        return self._queue("rebuild", lambda _t: jobs.rebuild_job(st, run_id, text, masked, prefix, options))

    def plan(self, k: int, n_text: int, n: int) -> int:
        st = self._worker.state
        return self._queue("plan", lambda _t: jobs.plan_job(st, k, n_text, n))

    def compare(self, text: str, masked: list[int], orders: list[str], steps: int | None, seed: int) -> int:
        st, ctl = self._worker.state, self.control
        return self._queue("compare", lambda t: jobs.compare_job(st, ctl, text, list(masked), orders, steps, seed, t))

    def export_frames(self, run: Any, n_steps: int, path: str, fmt: str, explained: Any = None) -> int:
        """Render frames of a snapshot of ``run``'s first n_steps steps (the live record may change meanwhile);
        ``explained``: a frozen frames.FrameHeat to draw, or None."""
        run = frozen_copy(run, n_steps)
        ctl = self.control
        return self._queue("export", lambda t: jobs.export_frames_job(ctl, run, n_steps, path, fmt, t, explained))

    def submit(self, kind: str, make: Callable[[Any], Iterator[Any]]) -> int:
        """Queue a job of another module: ``make(state)`` returns its generator, run in the worker
        thread with the worker's EngineState (the loaded model)."""
        st = self._worker.state
        return self._queue(kind, lambda *_: make(st))

    def pause(self) -> None:
        self.control.pause()

    def cancel(self, kinds: tuple[str, ...] | None = None) -> int:
        """Cancel the queued and running jobs of these kinds (None: every job); returns how many.

        Each job has its own token, so a job queued after this call is not affected.
        """
        n = 0
        for job_id, kind in list(self._pending.items()):
            if kinds is None or kind in kinds:
                self._tokens[job_id].cancel()
                n += 1
        return n

    def set_delay(self, seconds: float) -> None:
        self.control.delay_s = max(0.0, float(seconds))

    def shutdown(self, timeout_ms: int | None = None) -> bool:
        """Stop the running job within one step, end the thread and wait for it.

        A network call cannot be interrupted, so by default this waits for the
        current step however long it takes (the window hides first): a QThread
        destroyed while running would take the process down.
        """
        self.control.cancel()
        self.cancel()
        self._thread.quit()
        ok = self._thread.wait() if timeout_ms is None else self._thread.wait(timeout_ms)
        if ok:
            self._pending.clear()
        return bool(ok)
