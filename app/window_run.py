"""The main window's run side: Run, Step, Pause, Step back, Reset, Resample, budget planning, compare.

A mixin of ``MainWindow``; it turns button presses into RunController and
EngineClient calls and never waits for the worker.
"""

from __future__ import annotations

import bisect
from dataclasses import replace

import numpy as np

from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QMessageBox

from .order_panel import EXPLICIT
from .run_controller import LARGE_RUN_WINDOWS, RunCost, run_cost


class WindowRun:
    def run_options(self, n_masked: int | None = None):
        """The Order panel's options, K clamped to n_masked (default: the masks the document has now)."""
        picks = self.editor.picks
        explicit = tuple(self.mdoc.posmap().to_py(q) for q in picks) if picks else ()  # no picks: no text read
        options = self.order_panel.options(explicit if self.order_panel.order() == EXPLICIT else ())
        return replace(options, steps=self._budget(options.steps, n_masked))

    def _budget(self, k: int | None, n: int | None = None) -> int | None:
        """K for the masks the document has now: a fill shown part way leaves fewer than the slider's range."""
        n = self.mdoc.mask_count() if n is None else n
        return min(k, n) if k and n else k

    def _can_compute(self) -> bool:
        if self.model_info is None:
            self.notify_status("No model is loaded: open a model folder (File > Open model...)")
            return False
        return True

    def panel_matches(self, run) -> bool:
        """The Order panel asks for the run on screen: same order, K, sampling and seed (and picks, if any)."""
        want, have = self.order_panel.options(), run.options
        n = run.n_masked

        def k(steps):  # K as it plans this run's masks (K >= masks is one character per step)
            return None if steps is None or steps >= n else steps

        same = (want.order == have.order and want.seed == have.seed and want.upscale == have.upscale
                and round(want.temperature, 6) == round(have.temperature, 6)
                and round(want.top_p, 6) == round(have.top_p, 6))
        if want.order == EXPLICIT:
            pm = self.mdoc.posmap()
            picks = tuple(pm.to_py(q) for q in self.editor.picks)
            return same and want.rest_order == have.rest_order and (not picks or picks == have.explicit)
        return same and k(want.steps) == k(have.steps)

    def show_run_options(self, o) -> None:
        """Set the Order panel to a run's options (a run opened or recovered), so Run replays it."""
        self.order_panel.set_options(o)

    def run_fill(self) -> None:
        self._go(None)

    def step_fill(self) -> None:
        self._go(1)

    def _go(self, n_steps: int | None) -> None:
        """Run (n_steps None) or Step: go on with the run on screen if the panel asks for it, else a new run."""
        r = self.runner
        r.set_delay(self.playback.delay_seconds())
        if r.running:
            return
        if self.masking is not None:
            self.notify_status("Still masking: Run when it is done")
            return
        if r.attached and self.panel_matches(r.run):
            if r.view < r.recorded or (r.live and not r.run.done):
                r.step() if n_steps == 1 else r.play(self.playback.delay_seconds())
            elif not r.run.done:
                if self._can_compute():
                    r.resample(r.run.options, n_steps)  # the worker does not hold it: rebuild, then go on
            elif n_steps is None:  # complete and shown to the end: play it again from the start
                r.seek(0)
                r.play(self.playback.delay_seconds())
            else:
                self.notify_status("The fill is complete: Step back, Reset, or change the order to run anew")
        elif self._can_compute():
            only = self._ask_large_run()
            if only == "cancel":
                return
            if r.attached and r.view:
                r.seek(0)  # a new run fills the same masks as the one on screen
            r.prepare(lambda: self._start(n_steps, only))
        self._update_controls()

    def _start(self, n_steps: int | None, only: tuple[int, int] | None) -> None:
        """A new run (RunController.prepare calls it once the document's state is ready)."""
        self.autosave_before_long_edit()  # the timers skip the snapshot while it runs (the state is cached: cheap)
        st = self.mdoc.state()
        n = None if only is None else bisect.bisect_left(st.masked, only[1]) - bisect.bisect_left(st.masked, only[0])
        options = self.run_options(n)
        if self.runner.start(options, n_steps=n_steps, only=only):
            self._set_picks([])  # the badges give way to the run's colours

    def visible_span(self) -> tuple[int, int]:
        """Python indices of the text the editor shows now."""
        ed = self.editor
        vp = ed.viewport()
        a = ed.cursorForPosition(QPoint(0, 0)).position()
        b = ed.cursorForPosition(QPoint(vp.width() - 1, vp.height() - 1)).position()
        pm = self.mdoc.posmap()
        return pm.to_py(a), pm.to_py(b) + 1

    def _ask_large_run(self):
        """None: fill every mask; (start, end): only those in that span; "cancel": do not run.

        Asks only when the run's estimated cost (network calls x windows) is large.
        The estimate reads the mask index in Qt positions, never the whole text
        (on 2 MB that would hold the window for tens of ms before the question
        shows; the run itself reads it once the user has answered).
        """
        qmasked = self.mdoc.masked_qt()
        options = self.run_options(len(qmasked))
        cost = run_cost(self.mdoc.length(), qmasked, options.order, options.steps, self.model_info.block_size)
        if cost.window_passes <= LARGE_RUN_WINDOWS:
            return None
        ed, c = self.editor, self.editor.textCursor()
        vp = ed.viewport()
        spans = {"screen": (ed.cursorForPosition(QPoint(0, 0)).position(),
                            ed.cursorForPosition(QPoint(vp.width() - 1, vp.height() - 1)).position() + 1)}
        if c.selectionEnd() > c.selectionStart():
            spans["selection"] = (c.selectionStart(), c.selectionEnd())
        counts = {k: int(np.searchsorted(qmasked, b) - np.searchsorted(qmasked, a)) for k, (a, b) in spans.items()}
        answer = self.confirm_large_run(cost, {k: n for k, n in counts.items() if n})
        if answer in spans:  # the span in Python indices, as the run wants it
            return self.visible_span() if answer == "screen" else self._selection()
        return None if answer == "all" else "cancel"

    def confirm_large_run(self, cost: RunCost, counts: dict[str, int]) -> str:
        """The estimate, and the choice: "all", "screen", "selection" (masks in it: counts) or "cancel"."""
        box = QMessageBox(QMessageBox.Question, "A long run",
                          f"Filling all {self.mdoc.mask_count():,} masks takes {cost.calls:,} network calls "
                          f"over up to {cost.windows_per_call:,} windows of {self.model_info.block_size} characters "
                          f"each: up to {cost.window_passes:,} window passes, which can take a long time "
                          "(Pause and Reset stop it at any point).", QMessageBox.NoButton, self)
        buttons = {}
        for key, title in (("screen", "Only the {} masks on screen"), ("selection", "Only the {} masks selected")):
            if key in counts:
                buttons[box.addButton(title.format(counts[key]), QMessageBox.AcceptRole)] = key
        buttons[box.addButton("Fill all", QMessageBox.DestructiveRole)] = "all"
        cancel = box.addButton(QMessageBox.Cancel)
        box.setDefaultButton(cancel)
        box.exec()
        return buttons.get(box.clickedButton(), "cancel")

    def pause_fill(self) -> None:
        self.runner.pause()

    def step_back(self) -> None:
        self.runner.step_back()

    def reset_fill(self) -> None:
        self.runner.reset()

    def resample(self) -> None:
        if self.runner.run is None or not self._can_compute():
            return
        run = self.runner.run
        if run.done and self.runner.view >= len(run.steps) and not self.runner.running:
            # at the end of a run nothing is left to resample: offer the best fill that differs from the one shown
            shown = self.editor.toPlainText()
            if len(shown) == len(run.text):
                self.alternatives.resample_different(run.text, tuple(run.masked), "".join(shown[p] for p in run.masked))
                return
        self.order_panel.seed.setValue(self.order_panel.seed.value() + 1)
        self.runner.resample(self.run_options(self.runner.run.n_masked))
        self._update_controls()

    def _speed_changed(self, _v: int) -> None:
        self.runner.set_delay(self.playback.delay_seconds())

    def _replan(self, *_args) -> None:
        k = self.order_panel.budget()
        n = self.mdoc.mask_count()
        if not k or not n or self.model_info is None:
            msg = "Mask some characters to plan a budget" if not n else "One character per step (K = masks)"
            self.order_panel.plot.set_plan(None, msg if self.model_info else "No model loaded")
            return
        if self.model_info.loss_by_known is None:
            self.order_panel.plot.set_plan(None, "This model has no L_t table: steps are split evenly")
            return
        self.client.plan(k, self.mdoc.length(), n)

    def _on_run_done(self) -> None:
        acc = self.runner.run.accuracy(self.runner.view) if self.runner.run else None
        self.notify_status("Fill complete" + (f": {acc:.0%} of characters match the original" if acc is not None else ""))

    def compare_orders(self, orders: list[str] | None = None) -> None:
        if not self._can_compute():
            return
        st = self.mdoc.state()
        if not st.masked:
            self.notify_status("Mask some characters first: compare scores the originals behind the masks")
            return
        orders = orders or self.compare_panel.chosen()
        self.docks["compare"].show()
        self.docks["compare"].raise_()
        self.compare_panel.clear()
        self.compare_panel.compare_btn.setEnabled(False)
        self.compare_panel.status.setText(f"Scoring {len(st.masked)} characters under {len(orders)} orders...")
        k = self._budget(self.order_panel.budget() or None)
        self.client.compare(st.source, list(st.masked), orders, k, self.order_panel.seed.value())
        self.show_progress("compare", 0, len(orders), f"Scoring under {orders[0]} (1 of {len(orders)})")
