"""Mask tools: which character positions to hide (no Qt).

Every tool returns sorted Python string indices inside ``[start, end)`` of the
text. Line breaks are never masked (a mask glyph in place of a line break would
reflow the page while it is hidden), nor are characters outside the Basic
Multilingual Plane (Qt counts them as two positions; the model's vocabulary has
none of them anyway).

Word masking segments the text with a small sentencepiece unigram model trained
on the corpus (assets/words/words.model, see scripts/train_word_model.py): its
pieces are the units a writer would recognise, with punctuation split off. When
that file is missing the tool falls back to a ``\\w+`` split, so word masking
works in a fresh clone without the corpus.
"""

from __future__ import annotations

import functools
import random
import re
from pathlib import Path

import numpy as np

from ardm_core.paths import ASSETS

WORD_MODEL = ASSETS / "words" / "words.model"
SP_SPACE = "\u2581"
WORD_UNITS = ("words", "pieces")


def maskable(ch: str) -> bool:
    return ch != "\n" and ch != "\u2029" and ord(ch) <= 0xFFFF


def maskable_array(text: str) -> np.ndarray:
    """``maskable`` for every character of ``text`` at once (bool, one per Python index)."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    return (codes != 0x0A) & (codes != 0x2029) & (codes <= 0xFFFF)


def _span(text: str, start: int, end: int | None) -> tuple[int, int]:
    end = len(text) if end is None else min(end, len(text))
    return max(0, start), end


def mask_random(text: str, fraction: float, seed: int, start: int = 0, end: int | None = None) -> list[int]:
    """A seeded random ``fraction`` of the maskable characters in the span (numpy: a 2 MB text in tens of ms)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    start, end = _span(text, start, end)
    if end <= start:
        return []
    candidates = np.flatnonzero(maskable_array(text[start:end])) + start
    k = round(fraction * len(candidates))
    chosen = np.random.default_rng(seed).choice(len(candidates), size=k, replace=False)
    return candidates[np.sort(chosen)].tolist()


def mask_every_nth(text: str, n: int, offset: int = 0, start: int = 0, end: int | None = None) -> list[int]:
    """Every ``n``-th maskable character, counting from ``offset`` within the span."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    start, end = _span(text, start, end)
    if end <= start + offset:
        return []
    idx = np.arange(start + offset, end, n)
    return idx[maskable_array(text[start:end])[idx - start]].tolist()


def mask_regex(text: str, pattern: str, start: int = 0, end: int | None = None) -> list[int]:
    """The characters of every match of ``pattern`` (a Python regular expression)."""
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"bad regular expression {pattern!r}: {exc}") from None
    start, end = _span(text, start, end)
    out: list[int] = []
    for m in rx.finditer(text, start, end):
        out.extend(i for i in range(m.start(), m.end()) if maskable(text[i]))
    return out


def mask_words(
    text: str, fraction: float, seed: int, start: int = 0, end: int | None = None, unit: str = "words",
    model_path: Path | None = None,
) -> list[int]:
    """A seeded random ``fraction`` of the words (or word pieces) in the span, each masked whole."""
    if unit not in WORD_UNITS:
        raise ValueError(f"unknown unit {unit!r}; choose from {list(WORD_UNITS)}")
    start, end = _span(text, start, end)
    spans = word_spans(text[start:end], unit=unit, model_path=model_path)
    k = round(fraction * len(spans))
    chosen = sorted(random.Random(seed).sample(range(len(spans)), k))
    out: list[int] = []
    for j in chosen:
        a, b = spans[j]
        out.extend(start + i for i in range(a, b) if maskable(text[start + i]))
    return out


def word_spans(text: str, unit: str = "words", model_path: Path | None = None) -> list[tuple[int, int]]:
    """``(start, end)`` of each word in ``text``, from the sentencepiece model when it is there."""
    sp = _load_word_model(str(model_path or WORD_MODEL))
    tokens = [(m.start(), m.group()) for m in re.finditer(r"\S+", text)]
    if sp is None:
        return [(m.start(), m.end()) for m in re.finditer(r"\w+", text)]
    spans: list[tuple[int, int]] = []
    for c in range(0, len(tokens), 2000):  # in slices: a thread running this lets the GUI thread in between
        part = tokens[c:c + 2000]
        for (pos, tok), pieces in zip(part, sp.encode([t for _, t in part], out_type=str)):
            spans.extend(_spans_from_pieces(pos, tok, pieces, unit))
    return spans


def _spans_from_pieces(pos: int, tok: str, pieces: list[str], unit: str) -> list[tuple[int, int]]:
    surfaces = [p.replace(SP_SPACE, "") for p in pieces]
    if "".join(surfaces) != tok:  # the model changed the text (unknown characters): split by \w+
        return [(pos + m.start(), pos + m.end()) for m in re.finditer(r"\w+", tok)]
    spans: list[tuple[int, int]] = []
    i = 0
    for s in surfaces:
        if s and any(c.isalnum() for c in s):
            if unit == "words" and spans and spans[-1][1] == pos + i and tok[i - 1].isalnum():
                spans[-1] = (spans[-1][0], pos + i + len(s))  # a continuation piece joins its word
            else:
                spans.append((pos + i, pos + i + len(s)))
        i += len(s)
    return spans


@functools.lru_cache(maxsize=2)
def _load_word_model(path: str):
    if not Path(path).is_file():
        return None
    try:
        import sentencepiece as spm

        return spm.SentencePieceProcessor(model_file=path)
    except (OSError, RuntimeError, ImportError):
        return None
