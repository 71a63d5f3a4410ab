"""Colours for a run, drawn as syntax-highlighter formats (not part of the text or its undo).

Per-position arrays (indexed by Qt position) say which step filled each
character and with what probability and bits; ``highlightBlock`` turns one
block's slice into a few coloured runs. After a step only the blocks it touched
are re-highlighted, so a step costs the size of its blocks, not the document.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from PySide6.QtGui import QColor, QFont, QSyntaxHighlighter, QTextCharFormat, QTextDocument

from .colours import LAST_STEP_OUTLINE, SCALES, ramp

LEVELS = 24  # colour steps per mode


def palette(mode: str, t: float) -> QColor:
    """Background for a filled character; t in [0, 1] (order: early->late, probability: low->high, bits: low->high)."""
    return QColor(*ramp(mode, t))


class RunHighlighter(QSyntaxHighlighter):
    MODES = tuple(SCALES)
    MAX_BITS = 8.0  # bits at or above this get the darkest colour

    def __init__(self, doc: QTextDocument) -> None:
        super().__init__(doc)
        self.mode = "order"
        self.step_of = np.full(0, -1, dtype=np.int32)  # (n,) step that filled each position, -1 none
        self.prob = np.zeros(0, dtype=np.float32)
        self.bits = np.zeros(0, dtype=np.float32)
        self.n_steps = 1  # for the order gradient
        self.current_step = -1  # characters of this step get the "last step" look
        self._formats: dict[tuple[int, bool], QTextCharFormat] = {}
        self.suspended = False  # while a step edits many characters: colour once afterwards, not per edit
        self.visible_blocks: Callable[[], tuple[int, int]] | None = None  # (first, last) block number on screen
        self.dirty: set[int] = set()  # blocks whose colours are stale; redone when they scroll into view

    # -- data -------------------------------------------------------------------------
    def reset(self, length: int) -> None:
        self.step_of = np.full(length, -1, dtype=np.int32)
        self.prob = np.zeros(length, dtype=np.float32)
        self.bits = np.zeros(length, dtype=np.float32)
        self.current_step = -1

    def clear(self) -> None:
        had = bool((self.step_of >= 0).any()) if len(self.step_of) else False
        self.reset(0)
        self.dirty.clear()
        if had:
            self.rehighlight()

    def set_mode(self, mode: str) -> None:
        if mode not in self.MODES:
            raise ValueError(f"unknown colour mode {mode!r}; choose from {list(self.MODES)}")
        self.mode = mode
        self._formats.clear()
        if len(self.step_of) and (self.step_of >= 0).any():
            if self.visible_blocks is None:
                self.rehighlight()
            else:
                self.mark_all_dirty()

    def set_step(self, qpositions, step: int, probs, bits) -> None:
        """Record one step's characters (step=-1 forgets them again)."""
        if not len(self.step_of):
            return
        idx = np.asarray(qpositions, dtype=np.int64)
        idx = idx[idx < len(self.step_of)]
        self.step_of[idx] = step
        if step >= 0:
            self.prob[idx] = np.asarray(probs, dtype=np.float32)[: len(idx)]
            self.bits[idx] = np.asarray(bits, dtype=np.float32)[: len(idx)]

    def rehighlight_positions(self, qpositions) -> None:
        """Re-colour the blocks holding these positions: now if on screen, else when they scroll into view."""
        doc = self.document()
        lo, hi = self.visible_blocks() if self.visible_blocks else (0, 1 << 62)
        done: set[int] = set()
        for q in sorted(set(qpositions)):
            b = doc.findBlock(int(q))
            n = b.blockNumber()
            if not b.isValid() or n in done:
                continue
            done.add(n)
            if lo <= n <= hi:
                self.dirty.discard(n)
                self.rehighlightBlock(b)
            else:
                self.dirty.add(n)

    def flush_visible(self) -> None:
        """Re-colour stale blocks that are now on screen (called after scrolling and resizing)."""
        if not self.dirty or self.visible_blocks is None:
            return
        lo, hi = self.visible_blocks()
        doc = self.document()
        for n in sorted(x for x in self.dirty if lo <= x <= hi):
            self.dirty.discard(n)
            self.rehighlightBlock(doc.findBlockByNumber(n))

    def mark_all_dirty(self) -> None:
        self.dirty = set(range(self.document().blockCount()))
        self.flush_visible()

    # -- drawing ----------------------------------------------------------------------
    def _format(self, level: int, current: bool) -> QTextCharFormat:
        key = (level, current)
        f = self._formats.get(key)
        if f is None:
            f = QTextCharFormat()
            f.setBackground(palette(self.mode, level / (LEVELS - 1)))
            if current:
                f.setFontWeight(QFont.Bold)
                f.setFontUnderline(True)
                f.setUnderlineColor(QColor(*LAST_STEP_OUTLINE))
            self._formats[key] = f
        return f

    def _levels(self, sl: slice) -> np.ndarray:
        if self.mode == "order":
            t = self.step_of[sl] / max(1, self.n_steps - 1)
        elif self.mode == "probability":
            t = self.prob[sl]
        else:
            t = self.bits[sl] / self.MAX_BITS
        return np.clip(np.round(np.nan_to_num(t) * (LEVELS - 1)), 0, LEVELS - 1).astype(np.int32)

    def highlightBlock(self, text: str) -> None:  # noqa: N802 - Qt override
        if self.suspended or not len(self.step_of):
            return
        start = self.currentBlock().position()
        end = min(start + len(text), len(self.step_of))
        if start >= end:
            return
        steps = self.step_of[start:end]
        filled = np.flatnonzero(steps >= 0)
        if not len(filled):
            return
        levels = self._levels(slice(start, end))
        cur = steps == self.current_step
        i, n = 0, len(filled)
        while i < n:  # runs of adjacent filled characters with one look
            j = i
            a = filled[i]
            key = (int(levels[a]), bool(cur[a]))
            while j + 1 < n and filled[j + 1] == filled[j] + 1 and (int(levels[filled[j + 1]]), bool(cur[filled[j + 1]])) == key:
                j += 1
            self.setFormat(int(a), int(filled[j] - a + 1), self._format(*key))
            i = j + 1


def describe_bits(b: float) -> str:
    return "inf" if math.isinf(b) else f"{b:.2f}"
