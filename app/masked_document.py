"""The editor's QTextDocument is the single source of truth for text and masks.

A masked character is shown as ``MASK_GLYPH`` on a tinted background, and its
char format carries the original character (property ``ORIGINAL``). A filled
character carries the original it replaced (property ``FILLED_FROM``), which is
what "show original" and "accuracy against original" read. Because the masks
live in the document's own formats, QTextDocument's undo restores text and
masks together, for typing, masking and fills alike; app.undo mirrors each
document undo level into the window's QUndoStack.

Positions: Qt counts UTF-16 code units, Python counts code points. ``PosMap``
converts (the identity unless the text holds characters outside the BMP).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor, QTextDocument, QTextFormat

from .masking import maskable

MASK_GLYPH = "\u2591"  # light shade: reads as "something is hidden here" in any monospace font
ORIGINAL = QTextFormat.UserProperty + 1  # on a mask glyph: the character behind it
FILLED_FROM = QTextFormat.UserProperty + 2  # on a filled character: the original it replaced
MASK_TINT = QColor(120, 160, 255, 90)
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


class PosMap:
    """Python string index <-> Qt document position."""

    def __init__(self, text: str) -> None:
        self._astral = [m.start() for m in _ASTRAL.finditer(text)]  # Python indices of 2-unit characters

    def to_qt(self, i: int) -> int:
        return i + bisect.bisect_left(self._astral, i) if self._astral else i

    def to_py(self, q: int) -> int:
        if not self._astral:
            return q
        lo, hi = 0, q
        while lo < hi:  # the largest i with to_qt(i) <= q
            mid = (lo + hi + 1) // 2
            if self.to_qt(mid) <= q:
                lo = mid
            else:
                hi = mid - 1
        return lo


@dataclass(frozen=True)
class DocState:
    display: str  # what the editor shows (glyphs at masked positions)
    source: str  # what a fill starts from: the display with each mask replaced by its original
    original: str  # the original text: the characters behind masks and behind fills
    masked: tuple[int, ...]  # Python indices of masked characters
    filled: tuple[tuple[int, str], ...]  # (index, original) of characters a fill wrote


def prop(fmt: QTextFormat, key: int) -> str | None:
    """A string property of a format, or None.

    Never call ``QTextFormat.property()`` for a property that is not set: PySide6
    returns None from it without taking a reference, and after a few thousand
    calls Python frees None and aborts ("none_dealloc").
    """
    return fmt.stringProperty(key) if fmt.hasProperty(key) else None


def mask_format(original: str) -> QTextCharFormat:
    f = QTextCharFormat()
    f.setBackground(MASK_TINT)
    f.setProperty(ORIGINAL, original)
    return f


def filled_format(original: str) -> QTextCharFormat:
    f = QTextCharFormat()
    f.setProperty(FILLED_FROM, original)
    return f


class MaskedDocument(QObject):
    """Masking, unmasking and fills as undoable edits of one QTextDocument."""

    masks_changed = Signal()

    def __init__(self, doc: QTextDocument, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self._cache: tuple[int, DocState] | None = None
        self._fill_cursor: QTextCursor | None = None
        self.version = 0  # bumped on every content change (typing, masking, fills, undo)
        doc.contentsChange.connect(self._bump)

    def _bump(self, *_args) -> None:
        self.version += 1

    # -- whole document -------------------------------------------------------------
    def set_text(self, text: str, masked: list[int] | tuple[int, ...] = (), filled=()) -> None:
        """Replace everything (not undoable: opening a file starts a fresh history).

        ``text`` holds the originals; ``filled`` is (index, character shown) of
        characters an earlier fill wrote over them (each remembers its original).
        """
        self.doc.setUndoRedoEnabled(False)
        self.doc.setPlainText(text)
        if filled:
            pm = PosMap(text)
            cur = QTextCursor(self.doc)
            cur.beginEditBlock()
            for i, c in sorted(filled, reverse=True):  # from the end: a write never moves the next one
                q = pm.to_qt(i)
                cur.setPosition(q)
                cur.setPosition(q + 1, QTextCursor.KeepAnchor)
                cur.insertText(c, filled_format(text[i]))
            cur.endEditBlock()
        if masked:
            self.mask(masked, undoable=False)
        self.doc.setUndoRedoEnabled(True)
        self.doc.setModified(False)
        self._cache = None
        self.masks_changed.emit()

    def state(self) -> DocState:
        rev = self.version
        if self._cache is not None and self._cache[0] == rev:
            return self._cache[1]
        display = self._plain()
        pm = PosMap(display)
        masked: list[int] = []
        filled: list[tuple[int, str]] = []
        orig = list(display)
        block = self.doc.begin()
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                frag = it.fragment()
                fmt = frag.charFormat()
                o = prop(fmt, ORIGINAL)
                if o is not None:
                    for q in range(frag.position(), frag.position() + frag.length()):
                        i = pm.to_py(q)
                        masked.append(i)
                        orig[i] = str(o)
                else:
                    f = prop(fmt, FILLED_FROM)
                    if f is not None:
                        filled.extend((pm.to_py(q), str(f)) for q in range(frag.position(), frag.position() + frag.length()))
                it += 1
            block = block.next()
        source = "".join(orig)
        for i, o in filled:
            orig[i] = o
        st = DocState(display=display, source=source, original="".join(orig), masked=tuple(masked),
                      filled=tuple(filled))
        self._cache = (rev, st)
        return st

    def _plain(self) -> str:
        return self.doc.toPlainText()

    # -- masking ----------------------------------------------------------------------
    def mask(self, positions, undoable: bool = True) -> int:
        """Hide the characters at these Python indices; returns how many were newly masked."""
        display = self._plain()
        pm = PosMap(display)
        cur = QTextCursor(self.doc)
        n = 0
        cur.beginEditBlock()
        try:
            for i in sorted(set(positions)):
                if i < 0 or i >= len(display) or not maskable(display[i]):
                    continue
                q = pm.to_qt(i)
                fmt = self._format_at(q)
                if prop(fmt, ORIGINAL) is not None:
                    continue  # already masked
                behind = prop(fmt, FILLED_FROM)  # masking a filled character hides the true original again
                original = str(behind) if behind is not None else display[i]
                cur.setPosition(q)
                cur.setPosition(q + 1, QTextCursor.KeepAnchor)
                cur.insertText(MASK_GLYPH, mask_format(original))
                n += 1
        finally:
            cur.endEditBlock()
        if n:
            self.masks_changed.emit()
        return n

    def unmask(self, positions) -> int:
        """Show the original characters again at these Python indices."""
        display = self._plain()
        pm = PosMap(display)
        cur = QTextCursor(self.doc)
        n = 0
        cur.beginEditBlock()
        try:
            for i in sorted(set(positions)):
                if i < 0 or i >= len(display):
                    continue
                q = pm.to_qt(i)
                o = prop(self._format_at(q), ORIGINAL)
                if o is None:
                    continue
                cur.setPosition(q)
                cur.setPosition(q + 1, QTextCursor.KeepAnchor)
                cur.insertText(str(o), QTextCharFormat())
                n += 1
        finally:
            cur.endEditBlock()
        if n:
            self.masks_changed.emit()
        return n

    def _format_at(self, q: int) -> QTextCharFormat:
        """The char format of the character at Qt position q (the cursor reports the one before it)."""
        c = QTextCursor(self.doc)
        c.setPosition(q + 1)
        return c.charFormat()

    def is_masked(self, q: int) -> bool:
        return q < self.doc.characterCount() - 1 and prop(self._format_at(q), ORIGINAL) is not None

    # -- fills: one undo level for a whole run --------------------------------------
    def begin_fill(self) -> None:
        """Start a run: its steps (and steps back) all join one undo level."""
        self._fill_cursor = QTextCursor(self.doc)
        self._fill_first = True

    def end_fill(self) -> None:
        self._fill_cursor = None

    @property
    def filling(self) -> bool:
        return self._fill_cursor is not None

    @property
    def fill_started(self) -> bool:
        """The current run has made its first edit (later edits join that undo level)."""
        return self._fill_cursor is not None and not self._fill_first

    def _fill_edit(self, edits) -> None:
        cur = self._fill_cursor
        if cur is None:
            raise RuntimeError("begin_fill() first")
        if self._fill_first:
            cur.beginEditBlock()
            self._fill_first = False
        else:
            cur.joinPreviousEditBlock()
        try:
            for q, text, fmt in edits:
                cur.setPosition(q)
                cur.setPosition(q + 1, QTextCursor.KeepAnchor)
                cur.insertText(text, fmt)
        finally:
            cur.endEditBlock()

    def write_fill(self, qpositions, chars: str, originals) -> None:
        """Write filled characters over mask glyphs (each remembers its original)."""
        self._fill_edit((q, c, filled_format(o)) for q, c, o in zip(qpositions, chars, originals))

    def unwrite_fill(self, qpositions, originals) -> None:
        """Put mask glyphs back (stepping back through a run)."""
        self._fill_edit((q, MASK_GLYPH, mask_format(o)) for q, o in zip(qpositions, originals))
