"""Side panel: the options of the run on screen (order, K, temperature, seed), then its steps, network calls, total bits, bits per masked character, ms per step, device, accuracy."""

from __future__ import annotations

from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel, QVBoxLayout, QWidget

FIELDS = (
    ("order", "Order"),
    ("k", "Step budget K"),
    ("sampling", "Temperature"),
    ("seed", "Seed"),
    ("steps", "Steps"),
    ("calls", "Network calls"),
    ("filled", "Filled"),
    ("bits", "Bits of the fill"),
    ("bpc", "Per sampled char"),
    ("ms", "ms / step"),
    ("accuracy", "Accuracy vs original"),
    ("device", "Device"),
    ("model", "Model"),
)


TIPS = {
    "bits": "-log2 p of the characters this fill SAMPLED, summed over the steps shown "
            "(how surprised the model is by its own fill; not the cost of the original text)",
    "bpc": "Bits of the fill per character it wrote. Compare orders' 'per original char' "
           "scores the ORIGINAL text instead.",
}


class StatsPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        box = QGroupBox("This run")
        form = QFormLayout(box)
        self.labels: dict[str, QLabel] = {}
        for key, title in FIELDS:
            lab = QLabel("-")
            lab.setObjectName(f"stat_{key}")
            lab.setWordWrap(True)
            self.labels[key] = lab
            form.addRow(title, lab)
            tip = TIPS.get(key)
            if tip:
                lab.setToolTip(tip)
                form.labelForField(lab).setToolTip(tip)
        lay.addWidget(box)
        lay.addStretch(1)

    def set(self, **values: str) -> None:
        for k, v in values.items():
            self.labels[k].setText(v)

    def text(self, key: str) -> str:
        return self.labels[key].text()
