"""Large documents: masking is fast, the mask index stays exact through edits, a step stops between windows."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest
import torch
from PySide6.QtGui import QTextCursor, QTextDocument

from app import jobs, masking
from app.masked_document import MASK_GLYPH, MaskedDocument, _Marks
from app.run_record import RunOptions
from ardm_core.session import DecodeSession
from ardm_core.windows import Cancelled, plan_windows, window_logprobs


def big_text(sample: str, n: int) -> str:
    return ((sample + "\n") * (n // (len(sample) + 1) + 1))[:n]


def ticking_timer(ms: int = 10):
    """A timer every ``ms`` that records how late each tick came (the event loop turning); (lags, timer)."""
    from PySide6.QtCore import QTimer

    lags, due = [], [time.perf_counter() + ms / 1000]

    def tick():
        now = time.perf_counter()
        lags.append(now - due[0])
        due[0] = now + ms / 1000

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(ms)
    return lags, timer


def full_read(md: MaskedDocument):
    """The marks read afresh from every fragment (what the incremental index must equal)."""
    m = _Marks()
    m.sync(md.doc)
    return m.q.tolist(), m.kind.tolist(), m.orig.tolist()


def test_mask_positions_on_2mb_are_seeded(sample_text):
    """(Their speed is a figure of bench/large_document.py.)"""
    text = big_text(sample_text, 2_000_000)
    pos = masking.mask_random(text, 0.15, seed=4)
    assert pos == sorted(set(pos)) and all(text[i] != "\n" for i in pos[:5000])
    assert len(pos) == round(0.15 * sum(c != "\n" for c in text))
    assert pos == masking.mask_random(text, 0.15, seed=4) and pos != masking.mask_random(text, 0.15, seed=5)
    nth = masking.mask_every_nth(text, 7, offset=3, start=10, end=5000)
    assert nth == [i for i in range(13, 5000, 7) if text[i] != "\n"]


def test_state_index_follows_typing_undo_and_fills(qtbot, sample_text):
    doc = QTextDocument()
    md = MaskedDocument(doc)
    text = big_text(sample_text, 20_000)
    md.set_text(text)
    rng = random.Random(0)
    md.mask(rng.sample(range(len(text)), 800))
    st = md.state()
    assert st.original == text and len(st.masked) == sum(c == MASK_GLYPH for c in st.display)
    cur = QTextCursor(doc)
    for k in range(60):  # typing, deleting across masks, new lines, undo and redo, fills
        op = k % 6
        p = rng.randrange(doc.characterCount() - 50)
        if op == 0:
            cur.setPosition(p)
            cur.insertText("xy\nz")
        elif op == 1:
            cur.setPosition(p)
            cur.setPosition(p + rng.randrange(1, 40), QTextCursor.KeepAnchor)
            cur.removeSelectedText()
        elif op == 2:
            doc.undo()
        elif op == 3:
            doc.redo()
        elif op == 4:
            st = md.state()
            qs = list(st.masked[:5])
            md.begin_fill()
            md.write_fill(qs, "abcde"[: len(qs)], [st.source[q] for q in qs])
            md.end_fill()
        else:
            md.mask(rng.sample(range(doc.characterCount() - 1), 30))
        st = md.state()
        m = md._marks
        assert (m.q.tolist(), m.kind.tolist(), m.orig.tolist()) == full_read(md), k
        assert [i for i, c in enumerate(st.display) if c == MASK_GLYPH] == list(st.masked)


def test_state_after_typing_in_2mb_reads_only_the_change(qtbot, sample_text, monkeypatch):
    """(What it costs is a figure of bench/large_document.py.)"""
    doc = QTextDocument()
    md = MaskedDocument(doc)
    text = big_text(sample_text, 2_000_000)
    md.set_text(text)
    md.mask(masking.mask_random(text, 0.001, seed=1))
    md.state()
    cur = QTextCursor(doc)
    cur.setPosition(1000)
    cur.insertText("typed")  # autosave after typing: the index reads only the change
    spans = []
    real = _Marks._read
    monkeypatch.setattr(_Marks, "_read", lambda self, d, a, b: (spans.append((a, b)), real(self, d, a, b))[1])
    st = md.state()
    assert len(st.masked) > 1900 and st.original.replace("typed", "", 1) == text
    assert spans and sum(b - a for a, b in spans) < 1000  # not the 2,000,000 characters
    m = md._marks
    assert (m.q.tolist(), m.kind.tolist(), m.orig.tolist()) == full_read(md)


def test_cancel_between_window_batches(tiny_model):
    net = tiny_model.net
    D = tiny_model.config.block_size
    doc = torch.zeros(D * 100, dtype=torch.long)
    targets = np.arange(0, D * 100, 3)
    asked = []

    def cancel():
        asked.append(1)
        return len(asked) >= 2  # stop before the second batch of windows

    calls = []
    orig_forward = net.forward
    net.forward = lambda x, *a, **k: (calls.append(x.shape[0]), orig_forward(x, *a, **k))[1]
    try:
        with pytest.raises(Cancelled):
            window_logprobs(net, doc, targets, D, max_batch=8, cancel=cancel)
        assert calls == [8]  # one batch of 8 windows ran, none of the others
        rows, n = window_logprobs(net, doc, targets, D, max_batch=8, cancel=lambda: False)
        assert n == len(plan_windows(targets, len(doc), D)[0]) > 80 and rows.shape[0] == len(targets)
    finally:
        del net.forward


def test_advance_job_stops_inside_a_step(tiny_model, sample_text):
    """Cancel pressed while a step's windows are computed: the step stops, nothing is recorded."""
    text = big_text(sample_text, tiny_model.config.block_size * 80)
    masked = list(range(0, len(text), 2))
    # the session as start_fill_job builds it, at fp32 (no precision measurement that later tests would inherit)
    state = jobs.EngineState(model=tiny_model, run_id=1,
                             session=DecodeSession(tiny_model, text, masked, order="confidence"))
    control, token = jobs.FillControl(), jobs.CancelToken()
    net = tiny_model.net
    seen = []
    orig_forward = net.forward

    def forward(x, *a, **k):
        seen.append(x.shape[0])
        token.cancel()  # the user presses Cancel during the first batch
        return orig_forward(x, *a, **k)

    net.forward = forward
    try:
        events = list(jobs.advance_job(state, control, control.generation, None, token))
    finally:
        del net.forward
    assert events == [] and len(seen) == 1 and not state.session.steps  # one batch of windows, not the step
    # the session is intact: it steps on once asked again
    ev = list(jobs.advance_job(state, control, control.generation, 1))
    assert len(ev) == 1 and isinstance(ev[0], jobs.StepEvent)


