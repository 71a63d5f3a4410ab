"""Masking, unmasking and undo in the editor; the mask tools without Qt."""

from __future__ import annotations

from PySide6.QtGui import QTextCursor

from app import masking
from app.masked_document import MASK_GLYPH

TEXT = "It is a truth universally acknowledged.\nA single man in possession of a good fortune."


def select(w, a: int, b: int) -> None:
    c = w.editor.textCursor()
    c.setPosition(a)
    c.setPosition(b, QTextCursor.KeepAnchor)
    w.editor.setTextCursor(c)


def test_mask_unmask_undo_redo(make_window):
    w = make_window(wait_model=False)
    w.mdoc.set_text(TEXT)
    select(w, 6, 13)  # "a truth"
    assert w.mask_selection() == 7
    st = w.mdoc.state()
    assert st.masked == tuple(range(6, 13))
    assert st.display[6:13] == MASK_GLYPH * 7
    assert st.original == TEXT  # originals are kept behind the glyphs
    select(w, 8, 10)
    assert w.unmask_selection() == 2
    assert w.mdoc.state().masked == (6, 7, 10, 11, 12)
    assert w.mdoc.state().display[8:10] == "tr"
    w.undo_stack.undo()  # the unmask
    assert w.mdoc.state().masked == tuple(range(6, 13))
    w.undo_stack.undo()  # the mask
    assert w.mdoc.state().masked == ()
    assert w.mdoc.state().display == TEXT
    w.undo_stack.redo()
    assert w.mdoc.state().masked == tuple(range(6, 13))
    assert w.undo_stack.undoText() == "Mask 7 characters"


def test_typing_is_undoable_and_keeps_masks(make_window, qtbot):
    w = make_window(wait_model=False)
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(range(0, 2))
    c = w.editor.textCursor()
    c.movePosition(QTextCursor.End)
    w.editor.setTextCursor(c)
    qtbot.keyClicks(w.editor, " More")
    assert w.mdoc.state().display.endswith(" More")
    assert w.mdoc.state().masked == (0, 1)
    w.undo_stack.undo()
    assert w.mdoc.state().display[2:] == TEXT[2:]
    assert w.mdoc.state().masked == (0, 1)


def test_newlines_are_never_masked(make_window):
    w = make_window(wait_model=False)
    w.mdoc.set_text(TEXT)
    nl = TEXT.index("\n")
    w.mdoc.mask(range(nl - 2, nl + 2))
    assert w.mdoc.state().masked == (nl - 2, nl - 1, nl + 1)


def test_mask_tools_from_the_panel(make_window):
    w = make_window(wait_model=False)
    w.mdoc.set_text(TEXT)
    n = w.apply_mask_tool("regex", {"pattern": "[aeiou]"})
    assert n == sum(c in "aeiou" for c in TEXT)
    w.undo_stack.undo()
    assert w.apply_mask_tool("regex", {"pattern": "("}) == 0  # a bad pattern is a message, not a crash
    assert any("bad regular expression" in m for m in w.messages)


def test_random_and_nth_are_seeded_and_skip_newlines():
    a = masking.mask_random(TEXT, 0.3, seed=7)
    assert a == masking.mask_random(TEXT, 0.3, seed=7)
    assert a != masking.mask_random(TEXT, 0.3, seed=8)
    assert TEXT.index("\n") not in a
    assert masking.mask_every_nth(TEXT, 10) == [i for i in range(0, len(TEXT), 10) if TEXT[i] != "\n"]
    assert masking.mask_every_nth("abcdef", 2, offset=1, start=2) == [3, 5]


def test_whole_words_use_the_word_model_and_fall_back(tmp_path):
    spans = masking.word_spans("a single man's neighbourhood, well.")
    words = ["a single man's neighbourhood, well."[a:b] for a, b in spans]
    assert "neighbourhood" in words and "," not in words
    missing = tmp_path / "none.model"
    fallback = masking.word_spans("a single man's neighbourhood", model_path=missing)
    assert [(0, 1), (2, 8), (9, 12), (13, 14), (15, 28)] == fallback
    pos = masking.mask_words(TEXT, 1.0, seed=0)
    assert all(TEXT[i].isalnum() for i in pos)  # punctuation and spaces stay
    assert len(masking.mask_words(TEXT, 0.5, seed=1, model_path=missing)) > 0


def test_ctrl_z_in_the_editor_goes_through_the_undo_stack(make_window, qtbot):
    from PySide6.QtCore import Qt

    w = make_window(wait_model=False)
    w.show()
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(range(0, 3))
    w.editor.setFocus()
    assert w.undo_stack.index() == 1
    qtbot.keyClick(w.editor, Qt.Key_Z, Qt.ControlModifier)
    assert w.undo_stack.index() == 0 and w.mdoc.state().masked == ()
    qtbot.keyClick(w.editor, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
    assert w.undo_stack.index() == 1 and w.mdoc.state().masked == (0, 1, 2)


def test_a_mask_edit_that_changes_nothing_leaves_no_label_behind(make_window, qtbot):
    """Unmask with nothing masked adds no undo level; the typing after it is still called "Typing"."""
    w = make_window(wait_model=False)
    w.mdoc.set_text(TEXT)
    select(w, 0, 5)
    assert w.unmask_selection() == 0
    assert w.unmask_all() == 0
    w.mdoc.mask(range(0, 2))
    select(w, 0, 2)
    assert w.mask_selection() == 0  # already masked: nothing new
    c = w.editor.textCursor()
    c.movePosition(QTextCursor.End)
    w.editor.setTextCursor(c)
    qtbot.keyClicks(w.editor, "x")
    assert w.undo_stack.undoText() == "Typing"


def test_undo_toolbar_button_keeps_a_short_label(make_window):
    from PySide6.QtWidgets import QToolBar, QToolButton

    w = make_window(wait_model=False)
    w.mdoc.set_text(TEXT)
    select(w, 0, 5)
    w.mask_selection()
    undo = w.actions_["undo"]
    assert undo.text().replace("&", "") == "Undo Mask 5 characters"  # the Edit menu names the edit
    assert "Mask 5 characters" in undo.toolTip()
    tb = w.findChild(QToolBar, "edit_toolbar")
    button = tb.widgetForAction(undo)
    assert isinstance(button, QToolButton) and button.text() == "Undo"  # the toolbar does not reflow
