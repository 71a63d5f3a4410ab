"""Playback of one fill: records the worker's steps and shows any prefix of them in the document.

The worker computes steps (app.jobs.advance_job); this object keeps the
``RunRecord``, and a "view" position: how many recorded steps the document
shows. Applying or taking back a step edits only that step's characters
(one undo level for the whole run, see MaskedDocument.begin_fill) and
re-highlights only the blocks they sit in, so a step costs the same in a
100,000-character document as in a short one. Steps that arrive faster than
the screen refreshes are applied together on the next timer tick.

A run recorded earlier (a run file) replays the same way without the model.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from PySide6.QtCore import QObject, QTimer, Signal

from ardm_core.orders import ORDERS
from ardm_core.windows import plan_windows

from .background import beside
from .highlighter import RunHighlighter
from .jobs import RunFinished, RunStarted, StepEvent
from .masked_document import MASK_GLYPH, MaskedDocument, PosMap, RawState, build_state
from .run_record import RunOptions, RunRecord, StepRecord
from .undo import UndoMirror
from .worker import EngineClient, JobFinished


FILL_JOBS = ("start", "advance", "branch", "rebuild")  # the worker jobs that compute a fill's steps
LARGE_RUN_WINDOWS = 5_000  # window passes above which Run shows the estimate and asks first
STAGED_START_CHARS = 200_000  # a run on a longer document builds its state in a thread (prepare())


@dataclass(frozen=True)
class RunCost:
    """What a run will ask of the network: calls (steps) and window passes (calls x windows per call)."""

    calls: int
    windows_per_call: int  # at the first step, at most
    window_passes: int  # in all, at most


def run_cost(n_text: int, masked, order: str, k: int | None, block_size: int) -> RunCost:
    """An upper bound of a run's cost, computed without the model.

    A dynamic order (confidence, min-entropy) reads every still-masked
    position at every step, so each step needs the windows covering all the
    remaining masks (ardm_core.windows.plan_windows); a static order's step
    needs at most one window per character it fills.
    """
    masked = np.sort(np.asarray(masked, dtype=np.int64))  # free for DocState.masked_positions(): sorted already
    n = len(masked)
    if n == 0:
        return RunCost(0, 0, 0)
    calls = min(k, n) if k else n
    w_all = len(plan_windows(masked, n_text, block_size)[0])
    fn = ORDERS.get(order)
    if fn is not None and getattr(fn, "dynamic", False):
        return RunCost(calls, w_all, calls * w_all)
    per = min(w_all, -(-n // calls))
    return RunCost(calls, per, min(calls * per, n))


class RunController(QObject):
    changed = Signal()  # view, recorded steps or running state changed
    message = Signal(str)  # something for the status bar
    run_done = Signal()  # the view reached the last step of a complete run
    _built = Signal(object)  # (RawState, (DocState, PosMap) or an exception) from prepare()'s thread

    FLUSH_MS = 16  # apply queued steps at most once per frame

    def __init__(self, client: EngineClient, mdoc: MaskedDocument, highlighter: RunHighlighter, mirror: UndoMirror,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self.mdoc = mdoc
        self.hl = highlighter
        self.mirror = mirror
        self.run: RunRecord | None = None
        self.view = 0  # recorded steps shown in the document
        self.computing = False  # the worker is computing steps for us
        self.replaying = False  # a timer is stepping through recorded steps
        self._preparing: tuple[RawState, Callable[[], None]] | None = None  # see prepare()
        self.live = False  # the worker holds a session for this run (False for a run read from a file)
        self._base = 0  # the first step the worker's session computed itself (> 0: rebuilt from recorded steps)
        self._ids = itertools.count(1)
        self.run_id = 0
        self._pm = PosMap("")
        # coarse-to-fine runs: (stage, position) -> (step index, index within the step) of the class
        # glyph that stage wrote, so stepping back over a later stage restores it without a search
        self._sketch: dict[tuple[int, int], tuple[int, int]] = {}
        self._pending: list[StepRecord] = []
        self._applying = False
        self._follow = True
        self._flush = QTimer(self, singleShot=True, interval=self.FLUSH_MS)
        self._flush.timeout.connect(self._apply_pending)
        self._replay = QTimer(self)
        self._replay.timeout.connect(self._replay_tick)
        client.event.connect(self._on_event)
        self._built.connect(self._prepared)
        client.finished.connect(self._on_finished)
        mdoc.doc.contentsChange.connect(self._on_contents_change)

    # -- state --------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.computing or self.replaying or self._preparing is not None

    @property
    def preparing(self) -> bool:
        """A run is being set up (prepare()): the document is read, its state not built yet."""
        return self._preparing is not None

    @property
    def recorded(self) -> int:
        return len(self.run.steps) if self.run else 0

    @property
    def attached(self) -> bool:
        return self.run is not None

    def current_step(self) -> StepRecord | None:
        return self.run.steps[self.view - 1] if self.run and self.view else None

    def info_at(self, q: int) -> tuple[StepRecord, int] | None:
        """(step, index within it) that filled the character at Qt position q, if shown."""
        if not self.run or q >= len(self.hl.step_of):
            return None
        s = int(self.hl.step_of[q])
        if s < 0 or s >= self.view:
            return None
        step = self.run.steps[s]
        p = self._pm.to_py(q)
        try:
            return step, step.positions.index(p)
        except ValueError:
            return None

    # -- starting -----------------------------------------------------------------------
    def prepare(self, then: Callable[[], None]) -> bool:
        """Have the document's state ready, then call ``then`` (which starts the run); False: ``then`` ran now.

        On a long document without a cached state, building the run's strings
        and position lists (about 40 ms for 2 MB with 300,000 masks, more when
        the machine is busy) would hold the window on top of reading the text
        and the start itself. Only the read (``MaskedDocument.capture``) is
        done here; the build runs in a thread and the run starts from the event
        loop once it is back. Meanwhile ``running`` is True (Run is disabled,
        the editor read-only), and Pause, Reset, a Save/Discard/Cancel question
        or any change of the text drops the start.
        """
        if self.mdoc.cached_state() is not None or self.mdoc.length() < STAGED_START_CHARS:
            then()
            return False
        raw = self.mdoc.capture()
        self._preparing = (raw, then)
        self.changed.emit()
        beside("run-state", lambda: build_state(raw), self._built, raw)  # an error: said, the run not started
        return True

    def _prepared(self, out) -> None:
        raw, built = out
        if self._preparing is None or self._preparing[0] is not raw:
            return  # dropped meanwhile (Pause, Reset, another document)
        then = self._preparing[1]
        if isinstance(built, Exception):
            self._drop_prepare(f"The run could not be set up: {built}")
            return
        if not self.mdoc.adopt(raw, *built):
            self._drop_prepare("The text changed while the run was being set up: press Run again")
            return
        self._preparing = None
        then()
        self.changed.emit()

    def _drop_prepare(self, why: str | None = None) -> None:
        if self._preparing is not None:
            self._preparing = None
            if why:
                self.message.emit(why)
            self.changed.emit()

    def start(self, options: RunOptions, n_steps: int | None = None, only: tuple[int, int] | None = None) -> bool:
        """A new run over the document's current masks; computes n_steps (None: all) steps.

        ``only`` = (start, end), Python indices: fill just the masks in that span
        (the masks on screen, or in the selection); the others stay masked and
        the model sees them as unknown characters, never their originals.
        """
        st = self.mdoc.state()
        masked, text = st.masked, st.source
        if only is not None:
            a, b = only
            masked = tuple(p for p in st.masked if a <= p < b)
            keep = set(masked)
            chars = list(st.source)
            for p in st.masked:
                if p not in keep:
                    chars[p] = MASK_GLYPH
            text = "".join(chars)
        if not masked:
            self.message.emit("Nothing to fill: mask some characters first (select text, then Ctrl+M)")
            return False
        self.detach()
        self.run_id = next(self._ids)
        self.run = RunRecord(text=text, masked=masked, options=options)
        self._begin_view(st.display)
        self.live = True
        self._base = 0
        self.computing = True
        self.client.start_fill(self.run_id, text, list(masked), options)
        self.client.advance(n_steps)
        self.changed.emit()
        return True

    def load(self, run: RunRecord) -> None:
        """Show a recorded run (document already holds its text and masks); replayable without the model."""
        self.detach()
        self.run_id = next(self._ids)
        self.run = run
        self.live = False
        self._begin_view(self.mdoc.state().display)
        self.changed.emit()

    def _begin_view(self, display: str) -> None:
        self._pm = self.mdoc.posmap() if display == self.mdoc.state().display else PosMap(display)
        self._sketch.clear()
        self.view = 0
        self._pending.clear()
        self._follow = True
        self.hl.reset(self.mdoc.doc.characterCount())
        self.hl.n_steps = max(1, len(self.run.schedule) if self.run and self.run.schedule else (self.run.n_masked if self.run else 1))
        label = f"Fill ({self.run.options.order})" if self.run else "Fill"
        self.mirror.label(label)
        self.mdoc.begin_fill()

    def detach(self) -> None:
        """Forget the run's view (the document keeps what it shows)."""
        self._drop_prepare()
        if self.computing:
            self.client.pause()
        self._replay.stop()
        self.replaying = self.computing = False
        self.mdoc.end_fill()
        self.mirror.suppress = False
        self.run = None
        self.live = False
        self.view = 0
        self._pending.clear()
        self.hl.clear()
        self.changed.emit()

    # -- worker events --------------------------------------------------------------------
    def _on_event(self, ev) -> None:
        if isinstance(ev, RunStarted) and ev.run_id == self.run_id and self.run is not None:
            self.run.schedule = ev.schedule
            self.run.n_stages = ev.n_stages
            if ev.n_stages > 1 and ev.at_step == 0:
                self.message.emit("Coarse to fine: classes first (" + ", ".join(f"{g} {n}" for g, n in ev.legend)
                                  + "), then the characters")
            if ev.schedule:
                self.hl.n_steps = max(1, len(ev.schedule))
        elif isinstance(ev, StepEvent) and ev.run_id == self.run_id and self.run is not None:
            self._pending.append(ev.step)
            if not self._flush.isActive():
                self._flush.start()
        elif isinstance(ev, RunFinished) and ev.run_id == self.run_id:
            self._apply_pending()
            self.computing = False
            self.changed.emit()

    def _on_finished(self, done: JobFinished) -> None:
        if done.kind in FILL_JOBS and not any(k in FILL_JOBS for k in self.client.pending_kinds()):
            self._apply_pending()
            self.computing = False
            self.changed.emit()

    def _apply_pending(self) -> None:
        if not self._pending or self.run is None:
            self._pending.clear()
            return
        steps, self._pending = self._pending, []
        touched: list[int] = []
        for s in steps:
            if s.index != len(self.run.steps):
                continue  # a stale step from before a branch
            self.run.steps.append(s)
            if self._follow and self.view == len(self.run.steps) - 1:
                touched += self._apply(s, recolour=False)
        self.hl.rehighlight_positions(touched)
        self.changed.emit()
        if self.run.done and self.view == self.recorded:
            self.run_done.emit()

    # -- moving the view ------------------------------------------------------------------
    def _apply(self, s: StepRecord, recolour: bool = True) -> list[int]:
        """Show one more step; returns the Qt positions whose colour changed."""
        prev = self.current_step()
        q = [self._pm.to_qt(p) for p in s.positions]
        self._edit(lambda: self.mdoc.write_fill(q, s.chars, [self.run.text[p] for p in s.positions]))
        self.hl.set_step(q, s.index, s.probs, s.bits)
        if s.stage >= 0 and not self.run.is_final(s):
            self._sketch.update(((s.stage, p), (s.index, k)) for k, p in enumerate(s.positions))
        self.view += 1
        self.hl.current_step = s.index
        touched = q + ([self._pm.to_qt(p) for p in prev.positions] if prev else [])
        if recolour:
            self.hl.rehighlight_positions(touched)
        return touched

    def _unapply(self, s: StepRecord, recolour: bool = True) -> list[int]:
        """Take the last shown step back; returns the Qt positions whose colour changed.

        In a coarse-to-fine run a later stage's step goes back to the class glyphs
        the stage before wrote there, with that step's colours.
        """
        q = [self._pm.to_qt(p) for p in s.positions]
        if s.stage > 0:
            glyphs = []
            for p, qq in zip(s.positions, q):
                idx, k = self._sketch[(s.stage - 1, p)]
                prev_step = self.run.steps[idx]
                self.hl.set_step([qq], idx, (prev_step.probs[k],), (prev_step.bits[k],))
                glyphs.append(prev_step.chars[k])
            self._edit(lambda: self.mdoc.write_fill(q, "".join(glyphs), [self.run.text[p] for p in s.positions]))
        else:
            self.hl.set_step(q, -1, (), ())
            self._edit(lambda: self.mdoc.unwrite_fill(q, [self.run.text[p] for p in s.positions]))
        self.view -= 1
        prev = self.current_step()
        self.hl.current_step = prev.index if prev else -1
        touched = q + ([self._pm.to_qt(p) for p in prev.positions] if prev else [])
        if recolour:
            self.hl.rehighlight_positions(touched)
        return touched

    def _edit(self, fn) -> None:
        self._applying = True
        self.hl.suspended = True  # the caller re-highlights the touched blocks once
        self.mirror.suppress = self.mdoc.fill_started  # only the run's first edit adds an undo level
        try:
            fn()
        finally:
            self.hl.suspended = False
            self.mirror.suppress = False
            self._applying = False

    def seek(self, n: int) -> None:
        if self.run is None:
            return
        n = max(0, min(n, self.recorded))
        touched: list[int] = []
        while self.view > n:
            touched += self._unapply(self.run.steps[self.view - 1], recolour=False)
        while self.view < n:
            touched += self._apply(self.run.steps[self.view], recolour=False)
        self.hl.rehighlight_positions(touched)  # each touched block once, however far the jump
        self._follow = self.view == self.recorded
        self.changed.emit()
        if self.run.done and self.view == self.recorded:
            self.run_done.emit()

    def step(self) -> None:
        if self.run is None or self.running:
            return
        if self.view < self.recorded:
            self.seek(self.view + 1)
        elif self.live and not self.run.done:
            self._follow = True
            self.computing = True
            self.client.advance(1)
            self.changed.emit()

    def step_back(self) -> None:
        if self.run is not None and not self.running and self.view > 0:
            self.seek(self.view - 1)

    def play(self, delay_s: float) -> None:
        """Run: replay recorded steps at the playback speed, then let the worker compute the rest."""
        if self.run is None or self.running:
            return
        if self.view < self.recorded:
            self.replaying = True
            self._replay.start(max(1, round(delay_s * 1000)))
        elif self.live and not self.run.done:
            self._follow = True
            self.computing = True
            self.client.advance(None)
        self.changed.emit()

    def set_delay(self, delay_s: float) -> None:
        self.client.set_delay(delay_s)
        if self._replay.isActive():
            self._replay.setInterval(max(1, round(delay_s * 1000)))

    def _replay_tick(self) -> None:
        if self.run is None or self.view >= self.recorded:
            self._replay.stop()
            self.replaying = False
            if self.run is not None and self.live and not self.run.done:
                self.play(0)
            self.changed.emit()
            return
        self.seek(self.view + 1)

    def pause(self) -> None:
        self._drop_prepare()
        self._replay.stop()
        self.replaying = False
        if self.computing:
            self.client.pause()  # the worker stops after its current step; finished() clears `computing`
        self.changed.emit()

    def cancel(self) -> None:
        """Stop at once and keep what was filled (Reset also puts the masks back)."""
        self._drop_prepare()
        self._replay.stop()
        self.replaying = False
        if self.computing:
            self.client.cancel(FILL_JOBS)
        self.live = False
        self.changed.emit()

    def reset(self) -> None:
        """Stop and show the document as it was before the run (every mask back)."""
        self.cancel()
        self._pending.clear()
        if self.run is not None:
            self.seek(0)
        self._follow = True
        self.changed.emit()

    def resample(self, options: RunOptions, n_steps: int | None = None) -> bool:
        """Keep the first `view` steps, compute the rest (n_steps of them; None: all) with these options.

        A run the worker holds is branched; any other (read from a file,
        recovered, or computed before a model change) gets a session rebuilt
        from its recorded steps, so it can be continued and resampled the same way.
        """
        if self.run is None or self.running:
            return False
        at = self.view
        self.run.truncate(at)
        self.run.options = options
        self.run_id = next(self._ids)
        self._follow = True
        self.computing = True
        if self.live and at >= self._base:
            self.client.branch(self.run_id, at, options)
        else:
            self.client.rebuild(self.run_id, self.run.text, self.run.masked, tuple(self.run.steps[:at]), options)
            self.live, self._base = True, at
        self.client.advance(n_steps)
        self.changed.emit()
        return True

    # -- the user edits the document ------------------------------------------------------
    def _on_contents_change(self, _pos: int, removed: int, added: int) -> None:
        if self._applying or (removed == 0 and added == 0):
            return
        if self._preparing is not None:  # the run was being set up for the text as it was
            self._drop_prepare("The text changed while the run was being set up: press Run again")
        if self.run is None:
            return
        if self.running:
            self.cancel()
        self.detach()  # positions no longer match the run
