"""Animated GIF or PNG frames of a fill, for teaching (Pillow, no Qt).

Each frame draws the text around the masks as a monospace grid: masked
characters as a shaded cell, characters filled so far in the step-order
gradient, the latest step outlined. Long fills are sampled down to at most
``MAX_FRAMES`` frames, long texts to the ``MAX_CHARS`` around the first mask.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Iterator

from PIL import Image, ImageDraw, ImageFont

from .run_record import RunRecord

MAX_FRAMES = 120
MAX_CHARS = 1600
COLS = 72
FONT_SIZE = 16
FONT_CANDIDATES = ("DejaVuSansMono.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf", "Menlo.ttc",
                   "Consolas.ttf", "cour.ttf")


def _font() -> ImageFont.ImageFont:
    for name in FONT_CANDIDATES:
        try:
            return ImageFont.truetype(name, FONT_SIZE)
        except OSError:
            continue
    return ImageFont.load_default()


def _gradient(t: float) -> tuple[int, int, int]:
    a, b, c = (120, 160, 235), (110, 210, 160), (245, 215, 90)
    if t < 0.5:
        u = t * 2
        return tuple(round(x + (y - x) * u) for x, y in zip(a, b))  # type: ignore[return-value]
    u = (t - 0.5) * 2
    return tuple(round(x + (y - x) * u) for x, y in zip(b, c))  # type: ignore[return-value]


def _window(run: RunRecord) -> tuple[int, int]:
    if len(run.text) <= MAX_CHARS or not run.masked:
        return 0, min(len(run.text), MAX_CHARS)
    start = max(0, run.masked[0] - 200)
    return start, min(len(run.text), start + MAX_CHARS)


def frame_steps(n_steps: int) -> list[int]:
    """Which step counts get a frame: all of them, or an even sample ending at the last."""
    if n_steps + 1 <= MAX_FRAMES:
        return list(range(n_steps + 1))
    return sorted({round(i * n_steps / (MAX_FRAMES - 1)) for i in range(MAX_FRAMES)})


def render_frames(run: RunRecord, n_steps: int, path: Path, fmt: str = "gif") -> Iterator[int]:
    """Write the frames; yields the number written so far (so a worker can stop between frames)."""
    if fmt not in ("gif", "png"):
        raise ValueError(f"unknown frame format {fmt!r}; choose from ['gif', 'png']")
    a, b = _window(run)
    font = _font()
    cw = round(font.getlength("M")) if hasattr(font, "getlength") else 9
    ch = FONT_SIZE + 6
    lines: list[list[int]] = []  # document positions per displayed line
    pos = a
    for raw in run.text[a:b].split("\n"):
        for piece in textwrap.wrap(raw, COLS, drop_whitespace=False, replace_whitespace=False) or [""]:
            lines.append(list(range(pos, pos + len(piece))))
            pos += len(piece)
        pos += 1  # the line break
    width, height = COLS * cw + 24, len(lines) * ch + 24
    step_of: dict[int, int] = {}
    chars: dict[int, str] = {}
    images: list[Image.Image] = []
    masked = set(run.masked)
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
        for row, positions in enumerate(lines):
            y = 12 + row * ch
            for col, p in enumerate(positions):
                x = 12 + col * cw
                if p in masked and p not in chars:
                    d.rectangle([x, y, x + cw - 1, y + ch - 2], fill=(200, 210, 245))
                    continue
                c = chars.get(p, run.text[p])
                if p in chars:
                    d.rectangle([x, y, x + cw - 1, y + ch - 2], fill=_gradient(step_of[p] / total))
                    if step_of[p] == done_steps - 1:
                        d.rectangle([x, y, x + cw - 1, y + ch - 2], outline=(230, 90, 0), width=2)
                d.text((x, y + 2), c if c.isprintable() else " ", fill=(20, 20, 20), font=font)
        d.text((12, height - 14), f"step {done_steps}/{n_steps}", fill=(90, 90, 90), font=ImageFont.load_default())
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