def slow_long_run(w, sample_text, per_batch_s: float = 0.15):
    """A run whose single step spans many window batches, each slowed to ``per_batch_s`` (a big model's pace)."""
    net = w.client._worker.state.model.net
    D = w.model_info.block_size
    text = big_text(sample_text, D * 32 * 12)  # 12 batches of 32 windows for a step over every position
    w.mdoc.set_text(text)
    w.mdoc.mask(range(0, len(text), 2))
    orig_forward = net.forward
    batches = []

    def forward(x, *a, **k):
        batches.append(time.perf_counter())
        time.sleep(per_batch_s)
        return orig_forward(x, *a, **k)

    net.forward = forward
    w.order_panel.set_options(RunOptions(order="confidence"))
    w.confirm_large_run = lambda cost, counts: "all"  # a long run asks first; these tests agree
    return batches


@pytest.mark.parametrize("how", ["pause", "reset", "quit"])
def test_pause_reset_and_quit_stop_inside_a_long_step(make_window, qtbot, sample_text, how):
    w = make_window()
    batches = slow_long_run(w, sample_text)
    w.run_fill()
    qtbot.waitUntil(lambda: len(batches) >= 2, timeout=20_000)  # the first step is part way
    if how == "quit":
        w.close()
        at_stop = len(batches)
        assert not w.client._thread.isRunning()
    else:
        (w.pause_fill if how == "pause" else w.reset_fill)()
        at_stop = len(batches)
        qtbot.waitUntil(lambda: not w.client.busy, timeout=5_000)
        assert not w.runner.running and not w.editor.isReadOnly()
        assert w.runner.recorded == 0 and len(w.mdoc.state().masked) > 1000  # nothing half-written
    # the step has 12 batches of windows: at most the one under way when asked ran after it
    assert len(batches) <= at_stop + 1 < 12


def test_masking_2mb_in_batches_keeps_the_window_answering(make_window, qtbot, sample_text):
    """15% of a 2 MB document: the call returns at once, each batch is short, one undo level, Cancel keeps a part."""
    w = make_window(wait_model=False)
    text = big_text(sample_text, 2_000_000)
    w.mdoc.set_text(text)
    lags, timer = ticking_timer()
    assert w.apply_mask_tool("random", {"fraction": 0.15, "seed": 0}) == 0
    assert w.mdoc.mask_count() == 0  # nothing is written in the call: the positions come from a thread
    assert w.masking is not None and w.editor.isReadOnly() and not w.progress.isHidden()
    batches = []
    w.masking.progress.connect(lambda done, total: batches.append(done))
    qtbot.waitUntil(lambda: len(w.mdoc.state().masked) > 20_000, timeout=60_000)
    w.cancel_long_job()  # keeps what is masked
    qtbot.waitUntil(lambda: w.masking is None, timeout=5_000)
    timer.stop()
    kept = len(w.mdoc.state().masked)
    assert 20_000 < kept < 290_000 and not w.editor.isReadOnly()
    assert w.undo_stack.count() == 1
    w.undo_stack.undo()
    assert w.mdoc.state().masked == () and w.mdoc.state().display == text
    # written in many short batches with the event loop turning in between (their lag: bench/gui_latency.py)
    assert len(batches) > 5 and len(lags) >= len(batches) // 2  # the 10 ms timer got in between batches


