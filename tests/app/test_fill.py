"""Fills through the worker thread: every mask filled, steps in order, hand-picked order, pause, cancel."""

from __future__ import annotations

from app.jobs import StepEvent
from app.masked_document import MASK_GLYPH

TEXT = "It is a truth universally acknowledged, that a single man in possession of a good fortune."


def collect_steps(w) -> list:
    seen: list = []
    w.client.event.connect(lambda ev: seen.append(ev.step.index) if isinstance(ev, StepEvent) else None)
    return seen


def wait_idle(qtbot, w, timeout=20_000):
    qtbot.waitUntil(lambda: not w.runner.running and not w.client.busy, timeout=timeout)


def test_full_fill_fills_every_mask_in_order(window, qtbot):
    w = window
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(range(10, 30))
    levels = w.undo_stack.count()
    seen = collect_steps(w)
    w.order_panel.set_order("confidence")
    w.run_fill()
    qtbot.waitUntil(lambda: w.runner.run is not None and w.runner.run.done and w.runner.view == w.runner.recorded,
                    timeout=20_000)
    wait_idle(qtbot, w)
    run = w.runner.run
    assert seen == list(range(len(seen))) and len(seen) == len(run.steps) == 20
    assert sorted(p for s in run.steps for p in s.positions) == list(range(10, 30))
    st = w.mdoc.state()
    assert st.masked == ()
    assert MASK_GLYPH not in st.display
    assert st.display[:10] == TEXT[:10] and st.display[30:] == TEXT[30:]
    assert st.display == run.result()
    assert w.stats.text("filled") == "20 / 20" and w.stats.text("steps") == "20 of 20 (done)"
    assert w.runner.info_at(10) is not None  # hover data for a filled character
    assert "probability" in w.tooltip_for(10)
    # the whole fill is one undo level
    assert w.undo_stack.count() == levels + 1
    assert w.undo_stack.undoText() == "Fill (confidence)"
    w.undo_stack.undo()
    assert w.mdoc.state().masked == tuple(range(10, 30))
    w.undo_stack.redo()
    assert w.mdoc.state().display == run.result()


def test_budget_fills_in_k_steps(window, qtbot):
    w = window
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(range(0, 40))
    w.order_panel.k_slider.setValue(5)
    qtbot.waitUntil(lambda: w.order_panel.plot.plan is not None, timeout=10_000)
    assert sum(w.order_panel.plot.plan.budget) == 40 and len(w.order_panel.plot.plan.budget) == 5
    w.run_fill()
    qtbot.waitUntil(lambda: w.runner.run is not None and w.runner.run.done, timeout=20_000)
    wait_idle(qtbot, w)
    assert len(w.runner.run.steps) == 5
    assert w.mdoc.state().masked == ()


def test_hand_picked_order_is_followed_exactly(window, qtbot):
    w = window
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(range(20, 32))
    w.order_panel.set_order("explicit")
    assert w.editor.pick_mode
    picks = [31, 20, 25, 22]
    w.pick_positions(picks)
    w.pick_positions([5])  # not masked: ignored
    assert len(w.editor.picks) == 4
    w.run_fill()
    qtbot.waitUntil(lambda: w.runner.run is not None and w.runner.run.done, timeout=20_000)
    wait_idle(qtbot, w)
    order = [p for s in w.runner.run.steps for p in s.positions]
    assert order[:4] == picks
    assert sorted(order) == list(range(20, 32))
    rest = [p for p in range(20, 32) if p not in picks]
    assert order[4:] == rest  # the rest left to right (default "fill the rest" order)


def test_pause_then_continue_and_cancel(window, qtbot):
    w = window
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(range(0, 60))
    w.playback.speed.setValue(50)  # 20 ms between steps
    w.run_fill()
    qtbot.waitUntil(lambda: w.runner.recorded >= 3, timeout=20_000)
    w.pause_fill()
    wait_idle(qtbot, w)
    n = w.runner.recorded
    assert 3 <= n < 60 and not w.runner.run.done
    qtbot.wait(100)
    assert w.runner.recorded == n  # paused: nothing more arrives
    assert w.runner.view == n
    assert w.stats.text("steps") == f"{n} of {n}, 60 planned"  # not done: how many the run will take in all
    w.step_fill()  # one more step on request
    qtbot.waitUntil(lambda: w.runner.recorded == n + 1, timeout=10_000)
    wait_idle(qtbot, w)
    w.step_back()
    assert w.runner.view == n and w.mdoc.state().masked.__len__() == 60 - sum(
        len(s.positions) for s in w.runner.run.steps[:n])
    w.run_fill()  # continue: replays the recorded step, then computes on
    qtbot.waitUntil(lambda: w.runner.recorded >= n + 4, timeout=20_000)
    w.runner.cancel()
    wait_idle(qtbot, w)
    m = w.runner.recorded
    qtbot.wait(100)
    assert w.runner.recorded == m < 60  # cancelled within one step


def test_timeline_seek_and_resample(window, qtbot):
    w = window
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(range(0, 12))
    w.run_fill()
    qtbot.waitUntil(lambda: w.runner.run is not None and w.runner.run.done, timeout=20_000)
    wait_idle(qtbot, w)
    first = list(w.runner.run.steps)
    w.runner.seek(4)
    assert len(w.mdoc.state().masked) == 8
    seed = w.order_panel.seed.value()
    w.resample()
    qtbot.waitUntil(lambda: w.runner.run.done and w.runner.view == 12 and not w.runner.running, timeout=20_000)
    wait_idle(qtbot, w)
    assert w.order_panel.seed.value() == seed + 1
    assert w.runner.run.steps[:4] == first[:4]
    assert [s.index for s in w.runner.run.steps] == list(range(12))
    assert w.mdoc.state().masked == ()
    w.reset_fill()
    assert w.mdoc.state().masked == tuple(range(12))


