"""Coarse to fine in the app: the class sketch appears first, then the characters; seeking back restores the sketch."""

from __future__ import annotations

from pathlib import Path

from app.masked_document import MASK_GLYPH

TEXT = "It is a truth universally acknowledged, that a single man in possession of a good fortune."


def test_coarse_to_fine_shows_the_class_sketch_before_the_letters(make_window, qtbot, monkeypatch, tiny_upscale_dir):
    import ardm_core.paths
    import app.jobs

    monkeypatch.setattr(ardm_core.paths, "upscale_model_dir", lambda: Path(tiny_upscale_dir))
    monkeypatch.setattr(app.jobs, "upscale_model_dir", lambda: Path(tiny_upscale_dir))
    w = make_window()
    assert w.order_panel.upscale_check.isEnabled()
    w.order_panel.upscale_check.setChecked(True)
    w.order_panel.set_order("l2r")
    w.mdoc.set_text(TEXT)
    masked = list(range(10, 30))
    w.mdoc.mask(masked)
    w.run_fill()
    qtbot.waitUntil(lambda: w.runner.run is not None and w.runner.run.done and w.runner.view == w.runner.recorded,
                    timeout=30_000)
    qtbot.waitUntil(lambda: not w.runner.running and not w.client.busy, timeout=10_000)
    run = w.runner.run
    assert run.n_stages == 2 and len(run.steps) == 40
    assert w.stats.text("model") == "tiny-upscale"  # the model that computed the run
    legend = w.legend.glyphs  # a lasting legend of the sketch's glyphs under the text, in large type
    assert legend.isVisibleTo(w) and all(name in legend.text() for name in ("vowel", "consonant", "space"))
    assert [s.stage for s in run.steps] == [0] * 20 + [1] * 20
    final = w.mdoc.state().display
    assert final == run.result() and MASK_GLYPH not in final
    # at the stage boundary every masked position shows a class glyph
    w.runner.seek(20)
    sketch = w.mdoc.state().display
    glyphs = {s.chars for s in run.steps[:20]}
    assert all(sketch[p] in "".join(glyphs) for p in masked)
    assert sketch[:10] == TEXT[:10] and run.filled == 40 // 2
    qtbot.waitUntil(lambda: w.stats.text("filled") == "0 / 20 (classes 20)", timeout=5_000)
    # one more step writes a character over its glyph; one back restores the glyph
    w.runner.seek(21)
    assert w.mdoc.state().display[10] == run.steps[20].chars
    w.runner.seek(20)
    assert w.mdoc.state().display == sketch
    w.runner.seek(0)
    assert w.mdoc.state().display[10:30] == MASK_GLYPH * 20
    w.runner.seek(40)
    assert w.mdoc.state().display == final
