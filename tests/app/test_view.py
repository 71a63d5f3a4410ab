"""Seeing the model: colour modes, show original, tooltips, presentation mode, copy result, settings dialog."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication

TEXT = "It is a truth universally acknowledged, that a single man in possession of a good fortune."


def filled_window(window, qtbot, positions=range(3, 15)):
    window.mdoc.set_text(TEXT)
    window.mdoc.mask(positions)
    window.run_fill()
    qtbot.waitUntil(lambda: window.runner.run is not None and window.runner.run.done and not window.runner.running
                    and not window.client.busy, timeout=20_000)
    return window


def test_colour_modes_and_last_step(window, qtbot):
    w = filled_window(window, qtbot)
    hl = w.highlighter
    assert (hl.step_of[3:15] >= 0).all() and (hl.step_of[:3] == -1).all()
    assert hl.current_step == len(w.runner.run.steps) - 1
    for mode in ("probability", "bits", "order"):
        w.set_colour_mode(mode)
        assert hl.mode == mode and w.actions_[f"colour_{mode}"].isChecked()
    w.runner.seek(2)
    assert (hl.step_of >= 0).sum() == sum(len(s.positions) for s in w.runner.run.steps[:2])


def test_show_original_marks_matches_and_misses(window, qtbot):
    w = filled_window(window, qtbot)
    w.actions_["show_original"].setChecked(True)
    assert w.stack.currentWidget() is w.original_view
    assert w.original_view.toPlainText() == TEXT
    assert len(w.original_view.extraSelections()) == 12
    w.actions_["show_original"].setChecked(False)
    assert w.stack.currentWidget() is w.editor
    acc = w.runner.run.accuracy()
    assert w.stats.text("accuracy") == f"{acc:.1%}"


def test_tooltip_names_step_probability_and_top5(window, qtbot):
    w = filled_window(window, qtbot)
    tip = w.tooltip_for(5)
    assert "filled at step" in tip and "probability" in tip and "top 5" in tip and "original: " in tip
    assert w.tooltip_for(0) is None
    w.runner.seek(0)
    assert w.tooltip_for(5) == "masked"


def test_presentation_mode(window, qtbot):
    w = filled_window(window, qtbot)
    size = w.editor.font().pointSize()
    w.actions_["presentation"].setChecked(True)
    assert w.editor.font().pointSize() == 2 * size
    assert w.playback.speed.value() == 3
    assert w.caption.isVisibleTo(w) and w.caption.text().startswith("Step ")
    w.runner.seek(0)
    assert w.caption.text().startswith("Step 0")
    w.actions_["presentation"].setChecked(False)
    assert w.editor.font().pointSize() == size and not w.caption.isVisibleTo(w)


def test_copy_result(window, qtbot):
    w = filled_window(window, qtbot)
    w.copy_result()
    assert QApplication.clipboard().text() == w.runner.run.result()


def test_settings_dialog_is_non_blocking_and_applies(make_window, qtbot):
    from app.settings_dialog import SettingsDialog

    w = make_window(wait_model=False)
    w.settings_dialog()
    dlg = w.findChild(SettingsDialog)
    assert dlg is not None and dlg.isVisible()
    dlg.font_size.setValue(17)
    dlg.accept()
    assert w.settings.font_size == 17 and w.editor.font().pointSize() == 17
