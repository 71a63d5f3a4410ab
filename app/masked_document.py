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
import time
from dataclasses import dataclass, field

import numpy as np

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor, QTextDocument, QTextFormat

from .masking import maskable

MASK_GLYPH = "\u2591"  # light shade: reads as "something is hidden here" in any monospace font
ORIGINAL = QTextFormat.UserProperty + 1  # on a mask glyph: the character behind it
FILLED_FROM = QTextFormat.UserProperty + 2  # on a filled character: the original it replaced
MASK_TINT = QColor(120, 160, 255, 90)


class PosMap:
    """Python string index <-> Qt document position."""

    def __init__(self, text: str) -> None:
        if text.isascii():  # the common case, and the cheapest test
            self._astral: list[int] = []
        else:  # Python indices of 2-unit characters (numpy: a few ms for 2 MB, where a regex took ten)
            codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
            self._astral = np.flatnonzero(codes > 0xFFFF).tolist()

    @property
    def has_astral(self) -> bool:
        return bool(self._astral)

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
    masked_array: np.ndarray | None = field(default=None, compare=False, repr=False)  # ``masked`` as int64

    def masked_positions(self) -> np.ndarray:
        """``masked`` as a sorted int64 array (free when the state came from the document)."""
        return self.masked_array if self.masked_array is not None else np.asarray(self.masked, dtype=np.int64)


@dataclass(frozen=True)
class RawState:
    """The document read as it is (GUI thread, cheap): its text and a copy of the marks' index.

    ``build_state`` turns it into a DocState in any thread: the autosave builds
    and writes a 2 MB document's snapshot off the GUI thread from one of these.
    """

    version: int
    display: str
    q: np.ndarray  # Qt positions of the marks, sorted
    kind: np.ndarray  # MASKED or FILLED
    orig: np.ndarray  # the original character's code behind each mark


def build_state(raw: RawState) -> tuple[DocState, "PosMap"]:
    """The DocState of a RawState, and its PosMap (pure numpy and Python: no Qt)."""
    display = raw.display
    pm = PosMap(display)
    py = np.asarray([pm.to_py(int(q)) for q in raw.q], dtype=np.int64) if pm.has_astral else raw.q
    codes = np.frombuffer(display.encode("utf-32-le"), dtype=np.uint32).copy()
    is_m = raw.kind == MASKED
    codes[py[is_m]] = raw.orig[is_m]
    source = codes.tobytes().decode("utf-32-le")
    codes[py[~is_m]] = raw.orig[~is_m]
    original = codes.tobytes().decode("utf-32-le")
    masked = tuple(py[is_m].tolist())
    filled = tuple(zip(py[~is_m].tolist(), (chr(int(c)) for c in raw.orig[~is_m])))
    return DocState(display=display, source=source, original=original, masked=masked, filled=filled,
                    masked_array=np.asarray(py[is_m], dtype=np.int64)), pm


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


MASKED, FILLED = 1, 2


