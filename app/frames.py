"""Animated GIF or PNG frames of a fill, for teaching (Pillow, no Qt).

Each frame has a header line (the order, the step, the bits so far) above the
text around the masks, drawn as a monospace grid wrapped by words with its
line breaks kept: masked characters as a shaded cell, characters filled so far
in the step-order colours the editor uses, the latest step outlined. Long fills
are sampled down to at most ``MAX_FRAMES`` frames, long texts to the
``MAX_CHARS`` around the first mask.

With a ``FrameHeat`` (the "why this character?" overlay that is on in the
editor), frames from the explained character's step on also colour the
context characters by their weight, outline the explained character, and
carry a legend line under the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from PIL import Image, ImageDraw, ImageFont

from .colours import EXPLAINED_OUTLINE, LAST_STEP_OUTLINE, heat, over, ramp
from .run_record import RunRecord

MAX_FRAMES = 120
MAX_CHARS = 1600
COLS = 72
FONT_SIZE = 16
HEADER_SIZE = 18  # the order, step and bits line: readable when the GIF is shown on a slide
FONT_CANDIDATES = ("DejaVuSansMono.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf", "Menlo.ttc",
                   "Consolas.ttf", "cour.ttf")
BOLD_CANDIDATES = ("DejaVuSansMono-Bold.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf",
                   "Menlo.ttc", "consolab.ttf", "courbd.ttf")
SPACES = " \t"


@dataclass(frozen=True)
class FrameHeat:
    """What the model looked at when it filled one character, to draw into the frames."""

    position: int  # the explained character (index into the run's text)
    step: int  # index of the step that filled it: frames with more than this many steps done show the heat
    levels: tuple[tuple[int, float], ...]  # (index into the text, weight scaled to 0..1 by the largest)
    legend: str  # the words of the legend line, e.g. "Why 'e' (position 12, step 3): attention rollout, 0 - 0.31"


def _font(size: int = FONT_SIZE, candidates: tuple[str, ...] = FONT_CANDIDATES) -> ImageFont.ImageFont:
    for name in candidates:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    try:
        return ImageFont.load_default(size)  # Pillow >= 10.1 scales its built-in font
    except TypeError:
        return ImageFont.load_default()


def wrap_positions(text: str, start: int, end: int, cols: int, keep: frozenset[int] | set[int] = frozenset()
                   ) -> list[list[int]]:
    """Lay text[start:end] out in lines of at most cols characters: the document positions on each line.

    Lines break at the text's own line breaks and between words; a space
    where a line wraps is not drawn (no line starts with the space that broke
    it), and only a word longer than a line is cut. Positions in keep (masked
    characters) are never treated as spaces, so every mask stays visible.
    """
    lines: list[list[int]] = []
    pos = start
    for para in text[start:end].split("\n"):
        p0, p1 = pos, pos + len(para)
        pos = p1 + 1  # past the line break
        line: list[int] = []
        gap: list[int] = []  # spaces since the last word, drawn only if the next word fits on this line
        i = p0
        while i < p1:
            if text[i] in SPACES and i not in keep:
                gap.append(i)
                i += 1
                continue
            j = i
            while j < p1 and not (text[j] in SPACES and j not in keep):
                j += 1
            word = list(range(i, j))
            i = j
            if line and len(line) + len(gap) + len(word) > cols:
                lines.append(line)
                line, gap = [], []  # the next line starts with this word, not the spaces that broke it
            line += gap
            gap = []
            while len(line) + len(word) > cols:  # a word longer than a line: cut it
                room = cols - len(line)
                line += word[:room]
                word = word[room:]
                lines.append(line)
                line = []
            line += word
        line += gap[: max(0, cols - len(line))]  # trailing spaces, as far as they fit
        lines.append(line)
    return lines


def frame_caption(run: RunRecord, done_steps: int, n_steps: int) -> str:
    """The header of a frame: the order, the step and the bits of the fill so far."""
    bits = run.steps[done_steps - 1].cumulative_bits if done_steps else 0.0
    return f"{run.options.order_name()} order \u00b7 step {done_steps} / {n_steps} \u00b7 {bits:.1f} bits"


def _window(run: RunRecord) -> tuple[int, int]:
    if len(run.text) <= MAX_CHARS or not run.masked:
        return 0, min(len(run.text), MAX_CHARS)
    start = max(0, run.masked[0] - 200)
    return start, min(len(run.text), start + MAX_CHARS)


def _draw_heat_legend(d: ImageDraw.ImageDraw, x: int, y: int, cw: int, ch: int, words: str,
                      font: ImageFont.ImageFont) -> None:
    """A small bar from no weight to the largest, then the legend's words."""
    bar = 6 * cw
    for i in range(bar):
        d.line([x + i, y + 3, x + i, y + ch - 5], fill=over(heat(i / (bar - 1))))
    d.rectangle([x - 1, y + 2, x + bar, y + ch - 4], outline=(120, 120, 120))
    d.text((x + bar + cw, y + 2), words, fill=(20, 20, 20), font=font)


