"""Mask tools panel: random fraction (seeded), every n-th, regular expression, whole words.

``MaskApplier`` writes a large masking into the document in short batches
between event-loop turns (one undo level in all), so 15% of a 2 MB document
never freezes the window.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLineEdit, QPushButton, QSpinBox,
    QStackedWidget, QVBoxLayout, QWidget,
)

from . import masking
from .background import beside
from .masked_document import PosMap

TOOLS = (("random", "Random fraction"), ("nth", "Every n-th character"), ("regex", "Regular expression"),
         ("words", "Whole words"))


class MaskToolsPanel(QWidget):
    """Emits ``apply_requested(tool, params)``; the window computes positions and masks them (one undo level)."""

    apply_requested = Signal(str, dict)
    unmask_all_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        self.tool = QComboBox()
        for key, title in TOOLS:
            self.tool.addItem(title, key)
        lay.addWidget(self.tool)
        self.pages = QStackedWidget()
        self.pages.addWidget(self._random_page())
        self.pages.addWidget(self._nth_page())
        self.pages.addWidget(self._regex_page())
        self.pages.addWidget(self._words_page())
        self.tool.currentIndexChanged.connect(self.pages.setCurrentIndex)
        lay.addWidget(self.pages)
        self.selection_only = QCheckBox("Only inside the selection")
        lay.addWidget(self.selection_only)
        row = QHBoxLayout()
        apply_btn = QPushButton("Mask")
        apply_btn.clicked.connect(self._apply)
        clear_btn = QPushButton("Unmask all")
        clear_btn.clicked.connect(self.unmask_all_requested)
        row.addWidget(apply_btn)
        row.addWidget(clear_btn)
        lay.addLayout(row)
        lay.addStretch(1)

    def _random_page(self) -> QWidget:
        w = QWidget()
        f = QFormLayout(w)
        self.fraction = QDoubleSpinBox(decimals=2, minimum=0.01, maximum=1.0, singleStep=0.05, value=0.15)
        self.random_seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        f.addRow("Fraction", self.fraction)
        f.addRow("Seed", self.random_seed)
        return w

    def _nth_page(self) -> QWidget:
        w = QWidget()
        f = QFormLayout(w)
        self.nth = QSpinBox(minimum=1, maximum=10_000, value=5)
        self.nth_offset = QSpinBox(minimum=0, maximum=10_000, value=0)
        f.addRow("Every", self.nth)
        f.addRow("Offset", self.nth_offset)
        return w

    def _regex_page(self) -> QWidget:
        w = QWidget()
        f = QFormLayout(w)
        self.regex = QLineEdit(r"[aeiou]")
        self.regex.setToolTip("A Python regular expression; every character of every match is masked")
        f.addRow("Pattern", self.regex)
        return w

    def _words_page(self) -> QWidget:
        w = QWidget()
        f = QFormLayout(w)
        self.word_fraction = QDoubleSpinBox(decimals=2, minimum=0.01, maximum=1.0, singleStep=0.05, value=0.2)
        self.word_seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        self.word_unit = QComboBox()
        self.word_unit.addItem("whole words", "words")
        self.word_unit.addItem("word pieces", "pieces")
        shipped = masking.WORD_MODEL.is_file()
        self.word_unit.setToolTip("Segmented by the sentencepiece word model trained on the corpus" if shipped
                                  else "No word model shipped: words are split with \\w+")
        f.addRow("Fraction", self.word_fraction)
        f.addRow("Seed", self.word_seed)
        f.addRow("Unit", self.word_unit)
        return w

    def params(self) -> tuple[str, dict]:
        tool = str(self.tool.currentData())
        p: dict = {"selection_only": self.selection_only.isChecked()}
        if tool == "random":
            p.update(fraction=self.fraction.value(), seed=self.random_seed.value())
        elif tool == "nth":
            p.update(n=self.nth.value(), offset=self.nth_offset.value())
        elif tool == "regex":
            p.update(pattern=self.regex.text())
        else:
            p.update(fraction=self.word_fraction.value(), seed=self.word_seed.value(),
                     unit=str(self.word_unit.currentData()))
        return tool, p

    def _apply(self) -> None:
        self.apply_requested.emit(*self.params())


def positions_for(tool: str, text: str, params: dict, start: int = 0, end: int | None = None) -> list[int]:
    """Run one mask tool over ``text[start:end]`` (raises ValueError with a readable message)."""
    if tool == "random":
        return masking.mask_random(text, params["fraction"], params["seed"], start, end)
    if tool == "nth":
        return masking.mask_every_nth(text, params["n"], params.get("offset", 0), start, end)
    if tool == "regex":
        return masking.mask_regex(text, params["pattern"], start, end)
    if tool == "words":
        return masking.mask_words(text, params["fraction"], params["seed"], start, end, unit=params.get("unit", "words"))
    raise ValueError(f"unknown mask tool {tool!r}; choose from {[k for k, _ in TOOLS]}")


SYNC_LIMIT = 3000  # up to this many positions are masked at once (well under 100 ms)
BACKGROUND_CHARS = 100_000  # a tool over a longer span finds its positions in a thread


class MaskApplier(QObject):
    """Masks sorted positions in batches of about ``budget_ms`` each, as one undo level.

    ``mirror`` (app.undo.UndoMirror) names the level; the batches after the
    first join it. Stops early on ``cancel()`` (what is masked stays masked) or
    when something else edits the document in between. ``finished(n)`` says how
    many characters were masked; ``masks_changed`` is emitted once, at the end.
    """

    progress = Signal(int, int)  # positions handled, of all
    finished = Signal(int)
    failed = Signal(str)  # computing the positions raised ValueError (a bad pattern)
    _computed = Signal(object)  # from the thread that computes the positions

    def __init__(self, mdoc, positions, label: str, mirror, budget_ms: float = 25.0,
                 parent: QObject | None = None, compute=None) -> None:
        """``positions``, or ``compute``: a function returning them, run in a plain Python thread
        (no Qt there; a tool over a long text can take seconds: whole words of 2 MB take about 6 s)."""
        super().__init__(parent)
        self.mdoc, self.mirror, self.label = mdoc, mirror, label
        self._compute = compute
        self.positions = self._sorted(positions) if compute is None else []
        self.budget_s = budget_ms / 1000
        self.done = 0  # positions handled
        self.masked = 0  # characters newly masked
        self.active = False
        self._chunk = 200
        self._turn: tuple[float, int] | None = None  # (start, size) of the last batch
        self._display = ""
        self._version = -1

    @staticmethod
    def _sorted(positions) -> list[int]:
        pos = np.sort(np.fromiter(positions, dtype=np.int64))
        return pos[np.r_[True, pos[1:] != pos[:-1]] if len(pos) else slice(None)].tolist()

    @property
    def computing(self) -> bool:
        return self.active and self._compute is not None

    def start(self) -> None:
        self.active = True
        if self._compute is not None:
            self._computed.connect(self._got)
            compute = self._compute
            beside("mask-positions", lambda: self._sorted(compute()), self._computed, self.mdoc.version,
                   catch=(ValueError,))  # a bad pattern: said in the panel
            return
        self._begin()

    def _got(self, out) -> None:
        version, positions = out
        if not self.active:
            return  # cancelled meanwhile
        self._compute = None
        if isinstance(positions, ValueError):
            self.active = False
            self.failed.emit(str(positions))
            self.finished.emit(0)
            return
        if version != self.mdoc.version:  # computed over a text that has changed since
            self._finish()
            return
        self.positions = positions
        self.progress.emit(0, len(positions))
        self._begin()

    def _begin(self) -> None:
        self._display = self.mdoc.doc.toPlainText()
        self._posmap = PosMap(self._display)  # masking never moves a character
        self._version = self.mdoc.version
        QTimer.singleShot(0, self._step)

    def cancel(self) -> None:
        if self.active:
            self._finish()

    def _step(self) -> None:
        if not self.active:
            return
        if self.mdoc.version != self._version:  # the document changed under us: stop here
            self._finish()
            return
        t0 = time.perf_counter()
        if self._turn is not None:  # size batches by the whole turn: the edits, then the relayout and repaint they cause
            start, size = self._turn
            fit = int(size * self.budget_s / max(t0 - start, 1e-4))
            self._chunk = max(20, min(20_000, fit, size * 3 // 2))  # grows slowly: a cheap turn can mislead
        part = self.positions[self.done:self.done + self._chunk]
        deadline = t0 + self.budget_s  # a batch whose edits cost more than foreseen still ends on time
        if self.masked:  # later batches join the first one's undo level and add none of their own
            self.mirror.suppress = True
            try:
                n, handled = self.mdoc.mask_until(part, deadline, join=True, quiet=True, display=self._display,
                                                  posmap=self._posmap)
            finally:
                self.mirror.suppress = False
        else:
            with self.mirror.labelled(self.label):
                n, handled = self.mdoc.mask_until(part, deadline, quiet=True, display=self._display,
                                                  posmap=self._posmap)
        part = part[:handled]
        self.masked += n
        self.done += len(part)
        self._version = self.mdoc.version
        took = time.perf_counter() - t0
        self._turn = (t0, len(part))
        if took > self.budget_s:  # this batch alone ran over: the next one is smaller at once
            self._chunk = max(20, int(len(part) * self.budget_s / took))
        self.progress.emit(self.done, len(self.positions))
        if self.done >= len(self.positions):
            self._finish()
        else:
            QTimer.singleShot(1, self._step)

    def _finish(self) -> None:
        self.active = False
        if self.masked:
            self.mdoc.masks_changed.emit()
        self.finished.emit(self.masked)