class _Marks:
    """Where the masked and filled characters are, kept up to date without reading every fragment.

    Qt positions (sorted), kind (MASKED or FILLED) and the original's code
    point. MaskedDocument's own edits update it directly; any other change
    (typing, undo, redo) is noted as ``(position, removed, added)`` and, when
    the marks are next read, replayed: marks in removed text go, later marks
    shift, and only the changed text is read again. Many changes at once (a
    large undo) read the whole document once instead.
    """

    REPLAY_LIMIT = 2000

    def __init__(self) -> None:
        self.q = np.zeros(0, dtype=np.int64)
        self.kind = np.zeros(0, dtype=np.int8)
        self.orig = np.zeros(0, dtype=np.uint32)
        self.changes: list[tuple[int, int, int]] = []
        self.full = True  # nothing known yet: read the whole document

    def clear(self) -> None:
        self.__init__()
        self.full = False

    def note(self, pos: int, removed: int, added: int) -> None:
        if self.full:
            return
        self.changes.append((pos, removed, added))
        if len(self.changes) > self.REPLAY_LIMIT:
            self.changes.clear()
            self.full = True

    def drop(self, a: int, b: int) -> None:
        keep = (self.q < a) | (self.q >= b)
        self.q, self.kind, self.orig = self.q[keep], self.kind[keep], self.orig[keep]

    def put(self, qs, kind: int, origs) -> None:
        """Set these positions' marks (replacing any there)."""
        qs = np.asarray(qs, dtype=np.int64)
        if not len(qs):
            return
        os_ = np.asarray([ord(c) for c in origs], dtype=np.uint32)
        order = np.argsort(qs, kind="stable")
        qs, os_ = qs[order], os_[order]
        idx = np.searchsorted(self.q, qs)
        there = idx < len(self.q)
        there[there] = self.q[idx[there]] == qs[there]
        self.kind[idx[there]] = kind  # marks already there change in place
        self.orig[idx[there]] = os_[there]
        new = ~there  # the others are inserted in order (no sort of the whole index)
        self.q = np.insert(self.q, idx[new], qs[new])
        self.kind = np.insert(self.kind, idx[new], np.full(int(new.sum()), kind, dtype=np.int8))
        self.orig = np.insert(self.orig, idx[new], os_[new])

    def remove(self, qs) -> None:
        keep = ~np.isin(self.q, np.asarray(qs, dtype=np.int64))
        self.q, self.kind, self.orig = self.q[keep], self.kind[keep], self.orig[keep]

    def at(self, q: int) -> tuple[int, str] | None:
        """(kind, original) of the mark at Qt position q, or None."""
        i = int(np.searchsorted(self.q, q))
        if i < len(self.q) and self.q[i] == q:
            return int(self.kind[i]), chr(int(self.orig[i]))
        return None

    def sync(self, doc: QTextDocument) -> None:
        """Bring the marks up to date with the document."""
        end = doc.characterCount()
        if self.full:
            self.q, self.kind, self.orig = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int8),
                                            np.zeros(0, dtype=np.uint32))
            self._read(doc, 0, end)
            self.full = False
            self.changes.clear()
            return
        if not self.changes:
            return
        dirty: list[list[int]] = []
        for pos, removed, added in self.changes:
            delta = added - removed
            self.drop(pos, pos + removed)
            if delta:
                self.q[self.q >= pos + removed] += delta
            for iv in dirty:  # earlier dirty spans move with the text after them, or grow over this change
                x, y = iv
                if x >= pos + removed:
                    iv[0], iv[1] = x + delta, y + delta
                elif y > pos:
                    iv[0], iv[1] = min(x, pos), max(pos + added, y + delta if y >= pos + removed else pos + added)
            dirty.append([pos, pos + added])
        self.changes.clear()
        dirty.sort()
        merged: list[list[int]] = []
        for a, b in dirty:
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        for a, b in merged:
            a, b = max(0, a), min(end, b)
            if a < b:
                self.drop(a, b)
                self._read(doc, a, b)

    def _read(self, doc: QTextDocument, a: int, b: int) -> None:
        """Add the marks of the fragments in Qt positions [a, b)."""
        qs, kinds, origs = [], [], []
        block = doc.findBlock(a)
        while block.isValid() and block.position() < b:
            it = block.begin()
            while not it.atEnd():
                frag = it.fragment()
                fmt = frag.charFormat()
                o = prop(fmt, ORIGINAL)
                kind = MASKED
                if o is None:
                    o, kind = prop(fmt, FILLED_FROM), FILLED
                if o is not None:
                    p0, p1 = max(a, frag.position()), min(b, frag.position() + frag.length())
                    for q in range(p0, p1):
                        qs.append(q)
                        kinds.append(kind)
                        origs.append(ord(str(o)[:1] or " "))
                it += 1
            block = block.next()
        if qs:
            q = np.concatenate([self.q, np.asarray(qs, dtype=np.int64)])
            k = np.concatenate([self.kind, np.asarray(kinds, dtype=np.int8)])
            o = np.concatenate([self.orig, np.asarray(origs, dtype=np.uint32)])
            order = np.argsort(q, kind="stable")
            self.q, self.kind, self.orig = q[order], k[order], o[order]


