"""Never lose the user's text, and Run does what the panel says.

Save / Discard / Cancel on close and open, an autosave that restores exactly
what was on screen (after a fill too), malformed autosaves set aside, errors in
front of the window, Run/Step following the Order panel, the Run panel naming
the run's options, and a timeline that goes where it is clicked.
"""

from __future__ import annotations

import json
import time

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QStyle, QStyleOptionSlider

from app import autosave
from app.main_window import AUTOSAVE_IDLE_MS
from app.settings import Settings

TEXT = "It is a truth universally acknowledged, that a single man in possession of a good fortune."


def wait_fill(w, qtbot):
    qtbot.waitUntil(lambda: w.runner.run is not None and w.runner.run.done and not w.runner.running
                    and not w.client.busy, timeout=60_000)


# -- Save / Discard / Cancel ------------------------------------------------------------------
def test_closing_over_unsaved_text_asks_and_cancel_keeps_the_window(make_window, qtbot):
    w = make_window(wait_model=False)
    w.show()
    qtbot.keyClicks(w.editor, "my words")
    assert w.dirty
    w.answer = "cancel"
    assert not w.close()
    assert w.asked == ["closing"] and w.isVisible()
    # written while the question is open (in the autosave thread), kept on Cancel
    qtbot.waitUntil(lambda: autosave.read_snapshot() is not None, timeout=5_000)
    assert autosave.read_snapshot().text == "my words"
    w.answer = "discard"
    assert w.close()
    assert autosave.read_snapshot() is None  # discarded: a clean exit


def test_quit_shortcut_asks_too(make_window, qtbot):
    w = make_window(wait_model=False)
    w.show()
    qtbot.keyClicks(w.editor, "unsaved")
    w.answer = "cancel"
    w.actions_["quit"].trigger()
    assert w.asked == ["closing"] and w.isVisible()


def test_save_answer_saves_then_closes(make_window, qtbot, tmp_path):
    w = make_window(wait_model=False)
    w.show()
    qtbot.keyClicks(w.editor, "keep me")
    w.file_path = tmp_path / "notes.txt"
    w.answer = "save"
    assert w.close()
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "keep me"
    assert autosave.read_snapshot() is None


def test_a_save_that_fails_keeps_the_window_open(make_window, qtbot, tmp_path):
    w = make_window(wait_model=False)
    w.show()
    qtbot.keyClicks(w.editor, "keep me")
    w.file_path = tmp_path / "missing-folder" / "notes.txt"
    w.answer = "save"
    assert not w.close()
    assert w.isVisible() and w.autosaver.wait(5) and autosave.read_snapshot().text == "keep me"


def test_a_clean_document_closes_without_asking(make_window, tmp_path):
    w = make_window(wait_model=False)
    src = tmp_path / "a.txt"
    src.write_text(TEXT, encoding="utf-8")
    assert w.open_file(src)
    assert w.close() and w.asked == []


def test_opening_a_file_or_run_over_unsaved_work_asks(make_window, qtbot, tmp_path):
    w = make_window(wait_model=False)
    w.show()
    qtbot.keyClicks(w.editor, "draft")
    other = tmp_path / "other.txt"
    other.write_text(TEXT, encoding="utf-8")
    w.answer = "cancel"
    assert not w.open_file(other)
    assert w.editor.toPlainText() == "draft"
    run = tmp_path / "r.json"
    run.write_text(json.dumps({"format": "ardm-studio-run", "text": "abc", "masked": [1], "steps": []}))
    assert not w.open_file(run)
    assert w.editor.toPlainText() == "draft"
    assert w.asked == ["opening other.txt", "opening r.json"]
    w.answer = "discard"
    assert w.open_file(other)
    assert w.editor.toPlainText() == TEXT and not w.dirty
    assert autosave.read_snapshot() is None  # the discarded draft's snapshot went with it
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"caf\xe9")
    qtbot.keyClicks(w.editor, "x")
    n = len(w.asked)
    assert not w.open_file(bad)  # a file that cannot be read never asks (nothing would replace the work)
    assert len(w.asked) == n


