"""Mirror the editor document's undo levels into the window's QUndoStack.

Typing, masking and fills are all edits of one QTextDocument, so its own undo
already restores text and masks together. Each new document undo level becomes
one ``DocumentCommand`` on the QUndoStack (with a readable label, for the Edit
menu and an undo view); undoing the command undoes that level.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from PySide6.QtCore import QObject
from PySide6.QtGui import QTextDocument, QUndoCommand, QUndoStack


class DocumentCommand(QUndoCommand):
    def __init__(self, doc: QTextDocument, label: str) -> None:
        super().__init__(label)
        self._doc = doc
        self._first = True

    def undo(self) -> None:
        self._doc.undo()

    def redo(self) -> None:
        if self._first:  # QUndoStack.push calls redo(); the edit has already happened
            self._first = False
            return
        self._doc.redo()


class UndoMirror(QObject):
    """Pushes a command for every document undo level; callers name the next one."""

    def __init__(self, doc: QTextDocument, stack: QUndoStack, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.stack = stack
        self.next_label = ""
        self.suppress = False  # joined edits (the steps of one fill) add no level
        doc.undoCommandAdded.connect(self._added)

    def label(self, text: str) -> "UndoMirror":
        self.next_label = text
        return self

    @contextmanager
    def labelled(self, text: str) -> Iterator[None]:
        """Name the edits made inside the block; the name never outlives it.

        An edit that changes nothing (unmasking where nothing is masked) adds
        no undo level, and its label must not stick to the next one (typing).
        """
        self.next_label = text
        try:
            yield
        finally:
            self.next_label = ""

    def _added(self) -> None:
        if self.suppress:
            return
        label, self.next_label = self.next_label or "Typing", ""
        self.stack.push(DocumentCommand(self.doc, label))
