"""Fill quality: ranked alternatives and real words only, on held-out prose.

    python bench/fill_quality.py [--cases 8] [--seed 0] [--sets test,modern] [--out bench/results/fill_quality]

Cases: a single masked word (3-12 letters) or a run of three words (the
spaces between them masked too), each inside 100 characters of context on
either side, drawn with a fixed seed from two held-out sets: the default
corpus's test split, and a modern-English check set that the shipped model
never saw (the modern_test split of the corpus builder: fortunes, the Jargon
File, the Debian Reference and WordNet examples, from Debian packages).

Cells, for each set and case kind:
  greedy N=1            free, --words (prior weight 1), --words with prior weight 0 (the constraint alone),
                        and free with the context trimmed to 32 characters a side (what a trim costs)
  sampled T=0.7 N=16    free and --words: one batched run of 16 seeds; best-of-1 is seed 0's fill alone,
                        best-of-4 the best of seeds 0-3 (every alternative is exactly its seed's single run),
                        best-of-16 the top; hit@5: the original among the top 5 alternatives
Figures: exact match with the original; the share of filled tokens (letter runs
that touch the gap) that are lexicon words (lexicon plus the document's own
words, as --words uses it); bits per character of the chosen fill (model bits
under its producing order); wall ms per request on this machine.
Writes JSON and a Markdown table (results are rewritten after every case, so a
cut-short run still leaves what it measured).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ardm_core.alternatives import fill_alternatives  # noqa: E402
from ardm_core.checkpoint import load_model  # noqa: E402
from ardm_core.fileio import atomic_write_json, atomic_write_text  # noqa: E402
from ardm_core.lexicon import WORD_RE, WordsOptions, shipped_lexicon  # noqa: E402
from ardm_core.paths import default_model_dir, default_test_file  # noqa: E402
from ardm_core.sampling import SamplingOptions  # noqa: E402

CONTEXT = 100  # characters of context each side
TRIM = 32  # the trimmed context of the trim cell
TEMPERATURE = 0.7  # the app's default
THREE = re.compile(r"(?<![^\W\d_])[A-Za-z]+ [A-Za-z]+ [A-Za-z]+(?![^\W\d_])")


def modern_test_file() -> tuple[Path | None, str]:
    """The modern-English test split: a built corpus's, else the copy in assets/corpus/."""
    p = default_test_file("modern_test")
    return (p, str(p)) if p.exists() else (None, "no modern_test.txt found (build the corpus: ardm corpus build)")


def draw_cases(text: str, kind: str, n: int, rng: np.random.Generator) -> list[tuple[str, int, int]]:
    """(window text, gap start, gap end) for n cases of ``kind`` ("word" or "three")."""
    if kind == "word":
        spans = [(m.start(), m.end()) for m in WORD_RE.finditer(text) if 3 <= len(m.group()) <= 12 and m.group().isascii()]
    else:
        spans = [(m.start(), m.end()) for m in THREE.finditer(text)]
    spans = [(a, b) for a, b in spans if a >= CONTEXT and b + CONTEXT <= len(text)]
    pick = rng.choice(len(spans), size=min(n, len(spans)), replace=False)
    out = []
    for i in sorted(pick.tolist()):
        a, b = spans[i]
        out.append((text[a - CONTEXT:b + CONTEXT], CONTEXT, CONTEXT + b - a))
    return out


def tokens_ok(text: str, a: int, b: int, lex) -> tuple[int, int]:
    """(lexicon words, tokens) among the letter runs that touch [a, b)."""
    good = total = 0
    for m in WORD_RE.finditer(text):
        if m.end() >= a and m.start() <= b:
            total += 1
            good += lex.is_word(m.group())
    return good, total


def run_case(model, lex, words_opt, words_free, window: str, a: int, b: int) -> dict:
    masked = list(range(a, b))
    truth = window[a:b]
    doc_lex = words_opt.lexicon_for(window, masked)
    rec: dict = {"truth": truth}

    def one(key, n, sampling, words, text=window, mk=masked, lo=a):
        t0 = time.perf_counter()
        r = fill_alternatives(model, text, mk, n=n, sampling=sampling, words=words, seed=0)
        ms = (time.perf_counter() - t0) * 1000.0
        alts = r.alternatives
        fills = [x.text[lo:lo + (b - a)] for x in alts]

        def summary(alt, fill):
            g, t = tokens_ok(alt.text, lo, lo + (b - a), doc_lex)
            return {"fill": fill, "exact": fill == truth, "lex_good": g, "lex_total": t, "bpc": alt.bits_per_char}

        rec[key] = {**summary(alts[0], fills[0]), "ms": ms, "calls": r.network_calls}
        if n > 1:
            rec[key]["hit5"] = truth in fills[:5]
            for m in (1, 4):  # best of the first m seeds, from the same batch
                sub = [(x, f) for x, f in zip(alts, fills) if any(s < m for s in x.seeds)]
                rec[f"{key}@{m}"] = summary(*sub[0])
        return r

    greedy = SamplingOptions(greedy=True)
    one("greedy", 1, greedy, None)
    one("greedy_words", 1, greedy, words_opt)
    one("greedy_words_p0", 1, greedy, words_free)
    lo = max(0, a - TRIM)
    one("greedy_trim", 1, greedy, None, window[lo:b + TRIM], list(range(a - lo, b - lo)), a - lo)
    samp = SamplingOptions(temperature=TEMPERATURE)
    one("sampled16", 16, samp, None)
    one("sampled16_words", 16, samp, words_opt)
    return rec


