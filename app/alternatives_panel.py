"""The Alternatives panel: N fills of the masked text, ranked by the model's bits; click one to apply it.

The panel lists fills best first with their bits per character. Clicking one
writes it into the document as one undo level (Ctrl+Z takes it back);
Alt+Down applies the next one in the list (undoing the one it applied before);
"More" samples another batch with new seeds and merges it in. "Real words"
keeps every letter run touching a gap a lexicon word; "Any length" lets the
one gap take any length in the range (the likeliest lengths come first).

The model runs in the worker thread (app.alternatives_job); the panel only
sees plain results.
"""

from __future__ import annotations

import itertools

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QCheckBox, QDockWidget, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QSpinBox, QVBoxLayout, QWidget,
)

from ardm_core.alternatives import MAX_ALTERNATIVES

from .alternatives_job import AltItem, AlternativesFailed, AlternativesReady, alternatives_job
from .masked_document import PosMap, filled_format


class AlternativesPanel(QWidget):
    find_clicked = Signal()
    more_clicked = Signal()
    chosen = Signal(int)  # row of the alternative to apply

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        row = QHBoxLayout()
        self.count = QSpinBox(minimum=1, maximum=MAX_ALTERNATIVES, value=8)
        self.count.setToolTip("fills per batch: all of them in one network call per step")
        self.find_btn = QPushButton("Alternatives")
        self.find_btn.setToolTip("sample fills of the masked text, ranked by the model's bits per character")
        self.more_btn = QPushButton("More")
        self.more_btn.setToolTip("sample another batch with new seeds")
        self.more_btn.setEnabled(False)
        row.addWidget(QLabel("N"))
        row.addWidget(self.count)
        row.addWidget(self.find_btn)
        row.addWidget(self.more_btn)
        lay.addLayout(row)
        self.words = QCheckBox("Real words")
        self.words.setToolTip("every run of letters touching a gap becomes a word of the lexicon (from the training corpus)")
        lay.addWidget(self.words)
        row2 = QHBoxLayout()
        self.any_length = QCheckBox("Any length")
        self.any_length.setToolTip("the one masked gap may take any length in the range; the likeliest lengths rank first")
        self.min_len = QSpinBox(minimum=1, maximum=200, value=1)
        self.max_len = QSpinBox(minimum=1, maximum=200, value=12)
        row2.addWidget(self.any_length)
        row2.addWidget(self.min_len)
        row2.addWidget(QLabel("to"))
        row2.addWidget(self.max_len)
        lay.addLayout(row2)
        self.list = QListWidget()
        self.list.setToolTip("click to apply (undoable); Alt+Down applies the next one")
        lay.addWidget(self.list, 1)
        self.status = QLabel("Mask a gap, then press Alternatives")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.find_btn.clicked.connect(self.find_clicked)
        self.more_btn.clicked.connect(self.more_clicked)
        self.list.itemClicked.connect(lambda it: self.chosen.emit(self.list.row(it)))

    def show_items(self, items: list[AltItem]) -> None:
        self.list.clear()
        for it in items:
            extra = "" if it.constrained_bits is None else f", {it.constrained_bits:.1f} constrained"
            w = QListWidgetItem(f"{it.fill!r}   {it.bits_per_char:.2f} bits/char ({it.bits:.1f} bits{extra})")
            w.setToolTip(it.text)
            self.list.addItem(w)


