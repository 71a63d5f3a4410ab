"""Why this character? Alt-click a filled character (or right-click it, "Why this character?") to see
what the model looked at.

A heat layer over the editor colours the context characters by their weight
at the step the character was filled: the attention rollout (default), one
layer's head average, one head, or the occlusion saliency. A small panel in
the editor's corner holds the legend, the layer/head selector and a close
button; Esc, the close button, or a new run clears it. The numbers come from
the worker thread (app.explain_job); this module only paints them.
"""

from __future__ import annotations

import itertools

import numpy as np
from PySide6.QtCore import QEvent, QObject, QRect, Qt
from PySide6.QtGui import QAction, QColor, QLinearGradient, QPainter, QPen
from PySide6.QtWidgets import QComboBox, QFrame, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from .colours import EXPLAINED_OUTLINE, heat
from .explain_job import ExplainFailed, ExplainReady, explain_job
from .frames import FrameHeat
from .masked_document import PosMap

TARGET = QColor(*EXPLAINED_OUTLINE)  # outline of the explained character
AGGREGATE, OCCLUSION = "aggregate", "occlusion"


def heat_colour(level: float) -> QColor:
    """Translucent heat for a weight scaled to 0..1 (the same colours as the exported frames)."""
    return QColor(*heat(level))


class HeatLayer(QWidget):
    """Paints translucent boxes over characters (Qt positions) of the editor; mouse events pass through."""

    def __init__(self, editor) -> None:
        super().__init__(editor.viewport())
        self.editor = editor
        self.setAttribute(Qt.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WA_NoSystemBackground)
        self.heat: list[tuple[int, float]] = []  # (Qt position, level 0..1)
        self.target: int | None = None
        self.resize(editor.viewport().size())
        self.hide()

    def set_heat(self, heat: list[tuple[int, float]], target: int | None) -> None:
        self.heat, self.target = heat, target
        self.resize(self.editor.viewport().size())
        self.setVisible(bool(heat) or target is not None)
        self.raise_()
        self.update()

    def clear(self) -> None:
        self.heat, self.target = [], None
        self.hide()

    def paintEvent(self, e) -> None:  # noqa: N802
        p = QPainter(self)
        vis = self.rect()
        p.setPen(Qt.NoPen)
        for q, level in self.heat:
            r = self.editor._char_rect(q)
            if vis.intersects(r):
                p.fillRect(r, heat_colour(level))
        if self.target is not None:
            r = self.editor._char_rect(self.target)
            p.setPen(QPen(TARGET, 2))
            p.setBrush(Qt.NoBrush)
            p.drawRect(r.adjusted(0, 0, -1, -1))
        p.end()


class Legend(QWidget):
    """A gradient from no weight to the largest weight shown, with the two ends labelled."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(160, 30)
        self.top = 1.0
        self.unit = ""

    def set_range(self, top: float, unit: str) -> None:
        self.top, self.unit = top, unit
        self.update()

    def paintEvent(self, e) -> None:  # noqa: N802
        p = QPainter(self)
        bar = QRect(0, 0, self.width() - 1, 12)
        g = QLinearGradient(bar.topLeft(), bar.topRight())
        g.setColorAt(0.0, heat_colour(0.0))
        g.setColorAt(1.0, heat_colour(1.0))
        p.fillRect(bar, g)
        p.setPen(self.palette().text().color())
        p.drawText(QRect(0, 14, self.width(), 16), Qt.AlignLeft, "0")
        p.drawText(QRect(0, 14, self.width(), 16), Qt.AlignRight, f"{self.top:.3g} {self.unit}".strip())
        p.end()


class ExplainPanel(QFrame):
    """Title, legend, the layer/head selector and a close button."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("explain_panel")
        self.setFrameShape(QFrame.StyledPanel)
        self.setAutoFillBackground(True)
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.close_button = QToolButton()
        self.close_button.setText("×")
        self.close_button.setToolTip("Clear the overlay (Esc)")
        self.selector = QComboBox()
        self.selector.setToolTip("Aggregate: attention rollout over all layers. Occlusion: bits the prediction "
                                 "moves when that character is masked. Or one layer (head average) or one head.")
        self.legend = Legend()
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.close_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 6)
        lay.addLayout(top)
        lay.addWidget(self.selector)
        lay.addWidget(self.legend)
        self.setFixedWidth(240)
        self.hide()

    def set_views(self, layers: int, heads: int) -> None:
        self.selector.blockSignals(True)
        self.selector.clear()
        self.selector.addItem("Aggregate (attention rollout)", (AGGREGATE, None, None))
        self.selector.addItem("Occlusion (bits)", (OCCLUSION, None, None))
        for layer in range(layers):
            self.selector.addItem(f"Layer {layer + 1}: all heads", ("layer", layer, None))
            for head in range(heads):
                self.selector.addItem(f"Layer {layer + 1}, head {head + 1}", ("layer", layer, head))
        self.selector.blockSignals(False)


