"""Settings dialog: font size, theme, compute device, autosave interval (opened non-modally)."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QSpinBox, QWidget

from ardm_core.device import DEVICES

from .settings import THEMES, Settings


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        form = QFormLayout(self)
        self.font_size = QSpinBox(minimum=6, maximum=72, value=settings.font_size)
        self.theme = QComboBox()
        self.theme.addItems(list(THEMES))
        self.theme.setCurrentText(settings.theme)
        self.device = QComboBox()
        self.device.addItems(list(DEVICES))
        self.device.setCurrentText(settings.device)
        self.device.setToolTip("auto: CUDA, then Apple MPS, then the CPU. Changing it reloads the model.")
        self.autosave = QSpinBox(minimum=1, maximum=600, value=settings.autosave_seconds, suffix=" s")
        form.addRow("Editor font size", self.font_size)
        form.addRow("Theme", self.theme)
        form.addRow("Device", self.device)
        form.addRow("Autosave while typing, at least every", self.autosave)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def apply_to(self, s: Settings) -> None:
        s.font_size = self.font_size.value()
        s.theme = self.theme.currentText()
        s.device = self.device.currentText()
        s.autosave_seconds = self.autosave.value()
        s.clean()
