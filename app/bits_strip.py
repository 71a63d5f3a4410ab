"""A strip of per-character bits for one order: one thin column per masked character, darker = more bits."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

MAX_BITS = 8.0


class BitsStrip(QWidget):
    def __init__(self, bits: tuple[float, ...] = (), parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bits = np.asarray(bits, dtype=np.float64)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setMinimumHeight(18)
        self.setToolTip("Bits per masked character under this order, left to right in the text "
                        "(white: 0 bits, dark red: 8 or more)")

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(300, 18)

    def columns(self, width: int) -> np.ndarray:
        """Mean bits per pixel column (many characters share a column on long texts)."""
        n = len(self.bits)
        if n == 0 or width <= 0:
            return np.zeros(0)
        if n <= width:
            return self.bits
        edges = np.linspace(0, n, width + 1).astype(np.int64)
        sums = np.add.reduceat(np.nan_to_num(self.bits, posinf=MAX_BITS), edges[:-1])
        return sums / np.maximum(1, np.diff(edges))

    def paintEvent(self, _e) -> None:  # noqa: N802
        p = QPainter(self)
        w, h = self.width(), self.height()
        cols = self.columns(w)
        if not len(cols):
            return
        cw = w / len(cols)
        for i, b in enumerate(cols):
            t = min(1.0, max(0.0, float(b) / MAX_BITS))
            p.fillRect(QRectF(i * cw, 0, cw + 0.5, h), QColor(255, round(255 * (1 - t) ** 1.5), round(255 * (1 - t))))
        p.setPen(self.palette().color(self.palette().ColorRole.Mid))
        p.setBrush(Qt.NoBrush)
        p.drawRect(0, 0, w - 1, h - 1)