class ExplainOverlay(QObject):
    """Alt-click on a filled character, or its right-click entry, asks the worker for an explanation and paints it."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.w = window
        self.editor = window.editor
        self.layer = HeatLayer(self.editor)
        self.panel = ExplainPanel(self.editor.viewport())
        self.explanation = None
        self.message = ""  # the last thing said to the user (tests read it)
        self._pm = PosMap("")
        self._requests = itertools.count(1)
        self._waiting = 0
        self._viewport = self.editor.viewport()
        self._viewport.installEventFilter(self)
        self.editor.installEventFilter(self)
        self.editor.verticalScrollBar().valueChanged.connect(lambda *_: self.layer.update())
        self.panel.close_button.clicked.connect(self.clear)
        self.panel.selector.currentIndexChanged.connect(lambda *_: self._paint())
        self.editor.context_actions = self._context_actions  # right-click: "Why this character?"
        window.client.event.connect(self._on_event)
        window.runner.changed.connect(self._on_run_changed)

    @property
    def active(self) -> bool:
        return self.explanation is not None and not self.layer.isHidden()

    # -- input --------------------------------------------------------------------------
    def eventFilter(self, obj, e) -> bool:  # noqa: N802
        try:
            return self._filter(obj, e)
        except RuntimeError:  # the editor is being destroyed with the window
            return False

    def _filter(self, obj, e) -> bool:
        if obj is self._viewport:
            if e.type() == QEvent.MouseButtonPress and e.button() == Qt.LeftButton and e.modifiers() & Qt.AltModifier:
                q = self.editor.position_at(e.position().toPoint())
                if q is not None:
                    self.request(q)
                    return True
            elif e.type() == QEvent.Resize:
                self.layer.resize(e.size())
                self._place_panel()
        elif obj is self.editor and e.type() == QEvent.KeyPress and e.key() == Qt.Key_Escape and self.active:
            self.clear()
            return True
        return False

    def _context_actions(self, q: int, menu) -> list[QAction]:
        """The right-click entry on a filled character (the same as Alt-click on it)."""
        if self.w.runner.info_at(q) is None:
            return []
        act = QAction("Why this character?", menu)
        act.setObjectName("why_this_character")
        act.setToolTip("What the model looked at when it filled this character (also Alt-click)")
        act.triggered.connect(lambda *_: self.request(q))
        return [act]

    def request(self, q: int) -> bool:
        """Explain the filled character at Qt position ``q``; False (with a message) if it is not one."""
        runner = self.w.runner
        hit = runner.info_at(q)
        if hit is None or runner.run is None:
            self._say("Alt-click a character the model filled to see what it looked at")
            return False
        run = runner.run
        fingerprint = run.model_fingerprint
        if not fingerprint:
            if not runner.live or self.w.model_info is None:
                self._say("the model changed since this run; rerun the fill to see what the model looked at")
                return False
            fingerprint = self.w.model_info.fingerprint
        step, _i = hit
        self._pm = PosMap(run.text)
        position = self._pm.to_py(q)
        records = tuple(run.steps[: step.index + 1])  # frozen records: a snapshot for the worker
        req = self._waiting = next(self._requests)
        text, masked, order = run.text, tuple(run.masked), run.options.order
        self.w.client.submit("explain", lambda st: explain_job(st, req, text, masked, records, position, order,
                                                                fingerprint))
        self._say(f"explaining position {position}...")
        return True

    # -- results ------------------------------------------------------------------------
    def _on_event(self, ev) -> None:
        if isinstance(ev, ExplainFailed) and ev.request == self._waiting:
            self._say(ev.message)
        elif isinstance(ev, ExplainReady) and ev.request == self._waiting:
            ex = self.explanation = ev.explanation
            self.panel.set_views(ex.attention.shape[0], ex.attention.shape[1])
            self.panel.title.setText(f"Why '{_show(self._filled_char(ex))}'? Position {ex.position}, step {ex.step + 1}")
            self._paint()
            self.panel.show()
            self._place_panel()
            self._say(f"position {ex.position}: what the model looked at when it filled it")

    def _filled_char(self, ex) -> str:
        run = self.w.runner.run
        if run is None or ex.step >= len(run.steps):
            return "?"
        s = run.steps[ex.step]
        return s.chars[s.positions.index(ex.position)] if ex.position in s.positions else "?"

    def weights(self) -> tuple[np.ndarray, str]:
        """The weights the selector asks for, over the explanation's window, and their unit."""
        ex = self.explanation
        kind, layer, head = self.panel.selector.currentData() or (AGGREGATE, None, None)
        if kind == OCCLUSION:
            return ex.occlusion, "bits"
        if kind == "layer":
            return ex.weights(layer, head), ""
        return ex.aggregate, ""

    def _levels(self) -> tuple[list[tuple[int, float]], float, str]:
        """The heat on the context characters: (text index, weight scaled to 0..1), the largest weight, the unit."""
        ex = self.explanation
        w, unit = self.weights()
        cols = np.flatnonzero(ex.known)
        top = float(w[cols].max()) if len(cols) else 0.0
        scale = top if top > 0 else 1.0
        return [(ex.window_start + int(c), float(w[c]) / scale) for c in cols if w[c] > 0], top, unit

    def _paint(self) -> None:
        ex = self.explanation
        if ex is None:
            return
        levels, top, unit = self._levels()
        self.layer.set_heat([(self._pm.to_qt(p), level) for p, level in levels], self._pm.to_qt(ex.position))
        self.panel.legend.set_range(top, unit)

    def frame_heat(self) -> FrameHeat | None:
        """The overlay on screen, for the exported frames (None when it is off)."""
        if not self.active:
            return None
        ex = self.explanation
        levels, top, unit = self._levels()
        view = self.panel.selector.currentText().split(" (")[0] or "Aggregate"
        legend = (f"Why '{_show(self._filled_char(ex))}' (position {ex.position}, step {ex.step + 1}): "
                  f"{view}, 0 - {top:.3g} {unit}").strip()
        return FrameHeat(position=ex.position, step=ex.step, levels=tuple(levels), legend=legend)

    def _place_panel(self) -> None:
        vp = self.editor.viewport()
        self.panel.adjustSize()
        self.panel.move(max(0, vp.width() - self.panel.width() - 8), max(0, vp.height() - self.panel.height() - 8))
        self.panel.raise_()

    def clear(self) -> None:
        self.explanation = None
        self._waiting = 0
        self.layer.clear()
        self.panel.hide()

    def _on_run_changed(self) -> None:
        ex, runner = self.explanation, self.w.runner
        if ex is not None and (runner.run is None or runner.view <= ex.step):
            self.clear()  # the run went away, or the view moved before the step explained

    def _say(self, text: str) -> None:
        self.message = text
        notify = getattr(self.w, "notify_status", None)
        if notify is not None:
            notify(text)


def _show(c: str) -> str:
    return {"\n": "⏎", " ": "␣", "\t": "⇥"}.get(c, c)
