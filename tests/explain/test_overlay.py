"""The app's "why this character?" overlay: Alt-click a filled character, the heat appears; it clears."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, Qt  # noqa: E402

from tests.app.conftest import _no_blocking_dialogs, _no_leaked_threads, make_window, window  # noqa: E402,F401

TEXT = "It is a truth universally acknowledged, that a single man in possession of a good fortune."


def _filled(w, qtbot):
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(range(10, 20))
    w.order_panel.set_order("l2r")
    w.run_fill()
    qtbot.waitUntil(lambda: w.runner.run is not None and w.runner.run.done and w.runner.view == w.runner.recorded,
                    timeout=20_000)
    qtbot.waitUntil(lambda: not w.runner.running and not w.client.busy, timeout=20_000)


def _alt_click(w, qtbot, q):
    w.show()
    qtbot.waitExposed(w)
    r = w.editor._char_rect(q)
    qtbot.mouseClick(w.editor.viewport(), Qt.LeftButton, Qt.AltModifier, QPoint(r.center()))


def test_alt_click_shows_the_heat_overlay_and_it_clears(window, qtbot):
    w = window
    _filled(w, qtbot)
    ov = w.explainer
    _alt_click(w, qtbot, 15)
    qtbot.waitUntil(lambda: ov.active, timeout=20_000)
    ex = ov.explanation
    assert ex.position == 15 and ex.step == 5  # l2r: position 15 is the sixth step
    assert ov.panel.isVisible() and ov.layer.isVisible()
    # heat on context characters only (known at that step), scaled to the largest weight; target outlined
    assert ov.layer.target == 15 and ov.layer.heat
    qs = {q for q, _ in ov.layer.heat}
    assert 15 not in qs and not qs & set(range(16, 20)) and max(level for _, level in ov.layer.heat) == pytest.approx(1.0)
    assert "Why" in ov.panel.title.text()
    # the selector: aggregate, occlusion, then every layer and head
    n_layers, n_heads = ex.attention.shape[:2]
    assert ov.panel.selector.count() == 2 + n_layers * (1 + n_heads)
    ov.panel.selector.setCurrentIndex(ov.panel.selector.count() - 1)  # the last layer's last head
    w_head, _ = ov.weights()
    assert (w_head == ex.attention[-1, -1]).all()
    ov.panel.selector.setCurrentIndex(1)
    assert ov.weights()[1] == "bits" and ov.panel.legend.unit == "bits"
    # Esc clears it
    qtbot.keyClick(w.editor, Qt.Key_Escape)
    assert not ov.active and not ov.panel.isVisible() and not ov.layer.isVisible()


def test_close_button_and_a_new_run_clear_it(window, qtbot):
    w = window
    _filled(w, qtbot)
    ov = w.explainer
    assert ov.request(12)
    qtbot.waitUntil(lambda: ov.active, timeout=20_000)
    ov.panel.close_button.click()
    assert not ov.active and ov.panel.isHidden()
    assert ov.request(12)
    qtbot.waitUntil(lambda: ov.active, timeout=20_000)
    w.runner.seek(0)  # the view moves before the step explained
    qtbot.waitUntil(lambda: not ov.active, timeout=5_000)


def test_alt_click_on_context_says_what_to_do(window, qtbot):
    w = window
    _filled(w, qtbot)
    assert not w.explainer.request(3)
    assert "filled" in w.explainer.message and not w.explainer.active
