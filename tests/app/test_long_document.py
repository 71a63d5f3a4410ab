"""A 100,000-character document: masking, a recorded run's steps and timeline jumps stay exact.

What they cost is measured by bench/large_document.py, not asserted here.
"""

from __future__ import annotations

import random

from PySide6.QtGui import QColor, QTextCharFormat

from app.masked_document import MASK_GLYPH
from app.run_record import RunRecord, StepRecord


def synthetic_run(original: str, masked: tuple[int, ...], steps: int) -> RunRecord:
    order = list(masked)
    random.Random(0).shuffle(order)
    size = -(-len(order) // steps)
    out, cum = [], 0.0
    for i in range(steps):
        pos = tuple(order[i * size:(i + 1) * size])
        out.append(StepRecord(i, pos, "e" * len(pos), (0.5,) * len(pos), (1.0,) * len(pos),
                              ((("e", 0.5),),) * len(pos), (1.0,) * len(pos), float(len(pos)), cum + len(pos), i + 1, 1.0))
        cum += len(pos)
    return RunRecord(text=original, masked=masked, steps=out)


def test_long_document_masks_and_replays(make_window, qtbot, sample_text):
    w = make_window(wait_model=False)
    text = (sample_text + "\n") * (100_000 // (len(sample_text) + 1) + 1)
    text = text[:100_000]
    w.mdoc.set_text(text)
    w.apply_mask_tool("random", {"fraction": 0.15, "seed": 3})  # many positions: written in batches
    qtbot.waitUntil(lambda: w.masking is None, timeout=60_000)
    st = w.mdoc.state()
    assert len(st.masked) > 14_000 and st.original == text
    w.runner.load(synthetic_run(st.original, st.masked, steps=60))
    w.runner.seek(1)
    assert w.mdoc.state().display.count(MASK_GLYPH) == len(st.masked) - len(w.runner.run.steps[0].positions)
    w.runner.seek(60)
    assert MASK_GLYPH not in w.mdoc.state().display
    w.runner.seek(0)
    assert w.mdoc.state().masked == st.masked


def test_void_calls_keep_none_alive():
    """PySide6 6.12.0 on Python 3.11 drops a reference to None per void call (pyproject pins <6.12)."""
    import sys

    fmt, colour = QTextCharFormat(), QColor(1, 2, 3)
    for _ in range(64):  # the first calls fill PySide's caches
        fmt.setBackground(colour)
    before = sys.getrefcount(None)
    for _ in range(2_000):
        fmt.setBackground(colour)
    assert sys.getrefcount(None) > before - 1_000, "this PySide6 leaks references to None: install PySide6-Essentials<6.12"
