"""Train → "Train on my writing…": fine-tune the current model on the user's text.

The dialog picks files, a folder or the open document, shows what was found
(characters, the share outside the vocabulary, skipped files) and an estimate
of the time on this machine, then runs ``ardm_core.finetune`` in a worker
thread of its own (the editor's worker stays free for fills), with progress,
pause, cancel, resume (also after a restart: runs are folders under the
user's data folder) and the before/after comparison. New models are listed in
Train → Models, beside the shipped ones.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QFontDatabase
from PySide6.QtWidgets import (
    QComboBox, QDialog, QDoubleSpinBox, QFileDialog, QFormLayout, QGridLayout, QGroupBox, QHBoxLayout, QLabel,
    QLineEdit, QListWidget, QProgressBar, QPushButton, QVBoxLayout,
)

from ardm_core.fileio import atomic_write_text
from ardm_core.finetune import FinetuneConfig, FinetuneFinished, Prepared, find_files, user_models, user_models_dir
from ardm_core.paths import ASSETS, data_dir, shipped_models
from ardm_core.train import TrainFinished, TrainStep, Validated

from .train_job import ScanReady, finetune_job, scan_job, unfinished_runs
from .worker import EngineClient, JobError, JobFinished

BATCH = 16  # windows per step (the estimate and the run use the same)


def _hms(s: float) -> str:
    s = int(max(0, s))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _error_text(err: JobError) -> str:
    """The message without the exception's class name."""
    name, _, rest = err.message.partition(": ")
    return rest if rest and name.isidentifier() else err.message