class AlternativesController(QObject):
    """Owns the panel's dock; asks the worker for fills and applies the one the writer picks."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.w = window
        self.panel = AlternativesPanel()
        self.dock = QDockWidget("Alternatives", window)
        self.dock.setObjectName("dock-alternatives")
        self.dock.setWidget(self.panel)
        window.addDockWidget(Qt.RightDockWidgetArea, self.dock)
        self.items: list[AltItem] = []
        self.message = ""  # the last thing said (tests read it)
        self.applied: int | None = None  # row applied last
        self._applied_at = -1  # the undo stack's index right after that application
        self._request = itertools.count(1)
        self._waiting = 0
        self._snapshot: tuple[str, tuple[int, ...], tuple[int, int] | None] | None = None
        self._batches = 0
        self._exclude = ""  # resample: the fill already shown, not to offer again
        self.panel.find_clicked.connect(self.find)
        self.panel.more_clicked.connect(self.more)
        self.panel.chosen.connect(self.apply)
        self.cycle_shortcut = QShortcut(QKeySequence("Alt+Down"), window, activated=self.cycle)
        window.client.event.connect(self._on_event)

    # -- asking ------------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        self.message = text
        self.panel.status.setText(text)

    def _options(self):
        return self.w.order_panel.options(())

    def find(self) -> bool:
        """Sample a fresh batch for the masks the document has now."""
        if self.w.model_info is None:
            self._say("No model is loaded")
            return False
        st = self.w.mdoc.state()
        if not st.masked:
            self._say("Mask some characters first")
            return False
        lengths = None
        if self.panel.any_length.isChecked():
            lo, hi = self.panel.min_len.value(), self.panel.max_len.value()
            lengths = (lo, hi)
        self._snapshot = (st.source, tuple(st.masked), lengths)
        self.items, self.applied, self._batches, self._exclude = [], None, 0, ""
        return self._ask()

    def more(self) -> bool:
        if self._snapshot is None:
            return self.find()
        return self._ask()

    def resample_different(self, text: str, masked: tuple[int, ...], current: str) -> bool:
        """A fill of ``masked`` that differs from ``current`` (what the run wrote), applied when it arrives."""
        if self.w.model_info is None or not masked:
            return False
        self._snapshot = (text, tuple(masked), None)
        self.items, self.applied, self._batches, self._exclude = [], None, 1, current
        return self._ask(auto_apply=True)

    def _ask(self, auto_apply: bool = False) -> bool:
        text, masked, lengths = self._snapshot
        o = self._options()
        n = self.panel.count.value()
        seed = o.seed + 1000 * (self._batches + 1) if self._batches else o.seed
        self._batches += 1
        req = self._waiting = next(self._request)
        self._auto_apply = auto_apply
        words = self.panel.words.isChecked()
        temperature, order = o.temperature, o.order
        self.w.client.submit("alternatives", lambda st: alternatives_job(st, req, text, masked, n=n, seed=seed,
                                                                         temperature=temperature, order=order,
                                                                         words=words, lengths=lengths))
        self.panel.find_btn.setEnabled(False)
        self.panel.more_btn.setEnabled(False)
        self._say(f"sampling {n} fills...")
        return True

    # -- results -----------------------------------------------------------------------------
    def _on_event(self, ev) -> None:
        if isinstance(ev, (AlternativesReady, AlternativesFailed)) and ev.request == self._waiting:
            self.panel.find_btn.setEnabled(True)
            self.panel.more_btn.setEnabled(True)
            if isinstance(ev, AlternativesFailed):
                self._say(ev.message)
                return
            seen = {it.text for it in self.items}
            new = [it for it in ev.items if it.text not in seen and it.chars != self._exclude]
            self.items = sorted(self.items + new, key=lambda it: it.score_bits)  # one ranking across batches
            self.panel.show_items(self.items)
            msg = f"{len(self.items)} distinct fills" + (f" ({len(new)} new)" if self._batches > 1 else "")
            if ev.chosen_length is not None:
                msg += "; lengths " + ", ".join(f"{L}: {s:.1f}" for L, s in ev.lengths) + f" bits; likeliest {ev.chosen_length}"
            if ev.note:
                msg += "; " + ev.note
            self._say(msg)
            if self._auto_apply:
                self._auto_apply = False
                if self.items:
                    self.apply(0)
                else:
                    self._say("every sample gave the fill already shown")

    # -- applying ----------------------------------------------------------------------------
    def apply(self, row: int) -> bool:
        """Write alternative ``row`` into the document as one undo level."""
        if not 0 <= row < len(self.items) or self._snapshot is None:
            return False
        it = self.items[row]
        text, masked, lengths = self._snapshot
        doc_text = self.w.editor.toPlainText()
        if len(doc_text) != len(text) and self.applied is None:
            self._say("the text changed since these fills were made; press Alternatives again")
            return False
        if self.applied is not None and self.w.undo_stack.index() == self._applied_at:
            self.w.undo_stack.undo()  # replace the alternative applied before
        pm = PosMap(self.w.editor.toPlainText())
        st = self.w.mdoc.state()
        with self.w.mirror.labelled("Apply alternative"):
            cur = QTextCursor(self.w.editor.document())
            cur.beginEditBlock()
            try:
                if lengths is not None:  # the gap's length changes: replace the span
                    a, b = it.start, it.end
                    cur.setPosition(pm.to_qt(a))
                    cur.setPosition(pm.to_qt(b), QTextCursor.KeepAnchor)
                    cur.insertText(it.chars, QTextCharFormat())
                else:
                    for p, c in zip(masked, it.chars):
                        q = pm.to_qt(p)
                        cur.setPosition(q)
                        cur.setPosition(q + 1, QTextCursor.KeepAnchor)
                        cur.insertText(c, filled_format(st.original[p]))
            finally:
                cur.endEditBlock()
        self.applied = row
        self._applied_at = self.w.undo_stack.index()
        self.panel.list.setCurrentRow(row)
        self._say(f"applied {it.fill!r} ({it.bits_per_char:.2f} bits/char); Ctrl+Z undoes it")
        return True

    def cycle(self) -> bool:
        """Apply the next alternative (the first when none was applied)."""
        if not self.items:
            return False
        nxt = 0 if self.applied is None else (self.applied + 1) % len(self.items)
        return self.apply(nxt)