def test_run_cost_counts_calls_and_windows():
    from app.run_controller import run_cost

    masked = list(range(0, 100_000, 10))  # 10,000 masks spread over 100,000 characters
    dyn = run_cost(100_000, masked, "confidence", None, 256)
    assert dyn.calls == 10_000 and dyn.windows_per_call == 385  # a window holds 26 masks (0, 10, ..., 250)
    assert dyn.window_passes == 10_000 * 385
    l2r = run_cost(100_000, masked, "l2r", None, 256)
    assert l2r.calls == 10_000 and l2r.windows_per_call == 1 and l2r.window_passes == 10_000
    k = run_cost(100_000, masked, "l2r", 100, 256)
    assert k.calls == 100 and k.windows_per_call == 100 and k.window_passes == 10_000
    assert run_cost(200, [1, 2], "confidence", None, 256).window_passes == 2


def test_a_long_run_asks_first_and_can_fill_only_the_masks_on_screen(make_window, qtbot, sample_text):
    w = make_window()
    w.resize(900, 600)
    w.show()
    qtbot.waitExposed(w)
    text = big_text(sample_text, 60_000)
    w.mdoc.set_text(text)
    w.mdoc.mask(range(0, len(text), 5))
    w.order_panel.set_options(RunOptions(order="confidence"))
    asked = []
    w.confirm_large_run = lambda cost, counts: (asked.append((cost, counts)), "cancel")[1]
    w.run_fill()
    (cost, counts), = asked
    assert cost.window_passes > 5_000 and cost.calls == len(w.mdoc.state().masked)
    assert not w.runner.running and w.runner.run is None and "start" not in w.client.pending_kinds()
    assert 0 < counts["screen"] < 2_000
    w.confirm_large_run = lambda cost, counts: "screen"
    a, b = w.visible_span()
    w.run_fill()
    run = w.runner.run
    st = w.mdoc.state()
    assert run is not None and len(run.masked) == counts["screen"]
    assert all(a <= p < b for p in run.masked)
    off = [p for p in st.masked if p >= b][:50]
    assert off and all(run.text[p] == MASK_GLYPH for p in off)  # the model never sees the other originals
    qtbot.waitUntil(lambda: not w.runner.running, timeout=60_000)
    assert run.done and MASK_GLYPH in w.mdoc.state().display[b:]


def test_a_slow_mask_tool_runs_beside_the_window(make_window, qtbot, sample_text):
    """Whole words over 1 MB take seconds of Python: the tool runs in a thread, the event loop answers."""
    w = make_window(wait_model=False)
    text = big_text(sample_text, 1_000_000)
    w.mdoc.set_text(text)
    lags, timer = ticking_timer()
    assert w.apply_mask_tool("words", {"fraction": 0.2, "seed": 0, "unit": "words"}) == 0
    assert w.masking is not None and w.masking.computing
    qtbot.waitUntil(lambda: w.masking is None, timeout=120_000)
    timer.stop()
    st = w.mdoc.state()
    expect = masking.mask_words(text, 0.2, 0, unit="words")
    assert list(st.masked) == expect and st.original == text and w.undo_stack.count() == 1
    # in the GUI thread the tool alone froze the window for seconds: here the event loop kept turning
    assert len(lags) > 20
    # a bad pattern over a long text is one clear message, and nothing changes
    boxes = []
    w.notify = lambda title, text, error=False, details="": boxes.append((title, text, error))
    w.apply_mask_tool("regex", {"pattern": "(unclosed"})
    qtbot.waitUntil(lambda: w.masking is None, timeout=10_000)
    assert boxes and boxes[0][2] and "bad regular expression" in boxes[0][1]
    assert w.mdoc.state().masked == st.masked


def test_a_mask_batch_ends_at_its_deadline_and_says_how_far_it_got(qtbot, sample_text):
    doc = QTextDocument()
    md = MaskedDocument(doc)
    text = big_text(sample_text, 5_000)
    md.set_text(text)
    todo = [i for i in range(0, 3_000, 3) if text[i] != "\n"]
    n, handled = md.mask_until(todo, time.perf_counter() - 1.0)  # already past: stops at the first check
    assert 0 < handled < len(todo) and n == handled
    assert list(md.state().masked) == todo[:handled]
    n2, handled2 = md.mask_until(todo[handled:], None)  # the rest, no deadline
    assert handled2 == len(todo) - handled and list(md.state().masked) == todo


