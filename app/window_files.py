"""The main window's file side: open/save text, runs, frames, recent files, autosave and recovery.

A mixin of ``MainWindow`` (it uses the window's editor, document and worker),
kept apart so each module holds one concern.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from PySide6.QtCore import QSaveFile, Qt, QTimer
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from ardm_core.fileio import DataError, read_utf8
from ardm_core.paths import default_model_dir

from . import autosave
from .masked_document import DocState, build_state
from .run_record import load_run, save_run
from .worker import frozen_copy

AUTOSAVE_IDLE_MS = 1500  # autosave this long after typing pauses (longer for documents slow to snapshot)
TEXT_FILTER = "Text files (*.txt *.md);;All files (*)"
RUN_FILTER = "ARDM runs (*.json);;All files (*)"


class WindowFiles:
    # -- title and discard --------------------------------------------------------------
    def _update_title(self) -> None:
        name = self.file_path.name if self.file_path else "untitled"
        dirty = "*" if self.mdoc.version != self._saved_version else ""
        self.setWindowTitle(f"{dirty}{name} - ARDM Studio")

    @property
    def dirty(self) -> bool:
        return self.mdoc.version != self._saved_version

    def ask_unsaved(self, doing: str) -> str:
        """Save / Discard / Cancel for unsaved work; returns "save", "discard" or "cancel"."""
        name = self.file_path.name if self.file_path else "untitled"
        box = QMessageBox(QMessageBox.Warning, "Unsaved changes",
                          f"Save the changes to {name} before {doing}?",
                          QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, self)
        box.setInformativeText("Save writes the text with every masked character as its original; "
                               "File > Export run keeps the masks and the run.")
        box.setDefaultButton(QMessageBox.Save)
        answer = box.exec()
        return {QMessageBox.Save: "save", QMessageBox.Discard: "discard"}.get(answer, "cancel")

    def maybe_discard(self, doing: str = "closing") -> bool:
        """Before the document is replaced or the window closes: True to go on, False to stay.

        Unsaved work asks Save / Discard / Cancel; Save that does not complete (the
        dialog cancelled, a write error) keeps the work and stays.
        """
        if not self.dirty:
            return True
        if self.runner.preparing:  # a run being set up would start under the modal question: drop it
            self.runner.pause()
        # whatever the answer, nothing is lost while the question is open; written beside it (a 2 MB document
        # with 300,000 masks takes a second to snapshot, which held the question back); a Discard drops it
        self.autosave_now(background=True)
        choice = self.ask_unsaved(doing)
        if choice == "save":
            return self.save()
        return choice == "discard"

    def _replaced(self) -> None:
        """The document was replaced after the user saved or discarded: the old snapshot is stale."""
        self.autosaver.clear()
        self._autosaved_version = -1

    # -- text files -----------------------------------------------------------------------
    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open text", str(self.file_path or Path.home()),
                                              TEXT_FILTER + ";;" + RUN_FILTER)
        if path:
            self.open_file(Path(path))

    def open_file(self, path: Path) -> bool:
        path = Path(path)
        if path.suffix.lower() == ".json":
            return self.open_run(path)
        try:
            text = read_utf8(path)
        except DataError as exc:
            self.notify("Could not open the file", str(exc), error=True)
            return False
        if not self.maybe_discard(f"opening {path.name}"):
            return False
        self.runner.detach()
        self.mdoc.set_text(text)
        self.undo_stack.clear()
        self.file_path = path
        self._saved_version = self.mdoc.version
        self._replaced()
        self.settings.add_recent(path)
        self._update_title()
        self.notify_status(f"Opened {path.name} ({len(text):,} characters)")
        return True

    def save(self) -> bool:
        if self.file_path is None or self.file_path.suffix.lower() == ".json":
            return self.save_as_dialog()
        return self.save_to(self.file_path)

    def save_as_dialog(self) -> bool:
        path, _ = QFileDialog.getSaveFileName(self, "Save text", str(self.file_path or Path.home() / "untitled.txt"),
                                              TEXT_FILTER)
        return self.save_to(Path(path)) if path else False

    def save_to(self, path: Path) -> bool:
        """Write the text as shown, with each mask as its original character (UTF-8, atomic)."""
        st = self.mdoc.state()
        chars = list(st.display)
        for i in st.masked:
            chars[i] = st.source[i]
        f = QSaveFile(str(path))
        if not f.open(QSaveFile.WriteOnly):
            self.notify("Could not save", f"{path}: {f.errorString()}", error=True)
            return False
        f.write("".join(chars).encode("utf-8"))
        if not f.commit():
            self.notify("Could not save", f"{path}: {f.errorString()}", error=True)
            return False
        self.file_path = Path(path)
        self._saved_version = self.mdoc.version
        self.settings.add_recent(path)
        self._update_title()
        note = " (masks are saved as their original characters; export a run to keep them)" if st.masked else ""
        self.notify_status(f"Saved {Path(path).name}{note}")
        return True

    def _fill_recent_menu(self) -> None:
        m = self.recent_menu
        m.clear()
        for p in self.settings.recent_files:
            a = m.addAction(p)
            a.triggered.connect(lambda _c=False, p=p: self.open_file(Path(p)))
        if not self.settings.recent_files:
            m.addAction("(none)").setEnabled(False)

    # -- runs ---------------------------------------------------------------------------
    def export_run_dialog(self) -> None:
        default = (self.file_path.with_suffix(".run.json") if self.file_path else Path.home() / "run.json")
        path, _ = QFileDialog.getSaveFileName(self, "Export run", str(default), RUN_FILTER)
        if path:
            self.export_run(Path(path))

    def export_run(self, path: Path) -> bool:
        run = self.runner.run
        if run is None:
            self.notify_status("No run to export: press Run first")
            return False
        if self.model_info is not None and not run.model_name:
            run.model_name, run.model_fingerprint = self.model_info.name, self.model_info.fingerprint
        try:
            save_run(run, path)
        except OSError as exc:
            self.notify("Could not export the run", f"{path}: {exc.strerror}", error=True)
            return False
        self.notify_status(f"Exported {len(run.steps)} steps to {Path(path).name}")
        return True

    def open_run_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open run", str(Path.home()), RUN_FILTER)
        if path:
            self.open_run(Path(path))

    def open_run(self, path: Path) -> bool:
        """Show a run file's text with its masks; Run/Step/timeline replay its recorded steps."""
        try:
            run = load_run(path)
        except ValueError as exc:
            self.notify("Could not open the run", str(exc), error=True)
            return False
        if not self.maybe_discard(f"opening {Path(path).name}"):
            return False
        self.runner.detach()
        self.mdoc.set_text(run.text, run.masked)
        self.undo_stack.clear()
        self.file_path = Path(path)
        self._saved_version = self.mdoc.version
        self._replaced()
        self.show_run_options(run.options)
        self.runner.load(run)
        self.settings.add_recent(path)
        self._update_title()
        self.notify_status(f"Opened run {Path(path).name}: {len(run.steps)} steps, press Run to replay")
        return True

    def export_frames_dialog(self, fmt: str) -> None:
        if self.runner.run is None:
            return
        if fmt == "gif":
            path, _ = QFileDialog.getSaveFileName(self, "Export animated GIF", str(Path.home() / "fill.gif"),
                                                  "GIF (*.gif)")
        else:
            path = QFileDialog.getExistingDirectory(self, "Folder for PNG frames", str(Path.home()))
        if path:
            self.export_frames(Path(path), fmt)

    def export_frames(self, path: Path, fmt: str) -> None:
        """Render the run's frames in the worker (from a snapshot of the run), with progress and Cancel;
        the "why this character?" overlay, when it is on, is drawn into them."""
        if self.runner.run is None:
            self.notify_status("No run to export: press Run first")
            return
        n = self.runner.view or self.runner.recorded
        explainer = getattr(self, "explainer", None)  # the "why this character?" heat, drawn in when it is on
        self.client.export_frames(self.runner.run, n, str(path), fmt,
                                  explainer.frame_heat() if explainer is not None else None)
        self.show_progress("export", 0, n + 1, "Rendering frames in the background...")

    # -- autosave and recovery --------------------------------------------------------------
    def _edited(self) -> None:
        """The document changed: autosave once typing pauses, and at least every autosave_seconds."""
        self._autosave_idle.start()
        if not self._autosave_max.isActive():
            self._autosave_max.start(max(self.settings.autosave_seconds * 1000, 20 * self._autosave_ms))

    def _autosave_due(self) -> None:
        # A run's steps change the document many times a second, and a large masking is written in
        # batches for seconds: write once they stop (_autosave_pending). Neither can change the text
        # the user typed (the editor is read-only meanwhile), so the snapshot on disk holds all of it.
        if self.runner.running or self.masking is not None:
            return
        self._autosave_idle.stop()
        self._autosave_max.stop()
        self.autosave_now(background=True)

    def autosave_before_long_edit(self, captured=None) -> None:
        """A batched masking or a run is about to change the document for seconds, and the timers skip the
        snapshot meanwhile: what was typed since the last one is written now, beside it."""
        self._autosave_idle.stop()
        self._autosave_max.stop()
        self.autosave_now(background=True, captured=captured)

    def _autosave_pending(self) -> None:
        """A run or a masking has stopped: autosave soon if the document changed since the last snapshot."""
        if not self.runner.running and self.masking is None and self.dirty \
                and self.mdoc.version != self._autosaved_version and not self._autosave_idle.isActive():
            self._autosave_idle.start()

    def _snapshot_parts(self, captured=None) -> tuple:
        """What a snapshot needs, read on the GUI thread: the document (cheap: see MaskedDocument.capture;
        ``captured``, one the caller has just made), a frozen copy of the run on screen, its view and the
        file. ``snapshot_from`` builds it in any thread."""
        run = self.runner.run
        doc = self.mdoc.cached_state() or (captured if captured is not None and captured.version == self.mdoc.version
                                           else self.mdoc.capture())
        return (doc, frozen_copy(run, len(run.steps)) if run is not None else None,
                self.runner.view if run is not None else 0, str(self.file_path or ""))

    def snapshot(self) -> autosave.Snapshot:
        """The document as the user sees it: originals, masks and fills before the run on screen, that run and its view."""
        return snapshot_from(*self._snapshot_parts())

    def autosave_now(self, force: bool = False, background: bool = False, captured=None) -> bool:
        """Snapshot the document, its masks, fills and run (only when it changed since the last snapshot).

        ``background``: build and write it in the autosave thread (the timer's saves,
        so a large document never stalls typing); otherwise it is on disk on return.
        ``captured``: a ``MaskedDocument.capture()`` of the document as it is now (saves reading it twice).
        """
        if not force and (self.mdoc.version == self._autosaved_version or not self.dirty):
            return False
        t0 = time.perf_counter()
        parts = self._snapshot_parts(captured)
        self._autosaved_version = self.mdoc.version
        if background:
            self._autosave_gui_s = time.perf_counter() - t0
            self.autosaver.submit(lambda: snapshot_from(*parts))
            return True
        try:
            self.autosaver.write(snapshot_from(*parts))
        except OSError as exc:
            self._autosaved_version = -1
            self.notify_status(f"Autosave failed: {exc.strerror or exc}")
            return False
        self._autosave_took(time.perf_counter() - t0)
        return True

    def _autosave_written(self, seconds: float, error: OSError | None) -> None:
        """A background autosave ended (queued from the autosave thread)."""
        if error is not None:
            self._autosaved_version = -1  # try again at the next pause
            self.notify_status(f"Autosave failed: {error.strerror or error}")
            return
        self._autosave_took(self._autosave_gui_s + seconds)

    def _autosave_took(self, seconds: float) -> None:
        # a large document takes a while to snapshot: space the saves so they cost at most ~10% of the time
        self._autosave_ms = round(seconds * 1000)
        self._autosave_idle.setInterval(max(AUTOSAVE_IDLE_MS, 10 * self._autosave_ms))

    def _read_recovery(self) -> autosave.Snapshot | None:
        """The snapshot of an earlier session; a malformed one is renamed aside and the user told."""
        try:
            return autosave.read_snapshot()
        except autosave.SnapshotError as exc:
            dest = autosave.set_aside()
            where = f"It was renamed to {dest}." if dest else f"It could not be renamed: remove {autosave.autosave_path()}."
            self.notify("Autosave set aside", f"The autosave from the last session cannot be used: {exc}. {where}",
                        error=True)
            return None

    def _offer_recovery(self) -> None:
        snap = self.recovery
        if snap is None:
            return
        what = f"{len(snap.text):,} characters, {len(snap.masked)} masked"
        if snap.run is not None:
            what += f", a {snap.run.options.order} run shown at step {snap.view} of {len(snap.run.steps)}"
        box = QMessageBox(QMessageBox.Question, "Recover unsaved work?",
                          f"ARDM Studio did not close cleanly last time. Recover the autosaved document ({what})"
                          + (f" from {snap.file_path}" if snap.file_path else "") + "?",
                          QMessageBox.Yes | QMessageBox.No, self)
        box.setWindowModality(Qt.NonModal)
        box.finished.connect(lambda r: (self.recover() if r == QMessageBox.Yes else self._decline_recovery(),
                                        self._back_to_editor()))
        self._boxes.append(box)
        self.recovery_box = box
        self.present(box)

    def _back_to_editor(self) -> None:
        """The keyboard goes back to the text once a question is answered (the next keys typed are the user's words)."""
        self.activateWindow()
        self.editor.setFocus(Qt.OtherFocusReason)

    def _decline_recovery(self) -> None:
        if self.recovery is None:  # answered already (or the window is closing)
            return
        self.recovery = None
        if self.dirty:  # typed while the offer was open: the file now holds (or soon will) this work
            self._autosaved_version = -1
            self.autosave_now()
        else:
            self.autosaver.clear()

    def recover(self) -> bool:
        """Rebuild exactly what the snapshot holds: text, masks, earlier fills, the run at its step."""
        snap, self.recovery = self.recovery, None
        if snap is None:
            return False
        if self.dirty:  # typed while the offer was open (no autosave here: it would overwrite the snapshot)
            choice = self.ask_unsaved("recovering the autosaved document")
            if choice == "cancel" or (choice == "save" and not self.save()):
                self.recovery = snap
                QTimer.singleShot(0, self._offer_recovery)  # the offer stays open
                return False
        self.runner.detach()
        self.mdoc.set_text(snap.text, snap.masked, snap.filled)
        self.undo_stack.clear()
        if snap.run is not None:
            self.show_run_options(snap.run.options)
            self.runner.load(snap.run)
            self.runner.seek(snap.view)
        self.file_path = Path(snap.file_path) if snap.file_path else None
        self._saved_version = -1  # recovered text is not saved anywhere yet
        self._update_title()
        self.notify_status(f"Recovered the autosaved document ({len(snap.masked)} masked characters"
                           + (f", run at step {snap.view}" if snap.run is not None else "") + ")")
        return True

    def settings_dialog(self) -> None:
        from .settings_dialog import SettingsDialog

        dlg = SettingsDialog(self.settings, self)
        dlg.accepted.connect(lambda: self._settings_accepted(dlg))
        dlg.open()

    def _settings_accepted(self, dlg) -> None:
        from .window_view import apply_theme

        old_device = self.settings.device
        dlg.apply_to(self.settings)
        self.editor.set_font_size(self.settings.font_size)
        apply_theme(QApplication.instance(), self.settings.theme)
        if self.settings.device != old_device:
            current = self.model_info.path if self.model_info and self.model_info.path else ""
            self.load_model(current or self.settings.model_path or str(default_model_dir()))


def snapshot_from(doc, run, view: int, file_path: str) -> autosave.Snapshot:
    """A Snapshot from ``WindowFiles._snapshot_parts`` (pure Python: runs in the autosave thread)."""
    st = doc if isinstance(doc, DocState) else build_state(doc)[0]
    in_run = set(run.masked) if run is not None else set()
    masked = st.masked_positions()  # sorted: numpy merges without one long hold of the interpreter lock
    return autosave.Snapshot(
        text=st.original,
        masked=np.union1d(masked, np.fromiter(in_run, np.int64, len(in_run))).tolist() if in_run else masked.tolist(),
        filled=[(i, st.display[i]) for i, _o in st.filled if i not in in_run],
        run=run, view=view, file_path=file_path,
    )
