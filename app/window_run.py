"""The main window's run side: Run, Step, Pause, Step back, Reset, Resample, budget planning, compare.

A mixin of ``MainWindow``; it turns button presses into RunController and
EngineClient calls and never waits for the worker.
"""

from __future__ import annotations

from dataclasses import replace

from .masked_document import PosMap
from .order_panel import EXPLICIT


class WindowRun:
    def run_options(self):
        pm = PosMap(self.editor.toPlainText())
        explicit = tuple(pm.to_py(q) for q in self.editor.picks)
        options = self.order_panel.options(explicit if self.order_panel.order() == EXPLICIT else ())
        return replace(options, steps=self._budget(options.steps))

    def _budget(self, k: int | None) -> int | None:
        """K for the masks the document has now: a fill shown part way leaves fewer than the slider's range."""
        n = len(self.mdoc.state().masked)
        return min(k, n) if k and n else k

    def _can_compute(self) -> bool:
        if self.model_info is None:
            self.notify_status("No model is loaded: open a model folder (File > Open model...)")
            return False
        return True

    def run_fill(self) -> None:
        self.runner.set_delay(self.playback.delay_seconds())
        if self.runner.attached and (self.runner.view < self.runner.recorded or
                                     (self.runner.live and not self.runner.run.done)):
            self.runner.play(self.playback.delay_seconds())
        elif self._can_compute():
            options = self.run_options()
            if self.runner.start(options):
                self._set_picks([])  # the badges give way to the run's colours
        self._update_controls()

    def step_fill(self) -> None:
        if self.runner.attached and (self.runner.view < self.runner.recorded or self.runner.live):
            self.runner.step()
        elif self._can_compute():
            options = self.run_options()
            if self.runner.start(options, n_steps=1):
                self._set_picks([])
        self._update_controls()

    def pause_fill(self) -> None:
        self.runner.pause()

    def step_back(self) -> None:
        self.runner.step_back()

    def reset_fill(self) -> None:
        self.runner.reset()

    def resample(self) -> None:
        if not self.runner.live:
            self.notify_status("Resampling needs a run made in this session with the model loaded")
            return
        self.order_panel.seed.setValue(self.order_panel.seed.value() + 1)
        self.runner.resample(self.run_options())

    def _speed_changed(self, _v: int) -> None:
        self.runner.set_delay(self.playback.delay_seconds())

    def _replan(self, *_args) -> None:
        k = self.order_panel.budget()
        st = self.mdoc.state()
        n = len(st.masked)
        if not k or not n or self.model_info is None:
            msg = "Mask some characters to plan a budget" if not n else "One character per step (K = masks)"
            self.order_panel.plot.set_plan(None, msg if self.model_info else "No model loaded")
            return
        if self.model_info.loss_by_known is None:
            self.order_panel.plot.set_plan(None, "This model has no L_t table: steps are split evenly")
            return
        self.client.plan(k, len(st.display), n)

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
