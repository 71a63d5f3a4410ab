"""Mask tools panel: random fraction (seeded), every n-th, regular expression, whole words."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLineEdit, QPushButton, QSpinBox,
    QStackedWidget, QVBoxLayout, QWidget,
)

from . import masking

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