CELLS = [  # (label, key, N)
    ("greedy", "greedy", 1), ("greedy --words", "greedy_words", 1), ("greedy --words, prior weight 0", "greedy_words_p0", 1),
    (f"greedy, context trimmed to {TRIM}+{TRIM}", "greedy_trim", 1),
    (f"sampled T={TEMPERATURE} best-of-1", "sampled16@1", 1), (f"sampled T={TEMPERATURE} best-of-4", "sampled16@4", 4),
    (f"sampled T={TEMPERATURE} best-of-16", "sampled16", 16),
    (f"sampled T={TEMPERATURE} --words best-of-1", "sampled16_words@1", 1),
    (f"sampled T={TEMPERATURE} --words best-of-4", "sampled16_words@4", 4),
    (f"sampled T={TEMPERATURE} --words best-of-16", "sampled16_words", 16),
]


def aggregate(recs: list[dict]) -> list[dict]:
    rows = []
    for label, key, n in CELLS:
        rs = [r[key] for r in recs if key in r]
        if not rs:
            continue
        row = {"cell": label, "N": n, "cases": len(rs), "exact": float(np.mean([r["exact"] for r in rs])),
               "lexicon_share": sum(r["lex_good"] for r in rs) / max(1, sum(r["lex_total"] for r in rs)),
               "bits_per_char": float(np.mean([r["bpc"] for r in rs]))}
        row["ms_per_fill"] = float(np.mean([r["ms"] for r in rs])) if "ms" in rs[0] else None
        row["hit5"] = float(np.mean([r["hit5"] for r in rs])) if "hit5" in rs[0] else None
        rows.append(row)
    return rows


def markdown(result: dict) -> str:
    lines = ["# Fill quality: alternatives and real words only", "",
             f"Command: `{result['command']}`", "",
             f"Model: {result['model']}. Lexicon: {result['lexicon']}. Machine: {result['machine']}.", ""]
    for s in result["sets"]:
        lines.append(f"## {s['name']}: {s['source']}")
        lines.append("")
        for kind in ("word", "three"):
            rows = s["tables"].get(kind)
            if not rows:
                continue
            lines += [f"### {'single word' if kind == 'word' else 'three words'} ({rows[0]['cases']} cases)", "",
                      "| cell | N | exact | lexicon words | bits/char | ms per request | hit@5 |",
                      "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
            for r in rows:
                ms = f"{r['ms_per_fill']:.0f}" if r["ms_per_fill"] is not None else "(from the N=16 batch)"
                hit = f"{r['hit5']:.0%}" if r["hit5"] is not None else ""
                lines.append(f"| {r['cell']} | {r['N']} | {r['exact']:.0%} | {r['lexicon_share']:.0%} | "
                             f"{r['bits_per_char']:.2f} | {ms} | {hit} |")
            lines.append("")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=8, help="cases per set and kind")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sets", default="test,modern")
    ap.add_argument("--kinds", default="word,three")
    ap.add_argument("--model", default=str(default_model_dir()))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "fill_quality"))
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    model = load_model(args.model, "cpu")
    lex = shipped_lexicon()
    words_opt = WordsOptions(lex, prior_weight=1.0)
    words_free = WordsOptions(lex, prior_weight=0.0)
    sources = {"test": (default_test_file(), str(default_test_file()))}
    mp, mdesc = modern_test_file()
    if mp is not None:
        sources["modern"] = (mp, mdesc)
    result = {"command": "python bench/fill_quality.py " + " ".join(sys.argv[1:]), "model": args.model,
              "lexicon": f"{len(lex)} words, {lex.source}",
              "machine": f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start (a training run shares them)",
              "sets": []}
    if mp is None:
        result["note"] = "modern-English set missing: " + mdesc
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for name in args.sets.split(","):
        if name not in sources:
            continue
        path, desc = sources[name]
        text = path.read_text(encoding="utf-8")
        entry = {"name": name, "source": desc, "tables": {}, "cases": {}}
        result["sets"].append(entry)
        for kind in args.kinds.split(","):
            rng = np.random.default_rng([args.seed, len(kind)])  # "word" and "three" draw apart
            recs = []
            for k, (window, a, b) in enumerate(draw_cases(text, kind, args.cases, rng)):
                t0 = time.perf_counter()
                recs.append(run_case(model, lex, words_opt, words_free, window, a, b))
                print(f"{name} {kind} {k + 1}: {window[a:b]!r} -> greedy {recs[-1]['greedy']['fill']!r}, words "
                      f"{recs[-1]['greedy_words']['fill']!r}, best-of-16 words {recs[-1]['sampled16_words']['fill']!r} "
                      f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
                entry["cases"][kind] = recs
                entry["tables"][kind] = aggregate(recs)
                atomic_write_json(out.with_suffix(".json"), result)
                atomic_write_text(out.with_suffix(".md"), markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
