"""The Alternatives panel: ranked fills, apply (undoable), cycle, More, real words, any length, resample at the end."""

from __future__ import annotations

import pytest

from app.masked_document import MASK_GLYPH
from ardm_core.lexicon import LexiconError, document_words, nonwords, shipped_lexicon

TEXT = "It is a truth universally acknowledged, that a single man in possession of a good fortune."


def wait_idle(qtbot, w, timeout=60_000):
    qtbot.waitUntil(lambda: not w.runner.running and not w.client.busy, timeout=timeout)


def ask(qtbot, w, more=False):
    c = w.alternatives
    (c.more if more else c.find)()
    wait_idle(qtbot, w)
    return c


def test_alternatives_apply_undo_cycle_more(window, qtbot):
    w = window
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(range(8, 13))
    w.order_panel.temperature.setValue(3.0)
    w.alternatives.panel.count.setValue(4)
    c = ask(qtbot, w)
    assert c.items and c.panel.list.count() == len(c.items)
    bpc = [it.bits_per_char for it in c.items]
    assert bpc == sorted(bpc) and len({it.text for it in c.items}) == len(c.items)
    levels = w.undo_stack.count()
    assert c.apply(0)
    st = w.mdoc.state()
    assert st.masked == () and st.display[8:13] == c.items[0].chars
    assert w.undo_stack.count() == levels + 1 and w.undo_stack.undoText() == "Apply alternative"
    if len(c.items) > 1:
        assert c.cycle()  # replaces the applied one: still one level
        assert w.mdoc.state().display[8:13] == c.items[1].chars and w.undo_stack.count() == levels + 1
    w.undo_stack.undo()
    assert w.mdoc.state().masked == tuple(range(8, 13)) and w.mdoc.state().display[8:13] == MASK_GLYPH * 5
    n_before = len(c.items)
    ask(qtbot, w, more=True)
    assert len(c.items) >= n_before and len({it.text for it in c.items}) == len(c.items)


def test_real_words_checkbox(window, qtbot):
    w = window
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(range(8, 13))
    w.order_panel.temperature.setValue(2.0)
    w.alternatives.panel.words.setChecked(True)
    w.alternatives.panel.count.setValue(3)
    c = ask(qtbot, w)
    assert c.items, c.message
    lex = shipped_lexicon().with_words(document_words(TEXT, range(8, 13)))
    for it in c.items:
        if not it.unconstrained:
            assert nonwords(it.text, lex, range(8, 13)) == []
        assert it.constrained_bits is not None


def test_any_length(window, qtbot):
    w = window
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(range(8, 13))
    p = w.alternatives.panel
    p.any_length.setChecked(True)
    p.min_len.setValue(2)
    p.max_len.setValue(4)
    p.count.setValue(2)
    c = ask(qtbot, w)
    assert c.items and all(2 <= it.length <= 4 for it in c.items)
    assert "likeliest" in c.message
    assert c.apply(0)
    assert len(w.editor.toPlainText()) == len(TEXT) - 5 + c.items[0].length
    w.undo_stack.undo()
    assert len(w.editor.toPlainText()) == len(TEXT)


def test_resample_at_the_end_of_a_run_changes_the_fill(window, qtbot):
    w = window
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(range(8, 20))
    w.order_panel.temperature.setValue(2.0)
    w.run_fill()
    qtbot.waitUntil(lambda: w.runner.run is not None and w.runner.run.done and w.runner.view == w.runner.recorded,
                    timeout=30_000)
    wait_idle(qtbot, w)
    before = w.editor.toPlainText()
    w.resample()
    qtbot.waitUntil(lambda: w.alternatives.message.startswith(("applied", "every sample")), timeout=60_000)
    assert w.alternatives.message.startswith("applied")
    assert w.editor.toPlainText() != before


def test_a_damaged_lexicon_is_a_message_and_the_text_stays(window, qtbot, monkeypatch):
    import app.alternatives_job as job

    def broken():
        raise LexiconError("words.tsv.gz: not a gzip'd lexicon file")

    monkeypatch.setattr(job, "shipped_lexicon", broken)
    w = window
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(range(8, 13))
    before = w.mdoc.state()
    w.alternatives.panel.words.setChecked(True)
    c = ask(qtbot, w)
    assert "lexicon" in c.message and not c.items
    assert w.mdoc.state() == before
