"""The main window's file side: open/save text, runs, frames, recent files, autosave and recovery.

A mixin of ``MainWindow`` (it uses the window's editor, document and worker),
kept apart so each module holds one concern.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSaveFile, Qt
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from ardm_core.fileio import DataError, read_utf8
from ardm_core.paths import default_model_dir

from . import autosave
from .run_record import load_run, save_run

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

    def maybe_discard(self) -> bool:
        """Closing or opening over unsaved text: the autosave keeps it, so never ask (no blocking dialog)."""
        if self.dirty:
            self.autosave_now(force=True)
        return True

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
        self.runner.detach()
        self.mdoc.set_text(text)
        self.undo_stack.clear()
        self.file_path = path
        self._saved_version = self.mdoc.version
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
        self.runner.detach()
        self.mdoc.set_text(run.text, run.masked)
        self.undo_stack.clear()
        self.file_path = Path(path)
        self._saved_version = self.mdoc.version
        self.order_panel.set_order(run.options.order)
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
            self.client.export_frames(self.runner.run, self.runner.view or self.runner.recorded, path, fmt)
            self.notify_status("Rendering frames in the background...")

    # -- autosave and recovery --------------------------------------------------------------
    def autosave_now(self, force: bool = False) -> bool:
        """Snapshot the document and its masks (only when it changed since the last snapshot)."""
        if not force and (self.mdoc.version == self._autosaved_version or not self.dirty):
            return False
        st = self.mdoc.state()
        chars = list(st.display)
        for i in st.masked:
            chars[i] = st.source[i]
        snap = autosave.Snapshot(text="".join(chars), masked=list(st.masked),
                                 file_path=str(self.file_path or ""))
        try:
            autosave.write_snapshot(snap)
        except OSError as exc:
            self.notify_status(f"Autosave failed: {exc.strerror}")
            return False
        self._autosaved_version = self.mdoc.version
        return True

    def _offer_recovery(self) -> None:
        snap = self.recovery
        if snap is None:
            return
        box = QMessageBox(QMessageBox.Question, "Recover unsaved work?",
                          f"ARDM Studio did not close cleanly last time. Recover the autosaved document "
                          f"({len(snap.text):,} characters, {len(snap.masked)} masked)"
                          + (f" from {snap.file_path}" if snap.file_path else "") + "?",
                          QMessageBox.Yes | QMessageBox.No, self)
        box.setWindowModality(Qt.NonModal)
        box.finished.connect(lambda r: self.recover() if r == QMessageBox.Yes else self._decline_recovery())
        self._boxes.append(box)
        self.recovery_box = box
        box.show()

    def _decline_recovery(self) -> None:
        self.recovery = None
        autosave.clear_snapshot()

    def recover(self) -> bool:
        snap, self.recovery = self.recovery, None
        if snap is None:
            return False
        self.runner.detach()
        self.mdoc.set_text(snap.text, snap.masked)
        self.undo_stack.clear()
        self.file_path = Path(snap.file_path) if snap.file_path else None
        self._saved_version = -1  # recovered text is not saved anywhere yet
        self._update_title()
        self.notify_status(f"Recovered the autosaved document ({len(snap.masked)} masked characters)")
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
        self.autosave_timer.start(self.settings.autosave_seconds * 1000)
        if self.settings.device != old_device:
            current = self.model_info.path if self.model_info and self.model_info.path else ""
            self.load_model(current or self.settings.model_path or str(default_model_dir()))
