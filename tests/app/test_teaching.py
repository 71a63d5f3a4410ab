"""Teaching: the colour legend, a colour-blind-safe probability scale, full-screen presentation, GIF frames
that wrap by words, the first-run guide and help, the dark theme."""

from __future__ import annotations

from PIL import Image

from app.colours import SCALES, over, ramp
from app.frames import COLS, frame_caption, render_frames, wrap_positions
from app.run_record import RunOptions, RunRecord, StepRecord

PROSE = ("It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in "
         "want of a wife.\n\nHowever little known the feelings or views of such a man may be on his first entering "
         "a neighbourhood,\nthis truth is so well fixed.")


# -- frames -------------------------------------------------------------------------------------
def _lines(text, cols=COLS, keep=frozenset()):
    return ["".join(text[p] for p in line) for line in wrap_positions(text, 0, len(text), cols, keep)]


def test_frames_wrap_by_words_and_keep_line_breaks():
    lines = _lines(PROSE, 40)
    assert all(len(x) <= 40 for x in lines)
    assert not any(x.startswith(" ") for x in lines)  # no line starts with the space that broke it
    words = PROSE.split()
    assert " ".join(" ".join(lines).split()) == " ".join(words)  # no word lost or cut...
    assert all(w in words for x in lines for w in x.split())  # ...and none split across lines
    # the text's own line breaks are kept: the blank line, and a break even where the line had room
    assert "" in lines
    assert any(x.endswith("neighbourhood,") for x in lines) and lines[-1] == "this truth is so well fixed."
    # the layout is the greedy word wrap: each line's next word would not have fitted
    for a, b in zip(lines, lines[1:]):
        if a and b:
            assert len(a) + 1 + len(b.split()[0]) > 40 or PROSE.find(a + "\n") >= 0


def test_frames_cut_only_words_longer_than_a_line_and_never_hide_a_masked_space():
    text = "ab " + "x" * 25 + " cd"
    assert _lines(text, 10) == ["ab", "xxxxxxxxxx", "xxxxxxxxxx", "xxxxx cd"]
    # a masked space at the break stays on screen (it is a character the model fills)
    text = "aaaa bbbb cccc"
    assert _lines(text, 9) == ["aaaa bbbb", "cccc"]
    assert 9 not in sum(wrap_positions(text, 0, len(text), 9), [])  # an unmasked space at a break is not drawn
    assert 9 in sum(wrap_positions(text, 0, len(text), 9, {9}), [])  # a masked one is
    assert _lines(text, 9, {9}) == ["aaaa", "bbbb cccc"]


def _run() -> RunRecord:
    masked = tuple(range(12, 18))
    steps, cum = [], 0.0
    for i, p in enumerate(masked):
        cum += 1.5
        steps.append(StepRecord(index=i, positions=(p,), chars=PROSE[p], probs=(0.5,), entropy=(1.0,), topk=((),),
                                bits=(1.5,), step_bits=1.5,
                                cumulative_bits=cum, network_calls=i + 1, ms=1.0))
    return RunRecord(text=PROSE, masked=masked, options=RunOptions(order="confidence"), steps=steps)


def test_frame_header_names_the_order_step_and_bits(tmp_path):
    run = _run()
    assert frame_caption(run, 0, 6) == "confidence order \u00b7 step 0 / 6 \u00b7 0.0 bits"
    assert frame_caption(run, 4, 6) == "confidence order \u00b7 step 4 / 6 \u00b7 6.0 bits"
    hand = RunRecord(text=PROSE, masked=run.masked, options=RunOptions(order="explicit", rest_order="r2l", upscale=True))
    assert frame_caption(hand, 0, 6).startswith("hand-picked, then r2l (coarse to fine) order")
    out = tmp_path / "f"
    assert list(render_frames(run, 6, out, "png"))[-1] == 7
    im = Image.open(out / "frame_0003.png").convert("RGB")
    # the header band is drawn, and its type is large: bright text pixels span more than 12 rows
    band = [(x, y) for y in range(30) for x in range(0, 400) if sum(im.getpixel((x, y))) > 500]
    assert band and max(y for _, y in band) - min(y for _, y in band) >= 12


def test_gif_holds_the_steps(tmp_path):
    run = _run()
    gif = tmp_path / "a.gif"
    list(render_frames(run, 6, gif, "gif"))
    with Image.open(gif) as im:
        assert im.n_frames == 7


