"""Compare orders: the bits of the original text behind the masks under several orders.

For each chosen order the worker scores the originals with teacher forcing
(``ardm_core.session.score``); the table shows total bits, bits per character
and network calls, and each row gets a per-character bits strip so one can see
where an order pays.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView, QCheckBox, QGridLayout, QGroupBox, QHeaderView, QLabel, QPushButton, QTableWidget,
    QTableWidgetItem, QVBoxLayout, QWidget,
)

from .bits_strip import BitsStrip
from .jobs import CompareRow
from .order_panel import EXPLICIT, engine_orders

DEFAULT_CHECKED = ("l2r", "r2l", "random", "confidence")


class ComparePanel(QWidget):
    compare_requested = Signal(list)  # order names

    COLUMNS = ("Order", "Bits of originals", "Per original char", "Calls", "Bits strip")
    TIPS = ("", "Bits the model needs to encode the original text behind the masks under this order "
            "(teacher forcing: the true characters are written in as it goes)",
            "Those bits per masked character: the cost of the ORIGINAL text, lower = the order suits it. "
            "Not the Run panel's figure, which measures the characters the fill sampled.", "", "")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        box = QGroupBox("Orders to score")
        grid = QGridLayout(box)
        self.checks: dict[str, QCheckBox] = {}
        names = [n for n, _ in engine_orders() if n != EXPLICIT]
        for i, name in enumerate(names):
            cb = QCheckBox(name)
            cb.setChecked(name in DEFAULT_CHECKED)
            self.checks[name] = cb
            grid.addWidget(cb, i // 3, i % 3)
        lay.addWidget(box)
        self.compare_btn = QPushButton("Score the originals under these orders")
        self.compare_btn.clicked.connect(lambda: self.compare_requested.emit(self.chosen()))
        lay.addWidget(self.compare_btn)
        self.status = QLabel("Mask some characters, then score them: fewer bits = the order suits the model better.")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        for c, tip in enumerate(self.TIPS):
            if tip:
                self.table.horizontalHeaderItem(c).setToolTip(tip)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        hh = self.table.horizontalHeader()
        for c in range(4):
            hh.setSectionResizeMode(c, QHeaderView.ResizeToContents)
        hh.setSectionResizeMode(4, QHeaderView.Stretch)
        lay.addWidget(self.table, 1)
        self.rows: list[CompareRow] = []

    def chosen(self) -> list[str]:
        return [n for n, cb in self.checks.items() if cb.isChecked()]

    def clear(self) -> None:
        self.rows.clear()
        self.table.setRowCount(0)

    def add_row(self, row: CompareRow) -> None:
        self.rows.append(row)
        r = self.table.rowCount()
        self.table.insertRow(r)
        cells = (row.order, f"{row.total_bits:.1f}", f"{row.bits_per_char:.3f}", str(row.network_calls))
        for c, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if c:
                item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
            self.table.setItem(r, c, item)
        self.table.setCellWidget(r, 4, BitsStrip(row.bits))
        best = min(self.rows, key=lambda x: x.bits_per_char)
        self.status.setText(f"Best so far: {best.order} at {best.bits_per_char:.3f} bits per original character.")