# -- autosave -----------------------------------------------------------------------------------
def test_autosave_follows_a_pause_in_typing(make_window, qtbot):
    w = make_window(wait_model=False, settings=Settings(autosave_seconds=60))
    w.show()
    qtbot.keyClicks(w.editor, "first words")
    t0 = time.monotonic()
    qtbot.waitUntil(lambda: autosave.read_snapshot() is not None, timeout=5000)
    assert time.monotonic() - t0 < AUTOSAVE_IDLE_MS / 1000 + 1.0
    assert autosave.read_snapshot().text == "first words"


def test_autosave_is_bounded_while_typing_goes_on(make_window, qtbot):
    w = make_window(wait_model=False, settings=Settings(autosave_seconds=2))
    w.show()
    t0 = time.monotonic()
    while autosave.read_snapshot() is None and time.monotonic() - t0 < 6:
        qtbot.keyClicks(w.editor, "a")  # never pauses long enough for the idle save
        qtbot.wait(200)
    assert autosave.read_snapshot() is not None
    assert time.monotonic() - t0 < 3.5


def test_recovery_after_a_fill_restores_original_masks_fill_and_run(window, make_window, qtbot):
    w = window
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(range(3, 7))  # an earlier run fills these ...
    w.run_fill()
    wait_fill(w, qtbot)
    first_fill = w.mdoc.state().display
    w.mdoc.mask(range(20, 32))  # ... then a second run, shown part way
    w.order_panel.set_order("l2r")
    w.run_fill()
    wait_fill(w, qtbot)
    w.runner.seek(5)
    before = w.mdoc.state()
    run = w.runner.run
    assert w.autosave_now()
    # kill -9: the window never closes; the next start recovers
    w2 = make_window(offer_recovery=True)
    assert w2.recovery is not None and w2.recover()
    after = w2.mdoc.state()
    assert after == before
    assert after.display[3:7] == first_fill[3:7]
    assert w2.runner.run.steps == run.steps and w2.runner.view == 5
    assert w2.runner.run.options == run.options and w2.order_panel.order() == "l2r"
    assert w2.stats.text("order") == "l2r"
    # the recovered run goes on: Reset puts every mask of the second run back, Run replays it
    w2.reset_fill()
    assert w2.mdoc.state().masked == tuple(range(20, 32))
    w2.run_fill()
    qtbot.waitUntil(lambda: w2.runner.view == len(run.steps) and not w2.runner.running, timeout=10_000)
    assert w2.mdoc.state().display == run.result()


def test_recovery_of_a_snapshot_without_a_run(make_window):
    autosave.write_snapshot(autosave.Snapshot(text=TEXT, masked=[1, 2], filled=[(5, "x")]))
    w = make_window(wait_model=False, offer_recovery=True)
    assert w.recover()
    st = w.mdoc.state()
    assert st.original == TEXT and st.masked == (1, 2) and st.display[5] == "x" and st.filled == ((5, TEXT[5]),)


