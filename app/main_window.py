"""ARDM Studio's main window: editor in the middle, order and mask tools left, run stats right.

Every model call goes through ``EngineClient`` (one worker in one QThread);
the window reacts to its events. Settings are read in ``__init__`` and written
in ``closeEvent``; text saves go through QSaveFile; autosave and run files
through atomic writes.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QIcon, QUndoStack
from PySide6.QtWidgets import (
    QApplication, QDockWidget, QFileDialog, QFrame, QLabel, QMainWindow, QMessageBox, QPlainTextEdit, QProgressBar,
    QScrollArea, QStackedWidget, QToolBar, QToolButton, QVBoxLayout, QWidget,
)

from ardm_core.paths import ASSETS, default_model_dir

from . import autosave
from .compare_panel import ComparePanel
from .editor import MaskEditor
from .alternatives_panel import AlternativesController
from .explain_overlay import ExplainOverlay
from .train_dialog import TrainController
from .highlighter import RunHighlighter
from .jobs import CompareRow, ExportDone, ModelFailed, ModelInfo, Progress, RunStarted, SchedulePlan
from .mask_tools import BACKGROUND_CHARS, SYNC_LIMIT, MaskApplier, MaskToolsPanel, positions_for
from .masked_document import MaskedDocument, PosMap, build_state
from .order_panel import EXPLICIT, OrderPanel
from .playback_bar import PlaybackBar
from .run_controller import FILL_JOBS, RunController
from .settings import Settings, load_settings, save_settings
from .stats_panel import StatsPanel
from .undo import UndoMirror
from .window_actions import build_actions, build_menus, build_toolbar
from .window_files import AUTOSAVE_IDLE_MS, WindowFiles
from .window_run import WindowRun
from .window_view import WindowView, apply_theme
from .worker import EngineClient, JobError, JobFinished


APP_TITLE = "ARDM Studio"
ICON = ASSETS / "icons" / "ardm-studio-256.png"


def default_size(avail) -> tuple[int, int]:
    """The first window size: 1200 x 760, or less to fit the screen's free area (1366 x 768 and up)."""
    return min(1200, avail.width() - 40), min(760, avail.height() - 60)


