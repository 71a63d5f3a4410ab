"""The colour legend under the editor: what the backgrounds mean in the current colour mode.

Always on screen (presentation mode too): a combo to switch the mode, the
mode's scale drawn as a bar with its two ends named, a sample of the
latest-step look, and, while a coarse-to-fine run is on screen, the class
glyphs of its sketch in a readable size.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QLinearGradient, QPainter
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from .colours import ENDS, LAST_STEP_OUTLINE, SCALES, ramp
from .masked_document import MASK_GLYPH

MODE_TITLES = {"order": "step order", "probability": "probability", "bits": "bits"}


class ScaleBar(QWidget):
    """A mode's colour scale as a horizontal bar (drawn over the editor's base colour, as in the text)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mode = "order"
        self.setMinimumWidth(120)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setFixedHeight(16)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(180, 16)

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self.update()

    def paintEvent(self, _e) -> None:  # noqa: N802
        p = QPainter(self)
        r = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        p.fillRect(r, self.palette().base())
        g = QLinearGradient(r.left(), 0, r.right(), 0)
        n = 16
        for i in range(n + 1):
            g.setColorAt(i / n, QColor(*ramp(self.mode, i / n)))
        p.fillRect(r, g)
        p.setPen(self.palette().color(self.palette().ColorRole.Mid))
        p.drawRect(r)


class ColourLegend(QWidget):
    mode_chosen = Signal(str)  # the user picked a colour mode in the legend's combo

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("colour_legend")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 2, 6, 2)
        outer.setSpacing(2)
        row = QHBoxLayout()
        row.setSpacing(6)
        row.addWidget(QLabel("Colour by"))
        self.combo = QComboBox()
        for mode in SCALES:
            self.combo.addItem(MODE_TITLES.get(mode, mode), mode)
        self.combo.setToolTip("What the background colours of the filled characters show (View menu too)")
        self.combo.activated.connect(lambda i: self.mode_chosen.emit(self.combo.itemData(i)))
        row.addWidget(self.combo)
        self.low = QLabel()
        self.bar = ScaleBar()
        self.high = QLabel()
        row.addWidget(self.low)
        row.addWidget(self.bar, 1)
        row.addWidget(self.high)
        row.addSpacing(10)
        self.last = QLabel(f'<span style="text-decoration: underline; font-weight: bold; '
                           f'text-decoration-color: rgb{LAST_STEP_OUTLINE}">abc</span> latest step')
        self.last.setToolTip("The characters of the step on screen are bold and underlined in orange")
        row.addWidget(self.last)
        row.addSpacing(10)
        self.masked = QLabel(f"{MASK_GLYPH} masked")
        self.masked.setToolTip("A masked character (hidden from the model) shows as a block")
        row.addWidget(self.masked)
        outer.addLayout(row)
        self.glyphs = QLabel()  # coarse to fine: what the sketch's glyphs mean
        self.glyphs.setObjectName("glyph_legend")
        self.glyphs.setWordWrap(True)
        self.glyphs.setTextFormat(Qt.RichText)
        self.glyphs.setVisible(False)
        outer.addWidget(self.glyphs)
        self.mode = ""
        self.set_mode("order")

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        i = self.combo.findData(mode)
        if i >= 0 and i != self.combo.currentIndex():
            self.combo.setCurrentIndex(i)
        title, low, high = ENDS[mode]
        self.low.setText(low)
        self.high.setText(high)
        self.bar.set_mode(mode)
        self.bar.setToolTip(f"{title}: {low} \u2192 {high}")

    def set_glyphs(self, legend: tuple[tuple[str, str], ...] | None) -> None:
        """Show the class glyphs of a coarse-to-fine sketch ((glyph, class name) pairs), or hide them (None)."""
        if not legend:
            self.glyphs.setVisible(False)
            return
        size = max(12, QFont().pointSize() + 4)
        items = "&nbsp;&nbsp; ".join(f'<span style="font-size: {size}pt; font-weight: bold">{_esc(g)}</span>&nbsp;{_esc(n)}'
                                     for g, n in legend)
        self.glyphs.setText("Sketch glyphs (classes first, letters later): " + items)
        self.glyphs.setVisible(True)


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