BAD_SNAPSHOTS = {
    "infinity": '{"format":"ardm-studio-autosave","text":"abc","masked":[Infinity]}',
    "nan": '{"format":"ardm-studio-autosave","text":"abc","masked":[NaN]}',
    "float": '{"format":"ardm-studio-autosave","text":"abc","masked":[1.5]}',
    "string_pos": '{"format":"ardm-studio-autosave","text":"abc","masked":["1"]}',
    "out_of_range": '{"format":"ardm-studio-autosave","text":"abc","masked":[3]}',
    "text_not_str": '{"format":"ardm-studio-autosave","text":5,"masked":[]}',
    "huge_array": '{"format":"ardm-studio-autosave","text":"abc","masked":[' + ",".join(["0"] * 100_000) + "]}",
    "bad_json": '{"format":"ardm-studio-autosave",',
    "not_utf8": b'{"format":"ardm-studio-autosave","text":"\xff"}',
    "deep": "[" * 100_000 + "]" * 100_000,
    "filled_bad": '{"format":"ardm-studio-autosave","text":"abc","masked":[],"filled":[[0,"xy"]]}',
    "run_bad": '{"format":"ardm-studio-autosave","text":"abc","masked":[1],"run":{"format":"ardm-studio-run",'
               '"text":"abc","masked":[Infinity]}}',
    "run_mismatch": '{"format":"ardm-studio-autosave","text":"abc","masked":[1],"run":{"format":"ardm-studio-run",'
                    '"text":"xyz","masked":[1],"steps":[]},"view":0}',
    "view_bad": '{"format":"ardm-studio-autosave","text":"abc","masked":[1],"run":{"format":"ardm-studio-run",'
                '"text":"abc","masked":[1],"steps":[]},"view":7}',
    "not_a_dict": "[1, 2]",
    "saved_at": '{"format":"ardm-studio-autosave","text":"abc","masked":[],"saved_at":"noon"}',
}


@pytest.mark.parametrize("name", sorted(BAD_SNAPSHOTS))
def test_a_malformed_autosave_is_set_aside_and_the_user_told(make_window, qtbot, name):
    path = autosave.autosave_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    body = BAD_SNAPSHOTS[name]
    (path.write_bytes if isinstance(body, bytes) else path.write_text)(body)
    w = make_window(wait_model=False, offer_recovery=True)
    assert w.recovery is None
    assert not path.exists()
    aside = list(path.parent.glob("autosave.json.bad-*"))
    assert len(aside) == 1
    assert aside[0].read_bytes() == (body if isinstance(body, bytes) else body.encode())  # kept for the user
    assert any(m.startswith("Autosave set aside: ") and str(aside[0]) in m for m in w.messages)
    w.show()  # the box comes up in front of the window once it is shown
    qtbot.waitUntil(lambda: any(b.isVisible() and "Autosave set aside" in b.windowTitle() for b in w._boxes),
                    timeout=5000)
    w.mdoc.set_text(TEXT)  # and the app works
    assert w.autosave_now()


def test_the_issue_snapshot_does_not_stop_the_app(tmp_path):
    """The exact file that aborted every launch, read by the process entry path."""
    import subprocess
    import sys

    from ardm_core.paths import data_dir

    path = autosave.autosave_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"format":"ardm-studio-autosave","text":"abc","masked":[Infinity]}')
    code = ("import sys; from PySide6.QtCore import QTimer; from PySide6.QtWidgets import QApplication;"
            "app = QApplication(['ardm-studio']); from app.main_window import MainWindow, run;"
            "QTimer.singleShot(1500, lambda: [print('ok', w.recovery is None, flush=True) or w.close()"
            " for w in app.topLevelWidgets() if isinstance(w, MainWindow)]);"
            "sys.exit(run(['--model', sys.argv[1]]))")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "no-model")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ok True" in r.stdout
    assert list(data_dir().glob("autosave.json.bad-*"))


# -- an error from the command line comes in front of the window ----------------------------------
def test_a_file_that_fails_to_open_at_start_shows_its_error_after_the_window(make_window, qtbot, tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"caf\xe9")
    w = make_window(wait_model=False, file=bad)
    boxes = [b for b in w._boxes if b.windowTitle() == "Could not open the file"]
    assert len(boxes) == 1 and not boxes[0].isVisible()  # not behind a window that is not there yet
    assert boxes[0].parent() is w
    w.show()
    qtbot.waitUntil(lambda: boxes[0].isVisible(), timeout=5000)
    assert "not UTF-8" in boxes[0].text()