# -- colours ------------------------------------------------------------------------------------
def _lum(rgb):
    def lin(c):
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (lin(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _deuteranope(rgb):
    """Simulated red-green (deuteranopia) view, Viénot et al. 1999, in linear RGB approximated on sRGB."""
    r, g, b = rgb
    return (0.29275 * r + 0.70725 * g, 0.29275 * r + 0.70725 * g, -0.02234 * r + 0.02234 * g + b)


def test_probability_scale_is_colour_blind_safe_and_every_scale_is_ordered():
    # without red-green vision the probability scale still goes one way: lightness rises with probability
    seen = [_lum(_deuteranope(over(ramp("probability", t / 10)))) for t in range(11)]
    assert all(b > a for a, b in zip(seen, seen[1:])), seen
    for mode in SCALES:  # every scale is monotone in lightness (as drawn behind text on white)
        lum = [_lum(over(ramp(mode, t / 10))) for t in range(11)]
        assert all(b > a for a, b in zip(lum, lum[1:])) or all(b < a for a, b in zip(lum, lum[1:])), mode
        # and light enough everywhere for black text (WCAG contrast >= 4.5)
        assert min((x + 0.05) / 0.05 for x in lum) >= 4.5, mode
    # not the old red -> green: the unlikely end is not red
    r, g, b, _a = ramp("probability", 0.0)
    assert not (r > g and r > b)


# -- the window -----------------------------------------------------------------------------------
TEXT = "It is a truth universally acknowledged, that a single man in possession of a good fortune."


def _filled(w, qtbot):
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(range(3, 15))
    w.run_fill()
    qtbot.waitUntil(lambda: w.runner.run is not None and w.runner.run.done and not w.runner.running
                    and not w.client.busy, timeout=20_000)
    return w


def test_legend_is_always_visible_and_follows_the_colour_mode(window, qtbot):
    w = window
    assert w.legend.isVisibleTo(w) and not w.legend.glyphs.isVisibleTo(w)
    for mode, low in (("probability", "unlikely"), ("bits", "0 bits"), ("order", "early")):
        w.set_colour_mode(mode)
        assert w.legend.combo.currentData() == mode and w.legend.bar.mode == mode
        assert w.legend.low.text().startswith(low)
    # choosing in the legend's combo switches the editor's colours and the View menu
    i = w.legend.combo.findData("bits")
    w.legend.combo.activated.emit(i)
    assert w.highlighter.mode == "bits" and w.actions_["colour_bits"].isChecked() and w.settings.colour_mode == "bits"
    _filled(w, qtbot)
    w.actions_["presentation"].setChecked(True)
    assert w.legend.isVisibleTo(w)  # in presentation mode too
    w.actions_["presentation"].setChecked(False)


def test_presentation_is_full_screen_with_only_text_caption_playback_and_counter(window, qtbot):
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QToolBar

    w = _filled(window, qtbot)
    w.show()
    qtbot.waitExposed(w)
    w.docks["compare"].setVisible(False)  # a panel the user had closed stays closed afterwards
    w.actions_["presentation"].setChecked(True)
    qtbot.waitUntil(lambda: w.isFullScreen(), timeout=5_000)
    assert not any(d.isVisible() for d in w.docks.values())
    assert not w.menuBar().isVisible() and not w.statusBar().isVisible()
    assert not w.findChild(QToolBar, "edit_toolbar").isVisible()
    assert w.playback.isVisible() and w.caption.isVisible() and w.step_counter.isVisible()
    assert w.editor.isVisible() and w.legend.isVisible()
    n = w.runner.recorded
    assert w.step_counter.text() == f"Step {n} / {n}"
    assert w.step_counter.font().pointSize() >= 2 * w.settings.font_size  # large: read from the back of a room
    w.runner.seek(2)
    assert w.step_counter.text() == f"Step 2 / {n}" and w.caption.text().startswith("Step 2")
    QTest.keyClick(w.editor, Qt.Key_Escape)  # Esc leaves
    qtbot.waitUntil(lambda: not w.isFullScreen(), timeout=5_000)
    assert not w.actions_["presentation"].isChecked()
    assert w.docks["order"].isVisible() and w.docks["stats"].isVisible() and not w.docks["compare"].isVisible()
    assert w.menuBar().isVisible() and w.statusBar().isVisible() and not w.step_counter.isVisible()


def test_empty_editor_hint_help_page_and_first_run_guide_once(make_window, qtbot):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from app.help_pages import FirstRunGuide, HelpDialog
    from app.settings import load_settings

    w = make_window(wait_model=False)
    assert "Ctrl+M" in w.editor.placeholderText() and "Run" in w.editor.placeholderText()
    w.actions_["help"].trigger()
    page = w.findChild(HelpDialog)
    assert page is not None and page.isVisible() and not page.isModal()
    text = page.browser.toPlainText()
    for words in ("Orders", "confidence", "Bits", "-log", "Step budget K", "Colours", "cividis", "Compare orders"):
        assert words in text, words
    assert w.findChild(FirstRunGuide) is None  # a window never shown gets no guide
    w.show()
    qtbot.waitExposed(w)
    w.maybe_show_guide()
    guide = w.findChild(FirstRunGuide)
    assert guide is not None and guide.isVisible() and not guide.isModal()
    assert load_settings().guide_seen  # remembered at once, not only at a clean exit
    # a user who starts typing at once types into the document, not into the guide
    assert guide.testAttribute(Qt.WA_ShowWithoutActivating)
    assert w.editor.hasFocus() or QApplication.focusWidget() in (None, w.editor)
    qtbot.keyClicks(w.editor, "He carried")
    qtbot.keyClicks(guide, " a flask")  # keys that reach the guide go on to the document; Space presses nothing
    assert w.editor.toPlainText() == "He carried a flask" and guide.isVisible()
    guide.ok_btn.click()
    assert not guide.isVisible()
    w.maybe_show_guide()
    assert not guide.isVisible()
    w2 = make_window(wait_model=False, settings=load_settings())
    w2.show()
    qtbot.waitExposed(w2)
    w2.maybe_show_guide()
    assert w2.findChild(FirstRunGuide) is None  # never shown again


def _contrast(a, b) -> float:
    la, lb = _lum((a.red(), a.green(), a.blue())), _lum((b.red(), b.green(), b.blue()))
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)


def test_dark_theme_dims_disabled_buttons_and_keeps_placeholder_text_readable(qtbot):
    from PySide6.QtGui import QPalette
    from PySide6.QtWidgets import QApplication, QPushButton

    from app.window_view import apply_theme

    app = QApplication.instance()
    try:
        apply_theme(app, "dark")
        p = app.palette()
        base, button = p.color(QPalette.Active, QPalette.Base), p.color(QPalette.Active, QPalette.Button)
        on, off = p.color(QPalette.Active, QPalette.ButtonText), p.color(QPalette.Disabled, QPalette.ButtonText)
        assert _contrast(on, button) >= 7 and _contrast(off, p.color(QPalette.Disabled, QPalette.Button)) < 3.5
        assert _contrast(on, off) >= 2.5  # enabled and disabled text clearly apart
        assert _contrast(p.color(QPalette.Active, QPalette.PlaceholderText), base) >= 4.5
        assert _contrast(p.color(QPalette.Active, QPalette.PlaceholderText), p.color(QPalette.Window)) >= 4.5
        # drawn: a disabled button's label is dimmer than an enabled one's
        shots = []
        for enabled in (True, False):
            b = QPushButton("Resample from here")
            b.setEnabled(enabled)
            b.resize(180, 30)
            qtbot.addWidget(b)
            img = b.grab().toImage()
            shots.append(max(img.pixelColor(x, y).lightness() for x in range(img.width()) for y in range(img.height())))
        assert shots[0] - shots[1] >= 60, shots
    finally:
        apply_theme(app, "light")


def test_closing_in_presentation_mode_saves_a_normal_window(make_window, qtbot):
    from PySide6.QtCore import Qt

    from app.settings import Settings, load_settings

    w = make_window(wait_model=False, settings=Settings(speed=37))
    w.show()
    qtbot.waitExposed(w)
    w.actions_["presentation"].setChecked(True)
    qtbot.waitUntil(lambda: w.isFullScreen(), timeout=5_000)
    assert w.playback.speed.value() == 3
    w.close()
    assert not (w.windowState() & Qt.WindowFullScreen)  # its geometry was saved from a normal window
    saved = load_settings()
    assert saved.speed == 37  # the presentation's slow speed is not the user's
    w2 = make_window(wait_model=False, settings=saved)
    w2.show()
    qtbot.waitExposed(w2)
    assert not w2.isFullScreen() and not w2.actions_["presentation"].isChecked()
    assert w2.menuBar().isVisible() and w2.docks["order"].isVisible()


def test_guide_flag_in_a_hand_edited_settings_file_is_only_true_when_true(tmp_path):
    import json

    from app.settings import load_settings, save_settings

    path = tmp_path / "settings.json"
    for raw, seen in (("yes", False), (1, False), (None, False), (True, True)):
        path.write_text(json.dumps({"guide_seen": raw}))
        assert load_settings(path).guide_seen is seen
    s = load_settings(path)
    save_settings(s, path)
    assert json.loads(path.read_text())["guide_seen"] is True


def test_guide_points_to_the_larger_model_only_when_it_is_installed(monkeypatch):
    import ardm_core.paths as paths
    from app.help_pages import guide_text

    assert "Train &gt; Models &gt; medium" in guide_text()  # it ships
    monkeypatch.setattr(paths, "shipped_models", lambda: ["default", "upscale"])
    assert "medium" not in guide_text() and "Ctrl+M" in guide_text()
