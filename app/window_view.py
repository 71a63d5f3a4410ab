"""The main window's view side: colour modes, hover tooltips, show original, presentation mode, themes.

A mixin of ``MainWindow``; what the model did is read from the run controller
and the highlighter, never from the worker.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QTextEdit

from .highlighter import describe_bits
from .masked_document import PosMap

PRESENTATION_SPEED = 3  # steps per second when teaching


class WindowView:
    def set_colour_mode(self, mode: str) -> None:
        self.settings.colour_mode = mode
        self.highlighter.set_mode(mode)
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
        return "<br>".join(lines)

    def _update_caption(self) -> None:
        if not (hasattr(self, "actions_") and self.actions_["presentation"].isChecked()):
            return
        s = self.runner.current_step()
        run = self.runner.run
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
        size = self.settings.font_size * (2 if on else 1)
        self.editor.set_font_size(size)
        self.playback.speed.setValue(PRESENTATION_SPEED if on else self.settings.speed)
        for key in ("mask", "compare"):
            self.docks[key].setVisible(not on)
        f = self.caption.font()
        f.setPointSize(max(12, round(self.settings.font_size * 1.3)))
        self.caption.setFont(f)
        self.caption.setVisible(on)
        self._update_caption()

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
        order = "hand-picked, then " + o.rest_order if o.order == "explicit" else o.order
        self.stats.set(order=order + (" (coarse to fine)" if o.upscale else ""),
                       k="1 char/step" if o.steps is None or o.steps >= run.n_masked else f"{o.steps} steps",
                       sampling=f"{o.temperature:.2f} (top-p {o.top_p:.2f})", seed=str(o.seed))
        shown = run.steps[: r.view]
        filled = sum(len(s.positions) for s in shown if run.is_final(s))  # characters (not class glyphs)
        sketched = sum(len(s.positions) for s in shown if s.stage == 0) if run.n_stages > 1 else 0
        bits = shown[-1].cumulative_bits if shown else 0.0
        acc = run.accuracy(r.view)
        total_ms = sum(s.ms for s in shown)
        self.stats.set(
            steps=f"{r.view} of {r.recorded}" + (" (done)" if run.done else ""),
            calls=str(shown[-1].network_calls if shown else 0),
            filled=f"{filled} / {run.n_masked}" + (f" (classes {sketched})" if run.n_stages > 1 else ""),
            bits=f"{bits:.1f}",
            bpc=f"{bits / filled:.3f}" if filled else "-",
            ms=f"{total_ms / len(shown):.1f}" if shown else "-",
            accuracy=f"{acc:.1%}" if acc is not None else "-",
        )


def _show(c: str) -> str:
    return {"\n": "\\n", "\t": "\\t", " ": "\u2423"}.get(c, c.replace("<", "&lt;"))


def apply_theme(app, theme: str) -> None:
    if app is None:
        return
    if theme == "dark":
        p = QPalette()
        for role, colour in ((QPalette.Window, QColor(45, 45, 48)), (QPalette.WindowText, Qt.white),
                             (QPalette.Base, QColor(30, 30, 32)), (QPalette.AlternateBase, QColor(45, 45, 48)),
                             (QPalette.Text, Qt.white), (QPalette.Button, QColor(55, 55, 58)),
                             (QPalette.ButtonText, Qt.white), (QPalette.Highlight, QColor(60, 110, 200)),
                             (QPalette.HighlightedText, Qt.white), (QPalette.ToolTipBase, QColor(60, 60, 64)),
                             (QPalette.ToolTipText, Qt.white)):
            p.setColor(role, colour)
        app.setPalette(p)
    else:
        app.setPalette(app.style().standardPalette())
