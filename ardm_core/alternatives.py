"""Several fills of the same gaps at once, ranked; and gaps of any length.

``fill_alternatives`` runs N decoding sessions of the same text and masks in
lockstep (seeds ``seed, seed+1, ...``): at each step the windows of all N
documents go through the network as ONE batched forward pass (one network
call per step for the whole batch). Identical fills are merged.

Ranking. Each fill comes with the model's exact bits for it under the order
that produced it (teacher forcing is not needed: the bits of each step's
chosen characters are the exact factorisation of the fill under that order
and step plan, paper section 3). Alternatives are sorted by bits per masked
character, lowest first: the fill the model itself finds likeliest given the
context. What it does not measure: whether the fill is what the writer meant,
how well it reads beyond the gap, or its likelihood under another order (an
order-agnostic model gives each order a different, equally valid value).
With real words only, the constrained (renormalised) bits are reported too,
but the ranking stays on the model's bits so that constrained and
unconstrained fills are comparable.

Any length. With ``lengths=(lo, hi)`` one gap is tried at every length in the
range; each length's N fills are made as above (all lengths' fills batched
into the same network calls), and each fill y of length L is scored by

    score(y, L) = bits(y | context, L) + J(L)

where bits(y | ...) is the fill's own exact bits under its producing order and
J(L) is the bits of the ``junction`` characters (up to 4 known characters on
each side of the gap), predicted together in one step with the gap still
masked: the model's one-step (parallel, paper section 3.1) estimate of
-log2 p(junction | rest, a gap of L characters). The sum is the bits of
"junction, then fill" under one order, an exact joint likelihood of the same
characters for every L except the fill itself, so it compares lengths on the
whole window's likelihood around the gap. Cost: the fills' own calls (one per
step, shared by all lengths) plus ONE network call for every length's J(L).
The length with the lowest score wins; every length's best score is reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from .checkpoint import LoadedModel
from .sampling import LOG2E, SamplingOptions
from .session import DecodeSession, parse_mask
from .windows import window_logprobs_many

MAX_ALTERNATIVES = 64  # fills per request (the batch grows with N)
MAX_LENGTHS = 64  # lengths tried for an any-length gap
JUNCTION = 4  # known characters on each side of an any-length gap scored by J(L)


@dataclass(frozen=True)
class Alternative:
    text: str  # the whole filled text
    fill: str  # the filled characters only, span by span, joined by " … " when there are several spans
    spans: tuple[tuple[int, int], ...]  # (start, end) of each filled span in ``text``
    bits: float  # model bits of the fill under its producing order
    bits_per_char: float
    constrained_bits: float | None  # real words only: bits under the constrained, renormalised distribution
    score_bits: float  # what the ranking sorts by (bits per char; any length: bits + J(L))
    length: int  # characters filled
    seed: int  # the seed that produced it (the first, when several gave the same fill)
    count: int = 1  # how many of the N samples gave this fill
    seeds: tuple[int, ...] = ()  # every seed that gave this fill
    unconstrained: tuple[tuple[int, int], ...] = ()  # regions no lexicon fill could satisfy (filled freely)


@dataclass
class AlternativesResult:
    alternatives: list[Alternative]  # best first, distinct
    network_calls: int  # batched calls (each step of the lockstep batch counts once)
    samples: int  # fills drawn (N per length)
    ms: float
    lengths: list[dict] = field(default_factory=list)  # any length: [{"length", "score_bits", "junction_bits"}] per length
    chosen_length: int | None = None


def _spans(positions: np.ndarray) -> list[tuple[int, int]]:
    if len(positions) == 0:
        return []
    cut = np.flatnonzero(np.diff(positions) != 1) + 1
    return [(int(g[0]), int(g[-1]) + 1) for g in np.split(positions, cut)]


def validate_count(n) -> int:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or not 1 <= n <= MAX_ALTERNATIVES:
        raise ValueError(f"the number of alternatives must be an integer from 1 to {MAX_ALTERNATIVES} (got {n!r})")
    return int(n)


def validate_lengths(lengths, gap: tuple[int, int], text: str, masked: np.ndarray, block_size: int) -> tuple[int, int]:
    """Check an any-length range for the gap [start, end) of ``text``; ValueError names the problem."""
    try:
        lo, hi = (int(x) for x in lengths)
    except (TypeError, ValueError):
        raise ValueError(f"lengths must be two integers MIN:MAX (got {lengths!r})") from None
    if lo < 1 or hi < lo:
        raise ValueError(f"length range {lo}:{hi} is empty: need 1 <= MIN <= MAX")
    if hi - lo + 1 > MAX_LENGTHS:
        raise ValueError(f"length range {lo}:{hi} tries {hi - lo + 1} lengths; at most {MAX_LENGTHS}")
    if hi >= block_size:
        raise ValueError(f"length range {lo}:{hi} is wider than the model's window ({block_size} characters); MAX must be below it")
    a, b = gap
    outside = np.ones(len(text), dtype=bool)
    outside[masked] = False
    outside[a:b] = False
    if not outside.any():
        raise ValueError("an any-length gap needs known text around it; this document is fully masked")
    return lo, hi


def _batched_run(sessions: list[DecodeSession]) -> int:
    """Step every session to the end, all of them in one network call per step. Returns the calls made."""
    calls = 0
    net, D = sessions[0].model.net, sessions[0].D
    while True:
        live = [s for s in sessions if not s.done]
        if not live:
            return calls
        t0 = time.perf_counter()
        groups = {}
        for s in live:
            groups.setdefault(len(s.text), []).append((s, s.step_request()))
        with live[0].network_context():
            outs = []
            for items in groups.values():  # documents of one length share the batch; lengths differ only for any-length gaps
                rows, n_win = window_logprobs_many(net, [s.document_ids for s, _ in items], [r.targets for _, r in items], D)
                outs.append((items, rows, n_win))
        for items, rows, n_win in outs:
            for (s, r), rw in zip(items, rows):
                s.step_finish(r, rw, max(1, n_win // len(items)), t0)
        calls += len(groups)  # one batched forward per document length (several only for any-length gaps)


def _make(s: DecodeSession, masked: np.ndarray, seed: int, junction_bits: float = 0.0, by_total: bool = False) -> Alternative:
    text = s.result()
    spans = _spans(masked)
    bits = s.total_bits
    n = max(1, len(masked))
    cb = None
    if s.words is not None:
        cb = float(sum(sum(st.constrained_bits) for st in s.steps))
    fill = " … ".join(text[a:b] for a, b in spans)
    score = bits + junction_bits if by_total else bits / n
    return Alternative(text=text, fill=fill, spans=tuple(spans), bits=bits, bits_per_char=bits / n, constrained_bits=cb,
                       score_bits=score, length=len(masked), seed=seed, unconstrained=tuple(s.unconstrained_regions))


def _merge(alts: list[Alternative]) -> list[Alternative]:
    best: dict[str, Alternative] = {}
    seeds: dict[str, list[int]] = {}
    for a in alts:
        seeds.setdefault(a.text, []).append(a.seed)
        if a.text not in best or (a.score_bits, a.seed) < (best[a.text].score_bits, best[a.text].seed):
            best[a.text] = a
    out = [Alternative(**{**a.__dict__, "count": len(seeds[t]), "seeds": tuple(sorted(seeds[t]))}) for t, a in best.items()]
    out.sort(key=lambda a: (a.score_bits, a.text))
    return out


def _shift(a: Alternative, head: str, tail: str) -> Alternative:
    """An alternative of a trimmed window, placed back into the whole text."""
    k = len(head)
    return Alternative(**{**a.__dict__, "text": head + a.text + tail, "spans": tuple((s + k, e + k) for s, e in a.spans),
                          "unconstrained": tuple((s + k, e + k) for s, e in a.unconstrained)})


@torch.inference_mode()
def _junction_bits(model: LoadedModel, variants: list[tuple[str, np.ndarray, tuple[int, int]]]) -> list[float]:
    """J(L) for each (text, masked, gap) variant: bits of the known characters next to the gap, predicted
    together in one step with them and the gap masked. All variants in ONE network call."""
    docs, targets, truths = [], [], []
    mask_id = model.net.mask_id
    for text, masked, (a, b) in variants:
        ids = model.vocab.encode(text)
        known = np.ones(len(text), dtype=bool)
        known[masked] = False
        left = [p for p in range(a - 1, -1, -1) if known[p]][:JUNCTION]
        right = [p for p in range(b, len(text)) if known[p]][:JUNCTION]
        junc = np.asarray(sorted(left + right), dtype=np.int64)
        junc = junc[ids[junc] != 0]  # <unk> is context only
        doc = ids.copy()
        doc[masked] = mask_id
        doc[junc] = mask_id
        docs.append(torch.as_tensor(doc, device=model.device))
        targets.append(junc)
        truths.append(ids[junc])
    out = [0.0] * len(variants)
    by_len: dict[int, list[int]] = {}
    for k, d in enumerate(docs):
        by_len.setdefault(int(d.shape[0]), []).append(k)
    for ks in by_len.values():
        rows, _ = window_logprobs_many(model.net, [docs[k] for k in ks], [targets[k] for k in ks], model.config.block_size)
        for k, r in zip(ks, rows):
            if len(targets[k]):
                lp = r.double().cpu().numpy()[np.arange(len(targets[k])), truths[k]]
                out[k] = float(-lp.sum() * LOG2E)
    return out


def fill_alternatives(model: LoadedModel, text: str, masked, *, n: int = 4, order: str = "confidence",
                      steps: int | None = None, explicit: Sequence[int] | None = None,
                      sampling: SamplingOptions = SamplingOptions(), seed: int = 0, planner: str = "dp",
                      precision: str = "fp32", words=None, lengths: tuple[int, int] | None = None,
                      context: int | None = None) -> AlternativesResult:
    """N fills of ``masked`` in ``text``, ranked best first (see the module docstring).

    ``words``: an ``ardm_core.lexicon.WordsOptions`` for real words only.
    ``lengths``: (MIN, MAX) for one gap of any length: ``masked`` must be one
    contiguous span (its own length is ignored); every length in the range is
    tried, and alternatives of different lengths are ranked together.
    ``context``: keep only this many characters each side of the masks (a
    smaller window, so each network call is cheaper; the network sees less).
    With an explicit order, ``explicit`` lists the masked positions and any
    length is not available.
    """
    n = validate_count(n)
    t0 = time.perf_counter()
    masked = parse_mask(masked, len(text))
    if len(masked) == 0:
        raise ValueError("nothing to fill: no positions are masked")
    if context is not None:
        if not isinstance(context, (int, np.integer)) or isinstance(context, bool) or context < 0:
            raise ValueError(f"context must be an integer >= 0 (characters kept each side of the masks), got {context!r}")
        lo, hi = max(0, int(masked[0]) - int(context)), min(len(text), int(masked[-1]) + 1 + int(context))
        if lo > 0 or hi < len(text):
            if explicit is not None:
                explicit = [int(p) - lo for p in explicit]
            r = fill_alternatives(model, text[lo:hi], masked - lo, n=n, order=order, steps=steps, explicit=explicit,
                                  sampling=sampling, seed=seed, planner=planner, precision=precision, words=words,
                                  lengths=lengths)
            r.alternatives = [_shift(a, text[:lo], text[hi:]) for a in r.alternatives]
            r.ms = (time.perf_counter() - t0) * 1000.0
            return r
    if lengths is None:
        sessions = [DecodeSession(model, text, masked, order=order, steps=steps, explicit=explicit, sampling=sampling,
                                  seed=seed + k, planner=planner, precision=precision, words=words) for k in range(n)]
        calls = _batched_run(sessions)
        alts = _merge([_make(s, masked, seed + k) for k, s in enumerate(sessions)])
        return AlternativesResult(alts, calls, n, (time.perf_counter() - t0) * 1000.0)
    spans = _spans(masked)
    if len(spans) != 1:
        raise ValueError(f"an any-length gap must be one contiguous masked span; this text has {len(spans)}")
    if order == "explicit":
        raise ValueError("an any-length gap cannot use the explicit order (its positions change with the length)")
    gap = spans[0]
    lo, hi = validate_lengths(lengths, gap, text, masked, model.config.block_size)
    a, b = gap
    variants = []
    for L in range(lo, hi + 1):
        t_l = text[:a] + " " * L + text[b:]
        variants.append((L, t_l, np.arange(a, a + L, dtype=np.int64)))
    sessions: list[tuple[int, int, DecodeSession]] = []
    for L, t_l, m_l in variants:
        K = None if steps is None else min(int(steps), L)
        for k in range(n):
            sessions.append((L, seed + k, DecodeSession(model, t_l, m_l, order=order, steps=K, sampling=sampling,
                                                        seed=seed + k, planner=planner, precision=precision, words=words)))
    calls = _batched_run([s for _, _, s in sessions])
    junction = _junction_bits(model, [(t_l, m_l, (a, a + L)) for L, t_l, m_l in variants])
    calls += 1
    jmap = {L: j for (L, _, _), j in zip(variants, junction)}
    alts = [_make(s, np.arange(a, a + L), sd, jmap[L], by_total=True) for L, sd, s in sessions]
    merged = _merge(alts)
    per_len = []
    for L, _, _ in variants:
        mine = [x for x in merged if x.length == L]
        per_len.append({"length": L, "score_bits": min(x.score_bits for x in mine), "junction_bits": jmap[L],
                        "best_fill": min(mine, key=lambda x: x.score_bits).fill})
    chosen = min(per_len, key=lambda d: (d["score_bits"], d["length"]))["length"]
    return AlternativesResult(merged, calls, len(sessions), (time.perf_counter() - t0) * 1000.0, per_len, chosen)


__all__ = ["Alternative", "AlternativesResult", "fill_alternatives", "validate_count", "validate_lengths", "MAX_ALTERNATIVES",
           "MAX_LENGTHS"]