def frame_steps(n_steps: int) -> list[int]:
    """Which step counts get a frame: all of them, or an even sample ending at the last."""
    if n_steps + 1 <= MAX_FRAMES:
        return list(range(n_steps + 1))
    return sorted({round(i * n_steps / (MAX_FRAMES - 1)) for i in range(MAX_FRAMES)})


def render_frames(run: RunRecord, n_steps: int, path: Path, fmt: str = "gif",
                  explained: FrameHeat | None = None) -> Iterator[int]:
    """Write the frames; yields the number written so far (so a worker can stop between frames).

    ``explained``: a heat overlay drawn on the frames from its step on.
    """
    if fmt not in ("gif", "png"):
        raise ValueError(f"unknown frame format {fmt!r}; choose from ['gif', 'png']")
    a, b = _window(run)
    font = _font()
    header_font = _font(HEADER_SIZE, BOLD_CANDIDATES)
    cw = round(font.getlength("M")) if hasattr(font, "getlength") else 9
    ch = FONT_SIZE + 6
    header_h = HEADER_SIZE + 18
    masked = set(run.masked)
    lines = wrap_positions(run.text, a, b, COLS, masked)  # document positions per displayed line
    legend_h = ch + 10 if explained is not None else 0
    text_bottom = header_h + len(lines) * ch + 24  # the legend line goes below this
    width, height = COLS * cw + 24, text_bottom + legend_h
    levels = dict(explained.levels) if explained is not None else {}
    step_of: dict[int, int] = {}
    chars: dict[int, str] = {}
    images: list[Image.Image] = []
    done_steps = 0
    wanted = frame_steps(n_steps)
    total = max(1, n_steps)
    count = 0
    for target in wanted:
        while done_steps < target:
            s = run.steps[done_steps]
            for p, c in zip(s.positions, s.chars):
                step_of[p], chars[p] = done_steps, c
            done_steps += 1
        img = Image.new("RGB", (width, height), (255, 255, 255))
        d = ImageDraw.Draw(img)
        d.rectangle([0, 0, width, header_h - 6], fill=(30, 30, 40))
        d.text((12, 7), frame_caption(run, done_steps, n_steps), fill=(255, 215, 90), font=header_font)
        show_heat = explained is not None and done_steps > explained.step
        for row, positions in enumerate(lines):
            y = header_h + 6 + row * ch
            for col, p in enumerate(positions):
                x = 12 + col * cw
                if p in masked and p not in chars:
                    d.rectangle([x, y, x + cw - 1, y + ch - 2], fill=(200, 210, 245))
                    continue
                c = chars.get(p, run.text[p])
                cell = [x, y, x + cw - 1, y + ch - 2]
                back = over(ramp("order", step_of[p] / total)) if p in chars else (255, 255, 255)
                if show_heat and p in levels:
                    back = over(heat(levels[p]), back)
                if back != (255, 255, 255):
                    d.rectangle(cell, fill=back)
                if show_heat and p == explained.position:
                    d.rectangle(cell, outline=EXPLAINED_OUTLINE, width=2)
                elif p in chars and step_of[p] == done_steps - 1:
                    d.rectangle(cell, outline=LAST_STEP_OUTLINE, width=2)
                d.text((x, y + 2), c if c.isprintable() else " ", fill=(20, 20, 20), font=font)
        if show_heat:
            _draw_heat_legend(d, 12, text_bottom, cw, ch, explained.legend[: COLS - 7], font)
        if fmt == "png":
            path.mkdir(parents=True, exist_ok=True)
            img.save(path / f"frame_{count:04d}.png")
        else:
            images.append(img.convert("P", palette=Image.ADAPTIVE, colors=64))
        count += 1
        yield count
    if fmt == "gif" and images:
        tmp = path.with_name(f".{path.name}.tmp")
        durations = [120] * (len(images) - 1) + [1500]  # hold the finished text
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
        tmp.replace(path)  # atomic: never a half-written GIF
