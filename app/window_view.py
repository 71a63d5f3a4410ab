"""The main window's view side: colour modes, hover tooltips, show original, presentation mode, themes.

A mixin of ``MainWindow``; what the model did is read from the run controller
and the highlighter, never from the worker.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QDockWidget, QHBoxLayout, QLabel, QSizePolicy, QTextEdit, QToolBar, QVBoxLayout, QWidget

from .colour_legend import ColourLegend
from .help_pages import EMPTY_HINT, FirstRunGuide, HelpDialog
from .highlighter import describe_bits
from .jobs import RunStarted
from .masked_document import PosMap
from .settings import save_settings

PRESENTATION_SPEED = 3  # steps per second when teaching


class WindowView:
    def _build_view_bars(self, lay: QVBoxLayout) -> None:
        """Under the editor: the colour legend (always), then the presentation caption and step counter."""
        self.editor.setPlaceholderText(EMPTY_HINT)  # what to do, while the editor is empty
        self.help_dialog: HelpDialog | None = None
        self.guide: FirstRunGuide | None = None
        self.legend = ColourLegend()
        self.legend.mode_chosen.connect(self.set_colour_mode)
        lay.addWidget(self.legend)
        self._sketch_legend: tuple[tuple[str, str], ...] = ()  # glyphs of the coarse-to-fine run on screen
        self.client.event.connect(self._note_sketch_legend)
        self.step_counter = QLabel()  # presentation mode: a step count readable from the back of the room
        self.step_counter.setObjectName("step_counter")
        self.step_counter.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
        self.step_counter.setSizePolicy(QSizePolicy.Fixed, QSizePolicy.Preferred)  # the caption takes the rest
        self.step_counter.setStyleSheet("#step_counter { background: #1e1e28; color: #ffd75a; padding: 6px 14px; "
                                        "border-radius: 6px; font-weight: bold; }")
        self.presentation_bar = QWidget()
        row = QHBoxLayout(self.presentation_bar)
        row.setContentsMargins(0, 4, 0, 0)
        row.addWidget(self.caption, 1)
        self.caption.setVisible(True)  # the bar shows and hides them together
        row.addWidget(self.step_counter)
        self.presentation_bar.setVisible(False)
        lay.addWidget(self.presentation_bar)
        self._before_presentation: dict | None = None

    # -- help ---------------------------------------------------------------------------------
    def show_help(self) -> None:
        """Help > What am I seeing? (non-modal; one window, raised again if already open)."""
        if self.help_dialog is None:
            self.help_dialog = HelpDialog(self)
        self.help_dialog.show()
        self.help_dialog.raise_()
        self.help_dialog.activateWindow()

    def show_guide(self) -> None:
        """The first-steps guide (Help menu, and once on the first start)."""
        if self.guide is None:
            self.guide = FirstRunGuide(self)
            self.guide.more_requested.connect(self.show_help)
        self.guide.show()
        self.guide.raise_()

    def maybe_show_guide(self) -> None:
        """On the first start with the window on screen: the guide, once; the settings remember it."""
        mb = self.menuBar()  # Help last, after the menus other parts of the window added
        mb.removeAction(self.help_menu.menuAction())
        mb.addAction(self.help_menu.menuAction())
        if self.settings.guide_seen or not self.isVisible():
            return
        self.settings.guide_seen = True
        try:
            save_settings(self.settings)
        except OSError:
            pass  # written again at close
        self.show_guide()
        self.activateWindow()
        self.editor.setFocus()  # typing goes to the document while the guide is open

    def _note_sketch_legend(self, ev) -> None:
        if isinstance(ev, RunStarted) and ev.legend:
            self._sketch_legend = tuple(ev.legend)

    def _update_legend(self) -> None:
        run = self.runner.run
        if run is None or run.n_stages <= 1:
            self.legend.set_glyphs(None)
            return
        if not self._sketch_legend:  # a run opened from a file: the default stage map's glyphs
            from ardm_core.stages import DEFAULT_CLASSES

            self._sketch_legend = tuple((glyph, name) for name, glyph, _c, _m in DEFAULT_CLASSES)
        self.legend.set_glyphs(self._sketch_legend)

    def set_colour_mode(self, mode: str) -> None:
        self.settings.colour_mode = mode
        self.highlighter.set_mode(mode)
        if hasattr(self, "legend"):
            self.legend.set_mode(mode)
        a = getattr(self, "actions_", {}).get(f"colour_{mode}")
        if a is not None and not a.isChecked():
            a.setChecked(True)

    def tooltip_for(self, q: int) -> str | None:
        hit = self.runner.info_at(q)
        if hit is None:
            if self.mdoc.is_masked(q):
                return "masked" + (f" (pick #{self.editor.picks.index(q) + 1})" if q in self.editor.picks else "")
            return None
        step, i = hit
        orig = self.runner.run.text[step.positions[i]]
        lines = [f"<b>{_show(step.chars[i])}</b> filled at step {step.index + 1}",
                 f"probability {step.probs[i]:.3f}, {describe_bits(step.bits[i])} bits",
                 f"original: {_show(orig)}" + ("" if orig == step.chars[i] else " (differs)")]
        if i < len(step.topk):
            lines.append("top 5: " + ", ".join(f"{_show(c)} {p:.2f}" for c, p in step.topk[i]))
        lines.append("<i>Alt-click or right-click: why this character?</i>")
        return "<br>".join(lines)

    def _update_caption(self) -> None:
        self._update_legend()
        if not (hasattr(self, "actions_") and self.actions_["presentation"].isChecked()):
            return
        s = self.runner.current_step()
        run = self.runner.run
        r = self.runner
        self.step_counter.setText(f"Step {r.view} / {r.recorded}" if run is not None else "Step -")
        if run is None:
            text = "Mask some characters, pick an order, press Run."
        elif s is None:
            text = f"Step 0: all {run.n_masked} masked characters are still hidden. Order: {run.options.order}."
        else:
            chars = ", ".join(f"'{_show(c)}'" for c in s.chars[:6]) + (" ..." if len(s.chars) > 6 else "")
            left = run.n_masked - sum(len(x.positions) for x in run.steps[: self.runner.view])
            p = sum(s.probs) / len(s.probs) if s.probs else 0.0
            text = (f"Step {s.index + 1} ({run.options.order}): the model wrote {chars} "
                    f"(mean probability {p:.2f}, {s.step_bits:.1f} bits). {left} masked characters left.")
        self.caption.setText(text)

    def set_presentation(self, on: bool) -> None:
        """Full screen for teaching: the text, the caption, the playback bar and a large step counter.

        Side panels, menus, the edit toolbar and the status bar are hidden, and
        come back as they were when it ends (F11 again, or Esc).
        """
        if on == (self._before_presentation is not None):
            return
        chrome = [*self.findChildren(QDockWidget), self.menuBar(), self.statusBar(), *self._edit_toolbars()]
        if on:
            self._before_presentation = {"visible": [(wdg, wdg.isVisible()) for wdg in chrome],
                                         "state": self.windowState()}
            for wdg in chrome:
                wdg.setVisible(False)
            self.showFullScreen()
        else:
            before, self._before_presentation = self._before_presentation, None
            for wdg, was in before["visible"]:
                wdg.setVisible(was)
            self.setWindowState(before["state"] & ~Qt.WindowFullScreen)
            if self.isVisible():
                self.showMaximized() if before["state"] & Qt.WindowMaximized else self.showNormal()
        size = self.settings.font_size * (2 if on else 1)
        self.editor.set_font_size(size)
        self.playback.speed.setValue(PRESENTATION_SPEED if on else self.settings.speed)
        f = self.caption.font()
        f.setPointSize(max(12, round(self.settings.font_size * 1.3)))
        self.caption.setFont(f)
        f = self.step_counter.font()
        f.setPointSize(max(20, self.settings.font_size * 3))
        self.step_counter.setFont(f)
        self.presentation_bar.setVisible(on)
        self._update_caption()

    def keyPressEvent(self, e) -> None:  # noqa: N802 - Esc leaves presentation mode (a key the editor ignores)
        if e.key() == Qt.Key_Escape and self._before_presentation is not None:
            self.actions_["presentation"].setChecked(False)
            e.accept()
            return
        super().keyPressEvent(e)

    def _edit_toolbars(self) -> list:
        return [tb for tb in self.findChildren(QToolBar) if tb.objectName() != "playback_toolbar"]

    def show_original(self, on: bool) -> None:
        if not on:
            self.stack.setCurrentWidget(self.editor)
            return
        st = self.mdoc.state()
        self.original_view.setFont(self.editor.font())
        self.original_view.setPlainText(st.original)
        pm = PosMap(st.original)
        sels = []
        wrong = QTextCharFormat()
        wrong.setBackground(QColor(240, 90, 80, 120))
        right = QTextCharFormat()
        right.setBackground(QColor(90, 200, 110, 90))
        hidden = QTextCharFormat()
        hidden.setBackground(QColor(120, 160, 255, 90))
        display = st.display
        for i, _orig in st.filled:
            sels.append(self._sel(pm.to_qt(i), right if display[i] == st.original[i] else wrong))
        for i in st.masked:
            sels.append(self._sel(pm.to_qt(i), hidden))
        self.original_view.setExtraSelections(sels)
        self.stack.setCurrentWidget(self.original_view)
        self.notify_status("Original text: green = the fill matched, red = it differs, blue = still masked")

    def _sel(self, q: int, fmt: QTextCharFormat) -> QTextEdit.ExtraSelection:
        s = QTextEdit.ExtraSelection()
        c = QTextCursor(self.original_view.document())
        c.setPosition(q)
        c.setPosition(q + 1, QTextCursor.KeepAnchor)
        s.cursor, s.format = c, fmt
        return s

    def _update_stats(self) -> None:
        r = self.runner
        run = r.run
        if run is None:
            self.stats.set(order="-", k="-", sampling="-", seed="-", steps="-", calls="-", filled="-", bits="-",
                           bpc="-", ms="-", accuracy="-")
            return
        o = run.options
        self.stats.set(order=o.order_name(),
                       k="1 char/step" if o.steps is None or o.steps >= run.n_masked else f"{o.steps} steps",
                       sampling=f"{o.temperature:.2f} (top-p {o.top_p:.2f})", seed=str(o.seed))
        shown = run.steps[: r.view]
        filled = sum(len(s.positions) for s in shown if run.is_final(s))  # characters (not class glyphs)
        sketched = sum(len(s.positions) for s in shown if s.stage == 0) if run.n_stages > 1 else 0
        bits = shown[-1].cumulative_bits if shown else 0.0
        acc = run.accuracy(r.view)
        total_ms = sum(s.ms for s in shown)
        planned = len(run.schedule) if run.schedule else (
            min(o.steps or run.n_masked, run.n_masked) if run.n_stages == 1 and not o.upscale else 0)
        self.stats.set(
            # shown of computed; while it computes, also how many the run will take (a long document's first
            # step can take minutes: "0 of 0" alone read as stuck)
            steps=f"{r.view} of {r.recorded}" + (" (done)" if run.done else f", {planned:,} planned" if planned else ""),
            calls=str(shown[-1].network_calls if shown else 0),
            filled=f"{filled} / {run.n_masked}" + (f" (classes {sketched})" if run.n_stages > 1 else ""),
            bits=f"{bits:.1f}",
            bpc=f"{bits / filled:.3f}" if filled else "-",
            ms=f"{total_ms / len(shown):.1f}" if shown else "-",
            accuracy=f"{acc:.1%}" if acc is not None else "-",
        )


def _show(c: str) -> str:
    return {"\n": "\\n", "\t": "\\t", " ": "\u2423"}.get(c, c.replace("<", "&lt;"))


DARK_ROLES = (
    (QPalette.Window, QColor(45, 45, 48)), (QPalette.WindowText, QColor(235, 235, 235)),
    (QPalette.Base, QColor(30, 30, 32)), (QPalette.AlternateBase, QColor(45, 45, 48)),
    (QPalette.Text, QColor(235, 235, 235)), (QPalette.Button, QColor(60, 60, 64)),
    (QPalette.ButtonText, QColor(235, 235, 235)), (QPalette.Highlight, QColor(60, 110, 200)),
    (QPalette.HighlightedText, Qt.white), (QPalette.ToolTipBase, QColor(60, 60, 64)),
    (QPalette.ToolTipText, Qt.white), (QPalette.PlaceholderText, QColor(170, 170, 175)),
    (QPalette.Light, QColor(90, 90, 95)), (QPalette.Midlight, QColor(70, 70, 74)),
    (QPalette.Mid, QColor(110, 110, 115)), (QPalette.Dark, QColor(25, 25, 27)), (QPalette.Shadow, QColor(10, 10, 10)),
    (QPalette.Link, QColor(120, 170, 255)), (QPalette.BrightText, QColor(255, 110, 110)),
)
# disabled widgets: dim text on a flatter button, so they read as unavailable at a glance
DARK_DISABLED = (
    (QPalette.WindowText, QColor(120, 120, 124)), (QPalette.Text, QColor(120, 120, 124)),
    (QPalette.ButtonText, QColor(120, 120, 124)), (QPalette.Button, QColor(48, 48, 51)),
    (QPalette.Base, QColor(38, 38, 40)), (QPalette.Highlight, QColor(70, 70, 74)),
    (QPalette.HighlightedText, QColor(150, 150, 154)), (QPalette.PlaceholderText, QColor(110, 110, 114)),
)


def dark_palette() -> QPalette:
    p = QPalette()
    for role, colour in DARK_ROLES:
        p.setColor(role, colour)  # every group
    for role, colour in DARK_DISABLED:
        p.setColor(QPalette.Disabled, role, colour)
    return p


def apply_theme(app, theme: str) -> None:
    if app is None:
        return
    if theme == "dark":
        app.setPalette(dark_palette())
    else:
        app.setPalette(app.style().standardPalette())
