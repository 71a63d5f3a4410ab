"""A small QPainter plot: characters per step under the DP budget schedule vs the naive split."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from .jobs import SchedulePlan

DP_COLOUR = QColor(40, 110, 220)
NAIVE_COLOUR = QColor(220, 120, 30)


class SchedulePlot(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plan: SchedulePlan | None = None
        self.message = "Set a step budget K to see its schedule"
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setMinimumHeight(130)
        self.setToolTip("Characters filled per step: the paper's dynamic programme (blue) puts small steps where "
                        "the expected bits per character fall fastest; the naive split (orange) is even.")

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(260, 140)

    def set_plan(self, plan: SchedulePlan | None, message: str = "") -> None:
        self.plan = plan
        self.message = message
        self.update()

    def paintEvent(self, _e) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        r = QRectF(self.rect()).adjusted(30, 8, -6, -34)
        pal = self.palette()
        p.setPen(pal.color(pal.ColorRole.Mid))
        p.drawRect(r)
        plan = self.plan
        if plan is None or not plan.budget:
            p.setPen(pal.color(pal.ColorRole.PlaceholderText))
            p.drawText(r, Qt.AlignCenter | Qt.TextWordWrap, self.message)
            return
        k = len(plan.budget)
        top = max(max(plan.budget), max(plan.naive), 1)
        bar_w = r.width() / k

        def y(v: float) -> float:
            return r.bottom() - (v / top) * r.height()

        p.setPen(Qt.NoPen)
        p.setBrush(DP_COLOUR.lighter(130))
        for i, s in enumerate(plan.budget):
            p.drawRect(QRectF(r.left() + i * bar_w + bar_w * 0.1, y(s), max(1.0, bar_w * 0.8), r.bottom() - y(s)))
        path = QPainterPath()
        for i, s in enumerate(plan.naive):  # a step line for the naive split
            x0, x1 = r.left() + i * bar_w, r.left() + (i + 1) * bar_w
            if i == 0:
                path.moveTo(QPointF(x0, y(s)))
            else:
                path.lineTo(QPointF(x0, y(s)))
            path.lineTo(QPointF(x1, y(s)))
        p.setPen(QPen(NAIVE_COLOUR, 2))
        p.setBrush(Qt.NoBrush)
        p.drawPath(path)
        p.setPen(pal.color(pal.ColorRole.Text))
        p.drawText(QRectF(0, r.top() - 4, 28, 16), Qt.AlignRight, str(top))
        p.drawText(QRectF(0, r.bottom() - 12, 28, 16), Qt.AlignRight, "0")
        p.drawText(QRectF(r.left(), r.bottom() + 2, r.width(), 14), Qt.AlignCenter, f"step 1 ... {k}")
        fm_h = 14
        legend = QRectF(r.left(), r.bottom() + 2 + fm_h, r.width(), fm_h)
        p.setPen(DP_COLOUR)
        p.drawText(legend, Qt.AlignLeft, f"DP {plan.budget_bits:.0f} bits")
        p.setPen(NAIVE_COLOUR)
        p.drawText(legend, Qt.AlignRight, f"naive {plan.naive_bits:.0f} bits")