class MaskedDocument(QObject):
    """Masking, unmasking and fills as undoable edits of one QTextDocument."""

    masks_changed = Signal()

    def __init__(self, doc: QTextDocument, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self._cache: tuple[int, DocState] | None = None
        self._posmap: tuple[int, PosMap] | None = None
        self._fill_cursor: QTextCursor | None = None
        self._marks = _Marks()
        self._own = False  # inside one of this class's edits: it updates the marks itself
        self._formats: dict[str, QTextCharFormat] = {}
        self.version = 0  # bumped on every content change (typing, masking, fills, undo)
        doc.documentLayout()  # a document without a layout never emits contentsChange
        doc.contentsChange.connect(self._bump)

    def _bump(self, pos: int = 0, removed: int = 0, added: int = 0) -> None:
        self.version += 1
        if not self._own:
            self._marks.note(pos, removed, added)

    def _marks_now(self) -> _Marks:
        self._marks.sync(self.doc)
        return self._marks

    def _mask_format(self, original: str) -> QTextCharFormat:
        f = self._formats.get(original)
        if f is None:
            f = self._formats[original] = mask_format(original)
        return f

    # -- whole document -------------------------------------------------------------
    def set_text(self, text: str, masked: list[int] | tuple[int, ...] = (), filled=()) -> None:
        """Replace everything (not undoable: opening a file starts a fresh history).

        ``text`` holds the originals; ``filled`` is (index, character shown) of
        characters an earlier fill wrote over them (each remembers its original).
        """
        self.doc.setUndoRedoEnabled(False)
        self._own = True
        try:
            self.doc.setPlainText(text)
            self._marks.clear()
            if filled:
                pm = PosMap(text)
                cur = QTextCursor(self.doc)
                cur.beginEditBlock()
                qs, origs = [], []
                for i, c in sorted(filled, reverse=True):  # from the end: a write never moves the next one
                    q = pm.to_qt(i)
                    cur.setPosition(q)
                    cur.setPosition(q + 1, QTextCursor.KeepAnchor)
                    cur.insertText(c, filled_format(text[i]))
                    qs.append(q)
                    origs.append(text[i])
                cur.endEditBlock()
                self._marks.put(qs, FILLED, origs)
        finally:
            self._own = False
        if masked:
            self.mask(masked, undoable=False)
        self.doc.setUndoRedoEnabled(True)
        self.doc.setModified(False)
        self._cache = None
        self.masks_changed.emit()

    def state(self) -> DocState:
        """Text and masks as the document holds them now (cached until the next change).

        Reads only what changed since the last call (see ``_Marks``) and builds
        the strings with numpy, so a 2 MB document costs tens of milliseconds.
        """
        rev = self.version
        if self._cache is not None and self._cache[0] == rev:
            return self._cache[1]
        st, pm = build_state(self.capture())
        self._posmap = (rev, pm)
        self._cache = (rev, st)
        return st

    def capture(self) -> RawState:
        """The document as it is now, for ``build_state`` in another thread (reads Qt: GUI thread only).

        Costs the plain text (about 25 ms for 2 MB) and a copy of the marks' index;
        the strings and position lists are left to ``build_state``.
        """
        m = self._marks_now()
        return RawState(self.version, self._plain(), m.q.copy(), m.kind.copy(), m.orig.copy())

    def adopt(self, raw: RawState, st: DocState, pm: PosMap) -> bool:
        """Cache a state built (``build_state``) from this document's ``capture()``, if nothing changed since."""
        if raw.version != self.version:
            return False
        self._cache, self._posmap = (raw.version, st), (raw.version, pm)
        return True

    def cached_state(self) -> DocState | None:
        """The DocState if one is cached for the document as it is now (free), else None."""
        return self._cache[1] if self._cache is not None and self._cache[0] == self.version else None

    def masked_qt(self) -> np.ndarray:
        """Qt positions of the masked characters, sorted (from the marks' index: no text is read)."""
        m = self._marks_now()
        return m.q[m.kind == MASKED].copy()

    def mask_count(self) -> int:
        """How many characters are masked (from the marks' index: no text is read)."""
        return int((self._marks_now().kind == MASKED).sum())

    def length(self) -> int:
        """The document's length in Qt positions (Python indices too, unless it holds characters outside the BMP)."""
        return self.doc.characterCount() - 1

    def posmap(self) -> PosMap:
        """Python index <-> Qt position for the text as shown now (cached until the next change)."""
        if self._posmap is None or self._posmap[0] != self.version:
            self.state()
        return self._posmap[1]

    def _plain(self) -> str:
        return self.doc.toPlainText()

    # -- masking ----------------------------------------------------------------------
    def mask(self, positions, undoable: bool = True, *, join: bool = False, quiet: bool = False,
             display: str | None = None, posmap: PosMap | None = None) -> int:
        """Hide the characters at these Python indices; returns how many were newly masked.

        ``join`` adds the edit to the previous undo level (a large masking
        applied in batches stays one level), ``quiet`` leaves ``masks_changed``
        to the caller, ``display`` (and ``posmap``) the text as shown now when the caller has them.
        """
        return self.mask_until(positions, None, join=join, quiet=quiet, display=display, posmap=posmap)[0]

    def mask_until(self, positions, deadline: float | None, *, join: bool = False, quiet: bool = False,
                   display: str | None = None, posmap: PosMap | None = None) -> tuple[int, int]:
        """``mask``, stopping once ``time.perf_counter()`` passes ``deadline`` (None: never).

        Returns (newly masked, how many of the sorted distinct ``positions`` were
        handled): a batch of a large masking ends on time however costly its
        edits turn out (``app.mask_tools.MaskApplier``).
        """
        display = self._plain() if display is None else display
        pm = PosMap(display) if posmap is None else posmap
        marks = self._marks_now()
        cur = QTextCursor(self.doc)
        qs, origs = [], []
        todo = sorted(set(positions))
        handled = 0
        self._own = True
        cur.joinPreviousEditBlock() if join else cur.beginEditBlock()
        try:
            for handled, i in enumerate(todo, 1):
                if deadline is not None and not handled % 32 and time.perf_counter() > deadline:
                    handled -= 1  # this one is left for the next batch
                    break
                if i < 0 or i >= len(display) or not maskable(display[i]):
                    continue
                q = pm.to_qt(i)
                mark = marks.at(q)
                if mark is not None and mark[0] == MASKED:
                    continue  # already masked
                original = mark[1] if mark is not None else display[i]  # a filled character hides its true original
                cur.setPosition(q)
                cur.setPosition(q + 1, QTextCursor.KeepAnchor)
                cur.insertText(MASK_GLYPH, self._mask_format(original))
                qs.append(q)
                origs.append(original)
        finally:
            cur.endEditBlock()
            self._own = False
            marks.put(qs, MASKED, origs)
        if qs and not quiet:
            self.masks_changed.emit()
        return len(qs), handled

    def unmask(self, positions) -> int:
        """Show the original characters again at these Python indices."""
        display = self._plain()
        pm = PosMap(display)
        marks = self._marks_now()
        cur = QTextCursor(self.doc)
        qs = []
        plain = QTextCharFormat()
        self._own = True
        cur.beginEditBlock()
        try:
            for i in sorted(set(positions)):
                if i < 0 or i >= len(display):
                    continue
                q = pm.to_qt(i)
                mark = marks.at(q)
                if mark is None or mark[0] != MASKED:
                    continue
                cur.setPosition(q)
                cur.setPosition(q + 1, QTextCursor.KeepAnchor)
                cur.insertText(mark[1], plain)
                qs.append(q)
        finally:
            cur.endEditBlock()
            self._own = False
            marks.remove(qs)
        if qs:
            self.masks_changed.emit()
        return len(qs)

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
        marks = self._marks_now()
        qs, origs = [], []
        kind = MASKED
        self._own = True
        try:
            for q, text, fmt in edits:
                cur.setPosition(q)
                cur.setPosition(q + 1, QTextCursor.KeepAnchor)
                cur.insertText(text, fmt)
                o = prop(fmt, ORIGINAL)
                kind = MASKED if o is not None else FILLED
                qs.append(q)
                origs.append(o if o is not None else prop(fmt, FILLED_FROM))
        finally:
            cur.endEditBlock()
            self._own = False
            marks.put(qs, kind, origs)

    def write_fill(self, qpositions, chars: str, originals) -> None:
        """Write filled characters over mask glyphs (each remembers its original)."""
        self._fill_edit((q, c, filled_format(o)) for q, c, o in zip(qpositions, chars, originals))

    def unwrite_fill(self, qpositions, originals) -> None:
        """Put mask glyphs back (stepping back through a run)."""
        self._fill_edit((q, MASK_GLYPH, self._mask_format(o)) for q, o in zip(qpositions, originals))
