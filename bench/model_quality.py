"""Model quality on the test split, in one run: prints JSON and writes a Markdown table.

    python bench/model_quality.py [--model DIR] [--test data/corpus/test.txt]
        [--passes 3] [--exact-windows 16] [--infill-windows 24] [--ar-model DIR]
        [--out bench/results/model_quality.md]

Measures
- the ELBO (bits per character) over the whole test split, several passes, with
  its standard error; the exact bits under left-to-right order on the first
  --exact-windows windows (D network calls per window);
- classic compressors on the same text, headers included (gzip -9, bzip2 -9,
  xz -9e, zstd -19, brotli 11, PPMd order 6), on the whole split and as the
  mean over random single windows of 250 characters;
- a single-order (causal) Transformer given with --ar-model (train one with
  `ardm train --objective ar ...`): exact bits per character and the ratio
  ARDM / AR;
- infilling: contiguous spans of 1, 4, 16 and 64 characters masked in random
  test windows; exact bits per masked character under confidence-first and
  left-to-right orders (teacher forcing the original characters), and top-1
  accuracy (the model's most probable character at the moment each position is
  filled, against the original);
- fill quality, as a writer meets it (``--fill-cases`` per set and kind, drawn
  as bench/fill_quality.py draws them, which has every cell): a masked word or
  three words inside 100 characters of context, on the test and the
  modern-English test split; exact match of the greedy fill, of greedy with
  ``--words``, hit@5 of 16 sampled alternatives with ``--words``, and the share
  of filled tokens that are words.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import json
import lzma
import math
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ardm_core.checkpoint import load_model  # noqa: E402
from ardm_core.evaluate import elbo, exact  # noqa: E402
from ardm_core.objective import LN2, ar_loss  # noqa: E402
from ardm_core.data import chunk_windows  # noqa: E402
from ardm_core.paths import default_model_dir, default_test_file  # noqa: E402


def classic_sizes(data: bytes) -> dict[str, int]:
    import brotli

    out = {
        "gzip -9": len(gzip.compress(data, 9, mtime=0)),
        "bzip2 -9": len(bz2.compress(data, 9)),
        "xz -9e": len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)),
        "brotli 11": len(brotli.compress(data, quality=11)),
    }
    try:
        import zstandard

        out["zstd -19"] = len(zstandard.ZstdCompressor(level=19).compress(data))
    except ImportError:
        pass
    try:
        import pyppmd

        out["PPMd order 6"] = len(pyppmd.compress(data, max_order=6, mem_size=16 << 20))
    except ImportError:
        pass
    return out


def classic_table(text: str, windows: list[str]) -> dict[str, dict[str, float]]:
    n = len(text)
    whole = {k: v * 8 / n for k, v in classic_sizes(text.encode("utf-8")).items()}
    per = {k: [] for k in whole}
    for w in windows:
        for k, v in classic_sizes(w.encode("utf-8")).items():
            per[k].append(v * 8 / len(w))
    return {k: {"whole_bpc": round(whole[k], 4), "window250_bpc": round(statistics.mean(per[k]), 4)} for k in whole}


@torch.inference_mode()
def infill_exact(net, ids: torch.Tensor, span: slice, order: str) -> tuple[float, int]:
    """Bits of the original characters in ``span`` and the number the model's top-1 got right.

    Teacher forcing: each step reveals the original character at the chosen
    position. ``confidence`` picks the masked position with the highest
    top-1 probability given what is known so far; one network call per step.
    """
    x = ids.clone()
    masked = list(range(span.start, span.stop))
    cur = x.clone()
    cur[span] = net.mask_id
    bits, correct = 0.0, 0
    while masked:
        logp = net(cur[None])[0]  # (T, V)
        if order == "l2r":
            pos = masked[0]
        else:
            conf = logp[masked].max(-1).values
            pos = masked[int(conf.argmax())]
        bits -= float(logp[pos, x[pos]]) / LN2
        correct += int(int(logp[pos].argmax()) == int(x[pos]))
        cur[pos] = x[pos]
        masked.remove(pos)
    return bits, correct


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(default_model_dir()))
    ap.add_argument("--test", default=str(default_test_file()))
    ap.add_argument("--modern-test", default=str(default_test_file("modern_test")),
                    help="the modern-English test split (ELBO reported beside the classic one; '' to skip)")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--exact-windows", type=int, default=16)
    ap.add_argument("--infill-windows", type=int, default=24)
    ap.add_argument("--classic-windows", type=int, default=200)
    ap.add_argument("--ar-model", default=None)
    ap.add_argument("--ardm-same-compute", default=None,
                    help="the OA-ARDM checkpoint trained with the same steps and batch as --ar-model "
                         "(the ratio uses it; default: the evaluated model)")
    ap.add_argument("--fill-cases", type=int, default=8,
                    help="fill-quality cases per split and kind (a word, three words); 0 skips them")
    ap.add_argument("--max-chars", type=int, default=0, help="use only the first N test characters (quick runs)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "model_quality.md"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    text = Path(args.test).read_text(encoding="utf-8")
    if args.max_chars:
        text = text[: args.max_chars]
    model = load_model(args.model)
    D = model.config.block_size
    rng = random.Random(args.seed)
    res: dict = {"model": args.model, "test_file": args.test, "test_chars": len(text),
                 "params": model.net.num_params(), "trained_steps": model.meta.get("trained_steps"),
                 "characters_seen": model.meta.get("characters_seen")}

    t0 = time.perf_counter()
    e = elbo(model, text, passes=args.passes, seed=args.seed)
    res["elbo"] = {"bpc": round(e.bpc, 4), "stderr": _stderr(e), "passes": e.passes, "seconds": round(time.perf_counter() - t0, 1)}
    print(f"ELBO {e.bpc:.4f} {_pm(res['elbo'])}", file=sys.stderr)
    if args.modern_test and Path(args.modern_test).is_file():
        modern = Path(args.modern_test).read_text(encoding="utf-8")
        if args.max_chars:
            modern = modern[: args.max_chars]
        t0 = time.perf_counter()
        m = elbo(model, modern, passes=args.passes, seed=args.seed)
        res["modern_elbo"] = {"file": args.modern_test, "chars": len(modern), "bpc": round(m.bpc, 4), "stderr": _stderr(m),
                              "passes": m.passes, "seconds": round(time.perf_counter() - t0, 1)}
        print(f"modern ELBO {m.bpc:.4f} {_pm(res['modern_elbo'])}", file=sys.stderr)

    sub = text[: args.exact_windows * D]
    t0 = time.perf_counter()
    x = exact(model, sub, order="l2r")
    res["exact_l2r"] = {"bpc": round(x.bpc, 4), "chars": x.chars, "network_calls": x.network_calls,
                        "seconds": round(time.perf_counter() - t0, 1)}
    e_sub = elbo(model, sub, passes=max(args.passes, 8), seed=args.seed)
    res["exact_l2r"]["elbo_same_chars"] = round(e_sub.bpc, 4)
    print(f"exact l2r {x.bpc:.4f} on {x.chars} chars (ELBO there {e_sub.bpc:.4f})", file=sys.stderr)

    wins = []
    for _ in range(args.classic_windows):
        s = rng.randrange(0, len(text) - 250)
        wins.append(text[s : s + 250])
    res["classic"] = classic_table(text, wins)

    if args.ar_model:
        ar = load_model(args.ar_model)
        ids = ar.vocab.encode(text)
        w, ln = chunk_windows(ids, ar.config.block_size)
        nats = 0.0
        with torch.inference_mode():
            for s in range(0, len(w), 32):
                nats += float(ar_loss(ar.net, w[s : s + 32], ln[s : s + 32]).weighted_nll.sum())
        ar_bpc = nats / len(ids) / LN2
        ref_bpc, ref = res["elbo"]["bpc"], {"model": args.model, "trained_steps": res["trained_steps"]}
        if args.ardm_same_compute:
            same = load_model(args.ardm_same_compute)
            ref_bpc = elbo(same, text, passes=max(1, args.passes - 1), seed=args.seed).bpc
            ref = {"model": args.ardm_same_compute, "trained_steps": same.meta.get("trained_steps"),
                   "characters_seen": same.meta.get("characters_seen"), "elbo_bpc": round(ref_bpc, 4)}
        res["single_order"] = {"model": args.ar_model, "bpc": round(ar_bpc, 4),
                               "trained_steps": ar.meta.get("trained_steps"),
                               "characters_seen": ar.meta.get("characters_seen"),
                               "ardm_reference": ref,
                               "ardm_over_ar": round(ref_bpc / ar_bpc, 4)}

    ids_all = model.vocab.encode(text)
    infill = {}
    t0 = time.perf_counter()
    for L in (1, 4, 16, 64):
        row = {}
        for order in ("confidence", "l2r"):
            bits, correct, n = 0.0, 0, 0
            r = random.Random(args.seed + L)
            for _ in range(args.infill_windows):
                s = r.randrange(0, len(ids_all) - D)
                win = torch.as_tensor(ids_all[s : s + D])
                a = r.randrange(8, D - L - 8)
                b, c = infill_exact(model.net, win, slice(a, a + L), order)
                bits, correct, n = bits + b, correct + c, n + L
            row[order] = {"bits_per_char": round(bits / n, 4), "top1_accuracy": round(correct / n, 4)}
        infill[str(L)] = row
        print(f"span {L}: {row}", file=sys.stderr)
    res["infill"] = {"windows_per_span": args.infill_windows, "spans": infill, "seconds": round(time.perf_counter() - t0, 1)}

    if args.fill_cases:
        res["fill"] = fill_quality(model, {"test": text, **({"modern": modern} if "modern_elbo" in res else {})},
                                   args.fill_cases, args.seed)

    print(json.dumps(res, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(markdown(res), encoding="utf-8")


FILL_CELLS = {"greedy": "greedy", "greedy_words": "greedy --words", "sampled16_words": "16 sampled, --words: best"}


def fill_quality(model, texts: dict[str, str], cases: int, seed: int) -> dict:
    """The writer's figures (bench/fill_quality.py's cases and cells, a subset of the cells)."""
    from fill_quality import draw_cases, run_case
    from ardm_core.lexicon import WordsOptions, shipped_lexicon

    lex = shipped_lexicon()
    words_opt, words_free = WordsOptions(lex, prior_weight=1.0), WordsOptions(lex, prior_weight=0.0)
    out: dict = {"cases_per_kind": cases, "lexicon_words": len(lex), "sets": {}}
    t0 = time.perf_counter()
    for name, text in texts.items():
        for kind in ("word", "three"):
            rng = np.random.default_rng([seed, len(kind)])
            recs = [run_case(model, lex, words_opt, words_free, *c) for c in draw_cases(text, kind, cases, rng)]
            row = {}
            for key, label in FILL_CELLS.items():
                rs = [r[key] for r in recs]
                row[key] = {"label": label, "exact": round(float(np.mean([r["exact"] for r in rs])), 4),
                            "lexicon_share": round(sum(r["lex_good"] for r in rs) / max(1, sum(r["lex_total"] for r in rs)), 4),
                            "bits_per_char": round(float(np.mean([r["bpc"] for r in rs])), 4)}
                if "hit5" in rs[0]:
                    row[key]["hit5"] = round(float(np.mean([r["hit5"] for r in rs])), 4)
            out["sets"].setdefault(name, {})[kind] = {"cases": len(recs), "cells": row}
            print(f"fill {name} {kind}: {row}", file=sys.stderr)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def _stderr(e) -> float | None:
    """The ELBO's standard error over passes; None for a single pass (there is no spread to report)."""
    return round(e.stderr, 4) if e.passes > 1 and math.isfinite(e.stderr) else None


