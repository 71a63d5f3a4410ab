"""The text editor: a QPlainTextEdit with hand-pick badges and a hover tooltip.

Masks are part of the document (app.masked_document); this widget adds what
the document cannot hold: small number badges on hand-picked characters, a
"pick mode" in which clicks pick masked characters instead of moving the
caret, a tooltip that asks the window about the character under the mouse, and
right-click entries that the window adds for that character.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QEvent, QPoint, QRect, Qt, Signal
from PySide6.QtGui import (
    QAction, QColor, QContextMenuEvent, QFont, QFontDatabase, QKeyEvent, QKeySequence, QMouseEvent, QPainter, QPaintEvent,
    QUndoStack,
)
from PySide6.QtWidgets import QMenu, QPlainTextEdit, QToolTip, QWidget


class MaskEditor(QPlainTextEdit):
    picked = Signal(int)  # Qt position of a character clicked in pick mode

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        font = QFontDatabase.systemFont(QFontDatabase.FixedFont)
        font.setStyleHint(QFont.Monospace)
        self.setFont(font)
        self.setLineWrapMode(QPlainTextEdit.WidgetWidth)
        self.setMouseTracking(True)
        self.pick_mode = False
        self.picks: list[int] = []  # Qt positions, in pick order
        self.tooltip_provider: Callable[[int], str | None] | None = None
        # entries for the character under a right-click: (Qt position, the menu as parent) -> actions
        self.context_actions: Callable[[int, QMenu], list[QAction]] | None = None
        self.undo_stack: QUndoStack | None = None  # Ctrl+Z/Ctrl+Y go here, never straight to the document

    def visible_blocks(self) -> tuple[int, int]:
        """Block numbers of the first and last block on screen."""
        b = self.firstVisibleBlock()
        first = b.blockNumber()
        offset = self.contentOffset()
        bottom = self.viewport().rect().bottom()
        last = first
        while b.isValid():
            top = self.blockBoundingGeometry(b).translated(offset).top()
            if top > bottom:
                break
            last = b.blockNumber()
            b = b.next()
        return first, last

    def set_font_size(self, points: int) -> None:
        f = self.font()
        f.setPointSize(points)
        self.setFont(f)

    def set_picks(self, picks: list[int]) -> None:
        self.picks = list(picks)
        self.viewport().update()

    # -- pick mode --------------------------------------------------------------------
    def mousePressEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        if self.pick_mode and e.button() == Qt.LeftButton:
            q = self.position_at(e.position().toPoint())
            if q is not None:
                self.picked.emit(q)
            e.accept()
            return
        super().mousePressEvent(e)

    def position_at(self, pt: QPoint) -> int | None:
        """The Qt position of the character under a viewport point (None past the end of a line)."""
        cur = self.cursorForPosition(pt)
        q = cur.position()
        for cand in (q, q - 1):  # the caret lands between characters: take the one under the point
            if 0 <= cand < self.document().characterCount() - 1:
                r = self._char_rect(cand)
                if r.contains(pt):
                    return cand
        return None

    def _char_rect(self, q: int) -> QRect:
        cur = self.textCursor()
        cur.setPosition(q)
        a = self.cursorRect(cur)
        cur.setPosition(q + 1)
        b = self.cursorRect(cur)
        w = b.left() - a.left() if b.top() == a.top() and b.left() > a.left() else self.fontMetrics().averageCharWidth()
        return QRect(a.left(), a.top(), max(w, 2), a.height())

    # -- undo goes through the window's QUndoStack ---------------------------------------
    def _undo_key(self, e: QKeyEvent) -> str | None:
        if e.matches(QKeySequence.Undo):
            return "undo"
        if e.matches(QKeySequence.Redo):
            return "redo"
        return None

    def keyPressEvent(self, e: QKeyEvent) -> None:  # noqa: N802
        which = self._undo_key(e)
        if which and self.undo_stack is not None:
            if not self.isReadOnly():
                getattr(self.undo_stack, which)()
            e.accept()
            return
        super().keyPressEvent(e)

    def context_menu(self, pt: QPoint) -> QMenu:
        """The right-click menu at a viewport point: the character's own entries first, then editing."""
        menu = self.createStandardContextMenu(pt)
        if self.undo_stack is not None:  # swap the document's own undo/redo for the stack's
            for a in menu.actions():
                if a.objectName() in ("edit-undo", "edit-redo"):
                    menu.removeAction(a)
            first = menu.actions()[0] if menu.actions() else None
            menu.insertAction(first, self.undo_stack.createUndoAction(menu))
            menu.insertAction(first, self.undo_stack.createRedoAction(menu))
        q = self.position_at(pt)
        if q is not None and self.context_actions is not None:
            extra = self.context_actions(q, menu)
            if extra:
                first = menu.actions()[0] if menu.actions() else None
                for a in extra:
                    menu.insertAction(first, a)
                menu.insertSeparator(first)
        return menu

    def contextMenuEvent(self, e: QContextMenuEvent) -> None:  # noqa: N802
        menu = self.context_menu(e.pos())
        menu.exec(e.globalPos())
        menu.deleteLater()

    # -- tooltip ----------------------------------------------------------------------
    def event(self, e: QEvent) -> bool:
        if e.type() == QEvent.ShortcutOverride and self._undo_key(e) and self.undo_stack is not None:
            e.accept()  # the editor handles Ctrl+Z itself (through the stack), not the window's action
            return True
        if e.type() == QEvent.ToolTip and self.tooltip_provider is not None:
            q = self.position_at(self.viewport().mapFromGlobal(e.globalPos()))
            text = self.tooltip_provider(q) if q is not None else None
            if text:
                QToolTip.showText(e.globalPos(), text, self)
            else:
                QToolTip.hideText()
                e.ignore()
            return True
        return super().event(e)

    # -- badges -----------------------------------------------------------------------
    def paintEvent(self, e: QPaintEvent) -> None:  # noqa: N802
        super().paintEvent(e)
        if not self.picks:
            return
        p = QPainter(self.viewport())
        p.setRenderHint(QPainter.Antialiasing)
        vis = self.viewport().rect()
        small = QFont(self.font())
        small.setPointSizeF(max(6.0, self.font().pointSizeF() * 0.55))
        small.setBold(True)
        p.setFont(small)
        fm = p.fontMetrics()
        for n, q in enumerate(self.picks, 1):
            r = self._char_rect(q)
            if not vis.intersects(r):
                continue
            label = str(n)
            w = max(fm.horizontalAdvance(label) + 4, fm.height())
            badge = QRect(r.right() - w // 2, r.top() - fm.height() // 3, w, fm.height())
            p.setBrush(QColor(220, 60, 40))
            p.setPen(Qt.NoPen)
            p.drawRoundedRect(badge, fm.height() / 2, fm.height() / 2)
            p.setPen(Qt.white)
            p.drawText(badge, Qt.AlignCenter, label)
        p.end()