class TrainDialog(QDialog):
    def __init__(self, controller: "TrainController") -> None:
        super().__init__(controller.w)
        self.c = controller
        self.setWindowTitle("Train on my writing")
        self.setModal(False)
        self.sources: list[str] = []
        self.scan: ScanReady | None = None
        self.result: FinetuneFinished | None = None
        self.message = ""  # the last status shown (tests read it)
        self.steps_override = 0  # > 0: train exactly this many steps instead of fitting the minutes
        self._cfg: FinetuneConfig | None = None
        self._held_out: float | None = None
        self._t0 = 0.0
        self._build()
        self.refresh_resumable()
        self._update()

    # -- building -------------------------------------------------------------------------
    def _build(self) -> None:
        src = QGroupBox("Your writing")
        self.source_list = QListWidget()
        self.source_list.setMaximumHeight(90)
        self.add_files_btn = QPushButton("Add files…")
        self.add_folder_btn = QPushButton("Add folder…")
        self.document_btn = QPushButton("The open document")
        self.clear_btn = QPushButton("Clear")
        self.add_files_btn.clicked.connect(self._pick_files)
        self.add_folder_btn.clicked.connect(self._pick_folder)
        self.document_btn.clicked.connect(self.use_document)
        self.clear_btn.clicked.connect(lambda: self.set_sources([]))
        row = QHBoxLayout()
        for b in (self.add_files_btn, self.add_folder_btn, self.document_btn, self.clear_btn):
            row.addWidget(b)
        self.found = QLabel("Pick .txt or .md files, a folder of them, or the open document.")
        self.found.setWordWrap(True)
        lay = QVBoxLayout(src)
        lay.addLayout(row)
        lay.addWidget(self.source_list)
        lay.addWidget(self.found)

        opts = QFormLayout()
        self.name = QLineEdit(time.strftime("my-writing-%Y%m%d-%H%M"))
        self.minutes = QDoubleSpinBox()
        self.minutes.setRange(0.5, 600.0)
        self.minutes.setValue(10.0)
        self.minutes.setSuffix(" min")
        self.minutes.valueChanged.connect(lambda *_: self._show_scan())
        opts.addRow("New model's name", self.name)
        opts.addRow("Time to train", self.minutes)

        self.resume_box = QComboBox()
        self.resume_btn = QPushButton("Resume")
        self.resume_btn.clicked.connect(self.resume_selected)
        res = QHBoxLayout()
        res.addWidget(QLabel("Resume a stopped run:"))
        res.addWidget(self.resume_box, 1)
        res.addWidget(self.resume_btn)

        self.progress = QProgressBar()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.start_btn = QPushButton("Start")
        self.pause_btn = QPushButton("Pause")
        self.cancel_btn = QPushButton("Cancel")
        self.start_btn.clicked.connect(self.start)
        self.pause_btn.clicked.connect(self.pause)
        self.cancel_btn.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for b in (self.start_btn, self.pause_btn, self.cancel_btn):
            buttons.addWidget(b)

        cmp = QGroupBox("Before and after (held-out 10% of your text)")
        grid = QGridLayout(cmp)
        mono = QFontDatabase.systemFont(QFontDatabase.FixedFont)
        self.before_title, self.after_title = QLabel("<b>Before</b>"), QLabel("<b>After</b>")
        self.before_bpc, self.after_bpc = QLabel("-"), QLabel("-")
        self.before_fill, self.after_fill = QLabel(""), QLabel("")
        for lab in (self.before_fill, self.after_fill):
            lab.setFont(mono)
            lab.setWordWrap(True)
            lab.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.masked_example = QLabel("")
        self.masked_example.setFont(mono)
        self.masked_example.setWordWrap(True)
        grid.addWidget(self.before_title, 0, 0)
        grid.addWidget(self.after_title, 0, 1)
        grid.addWidget(self.before_bpc, 1, 0)
        grid.addWidget(self.after_bpc, 1, 1)
        grid.addWidget(self.before_fill, 2, 0)
        grid.addWidget(self.after_fill, 2, 1)
        grid.addWidget(self.masked_example, 3, 0, 1, 2)
        self.use_btn = QPushButton("Use the new model")
        self.use_btn.clicked.connect(self.use_new_model)
        grid.addWidget(self.use_btn, 4, 1)

        lay = QVBoxLayout(self)
        lay.addWidget(src)
        lay.addLayout(opts)
        lay.addLayout(res)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addLayout(buttons)
        lay.addWidget(cmp)
        self.resize(620, 560)

    # -- state ----------------------------------------------------------------------------
    @property
    def training(self) -> bool:
        return self.c.training

    def _update(self) -> None:
        busy = self.training
        for b in (self.add_files_btn, self.add_folder_btn, self.document_btn, self.clear_btn, self.resume_btn):
            b.setEnabled(not busy)
        self.resume_btn.setEnabled(not busy and self.resume_box.count() > 0)
        self.start_btn.setEnabled(not busy and self.scan is not None and self.c.base_path() is not None)
        self.pause_btn.setEnabled(busy)
        self.cancel_btn.setEnabled(busy)
        self.use_btn.setEnabled(self.result is not None and not busy)

    def _say(self, text: str) -> None:
        self.message = text
        self.status.setText(text)

    def refresh_resumable(self) -> None:
        self.resume_box.clear()
        for r in unfinished_runs():
            self.resume_box.addItem(f"{r.name} (step {r.step} of {r.steps})", r)
        self._update()

    # -- sources --------------------------------------------------------------------------
    def _pick_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Your writing", str(Path.home()), "Text (*.txt *.md);;All files (*)")
        if files:
            self.set_sources(self.sources + files)

    def _pick_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A folder of your writing", str(Path.home()))
        if folder:
            self.set_sources(self.sources + [folder])

    def use_document(self) -> None:
        """The editor's text (originals behind masks), saved under the user's data folder to train on."""
        text = self.c.w.mdoc.state().original
        if not text.strip():
            self._say("The open document is empty: type or open some of your writing first.")
            return
        d = data_dir() / "documents"
        d.mkdir(parents=True, exist_ok=True)
        stem = Path(self.c.w.file_path).stem if getattr(self.c.w, "file_path", None) else "document"
        path = d / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}.txt"
        atomic_write_text(path, text)
        self.set_sources(self.sources + [str(path)])

    def set_sources(self, paths: list[str]) -> None:
        """Check the chosen files and folders; scan them in the training worker (it reads every byte)."""
        self.sources = list(dict.fromkeys(str(p) for p in paths))
        self.source_list.clear()
        self.source_list.addItems(self.sources)
        self.scan = None
        self._update()
        if not self.sources:
            self.found.setText("Pick .txt or .md files, a folder of them, or the open document.")
            return
        try:
            files = find_files(self.sources)
        except ValueError as exc:
            self._refuse(str(exc))
            return
        if not files:
            self._refuse(f"{', '.join(self.sources)}: no text files (.txt, .md) in it; pick a folder with your writing")
            return
        base = self.c.base_path()
        if base is None:
            self._refuse("No plain model is loaded to start from (an upscaling model cannot be fine-tuned here).")
            return
        self.found.setText(f"Reading {len(files)} file(s)…")
        srcs = list(self.sources)
        self.c.submit("scan", lambda st: scan_job(st, srcs, base, BATCH))

    def _refuse(self, text: str) -> None:
        self.scan = None
        self.found.setText(text)
        self._say(text)
        self._update()

    def _show_scan(self) -> None:
        if self.scan is None:
            return
        s, sps = self.scan.scan, self.scan.seconds_per_step
        steps = max(1, int(self.minutes.value() * 60 * 0.85 / sps))
        skipped = ""
        if s.skipped:
            names = ", ".join(f"{Path(f).name} ({why})" for f, why in s.skipped[:4])
            skipped = f"<br>Skipped {len(s.skipped)} file(s) that are not text: {names}" + (" …" if len(s.skipped) > 4 else "")
        self.found.setText(f"{s.chars:,} characters in {len(s.files)} file(s); {100 * s.outside_share:.1f}% outside the "
                           f"model's vocabulary (kept as context, never learnt).<br>On this machine a step takes about "
                           f"{sps:.2f} s: {self.minutes.value():g} min is about {steps:,} steps.{skipped}")

    # -- running --------------------------------------------------------------------------
    def start(self) -> None:
        base = self.c.base_path()
        if self.scan is None or base is None or self.training:
            return
        name = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in self.name.text().strip()) or "my-writing"
        out = user_models_dir() / name
        if out.exists():
            self._say(f"A model named {name} exists already; choose another name (or resume it below).")
            return
        self._run(FinetuneConfig(inputs=list(self.sources), out=str(out), base=base, minutes=self.minutes.value(),
                                 steps=self.steps_override, batch_size=BATCH))

    def resume_selected(self) -> None:
        r = self.resume_box.currentData()
        if r is None or self.training:
            return
        self._run(FinetuneConfig(inputs=list(r.inputs), out=r.path, base=r.base, minutes=self.minutes.value(),
                                 steps=r.steps, batch_size=BATCH))

    def _run(self, cfg: FinetuneConfig) -> None:
        self._cfg, self.result, self._held_out = cfg, None, None
        self.before_bpc.setText("-")
        self.after_bpc.setText("-")
        self.before_fill.setText("")
        self.after_fill.setText("")
        self.masked_example.setText("")
        self.progress.setValue(0)
        self._t0 = time.monotonic()
        self.c.start_training(cfg)
        self._say("Preparing your text…")
        self._update()

    def pause(self) -> None:
        """Stop at the end of this step with a checkpoint; Resume continues from it."""
        if self.training:
            self.c.stop_training()
            self._say("Pausing: saving a checkpoint at the end of this step…")

    def cancel(self) -> None:
        """Stop with a checkpoint (the run stays resumable from this dialog, also after a restart)."""
        if self.training:
            self.c.stop_training()
            self._say("Cancelling: saving a checkpoint at the end of this step…")

    # -- events from the training worker ----------------------------------------------------
    def on_event(self, ev) -> None:
        if isinstance(ev, ScanReady):
            self.scan = ev
            self._show_scan()
            self._update()
        elif isinstance(ev, Prepared):
            self.progress.setRange(0, ev.steps)
            self.before_bpc.setText(f"{ev.bpc_before:.3f} bits per character")
            self._say(("Resuming: " if ev.resumed else "") + ev.scan.summary())
        elif isinstance(ev, Validated):
            self._held_out = ev.bpc
        elif isinstance(ev, TrainStep):
            self.progress.setRange(0, ev.steps)
            self.progress.setValue(ev.step)
            ho = f" · held-out {self._held_out:.3f} bpc" if self._held_out is not None else ""
            self._say(f"Step {ev.step:,} of {ev.steps:,} · training {ev.bpc:.3f} bpc{ho} · {_hms(ev.eta_s)} left")
        elif isinstance(ev, TrainFinished):
            self._say("Measuring the held-out text with both models…")
        elif isinstance(ev, FinetuneFinished):
            self.result = ev
            self.before_bpc.setText(f"{ev.bpc_before:.3f} bits per character")
            self.after_bpc.setText(f"{ev.bpc_after:.3f} bits per character")
            if ev.example:
                self.before_fill.setText(ev.example.before)
                self.after_fill.setText(ev.example.after)
                self.masked_example.setText("Masked: " + ev.example.masked)
            state = (f"Stopped at step {ev.step} of {ev.steps}: the model so far is saved, and Resume continues."
                     if ev.interrupted else f"Done: {ev.step} steps.")
            self._say(f"{state} New model: {ev.model_dir}")
            self.c.w.notify_status(f"Trained {Path(ev.model_dir).parent.name}: held-out bits {ev.bpc_before:.3f} → "
                                   f"{ev.bpc_after:.3f}")

    def on_error(self, err: JobError) -> None:
        text = _error_text(err)
        if err.kind == "scan":
            self._refuse(text)
        else:
            self._say(f"Training stopped: {text}")

    def on_finished(self, done: JobFinished) -> None:
        self.refresh_resumable()
        self._update()

    def use_new_model(self) -> None:
        if self.result is not None:
            self.c.choose_model(self.result.model_dir)