# -- Run does what the panel says -----------------------------------------------------------------
def test_reset_change_order_run_starts_a_new_run(window, qtbot):
    w = window
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(range(10, 30))
    w.order_panel.set_order("confidence")
    w.run_fill()
    wait_fill(w, qtbot)
    conf = w.runner.run
    assert conf.options.order == "confidence" and w.stats.text("order") == "confidence"
    w.reset_fill()
    w.order_panel.set_order("l2r")
    w.run_fill()
    wait_fill(w, qtbot)
    run = w.runner.run
    assert run is not conf and run.options.order == "l2r"
    assert [s.positions for s in run.steps] == [(p,) for p in range(10, 30)]  # left to right, not a replay
    assert w.stats.text("order") == "l2r"
    # the same options replay the recorded run (no new computation)
    w.reset_fill()
    w.run_fill()
    qtbot.waitUntil(lambda: w.runner.view == len(run.steps) and not w.runner.running, timeout=10_000)
    assert w.runner.run is run


@pytest.mark.parametrize("change", ["k", "temperature", "seed", "top_p"])
def test_any_changed_option_starts_a_new_run(window, qtbot, change):
    w = window
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(range(10, 30))
    w.order_panel.set_order("l2r")
    w.run_fill()
    wait_fill(w, qtbot)
    first = w.runner.run
    w.reset_fill()
    if change == "k":
        w.order_panel.set_budget(4)
    elif change == "temperature":
        w.order_panel.temperature.setValue(1.3)
    elif change == "top_p":
        w.order_panel.top_p.setValue(0.5)
    else:
        w.order_panel.seed.setValue(w.order_panel.seed.value() + 7)
    w.run_fill()
    wait_fill(w, qtbot)
    run = w.runner.run
    assert run is not first
    o = run.options
    if change == "k":
        assert o.steps == 4 and len(run.steps) == 4 and w.stats.text("k") == "4 steps"
    else:
        assert w.stats.text("sampling") == f"{o.temperature:.2f} (top-p {o.top_p:.2f})"
        assert w.stats.text("seed") == str(o.seed)


def test_run_part_way_with_another_order_refills_the_same_masks(window, qtbot):
    w = window
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(range(10, 20))
    w.order_panel.set_order("l2r")
    w.run_fill()
    wait_fill(w, qtbot)
    w.runner.seek(4)
    w.order_panel.set_order("r2l")
    w.run_fill()
    wait_fill(w, qtbot)
    run = w.runner.run
    assert run.options.order == "r2l" and run.masked == tuple(range(10, 20))
    assert run.steps[0].positions == (19,)


def test_the_run_panel_shows_the_options_of_the_run_on_screen(window, qtbot):
    w = window
    assert w.stats.text("order") == "-"
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(range(0, 12))
    w.order_panel.set_order("r2l")
    w.order_panel.set_budget(3)
    w.order_panel.temperature.setValue(0.9)
    w.order_panel.seed.setValue(42)
    w.run_fill()
    wait_fill(w, qtbot)
    assert (w.stats.text("order"), w.stats.text("k"), w.stats.text("seed")) == ("r2l", "3 steps", "42")
    assert w.stats.text("sampling").startswith("0.90")
    w.order_panel.set_order("l2r")  # changing the panel does not relabel the run on screen
    w._update_controls()
    assert w.stats.text("order") == "r2l"