def _pm(e: dict) -> str:
    return f"± {e['stderr']:.3f}" if e.get("stderr") is not None else "(one pass: no standard error)"


def markdown(r: dict) -> str:
    lines = [f"# Model quality on the test split ({r['test_chars']:,} characters)", "",
             f"Model `{r['model']}`: {r['params']:,} parameters, {r['trained_steps']} steps, "
             f"{r['characters_seen']:,} characters seen." if r.get("characters_seen") else f"Model `{r['model']}`.", "",
             "| measure | bits per character |", "|---|---|",
             f"| OA-ARDM ELBO ({r['elbo']['passes']} passes) | {r['elbo']['bpc']:.3f} {_pm(r['elbo'])} |",
             f"| OA-ARDM exact, left-to-right (first {r['exact_l2r']['chars']:,} chars) | {r['exact_l2r']['bpc']:.3f} (ELBO on the same chars {r['exact_l2r']['elbo_same_chars']:.3f}) |"]
    if "modern_elbo" in r:
        m = r["modern_elbo"]
        lines.insert(lines.index("|---|---|") + 2, f"| OA-ARDM ELBO, modern-English test split ({m['chars']:,} chars, "
                     f"{m['passes']} passes) | {m['bpc']:.3f} {_pm(m)} |")
    if "single_order" in r:
        so = r["single_order"]
        ref = so["ardm_reference"]
        lines.append(f"| single-order causal Transformer, same size ({so['trained_steps']} steps, {so['characters_seen']:,} chars) | {so['bpc']:.3f} |")
        if "elbo_bpc" in ref:
            lines.append(f"| OA-ARDM at the same compute ({ref['trained_steps']} steps, {ref['characters_seen']:,} chars), ELBO | {ref['elbo_bpc']:.3f} (ARDM/AR = {so['ardm_over_ar']:.3f}) |")
        else:
            lines.append(f"| ratio ARDM/AR | {so['ardm_over_ar']:.3f} |")
    lines += ["", "| compressor (headers included) | whole split | single 250-char windows (mean) |", "|---|---|---|"]
    for k, v in r["classic"].items():
        lines.append(f"| {k} | {v['whole_bpc']:.3f} | {v['window250_bpc']:.3f} |")
    lines += ["", f"Infilling: contiguous masked spans in {r['infill']['windows_per_span']} random test windows per length; "
              "exact bits per masked character (teacher forcing the original) and top-1 accuracy.", "",
              "| span | confidence-first bits/char | l2r bits/char | confidence-first top-1 | l2r top-1 |", "|---|---|---|---|---|"]
    for L, row in r["infill"]["spans"].items():
        c, l = row["confidence"], row["l2r"]
        lines.append(f"| {L} | {c['bits_per_char']:.3f} | {l['bits_per_char']:.3f} | {c['top1_accuracy']:.1%} | {l['top1_accuracy']:.1%} |")
    if "fill" in r:
        f = r["fill"]
        lines += ["", f"Fill quality (cases drawn as bench/fill_quality.py draws them, {f['cases_per_kind']} per split "
                  "and kind, 100 characters of context a side): exact match with the original, hit@5 among 16 "
                  "sampled alternatives, the share of filled tokens that are words, the fill's own bits per character.", "",
                  "| split | gap | fill | exact | hit@5 | words | bits/char |", "|---|---|---|---|---|---|---|"]
        for name, kinds in f["sets"].items():
            for kind, k in kinds.items():
                for cell in k["cells"].values():
                    hit = f"{cell['hit5']:.0%}" if "hit5" in cell else ""
                    lines.append(f"| {name} | {'a word' if kind == 'word' else 'three words'} ({k['cases']}) | "
                                 f"{cell['label']} | {cell['exact']:.0%} | {hit} | {cell['lexicon_share']:.0%} | "
                                 f"{cell['bits_per_char']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