def test_worker_error_is_shown_and_thread_lives(make_window, qtbot, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    w = make_window(model_path=str(bad))
    assert w.model_info is None
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(range(3))
    errors = []
    w.client.errored.connect(errors.append)
    w.client.start_fill(1, TEXT, [0, 1, 2], w.run_options())  # no model: the job raises in the worker
    qtbot.waitUntil(lambda: bool(errors), timeout=10_000)
    assert "no model is loaded" in errors[0].message
    assert w.last_error is not None
    w.client.plan(3, 10, 3)  # the thread still takes jobs
    qtbot.waitUntil(lambda: not w.client.busy, timeout=10_000)


def test_hand_picked_then_the_rest_in_another_order(window, qtbot):
    w = window
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(range(40, 50))
    w.order_panel.set_order("explicit")
    w.order_panel.rest_combo.setCurrentIndex(w.order_panel.rest_combo.findData("r2l"))
    w.pick_positions([45, 41])
    w.order_panel.undo_pick.emit()  # undo the last pick ...
    w.pick_positions([42])  # ... and pick another
    assert len(w.editor.picks) == 2
    w.run_fill()
    qtbot.waitUntil(lambda: w.runner.run is not None and w.runner.run.done, timeout=20_000)
    wait_idle(qtbot, w)
    order = [p for s in w.runner.run.steps for p in s.positions]
    assert order == [45, 42, 49, 48, 47, 46, 44, 43, 41, 40]


def test_picks_follow_typing(window, qtbot):
    from PySide6.QtGui import QTextCursor

    w = window
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(range(20, 25))
    w.order_panel.set_order("explicit")
    w.pick_positions([24, 21])
    c = w.editor.textCursor()
    c.setPosition(0)
    w.editor.setTextCursor(c)
    c.insertText("Oh. ")
    assert w.editor.picks == [28, 25]
    assert all(w.mdoc.is_masked(q) for q in w.editor.picks)


def test_clicking_masked_characters_picks_them(window, qtbot):
    from PySide6.QtCore import Qt

    w = window
    w.show()
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(range(3, 8))
    w.order_panel.set_order("explicit")
    qtbot.waitExposed(w)
    for q in (6, 3, 0):  # 0 is not masked: no badge
        r = w.editor._char_rect(q)
        qtbot.mouseClick(w.editor.viewport(), Qt.LeftButton, pos=r.center())
    assert w.editor.picks == [6, 3]
    assert w.tooltip_for(6) == "masked (pick #1)"


def test_the_pick_count_clears_with_the_badges_when_a_run_starts(window, qtbot):
    w = window
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(range(20, 26))
    w.order_panel.set_order("explicit")
    w.pick_positions([25, 20])
    assert w.order_panel.pick_label.text().startswith("2 of 6")
    w.run_fill()
    assert w.editor.picks == []
    assert w.order_panel.pick_label.text().startswith("0 of 6")  # not "2 of 6" beside no badges
    qtbot.waitUntil(lambda: w.runner.run is not None and w.runner.run.done, timeout=20_000)
    wait_idle(qtbot, w)


def test_budget_larger_than_the_masks_left_part_way_through_a_fill(window, qtbot):
    """Shown part way, a fill leaves fewer masks than K: compare and a new run use at most that many steps."""
    w = window
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(range(20, 32))
    w.order_panel.k_slider.setValue(10)
    w.run_fill()
    qtbot.waitUntil(lambda: w.runner.run is not None and w.runner.run.done, timeout=20_000)
    wait_idle(qtbot, w)
    w.runner.seek(w.runner.recorded - 1)
    left = len(w.mdoc.state().masked)
    assert 0 < left < 10
    w.compare_orders(["l2r"])
    wait_idle(qtbot, w)
    assert w.last_error is None
    assert [r.order for r in w.compare_panel.rows] == ["l2r"] and w.compare_panel.rows[0].network_calls <= left
    w.editor.textCursor().insertText("Oh. ")  # an edit detaches the run; its masks stay
    assert w.run_options().steps == left
    w.run_fill()
    qtbot.waitUntil(lambda: w.runner.run is not None and w.runner.run.done, timeout=20_000)
    wait_idle(qtbot, w)
    assert w.last_error is None and w.mdoc.state().masked == ()


def test_budget_slider_right_end_is_one_character_per_step(qtbot):
    from app.order_panel import OrderPanel

    p = OrderPanel()
    qtbot.addWidget(p)
    p.set_k_range(40)
    assert p.budget() == 0 and p.options().steps is None  # default: the right end
    p.k_slider.setValue(1)
    assert p.budget() == 1 and p.options().steps == 1  # left end: everything in one call
    p.k_slider.setValue(39)
    assert p.budget() == 39
    p.set_budget(0)
    assert p.k_slider.value() == 40 and p.budget() == 0
    p.set_k_range(100)  # more masks: a chosen K stays, the right end follows
    assert p.budget() == 0 and p.k_slider.value() == 100
