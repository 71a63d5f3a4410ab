"""The worker-side job of the Alternatives panel (no Qt): N fills of the masked text, ranked.

Runs ``ardm_core.alternatives.fill_alternatives`` on a snapshot (text, masked
positions) with the worker's model; only plain results cross to the GUI thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

# imported in the GUI thread at start-up (see app.jobs): never a first torch import inside a job
from ardm_core.alternatives import fill_alternatives
from ardm_core.lexicon import LexiconError, WordsOptions, shipped_lexicon
from ardm_core.sampling import SamplingOptions


@dataclass(frozen=True)
class AltItem:
    text: str  # the whole filled text
    fill: str  # the filled characters
    start: int  # the gap's span in the request's text (any length: the placeholder span)
    end: int
    chars: str  # what goes into [start, end) of the request's text, or at the masked positions (fixed length)
    bits: float
    bits_per_char: float
    constrained_bits: float | None
    length: int
    unconstrained: bool  # a region no lexicon word fits was filled freely
    score_bits: float = 0.0  # the ranking key (bits per char; any length: bits plus the junction's)


@dataclass(frozen=True)
class AlternativesReady:
    request: int
    items: tuple[AltItem, ...]  # best first
    lengths: tuple[tuple[int, float], ...]  # any length: (length, best score bits) per length
    chosen_length: int | None
    note: str  # e.g. which regions were filled without the lexicon


@dataclass(frozen=True)
class AlternativesFailed:
    request: int
    message: str


def alternatives_job(state: Any, request: int, text: str, masked: tuple[int, ...], *, n: int, seed: int,
                     temperature: float, order: str, words: bool, lengths: tuple[int, int] | None) -> Iterator[Any]:
    """Fill ``masked`` of ``text`` N ways; failures (no model, a bad lexicon, a bad range) are a message."""
    model = state.model
    if model is None:
        yield AlternativesFailed(request, "no model is loaded")
        return
    if getattr(model, "is_upscale", False):
        yield AlternativesFailed(request, "alternatives need a plain model, not an upscaling one")
        return
    try:
        opts = WordsOptions(shipped_lexicon()) if words else None
        r = fill_alternatives(model, text, list(masked), n=n, seed=seed, order=order if order != "explicit" else "confidence",
                              sampling=SamplingOptions(temperature=temperature), words=opts, lengths=lengths)
    except (LexiconError, ValueError) as exc:
        yield AlternativesFailed(request, str(exc))
        return
    items = []
    a, b = (min(masked), max(masked) + 1) if masked else (0, 0)
    for x in r.alternatives:
        if lengths is not None:
            chars = x.text[a:a + x.length]
        else:
            chars = "".join(x.text[p] for p in masked)
        items.append(AltItem(x.text, x.fill, a, b, chars, x.bits, x.bits_per_char, x.constrained_bits, x.length,
                             bool(x.unconstrained), x.score_bits))
    free = sorted({reg for x in r.alternatives for reg in x.unconstrained})
    note = ("no lexicon word fits " + ", ".join(repr(text[s:e]) for s, e in free) + ": filled freely") if free else ""
    yield AlternativesReady(request, tuple(items), tuple((d["length"], d["score_bits"]) for d in r.lengths),
                            r.chosen_length, note)
