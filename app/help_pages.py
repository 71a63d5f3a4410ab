"""What a new user reads: the empty-editor hint, the first-run guide and Help > What am I seeing?

Both windows are non-modal (the app stays usable behind them). The guide is
shown once, on the first start with a visible window; the settings remember
that it was shown.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication, QDialog, QDialogButtonBox, QLabel, QPushButton, QTextBrowser, QVBoxLayout, QWidget

from .colours import ENDS
from .order_panel import engine_orders

EMPTY_HINT = ("Type or paste some text here (or File > Open).\n"
              "Then select a few words and press Ctrl+M to hide them,\n"
              "pick an order on the left and press Run (F5) to watch the model fill them in.\n"
              "Help > What am I seeing? (F1) explains the colours and numbers.")

GUIDE = """<h3>Welcome to ARDM Studio</h3>
<p>A small language model fills in hidden characters, one step at a time, in an order you choose.</p>
<ol>
<li><b>Text:</b> type or paste a paragraph, or open a file.</li>
<li><b>Mask:</b> select some words and press <b>Ctrl+M</b> (or use the <i>Mask tools</i> panel).
The hidden characters show as \u2591.</li>
<li><b>Order:</b> choose how the model goes through the gaps (left to right, most confident first, ...)
and, if you like, a step budget <b>K</b>.</li>
<li><b>Run</b> (F5), <b>Step</b> (F7), or drag the timeline to replay. Hover a filled character for
its probability and the model's top 5 guesses.</li>
<li><b>F11</b> shows it full screen for a class; Esc leaves.</li>
</ol>
<p>The colours and numbers are explained in <b>Help &gt; What am I seeing?</b> (F1).</p>"""

LARGER_MODEL = """<p>For better text at about 2.5 times the time per step, switch to the larger model:
<b>Train &gt; Models &gt; medium</b>.</p>"""


def guide_text() -> str:
    """The first-run guide; it points to the larger shipped model when that is installed."""
    from ardm_core.paths import shipped_models

    return GUIDE + (LARGER_MODEL if "medium" in shipped_models() else "")


def what_am_i_seeing() -> str:
    """The help page: orders (as the engine names them), bits, K, the colours; a page or two."""
    orders = "".join(f"<li><b>{name}</b>: {text}</li>" for name, text in engine_orders() if name != "explicit")
    colours = "".join(f"<li><b>{title}</b>: from {low} to {high}</li>" for title, low, high in ENDS.values())
    return f"""<h2>What am I seeing?</h2>
<p>The model is an <b>order-agnostic autoregressive diffusion model</b> (ARDM, Hoogeboom et al., 2022).
Given the characters you can see, it predicts a probability for every possible character at every
hidden position. A <b>step</b> picks one or more hidden positions, samples a character for each from the
model's prediction, writes them in, and the next step sees them. Unlike a left-to-right model it can fill
the gaps in any order.</p>

<h3>Orders</h3>
<p>The order decides which hidden positions are filled at each step:</p>
<ul>{orders}
<li><b>hand-picked</b>: click the masked characters in the order you want; the rest follow another order.</li>
</ul>
<p>The first five are fixed before the run starts; <i>confidence</i>, <i>min-entropy</i> and
<i>least-confident</i> look at the model's predictions at every step. <b>Coarse to fine</b> (when the
upscaling model is installed) first decides each hidden character's class (vowel, consonant, space,
punctuation ...), drawn as a sketch of glyphs, then the characters themselves.</p>

<h3>Bits</h3>
<p>When the model gives a character probability <i>p</i>, writing it down costs
<b>-log<sub>2</sub> p bits</b>: 0 bits for a sure guess, 1 bit for a coin flip, 8 bits for a 1-in-256 shot.
The Run panel's <i>Bits of the fill</i> adds up the bits of the characters this run <b>sampled</b> (how
surprised the model is by its own fill). <i>Compare orders</i> instead scores the <b>original</b> text behind
the masks under each order: fewer bits per original character means the order lets the model predict your
text better (and would compress it better).</p>

<h3>Step budget K</h3>
<p>With no budget, every step fills one character: as many steps (network calls) as hidden characters.
A budget <b>K</b> fills them all in K steps, several characters per step: faster, at some cost in bits,
because characters written in the same step cannot see each other. The plot in the Order panel shows how
many characters each step fills: the blue bars are the paper's dynamic-programming schedule (small steps
where the model gains most from seeing more), the orange line an equal split, each with its expected bits.</p>

<h3>Colours</h3>
<p>The background of each filled character shows one of three things (the legend under the text says which;
switch it there or in the View menu):</p>
<ul>{colours}</ul>
<p>The characters of the step on screen are <b><u>bold and underlined</u></b> in orange. \u2591 marks a
character that is still hidden. The probability scale goes from dark blue to yellow (cividis), readable with
red-green colour blindness. <b>Show original</b> (Ctrl+Shift+G) compares with your text: green where the
fill matches, red where it differs, blue where it is still hidden.</p>

<h3>More</h3>
<ul>
<li>Hover a filled character: the step that wrote it, its probability, bits and the top 5 candidates.</li>
<li>Alt-click a filled character (or right-click &gt; <i>Why this character?</i>): what the model looked at
when it wrote it. While it is on, exported GIF/PNG frames show it too.</li>
<li><i>Resample from here</i> keeps the steps up to the timeline and samples the rest again.</li>
<li>File &gt; Export saves the run as JSON (reopen and replay it) or as an animated GIF for slides.</li>
</ul>"""


class HelpDialog(QDialog):
    """Help > What am I seeing?: one scrollable page, non-modal."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("What am I seeing?")
        self.setModal(False)
        lay = QVBoxLayout(self)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(True)
        self.browser.setHtml(what_am_i_seeing())
        lay.addWidget(self.browser)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.close)
        lay.addWidget(buttons)
        self.resize(620, 560)


class FirstRunGuide(QDialog):
    """Five steps to a first fill; dismissed with "Got it" (or closed), never shown again."""

    more_requested = Signal()  # "What am I seeing?"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("First steps")
        self.setModal(False)
        # shown beside the editor, never in its way: a user who starts typing at once
        # types into the document, not into this window (where Space would press a button)
        self.setAttribute(Qt.WA_ShowWithoutActivating)
        lay = QVBoxLayout(self)
        text = QLabel(guide_text())
        text.setTextFormat(Qt.RichText)
        text.setWordWrap(True)
        lay.addWidget(text)
        buttons = QDialogButtonBox()
        self.more_btn = QPushButton("What am I seeing?")
        self.ok_btn = QPushButton("Got it")
        buttons.addButton(self.more_btn, QDialogButtonBox.HelpRole)
        buttons.addButton(self.ok_btn, QDialogButtonBox.AcceptRole)
        self.more_btn.clicked.connect(self.more_requested)
        buttons.accepted.connect(self.accept)
        for b in (self.more_btn, self.ok_btn):
            b.setFocusPolicy(Qt.NoFocus)  # Space or Enter typed for the document never presses them
        lay.addWidget(buttons)
        self.setMaximumWidth(520)

    def keyPressEvent(self, event) -> None:
        """Typing while the guide has the keyboard goes to the document; Esc closes the guide."""
        if event.key() == Qt.Key_Escape:
            self.accept()
            return
        target = getattr(self.parent(), "editor", None)
        if target is None:
            super().keyPressEvent(event)
            return
        self.parent().activateWindow()
        target.setFocus()
        QApplication.sendEvent(target, QKeyEvent(event.type(), event.key(), event.modifiers(), event.text(),
                                                 event.isAutoRepeat(), event.count()))