class TrainController(QObject):
    """The Train menu, the training worker (its own thread, made on first use) and the dialog."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.w = window
        self.client: EngineClient | None = None
        self.dialog: TrainDialog | None = None
        self._stop: threading.Event | None = None
        self._training_job = 0
        menu = window.menuBar().addMenu("&Train")
        self.action = QAction("Train on my &writing…", window)
        self.action.setStatusTip("Fine-tune the current model on your own text")
        self.action.triggered.connect(self.open_dialog)
        menu.addAction(self.action)
        self.models_menu = menu.addMenu("&Models")
        self.models_menu.aboutToShow.connect(self.fill_models_menu)

    @property
    def training(self) -> bool:
        return bool(self._training_job) and self.client is not None and "finetune" in self.client.pending_kinds()

    # -- the worker -------------------------------------------------------------------------
    def submit(self, kind: str, make) -> int:
        if self.client is None:
            self.client = EngineClient(self)
            self.client.event.connect(self._on_event)
            self.client.errored.connect(self._on_error)
            self.client.finished.connect(self._on_finished)
        return self.client.submit(kind, make)

    def start_training(self, cfg: FinetuneConfig) -> None:
        stop = self._stop = threading.Event()
        self._training_job = self.submit("finetune", lambda _st: finetune_job(cfg, stop))

    def stop_training(self) -> None:
        if self._stop is not None:
            self._stop.set()

    def shutdown(self) -> None:
        """Quitting: training stops with a resumable checkpoint at the end of its step."""
        self.stop_training()
        if self.client is not None:
            self.client.shutdown()

    def _on_event(self, ev) -> None:
        if self.dialog is not None:
            self.dialog.on_event(ev)

    def _on_error(self, err: JobError) -> None:
        if self.dialog is not None:
            self.dialog.on_error(err)

    def _on_finished(self, done: JobFinished) -> None:
        if done.id == self._training_job:
            self._training_job = 0
        if self.dialog is not None:
            self.dialog.on_finished(done)

    # -- models -----------------------------------------------------------------------------
    def base_path(self) -> str | None:
        """The loaded model's folder, if it is a plain model that can be fine-tuned."""
        info = self.w.model_info
        if info is None or not info.path:
            return None
        try:
            cfg = json.loads((Path(info.path) / "config.json").read_text(encoding="utf-8"))
            if cfg.get("model", {}).get("n_class_tokens"):
                return None
        except (OSError, ValueError):
            return None
        return info.path

    def open_dialog(self) -> TrainDialog:
        if self.dialog is None:
            self.dialog = TrainDialog(self)
        self.dialog.refresh_resumable()
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog

    def model_choices(self) -> list[tuple[str, Path]]:
        """(label, folder): the shipped models, then the user's own, newest first."""
        shipped = [ASSETS / "models" / name for name in shipped_models()]
        return [(f"{d.name} (shipped{_summary(d)})", d) for d in shipped] + \
            [(f"{d.parent.name} (yours)", d) for d in user_models()]

    def fill_models_menu(self) -> None:
        self.models_menu.clear()
        current = Path(self.w.model_info.path).resolve() if self.w.model_info and self.w.model_info.path else None
        for label, path in self.model_choices():
            a = self.models_menu.addAction(label)
            a.setCheckable(True)
            a.setChecked(current is not None and path.resolve() == current)
            a.triggered.connect(lambda _c=False, p=str(path): self.choose_model(p))

    def choose_model(self, path: str) -> None:
        self.w._chosen_model = path  # remembered in the settings once it has loaded, as with Open model
        self.w.load_model(path)


def _summary(folder: Path) -> str:
    """", " + the one-line summary a shipped model's config.json records (meta.summary), if it has one."""
    try:
        meta = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("meta", {})
    except (OSError, ValueError, AttributeError):
        return ""
    text = meta.get("summary") if isinstance(meta, dict) else None
    # "&" would mark a shortcut in a menu label
    return f", {text.strip()[:80]}".replace("&", "&&") if isinstance(text, str) and text.strip() else ""


__all__ = ["TrainController", "TrainDialog"]
