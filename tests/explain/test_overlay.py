"""The app's "why this character?" overlay: Alt-click (or right-click) a filled character, the heat appears;
it clears; it works in presentation mode and is drawn into exported frames."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PIL import Image  # noqa: E402
from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtWidgets import QDockWidget  # noqa: E402

from app.colours import heat as heat_rgba  # noqa: E402
from app.colours import over, ramp  # noqa: E402

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


def _colours(im):
    return {c for _, c in im.getcolors(1 << 24)}


def _frames(w, qtbot, folder):
    w.export_frames(folder, "png")
    qtbot.waitUntil(lambda: not w.client.busy and len(list(folder.glob("frame_*.png"))) == w.runner.view + 1,
                    timeout=20_000)
    return [Image.open(folder / f"frame_{i:04d}.png").convert("RGB") for i in range(w.runner.view + 1)]


def test_exported_frames_carry_the_overlay_when_it_is_on(window, qtbot, tmp_path):
    w = window
    _filled(w, qtbot)
    ov = w.explainer
    assert ov.frame_heat() is None  # off: nothing to draw
    assert ov.request(15)
    qtbot.waitUntil(lambda: ov.active, timeout=20_000)
    heat = ov.frame_heat()
    assert heat.position == 15 and heat.step == 5 and "Why" in heat.legend and "Aggregate" in heat.legend
    # the frames get the levels the editor paints (text indices here; this text has no surrogates)
    assert sorted(heat.levels) == sorted(ov.layer.heat)
    on = _frames(w, qtbot, tmp_path / "on")
    ov.clear()
    off = _frames(w, qtbot, tmp_path / "off")
    full = over(heat_rgba(1.0))  # the legend bar ends at full weight
    for i, (a, b) in enumerate(zip(on, off)):
        assert a.height > b.height
        same = a.crop((0, 0, b.width, b.height)).tobytes() == b.tobytes()
        assert same == (i <= heat.step), i  # the heat appears on the frame where position 15 is filled, and stays
        legend = {a.getpixel((x, y)) for x in range(a.width) for y in range(b.height, a.height)}
        assert (full in legend) == (i > heat.step), i
        assert full not in _colours(b)  # without the overlay no frame has heat
    # the most-weighted context character shows full heat over its own background (white, or its step colour)
    run = w.runner.run
    top = max(heat.levels, key=lambda pl: pl[1])[0]
    step_of = {p: s.index for s in run.steps for p in s.positions}
    back = over(ramp("order", step_of[top] / len(run.steps))) if top in step_of else (255, 255, 255)
    assert over(heat_rgba(1.0), back) in _colours(on[-1])
    assert over(heat_rgba(1.0), back) not in _colours(off[-1])


def test_right_click_offers_why_this_character(window, qtbot):
    w = window
    _filled(w, qtbot)
    w.show()
    qtbot.waitExposed(w)
    ov = w.explainer

    def entry(q):
        menu = w.editor.context_menu(w.editor._char_rect(q).center())
        found = [a for a in menu.actions() if a.text() == "Why this character?"]
        return menu, found

    menu, found = entry(3)  # context, not filled: no entry
    assert not found and menu.actions()  # the editing entries are still there
    menu.deleteLater()
    menu, found = entry(15)
    assert len(found) == 1 and menu.actions()[0] is found[0]  # first in the menu
    found[0].trigger()
    qtbot.waitUntil(lambda: ov.active, timeout=20_000)
    assert ov.explanation.position == 15 and ov.layer.target == 15
    menu.deleteLater()
    assert "why this character" in w.tooltip_for(15).lower()  # the tooltip says how to ask


def test_overlay_works_in_presentation_mode(window, qtbot):
    w = window
    _filled(w, qtbot)
    w.actions_["presentation"].setChecked(True)
    try:
        qtbot.waitUntil(lambda: w._before_presentation is not None, timeout=5_000)
        assert all(not d.isVisible() for d in w.findChildren(QDockWidget))
        _alt_click(w, qtbot, 15)
        ov = w.explainer
        qtbot.waitUntil(lambda: ov.active, timeout=20_000)
        assert ov.layer.isVisible() and ov.panel.isVisible() and ov.layer.heat
        # the heat sits on the enlarged characters and the panel inside the editor
        assert ov.layer.size() == w.editor.viewport().size()
        assert w.editor.viewport().rect().contains(ov.panel.geometry())
        # Esc clears the overlay first, and only then leaves presentation
        qtbot.keyClick(w.editor, Qt.Key_Escape)
        assert not ov.active and w._before_presentation is not None
    finally:
        w.actions_["presentation"].setChecked(False)
    assert w._before_presentation is None