# -- the timeline -------------------------------------------------------------------------------
def test_clicking_the_timeline_goes_to_the_point_clicked(window, qtbot):
    w = window
    w.show()
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(range(0, 60))
    w.order_panel.set_order("l2r")
    w.run_fill()
    wait_fill(w, qtbot)
    w.resize(1300, 740)
    qtbot.waitUntil(lambda: w.playback.timeline.width() > 200, timeout=5000)
    tl = w.playback.timeline
    assert tl.maximum() == 60 and w.runner.view == 60
    opt = QStyleOptionSlider()
    tl.initStyleOption(opt)
    groove = tl.style().subControlRect(QStyle.CC_Slider, opt, QStyle.SC_SliderGroove, tl)
    handle = tl.style().subControlRect(QStyle.CC_Slider, opt, QStyle.SC_SliderHandle, tl)
    span = groove.width() - handle.width()
    x = groove.x() + handle.width() // 2 + round(span * 0.25)
    qtbot.mouseClick(tl, Qt.LeftButton, pos=QPoint(x, tl.height() // 2))
    assert abs(w.runner.view - 15) <= 1, w.runner.view  # not 60 - pageStep
    assert tl.value() == w.runner.view


# -- layout: 1366 x 768 -----------------------------------------------------------------------------
def test_the_window_fits_1366x768_and_hand_picked_does_not_grow_it(make_window, qtbot):
    from PySide6.QtCore import QSize

    from app.main_window import default_size
    from app.order_panel import EXPLICIT

    w_, h_ = default_size(QSize(1366, 768 - 30))  # a screen with a 30 px panel
    assert w_ <= 1366 and h_ <= 738
    w = make_window(wait_model=False)
    w.resize(1366, 700)
    w.show()
    qtbot.waitUntil(lambda: w.height() == 700, timeout=5000)
    assert w.minimumSizeHint().height() <= 700
    w.order_panel.set_order(EXPLICIT)
    qtbot.wait(50)
    assert w.order_panel.pick_label.isVisible()
    assert w.height() == 700 and w.minimumSizeHint().height() <= 700  # the Order dock scrolls instead
    sb = w.statusBar()
    assert sb.isVisible() and sb.geometry().bottom() <= w.height()
    assert w.playback.run_btn.isVisible()


def test_the_two_bits_figures_are_named_apart(window):
    cols = [window.compare_panel.table.horizontalHeaderItem(c).text() for c in range(2, 3)]
    run_label = window.stats.layout().itemAt(0).widget().layout().labelForField(window.stats.labels["bpc"]).text()
    assert "original" in cols[0].lower() and "sampled" in run_label.lower()
    assert "ORIGINAL" in window.compare_panel.table.horizontalHeaderItem(2).toolTip()
    assert "SAMPLED" in window.stats.labels["bits"].toolTip()


def test_work_typed_while_the_recovery_offer_is_open_is_not_lost(make_window, qtbot):
    autosave.write_snapshot(autosave.Snapshot(text=TEXT, masked=[1, 2]))
    w = make_window(wait_model=False, offer_recovery=True)
    w.show()
    qtbot.keyClicks(w.editor, "new work")
    w.answer = "cancel"
    assert not w.recover()  # Cancel keeps the new work and the offer
    assert w.editor.toPlainText() == "new work" and w.recovery is not None
    w._decline_recovery()  # No: the snapshot now holds the new work, not nothing
    assert autosave.read_snapshot().text == "new work"


def test_the_timer_autosave_builds_and_writes_off_the_gui_thread(make_window, qtbot, monkeypatch):
    """A 2 MB document's snapshot takes ~0.3 s to build and encode: that work must not run on the GUI thread."""
    import threading

    from app import window_files

    seen = []
    real = window_files.snapshot_from

    def spy(*parts):
        seen.append(threading.current_thread().name)
        return real(*parts)

    monkeypatch.setattr(window_files, "snapshot_from", spy)
    w = make_window(wait_model=False, settings=Settings(autosave_seconds=60))
    w.show()
    qtbot.keyClicks(w.editor, "typed words")
    w.mdoc.mask([0, 1])
    qtbot.waitUntil(lambda: autosave.read_snapshot() is not None, timeout=5000)
    snap = autosave.read_snapshot()
    assert (snap.text, snap.masked) == ("typed words", [0, 1])
    assert seen and all(name == "autosave" for name in seen)


def test_a_failed_background_autosave_tells_the_user_and_tries_again(make_window, qtbot):
    w = make_window(wait_model=False, settings=Settings(autosave_seconds=60))
    w.show()
    bad = autosave.autosave_path().parent / "blocked"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text("a file, not a folder")
    w.autosaver.path = bad / "autosave.json"
    qtbot.keyClicks(w.editor, "words")
    qtbot.waitUntil(lambda: any("Autosave failed" in m for m in w.messages), timeout=5000)
    assert w._autosaved_version == -1  # the next pause tries again
    w.autosaver.path = None
    qtbot.keyClicks(w.editor, "!")
    qtbot.waitUntil(lambda: autosave.read_snapshot() is not None, timeout=5000)
    assert autosave.read_snapshot().text == "words!"


def test_a_large_masking_is_autosaved_once_it_is_written(make_window, qtbot):
    """A masking written in batches for seconds is not snapshotted half way (each snapshot reads the whole
    document on the GUI thread); the typed text is already on disk, and the masks follow when it ends."""
    w = make_window(wait_model=False, settings=Settings(autosave_seconds=60))
    w.show()
    qtbot.keyClicks(w.editor, "typed words")
    qtbot.waitUntil(lambda: autosave.read_snapshot() is not None, timeout=5000)
    text = "typed words " + "abcdefghij " * 1000
    cur = w.editor.textCursor()
    cur.movePosition(cur.MoveOperation.End)
    cur.insertText(text[len("typed words"):])
    w.autosave_now(force=True)
    written = []
    real = w.autosave_now
    w.autosave_now = lambda *a, **k: (written.append(w.masking is not None), real(*a, **k))[1]
    w.apply_mask_tool("random", {"fraction": 0.5, "seed": 0})
    assert w.masking is not None  # over SYNC_LIMIT positions: batches
    written.clear()  # (the save as it starts has nothing new to write: tested below)
    w._autosave_due()  # the timers fire during the masking: nothing is written then
    assert written == []
    qtbot.waitUntil(lambda: w.masking is None, timeout=30_000)
    qtbot.waitUntil(lambda: len(autosave.read_snapshot().masked) > 3000, timeout=5000)
    assert written and not any(written)  # written after the masking, never during it
    assert autosave.read_snapshot().text == w.mdoc.state().original


def test_the_question_on_closing_does_not_wait_for_the_snapshot_and_discard_drops_it(make_window, qtbot, monkeypatch):
    """The snapshot before Save/Discard/Cancel is built beside the question (a large document takes a second);
    answering Discard before it is written leaves no snapshot behind."""
    import threading

    from app import window_files

    release, building = threading.Event(), threading.Event()
    real = window_files.snapshot_from

    def slow(*parts):
        building.set()
        release.wait(10)
        return real(*parts)

    monkeypatch.setattr(window_files, "snapshot_from", slow)
    w = make_window(wait_model=False, settings=Settings(autosave_seconds=60))
    w.show()
    qtbot.keyClicks(w.editor, "words")
    w._autosave_idle.stop()
    states = []
    w.ask_unsaved = lambda doing: (states.append(building.wait(5) and not release.is_set()), "discard")[1]
    assert w.close()
    assert states == [True]  # asked while the snapshot was still being built
    release.set()
    assert w.autosaver.wait(5)
    assert autosave.read_snapshot() is None  # the discarded work's snapshot never lands


def test_words_typed_just_before_a_large_masking_are_autosaved_as_it_starts(make_window, qtbot):
    """The timers skip the snapshot while a masking is written in batches: what was typed since the last one
    is written when it starts, not only when it ends."""
    w = make_window(wait_model=False, settings=Settings(autosave_seconds=60))
    w.show()
    w.mdoc.set_text("abcdefghij " * 1000)
    w.autosave_now(force=True)
    cur = w.editor.textCursor()
    cur.setPosition(0)
    cur.insertText("fresh words ")
    assert w._autosave_idle.isActive()  # the idle save is still to come...
    w.apply_mask_tool("random", {"fraction": 0.5, "seed": 0})
    assert w.masking is not None and not w._autosave_idle.isActive()  # ...and the masking would have skipped it
    qtbot.waitUntil(lambda: (autosave.read_snapshot() or autosave.Snapshot(text="", masked=[])).text.startswith("fresh words"),
                    timeout=5_000)
    qtbot.waitUntil(lambda: w.masking is None, timeout=30_000)