def _staged(make_window, sample_text, monkeypatch):
    """A window on a document over the staged-start length (lowered for the test), with masks and no cached state."""
    from app import run_controller

    monkeypatch.setattr(run_controller, "STAGED_START_CHARS", 1_000)
    w = make_window()
    text = big_text(sample_text, 3_000)
    w.mdoc.set_text(text)
    w.mdoc.mask(range(0, 200, 3))
    w.order_panel.set_options(RunOptions(order="l2r"))
    cur = w.editor.textCursor()
    cur.setPosition(len(text))
    cur.insertText(".")  # a new version: nothing cached
    assert w.mdoc.cached_state() is None
    return w


def test_a_run_on_a_long_document_builds_its_state_off_the_gui_thread(make_window, qtbot, sample_text, monkeypatch):
    import threading

    from app import run_controller

    w = _staged(make_window, sample_text, monkeypatch)
    threads = []
    real = run_controller.build_state
    monkeypatch.setattr(run_controller, "build_state",
                        lambda raw: (threads.append(threading.current_thread().name), real(raw))[1])
    w.run_fill()
    # Run's turn only read the text: no state adopted, nothing sent to the worker, but Run is taken
    assert w.runner.preparing and w.runner.running and w.mdoc.cached_state() is None
    assert w.runner.run is None and "start" not in w.client.pending_kinds()
    assert w.editor.isReadOnly() and not w.playback.run_btn.isEnabled()
    w.run_fill()  # a second press while it is set up starts nothing more
    qtbot.waitUntil(lambda: w.runner.run is not None, timeout=5_000)
    assert threads == ["run-state"]
    masked = tuple(w.mdoc.masked_qt().tolist())  # (no characters outside the BMP: Qt positions are indices)
    assert not w.runner.preparing and w.runner.run.masked == masked and len(masked) > 60
    qtbot.waitUntil(lambda: not w.runner.running, timeout=60_000)
    assert w.runner.run.done and w.runner.recorded == len(masked)


@pytest.mark.parametrize("how", ["reset", "pause", "edit", "question"])
def test_a_run_being_set_up_is_dropped_by_reset_pause_an_edit_or_a_question(make_window, qtbot, sample_text, monkeypatch, how):
    w = _staged(make_window, sample_text, monkeypatch)
    messages = []
    w.runner.message.connect(messages.append)
    n = w.mdoc.mask_count()
    w.run_fill()
    assert w.runner.preparing
    if how == "edit":  # not from the keyboard (the editor is read-only), but any change of the text counts
        cur = w.editor.textCursor()
        cur.setPosition(5)
        cur.insertText("x")
    elif how == "question":  # Close over unsaved work: the run must not start under the modal question
        w.answer = "cancel"
        assert not w.close() and w.asked == ["closing"]
    else:
        (w.reset_fill if how == "reset" else w.pause_fill)()
    assert not w.runner.preparing and not w.runner.running and not w.editor.isReadOnly()
    qtbot.wait(200)  # the thread's result comes back, and is dropped
    assert w.runner.run is None and not w.runner.running and not w.editor.isReadOnly()
    assert "start" not in w.client.pending_kinds() and not w.client.busy
    assert (how == "edit") == any("press Run again" in m for m in messages)
    assert w.mdoc.mask_count() == n  # the masks are as they were


def test_a_mask_tool_on_a_long_document_builds_the_text_beside_its_positions(make_window, qtbot, sample_text,
                                                                            monkeypatch):
    """Only the read of the document is on the GUI thread; the strings are built in the tool's thread."""
    import threading

    from app import main_window

    monkeypatch.setattr(main_window, "BACKGROUND_CHARS", 1_000)
    threads = []
    real = main_window.build_state
    monkeypatch.setattr(main_window, "build_state",
                        lambda raw: (threads.append(threading.current_thread().name), real(raw))[1])
    w = make_window(wait_model=False)
    text = big_text(sample_text, 5_000)
    w.mdoc.set_text(text)
    w.mdoc.mask([3])  # the tool sees the text behind earlier masks too
    assert w.mdoc.cached_state() is None
    assert w.apply_mask_tool("nth", {"n": 10, "offset": 0}) == 0
    qtbot.waitUntil(lambda: w.masking is None, timeout=10_000)
    assert threads == ["mask-positions"]
    st = w.mdoc.state()
    assert set(st.masked) == {3} | set(masking.mask_every_nth(text, 10, offset=0))
    assert st.source == text
