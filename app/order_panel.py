"""Order panel: decoding order, hand-picked order, step budget K with its plan, sampling options."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QSlider, QSpinBox,
    QVBoxLayout, QWidget,
)

from .run_record import RunOptions
from .schedule_plot import SchedulePlot

EXPLICIT = "explicit"


def engine_orders() -> list[tuple[str, str]]:
    """(name, help) of every order the engine knows; empty if the engine is not importable."""
    try:
        from ardm_core.orders import ORDERS
    except ImportError:
        return []
    return [(name, getattr(fn, "help", "")) for name, fn in ORDERS.items()]


def upscale_available() -> bool:
    from ardm_core.paths import upscale_model_dir

    return (upscale_model_dir() / "config.json").exists()


def upscale_tooltip() -> str:
    """What the coarse-to-fine glyphs mean (the default stage map), or why the option is off."""
    if not upscale_available():
        from ardm_core.paths import upscale_model_dir

        return f"Needs the upscaling model in {upscale_model_dir()}, which is not installed"
    from ardm_core.stages import DEFAULT_CLASSES

    legend = "<br>".join(f"<b>{glyph}</b> {name}" for name, glyph, _c, _m in DEFAULT_CLASSES)
    return ("Depth upscaling: the upscaling model first decides every masked character's class, "
            "then the characters within their classes. The sketch uses these glyphs:<br>" + legend)


class OrderPanel(QWidget):
    options_changed = Signal()
    budget_changed = Signal(int)  # K (0 = one character per step: the slider's right end), debounced
    pick_mode_changed = Signal(bool)
    undo_pick = Signal()
    clear_picks = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._debounce = QTimer(self, singleShot=True, interval=150)  # re-plan once the slider rests
        self._debounce.timeout.connect(lambda: self.budget_changed.emit(self.budget()))
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self._build_order_box())
        lay.addWidget(self._build_budget_box())
        lay.addWidget(self._build_sampling_box())
        lay.addStretch(1)

    # -- building ---------------------------------------------------------------------
    def _build_order_box(self) -> QGroupBox:
        box = QGroupBox("Decoding order")
        form = QVBoxLayout(box)
        self.order_combo = QComboBox()
        self.rest_combo = QComboBox()
        for name, help_text in engine_orders():
            if name == EXPLICIT:
                continue
            self.order_combo.addItem(name, name)
            self.order_combo.setItemData(self.order_combo.count() - 1, help_text, Qt.ToolTipRole)
            self.rest_combo.addItem(name, name)
        self.order_combo.addItem("hand-picked", EXPLICIT)
        self.order_combo.setItemData(self.order_combo.count() - 1, "click masked characters in the order to fill them",
                                     Qt.ToolTipRole)
        self.order_combo.currentIndexChanged.connect(self._order_changed)
        form.addWidget(self.order_combo)
        self.pick_row = QWidget()
        pr = QVBoxLayout(self.pick_row)
        pr.setContentsMargins(0, 0, 0, 0)
        self.pick_label = QLabel("Click masked characters in the order to fill them.")
        self.pick_label.setWordWrap(True)
        btns = QHBoxLayout()
        self.undo_pick_btn = QPushButton("Undo pick")
        self.clear_picks_btn = QPushButton("Clear")
        self.undo_pick_btn.clicked.connect(self.undo_pick)
        self.clear_picks_btn.clicked.connect(self.clear_picks)
        btns.addWidget(self.undo_pick_btn)
        btns.addWidget(self.clear_picks_btn)
        rest = QHBoxLayout()
        rest.addWidget(QLabel("Fill the rest:"))
        rest.addWidget(self.rest_combo, 1)
        pr.addWidget(self.pick_label)
        pr.addLayout(btns)
        pr.addLayout(rest)
        self.pick_row.setVisible(False)
        form.addWidget(self.pick_row)
        self.upscale_check = QCheckBox("Coarse to fine (classes first)")
        self.upscale_check.setToolTip(upscale_tooltip())
        self.upscale_check.setEnabled(upscale_available())
        self.upscale_check.toggled.connect(self.options_changed)
        form.addWidget(self.upscale_check)
        return box

    def _build_budget_box(self) -> QGroupBox:
        box = QGroupBox("Step budget")
        v = QVBoxLayout(box)
        row = QHBoxLayout()
        self.k_slider = QSlider(Qt.Horizontal)
        # K runs from 1 (everything in one call) to the number of masks (one character per step)
        self.k_slider.setRange(1, 256)
        self.k_slider.setValue(256)
        self.k_slider.setToolTip("K, the number of network calls for the whole fill; "
                                 "the right end is one character per step")
        self.k_label = QLabel()
        self.k_label.setMinimumWidth(70)
        self.k_slider.valueChanged.connect(self._k_changed)
        row.addWidget(QLabel("K"))
        row.addWidget(self.k_slider, 1)
        row.addWidget(self.k_label)
        v.addLayout(row)
        self.plot = SchedulePlot()
        v.addWidget(self.plot)
        self._k_changed(self.k_slider.value())
        return box

    def _build_sampling_box(self) -> QGroupBox:
        box = QGroupBox("Sampling")
        form = QFormLayout(box)
        self.temperature = QDoubleSpinBox(decimals=2, minimum=0.05, maximum=5.0, singleStep=0.05, value=0.7)
        self.top_p = QDoubleSpinBox(decimals=2, minimum=0.01, maximum=1.0, singleStep=0.05, value=0.7)
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        for w in (self.temperature, self.top_p, self.seed):
            w.valueChanged.connect(self.options_changed)
        form.addRow("Temperature", self.temperature)
        form.addRow("Top-p", self.top_p)
        form.addRow("Seed", self.seed)
        return box

    # -- state ------------------------------------------------------------------------
    def _order_changed(self) -> None:
        explicit = self.order() == EXPLICIT
        self.pick_row.setVisible(explicit)
        self.k_slider.setEnabled(not explicit)
        self.pick_mode_changed.emit(explicit)
        self.options_changed.emit()

    def _k_changed(self, _k: int) -> None:
        k = self.budget()
        self.k_label.setText("1 char/step" if k == 0 else f"{k} steps")
        self._debounce.start()
        self.options_changed.emit()

    def set_k_range(self, n_masked: int) -> None:
        at_end = self.k_slider.value() >= self.k_slider.maximum()
        self.k_slider.setMaximum(max(1, n_masked))
        if at_end:
            self.k_slider.setValue(self.k_slider.maximum())

    def budget(self) -> int:
        """K, or 0 for one character per step (the slider's right end)."""
        k = self.k_slider.value()
        return 0 if k >= self.k_slider.maximum() else k

    def set_budget(self, k: int) -> None:
        self.k_slider.setValue(k if k > 0 else self.k_slider.maximum())

    def set_pick_count(self, n: int, n_masked: int) -> None:
        self.pick_label.setText(f"{n} of {n_masked} masked characters picked. Click masked characters in the order "
                                "to fill them; the rest follow the order below.")

    def order(self) -> str:
        return str(self.order_combo.currentData())

    def set_order(self, name: str) -> None:
        i = self.order_combo.findData(name)
        if i >= 0:
            self.order_combo.setCurrentIndex(i)

    def set_options(self, o: RunOptions) -> None:
        """Show a run's options (K at the slider's right end when the run filled one character per step)."""
        self.set_order(o.order)
        i = self.rest_combo.findData(o.rest_order)
        if i >= 0:
            self.rest_combo.setCurrentIndex(i)
        self.set_budget(o.steps or 0)
        self.temperature.setValue(o.temperature)
        self.top_p.setValue(o.top_p)
        self.seed.setValue(o.seed)
        if self.upscale_check.isEnabled() or not o.upscale:
            self.upscale_check.setChecked(o.upscale)

    def options(self, explicit: tuple[int, ...] = ()) -> RunOptions:
        k = self.budget()
        return RunOptions(order=self.order(), steps=k or None, explicit=tuple(explicit),
                          rest_order=str(self.rest_combo.currentData() or "l2r"),
                          temperature=self.temperature.value(), top_p=self.top_p.value(), seed=self.seed.value(),
                          upscale=self.upscale_check.isChecked())