def scrolling(widget: QWidget) -> QScrollArea:
    """A dock's panel in a frameless scroll area (its width follows the dock, its height may exceed it)."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.NoFrame)
    return area


class MainWindow(WindowRun, WindowView, WindowFiles, QMainWindow):
    _autosave_ended = Signal(float, object)  # from the autosave thread: (seconds, OSError or None)

    def __init__(self, model_path: str | Path | None = None, file: str | Path | None = None,
                 settings: Settings | None = None, offer_recovery: bool = True) -> None:
        super().__init__()
        self.settings = settings or load_settings()
        self.file_path: Path | None = None
        self.model_info: ModelInfo | None = None
        self.model_error = ""
        self._chosen_model = ""  # a folder picked in "Open model...", saved in the settings once it loads
        self.messages: list[str] = []  # every message shown (tests and the log read it)
        self.last_error: JobError | None = None
        self._boxes: list[QMessageBox] = []
        self._deferred: list[QMessageBox] = []  # boxes raised before the window was shown
        self._saved_version = 0
        self._autosaved_version = -1
        self.autosaver = autosave.AutosaveWriter(done=lambda s, err: self._autosave_ended.emit(s, err))
        self._autosave_ended.connect(self._autosave_written)
        self._build_core()
        self._build_widgets()
        self.actions_ = build_actions(self)
        build_menus(self, self.actions_)
        build_toolbar(self, self.actions_)
        self.explainer = ExplainOverlay(self)  # Alt-click a filled character: what the model looked at
        self.trainer = TrainController(self)  # Train menu: train on my writing, the model chooser
        self.alternatives = AlternativesController(self)  # ranked fills, real words, any-length gaps
        self._build_statusbar()
        self._connect()
        self._apply_settings()
        self._update_title()
        self._update_controls()
        self.load_model(str(model_path or self.settings.model_path or default_model_dir()))
        self.recovery: autosave.Snapshot | None = self._read_recovery() if offer_recovery else None
        if file is not None:
            self.open_file(Path(file))
        if self.recovery is not None:
            QTimer.singleShot(0, self._offer_recovery)
        QTimer.singleShot(0, self.maybe_show_guide)  # first start only

    # -- building -------------------------------------------------------------------------
    def _build_core(self) -> None:
        self.client = EngineClient(self)
        self.editor = MaskEditor()
        self.mdoc = MaskedDocument(self.editor.document(), self)
        self.undo_stack = QUndoStack(self)
        self.editor.setUndoRedoEnabled(True)
        self.mirror = UndoMirror(self.editor.document(), self.undo_stack, self)
        self.editor.undo_stack = self.undo_stack
        self.highlighter = RunHighlighter(self.editor.document())
        self.highlighter.visible_blocks = self.editor.visible_blocks  # colour only what is on screen
        self._recolour = QTimer(self, singleShot=True, interval=0)
        self._recolour.timeout.connect(self.highlighter.flush_visible)
        self.editor.updateRequest.connect(lambda *_: self.highlighter.dirty and self._recolour.start())
        self.runner = RunController(self.client, self.mdoc, self.highlighter, self.mirror, self)

    def _build_widgets(self) -> None:
        self.setWindowTitle(APP_TITLE)
        self.setWindowIcon(QIcon(str(ICON)))
        self.resize(*default_size(self.screen().availableGeometry().size()))
        self.original_view = QPlainTextEdit()
        self.original_view.setReadOnly(True)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.editor)
        self.stack.addWidget(self.original_view)
        self.caption = QLabel()  # presentation mode: what the current step did
        self.caption.setWordWrap(True)
        self.caption.setObjectName("caption")
        self.caption.setStyleSheet("#caption { background: #1e1e28; color: white; padding: 10px; border-radius: 6px; }")
        self.caption.setVisible(False)
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.stack, 1)
        self._build_view_bars(lay)  # colour legend, presentation caption and step counter
        self.setCentralWidget(central)
        self.editor.tooltip_provider = self.tooltip_for
        self.order_panel = OrderPanel()
        self.mask_tools = MaskToolsPanel()
        self.stats = StatsPanel()
        self.compare_panel = ComparePanel()
        self.docks = {}
        for key, title, widget, area in (
            ("order", "Order", self.order_panel, Qt.LeftDockWidgetArea),
            ("mask", "Mask tools", self.mask_tools, Qt.LeftDockWidgetArea),
            ("stats", "Run", self.stats, Qt.RightDockWidgetArea),
            ("compare", "Compare orders", self.compare_panel, Qt.RightDockWidgetArea),
        ):
            d = QDockWidget(title, self)
            d.setObjectName(f"dock_{key}")
            d.setWidget(scrolling(widget))  # a panel taller than the screen scrolls, never pushes the window
            self.addDockWidget(area, d)
            self.docks[key] = d
        self.playback = PlaybackBar()
        tb = QToolBar("Playback", self)
        tb.setObjectName("playback_toolbar")
        tb.addWidget(self.playback)
        self.addToolBar(Qt.BottomToolBarArea, tb)

    def _build_statusbar(self) -> None:
        self.device_label = QLabel("device: -")
        self.model_label = QLabel("model: loading...")
        sb = self.statusBar()
        # progress and Cancel of the long job running now (compare, export)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.setTextVisible(True)
        self.cancel_job_btn = QToolButton()
        self.cancel_job_btn.setText("Cancel")
        self.cancel_job_btn.setToolTip("Stop this job (it stops after the order or frame it is on)")
        self.cancel_job_btn.clicked.connect(self.cancel_long_job)
        self._progress_kind = ""
        self.masking: MaskApplier | None = None  # a large masking being written in batches
        for wdg in (self.progress, self.cancel_job_btn):
            wdg.setVisible(False)
            sb.addPermanentWidget(wdg)
        sb.addPermanentWidget(self.model_label)
        sb.addPermanentWidget(self.device_label)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        for d in self.docks.values():
            self.view_menu.addAction(d.toggleViewAction())

    def _connect(self) -> None:
        self.client.event.connect(self._on_event)
        self.client.errored.connect(self._on_error)
        self.client.finished.connect(self._on_job_finished)
        self.runner.changed.connect(self._update_controls)
        self.runner.message.connect(self.notify_status)
        self.runner.run_done.connect(self._on_run_done)
        self.playback.run_clicked.connect(self.run_fill)
        self.playback.pause_clicked.connect(self.pause_fill)
        self.playback.step_clicked.connect(self.step_fill)
        self.playback.back_clicked.connect(self.step_back)
        self.playback.reset_clicked.connect(self.reset_fill)
        self.playback.resample_clicked.connect(self.resample)
        self.playback.seek.connect(self.runner.seek)
        self.playback.speed_changed.connect(self._speed_changed)
        self.order_panel.budget_changed.connect(self._replan)
        self.order_panel.pick_mode_changed.connect(self._set_pick_mode)
        self.order_panel.undo_pick.connect(self._undo_pick)
        self.order_panel.clear_picks.connect(lambda: self._set_picks([]))
        self.editor.picked.connect(self._pick)
        self.mask_tools.apply_requested.connect(self.apply_mask_tool)
        self.mask_tools.unmask_all_requested.connect(self.unmask_all)
        self.compare_panel.compare_requested.connect(self.compare_orders)
        self.mdoc.masks_changed.connect(self._masks_changed)
        self.editor.document().contentsChange.connect(self._contents_changed)
        # autosave: AUTOSAVE_IDLE_MS after typing pauses, and at least every autosave_seconds while it goes on
        self._autosave_idle = QTimer(self, singleShot=True, interval=AUTOSAVE_IDLE_MS)
        self._autosave_max = QTimer(self, singleShot=True)
        self._autosave_ms = 0  # how long the last autosave took
        self._autosave_gui_s = 0.0  # the part of a background autosave spent on this thread
        self._autosave_idle.timeout.connect(self._autosave_due)
        self._autosave_max.timeout.connect(self._autosave_due)
        self.mdoc.doc.contentsChange.connect(self._edited)
        self.runner.changed.connect(self._autosave_pending)

    def _apply_settings(self) -> None:
        s = self.settings
        self.editor.set_font_size(s.font_size)
        self.order_panel.set_order(s.last_order)
        self.order_panel.set_budget(s.budget_k)
        self.order_panel.temperature.setValue(s.temperature)
        self.order_panel.top_p.setValue(s.top_p)
        self.order_panel.seed.setValue(s.seed)
        self.playback.speed.setValue(s.speed)
        self.set_colour_mode(s.colour_mode)
        apply_theme(QApplication.instance(), s.theme)
        if s.window_geometry:
            self.restoreGeometry(QByteArray.fromHex(s.window_geometry.encode()))

    # -- messages ---------------------------------------------------------------------------
    def notify_status(self, text: str) -> None:
        self.messages.append(text)
        self.statusBar().showMessage(text, 8000)

    def notify(self, title: str, text: str, error: bool = False, details: str = "") -> QMessageBox:
        """A message that never blocks: a non-modal box plus the status bar."""
        self.notify_status(f"{title}: {text}")
        box = QMessageBox(QMessageBox.Critical if error else QMessageBox.Information, title, text,
                          QMessageBox.Ok, self)
        box.setWindowModality(Qt.NonModal)
        if details:
            box.setDetailedText(details)
        box.setAttribute(Qt.WA_DeleteOnClose)
        box.finished.connect(lambda *_: self._boxes.remove(box) if box in self._boxes else None)
        self._boxes.append(box)
        self.present(box)
        return box

    def present(self, box: QMessageBox) -> None:
        """Show a box in front of the window; before the window is shown, once it is."""
        if self.isVisible():
            box.show()
            box.raise_()
            box.activateWindow()
        else:
            self._deferred.append(box)

    def showEvent(self, e) -> None:  # noqa: N802
        super().showEvent(e)
        if self._deferred:
            QTimer.singleShot(0, self._show_deferred)

    def _show_deferred(self) -> None:
        boxes, self._deferred = self._deferred, []
        for box in boxes:
            if box in self._boxes:  # not closed meanwhile
                self.present(box)

    # -- model ------------------------------------------------------------------------------
    def load_model(self, path: str) -> None:
        self.model_label.setText(f"model: loading {Path(path).name}...")
        self.client.load_model(path, self.settings.device)

    def open_model_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open model folder", str(default_model_dir().parent))
        if path:
            self._chosen_model = path  # remembered in the settings once it has loaded
            self.load_model(path)

    def _on_event(self, ev) -> None:
        if isinstance(ev, ModelInfo):
            self.model_info, self.model_error = ev, ""
            if self._chosen_model and Path(ev.path).resolve() == Path(self._chosen_model).resolve():
                self.settings.model_path, self._chosen_model = self._chosen_model, ""
            self._show_model_label()
            self.stats.set(device=ev.device, model=ev.name)
            self.runner.live = False  # the old session went with the old model; recorded steps still replay
            self.notify_status(f"Loaded model {ev.name} on {ev.device}")
            self._replan()
        elif isinstance(ev, ModelFailed):
            self.model_error = ev.message  # the worker keeps the model it had, if any: so does the window
            self._show_model_label()
            if self.model_info is not None:
                more = f"Still using the model {self.model_info.name}."
            else:
                more = "You can still edit and mask text; open another model folder with File > Open model..."
            self.notify("Could not load the model", f"{ev.message}\n\n{more}", error=True)
        elif isinstance(ev, RunStarted) and ev.model_name and ev.at_step == 0:
            self.stats.set(model=ev.model_name)  # coarse-to-fine runs use the upscaling model
        elif isinstance(ev, SchedulePlan):
            self.order_panel.plot.set_plan(ev)
        elif isinstance(ev, CompareRow):
            self.compare_panel.add_row(ev)
        elif isinstance(ev, Progress):
            self.show_progress(ev.kind, ev.done, ev.total, ev.label)
        elif isinstance(ev, ExportDone):
            self.notify_status(f"Wrote {ev.frames} frames to {ev.path}")
        self._update_controls()

    def _show_model_label(self) -> None:
        m = self.model_info
        if m is None:
            self.model_label.setText("model: none")
            return
        self.model_label.setText(f"model: {m.name} ({m.n_params / 1e6:.1f}M, window {m.block_size})")
        self.device_label.setText(f"device: {m.device}")

    def _on_error(self, err: JobError) -> None:
        self.last_error = err
        if err.kind == "load":  # not a ModelFailed: an unexpected error; the previous model (if any) stays
            self._show_model_label()
        if err.kind in FILL_JOBS:
            self.runner.cancel()
        if err.kind == "compare":
            self.compare_panel.status.setText(f"Scoring failed: {err.message}")
        self.notify("The model job failed", f"{err.kind}: {err.message}", error=True, details=err.details)
        self._update_controls()

    def _on_job_finished(self, done: JobFinished) -> None:
        if done.kind == "compare":
            self.compare_panel.compare_btn.setEnabled(True)
            if done.stopped:
                self.compare_panel.status.setText(f"Cancelled after {len(self.compare_panel.rows)} order(s).")
        if done.kind == "export" and done.stopped:
            self.notify_status("Export cancelled")
        if done.kind == self._progress_kind and done.kind not in self.client.pending_kinds():
            self.show_progress("", 0, 0)
        self._update_controls()

    # -- long jobs: progress and cancel ----------------------------------------------------------
    def show_progress(self, kind: str, done: int, total: int, label: str = "") -> None:
        """Show how far the long job of this kind has come, with its Cancel button ("" hides them)."""
        self._progress_kind = kind
        on = bool(kind)
        self.progress.setVisible(on)
        self.cancel_job_btn.setVisible(on)
        self.cancel_job_btn.setEnabled(on)
        if on:
            self.progress.setRange(0, max(1, total))
            self.progress.setValue(min(done, total))
            self.progress.setToolTip(label)
            self.progress.setFormat(f"{kind} %v/%m")
            if label:
                self.statusBar().showMessage(label)

    def cancel_long_job(self) -> None:
        if self._progress_kind == "mask" and self.masking is not None:
            self.masking.cancel()
            return
        if self._progress_kind and self.client.cancel((self._progress_kind,)):
            self.cancel_job_btn.setEnabled(False)
            self.notify_status(f"Cancelling the {self._progress_kind}...")

    # -- masking ----------------------------------------------------------------------------
    def _selection(self) -> tuple[int, int]:
        c = self.editor.textCursor()
        pm = self.mdoc.posmap()
        return pm.to_py(c.selectionStart()), pm.to_py(c.selectionEnd())

    def mask_selection(self) -> int:
        a, b = self._selection()
        if a == b:
            self.notify_status("Select the characters to mask first")
            return 0
        n = self._mask(range(a, b), f"Mask {b - a} characters")
        return n

    def unmask_selection(self) -> int:
        a, b = self._selection()
        with self.mirror.labelled("Unmask"):
            return self.mdoc.unmask(range(a, b))

    def unmask_all(self) -> int:
        with self.mirror.labelled("Unmask all"):
            return self.mdoc.unmask(self.mdoc.state().masked)

    def _mask_refused(self) -> bool:
        """A run or another masking is under way: say so (True), or nothing (False)."""
        if self.runner.running or self.masking is not None:
            self.notify_status("Pause the run before changing the masks" if self.masking is None
                               else "Still masking: wait, or Cancel it")
            return True
        return False

    def _mask(self, positions, label: str, compute=None, captured=None) -> int:
        """Mask now (returns how many), or, for many positions, in batches between event-loop turns
        (returns 0; ``self.masking`` is set until they are all written). ``captured``: the document
        as read just now (``MaskedDocument.capture``), if the caller has it."""
        if self._mask_refused():
            return 0
        if compute is not None or len(positions) > SYNC_LIMIT:
            self.autosave_before_long_edit(captured)
            self.masking = m = MaskApplier(self.mdoc, positions, label, self.mirror, parent=self, compute=compute)
            m.progress.connect(lambda done, total: self.show_progress("mask", done, total, f"Masking {total} positions"))
            m.finished.connect(self._masked_in_batches)
            m.failed.connect(lambda msg: self.notify("Mask tool", msg, error=True))
            self.show_progress("mask", 0, max(1, len(m.positions)), f"Masking {len(m.positions)} positions"
                               if compute is None else "Finding the positions to mask...")
            m.start()
            self._update_controls()
            return 0
        with self.mirror.labelled(label):
            n = self.mdoc.mask(positions)
        self.notify_status(f"Masked {n} characters" if n else "Nothing new to mask there")
        return n

    def _masked_in_batches(self, n: int) -> None:
        self.masking = None
        self.show_progress("", 0, 0)
        self.notify_status(f"Masked {n} characters" if n else "Nothing new to mask there")
        self._update_controls()
        self._autosave_pending()

    def apply_mask_tool(self, tool: str, params: dict) -> int:
        if self._mask_refused():  # before reading the document: a refused tool costs nothing
            return 0
        if not params.get("selection_only") and self.mdoc.cached_state() is None \
                and self.mdoc.length() > BACKGROUND_CHARS:  # the text is built beside the positions, in their thread
            raw = self.mdoc.capture()
            return self._mask((), f"Mask ({tool})", compute=lambda: positions_for(
                tool, build_state(raw)[0].source, params, 0, len(raw.display)), captured=raw)
        text = self.mdoc.state().source
        a, b = self._selection() if params.get("selection_only") else (0, len(text))
        if b - a > BACKGROUND_CHARS:  # a long text: the tool runs in a thread, the window stays live
            return self._mask((), f"Mask ({tool})", compute=lambda: positions_for(tool, text, params, a, b))
        try:
            pos = positions_for(tool, text, params, a, b)
        except ValueError as exc:
            self.notify("Mask tool", str(exc), error=True)
            return 0
        return self._mask(pos, f"Mask ({tool})")

    def _masks_changed(self) -> None:
        n = self.mdoc.mask_count()  # not state(): a 2 MB document would build all its strings here
        self.order_panel.set_k_range(n)
        self._set_picks([q for q in self.editor.picks if self.mdoc.is_masked(q)])
        self._replan()
        self._update_controls()

    def _contents_changed(self, pos: int, removed: int, added: int) -> None:
        self._update_title()
        if self.editor.picks and removed != added:  # typing moves the picked characters
            shift = added - removed
            self.editor.set_picks([q if q < pos else q + shift for q in self.editor.picks
                                   if q < pos or q >= pos + removed])

    # -- hand-picked order ------------------------------------------------------------------
    def _set_pick_mode(self, on: bool) -> None:
        self.editor.pick_mode = on
        self.editor.viewport().setCursor(Qt.PointingHandCursor if on else Qt.IBeamCursor)
        self._update_controls()

    def _pick(self, q: int) -> None:
        if self.runner.running or not self.mdoc.is_masked(q) or q in self.editor.picks:
            return
        self._set_picks(self.editor.picks + [q])

    def _undo_pick(self) -> None:
        self._set_picks(self.editor.picks[:-1])

    def _set_picks(self, picks: list[int]) -> None:
        self.editor.set_picks(picks)
        self.order_panel.set_pick_count(len(picks), self.mdoc.mask_count())

    def pick_positions(self, positions) -> None:
        """Pick these Python indices in order (what clicking them does)."""
        pm = PosMap(self.editor.toPlainText())
        for p in positions:
            self._pick(pm.to_qt(p))

    def _update_controls(self) -> None:
        r = self.runner
        run = r.run
        can_compute = self.model_info is not None
        can_run = bool(run and (r.view < r.recorded or (r.live and not run.done and can_compute))) or \
            (can_compute and not r.running)
        self.playback.set_state(running=r.running, can_run=can_run, has_steps=r.recorded > 0, at_end=r.view == r.recorded,
                                can_resample=can_compute and run is not None and (r.live or run.n_stages == 1 or r.view == 0))
        self.playback.set_timeline(r.view, r.recorded, len(run.schedule) if run and run.schedule else 0)
        busy = r.running or self.masking is not None
        self.editor.setReadOnly(busy)
        A = getattr(self, "actions_", None)
        if A:
            for k in ("mask", "unmask", "undo", "redo", "open", "open_run"):
                A[k].setEnabled(not busy and (k not in ("undo", "redo") or
                                                   (self.undo_stack.canUndo() if k == "undo" else self.undo_stack.canRedo())))
            A["resample"].setEnabled(self.playback.resample_btn.isEnabled())
            A["export_run"].setEnabled(r.recorded > 0)
            A["export_gif"].setEnabled(r.recorded > 0 and not r.running)
            A["export_png"].setEnabled(r.recorded > 0 and not r.running)
        self._update_stats()
        self._update_caption()

    def copy_result(self) -> None:
        QApplication.clipboard().setText(self.mdoc.state().display)
        self.notify_status("Copied the text as shown (fills included)")

    # -- closing ----------------------------------------------------------------------------
    def closeEvent(self, e: QCloseEvent) -> None:  # noqa: N802
        if not self.maybe_discard():
            e.ignore()
            return
        self.runner.cancel()
        if self.masking is not None:
            self.masking.cancel()
        self._autosave_idle.stop()
        self._autosave_max.stop()
        self.hide()  # the worker may be inside a network call: leave at once, then wait for it
        self.trainer.shutdown()  # training stops with a resumable checkpoint
        self.client.shutdown()
        self.settings.last_order = self.order_panel.order() if self.order_panel.order() != EXPLICIT else "confidence"
        self.settings.budget_k = self.order_panel.budget()
        self.settings.temperature = self.order_panel.temperature.value()
        self.settings.top_p = self.order_panel.top_p.value()
        self.settings.seed = self.order_panel.seed.value()
        self.actions_["presentation"].setChecked(False)  # the next start opens in a normal window, at the user's speed
        self.settings.speed = self.playback.speed.value()
        self.settings.window_geometry = bytes(self.saveGeometry().toHex()).decode()
        try:
            save_settings(self.settings)
        except OSError:
            pass
        self.autosaver.clear()  # a clean exit: nothing to recover next time
        self.recovery = None  # an offer left open goes with the window
        for box in list(self._boxes):
            box.close()
        e.accept()


def run(argv: list[str] | None = None) -> int:
    """Entry point of the ``ardm-studio`` gui-script and of main.py: ``ardm-studio [FILE] [--model DIR]``."""
    import argparse

    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="ardm-studio", description="Mask text and watch an ARDM fill it")
    ap.add_argument("file", nargs="?", help="a UTF-8 text file or an exported run (.json) to open")
    ap.add_argument("--model", help="model folder, or a shipped model's name such as medium (default: the shipped model)")
    args = ap.parse_args(argv)
    if args.model is not None:
        from ardm_core.paths import model_dir

        try:
            args.model = str(model_dir(args.model))
        except ValueError as exc:
            ap.error(str(exc))
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName(APP_TITLE)
    app.setWindowIcon(QIcon(str(ICON)))
    w = MainWindow(model_path=args.model, file=args.file)
    app.aboutToQuit.connect(w.client.shutdown)  # also when the session ends without closing the window
    w.show()
    tune_interpreter_for_gui()
    return app.exec()


def tune_interpreter_for_gui() -> None:
    """Tune the interpreter for a window that must answer while other threads run Python.

    1. Take what start-up allocated (torch, numpy, Qt, the window) out of the
       cyclic collector's walks. With them loaded, a full collection walks
       about 190,000 objects: 70-170 ms on a 2-core machine, long enough to
       stall the window whenever the collector decides to run. They live until
       exit anyway; after ``gc.freeze()`` a collection walks only what the
       session allocated since.
    2. Hand the interpreter lock over after 1 ms instead of 5. Every call from
       Qt into Python (a slot, the highlighter) and every return from a call
       that released the lock waits for it while the autosave thread or a mask
       tool's thread runs Python; a relayout makes thousands of such calls, and
       at 5 ms a wait they added up to 100+ ms stalls.
    """
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(0.001)
