"""Playback controls: Run, Pause, Step, Step back, Reset, speed, timeline, resample from here."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProxyStyle, QSlider, QStyle, QToolButton, QWidget


class _JumpStyle(QProxyStyle):
    """A click on the timeline's groove goes to the step under the pointer (not a page of steps)."""

    def styleHint(self, hint, option=None, widget=None, returnData=None):  # noqa: N802
        if hint == QStyle.SH_Slider_AbsoluteSetButtons:
            return int(Qt.LeftButton.value) | int(Qt.MiddleButton.value)
        return super().styleHint(hint, option, widget, returnData)


class PlaybackBar(QWidget):
    run_clicked = Signal()
    pause_clicked = Signal()
    step_clicked = Signal()
    back_clicked = Signal()
    reset_clicked = Signal()
    resample_clicked = Signal()
    speed_changed = Signal(int)  # steps per second; the top of the range means "as fast as possible"
    seek = Signal(int)  # timeline moved by the user: show the state after this many steps

    MAX_SPEED = 200

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        st = self.style()
        self.run_btn = self._button(st.standardIcon(QStyle.SP_MediaPlay), "Run", "Run the fill (F5)", self.run_clicked)
        self.pause_btn = self._button(st.standardIcon(QStyle.SP_MediaPause), "Pause", "Pause after this step (F6)",
                                      self.pause_clicked)
        self.back_btn = self._button(st.standardIcon(QStyle.SP_MediaSeekBackward), "Step back", "Undo one step",
                                     self.back_clicked)
        self.step_btn = self._button(st.standardIcon(QStyle.SP_MediaSeekForward), "Step", "One step (F7)",
                                     self.step_clicked)
        self.reset_btn = self._button(st.standardIcon(QStyle.SP_MediaStop), "Reset",
                                      "Stop and put every mask back", self.reset_clicked)
        self.resample_btn = self._button(st.standardIcon(QStyle.SP_BrowserReload), "Resample from here",
                                         "Keep the steps up to the timeline position and sample the rest anew "
                                         "(next seed); needs a run computed in this session", self.resample_clicked)
        for b in (self.run_btn, self.pause_btn, self.back_btn, self.step_btn, self.reset_btn, self.resample_btn):
            lay.addWidget(b)
        lay.addSpacing(12)
        lay.addWidget(QLabel("Speed"))
        self.speed = QSlider(Qt.Horizontal)
        self.speed.setRange(1, self.MAX_SPEED)
        self.speed.setFixedWidth(110)
        self.speed.setToolTip("Steps per second (far right: as fast as the model goes)")
        self.speed.valueChanged.connect(self.speed_changed)
        lay.addWidget(self.speed)
        lay.addSpacing(12)
        self.timeline = QSlider(Qt.Horizontal)
        self.timeline.setRange(0, 0)
        self._jump_style = _JumpStyle()  # no base argument: a proxy takes ownership of the style it is given
        self._jump_style.setParent(self)
        self.timeline.setStyle(self._jump_style)
        self.timeline.setToolTip("Recorded steps: drag to replay the fill")
        self.timeline.sliderMoved.connect(self.seek)
        self.timeline.actionTriggered.connect(self._timeline_action)
        lay.addWidget(self.timeline, 1)
        self.position_label = QLabel("0 / 0")
        self.position_label.setMinimumWidth(90)
        lay.addWidget(self.position_label)
        self.set_state(running=False, can_run=False, has_steps=False, at_end=True)

    def _button(self, icon: QIcon, text: str, tip: str, signal) -> QToolButton:
        b = QToolButton()
        b.setIcon(icon)
        b.setText(text)
        b.setToolTip(tip)
        b.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        b.clicked.connect(signal)
        return b

    def _timeline_action(self, _action: int) -> None:
        if not self.timeline.isSliderDown():  # clicks and keys on the slider (drags come through sliderMoved)
            self.seek.emit(self.timeline.sliderPosition())

    def set_timeline(self, position: int, recorded: int, total_hint: int = 0) -> None:
        self.timeline.blockSignals(True)
        self.timeline.setRange(0, recorded)
        self.timeline.setValue(position)
        self.timeline.blockSignals(False)
        total = f" of ~{total_hint}" if total_hint and total_hint != recorded else ""
        self.position_label.setText(f"{position} / {recorded}{total}")

    def set_state(self, *, running: bool, can_run: bool, has_steps: bool, at_end: bool,
                  can_resample: bool | None = None) -> None:
        """can_resample: the worker holds this run's session (not so for a run opened from a file)."""
        self.run_btn.setEnabled(can_run and not running)
        self.step_btn.setEnabled(can_run and not running)
        self.pause_btn.setEnabled(running)
        self.back_btn.setEnabled(has_steps and not running)
        self.reset_btn.setEnabled(has_steps or running)
        self.resample_btn.setEnabled(has_steps and not running and (can_resample is None or can_resample))
        self.timeline.setEnabled(has_steps and not running)

    def delay_seconds(self) -> float:
        v = self.speed.value()
        return 0.0 if v >= self.MAX_SPEED else 1.0 / v
