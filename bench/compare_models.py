"""Compare models on the test split: ELBO, bits at step budgets, span-infill bits.

    python bench/compare_models.py --model plain=DIR --model upscale=DIR2 [--model span=DIR3]
        [--test data/corpus/test.txt] [--passes 2] [--budget-windows 16] [--infill-windows 24]
        [--out bench/results/compare_models.md]

Plain and upscaling models are measured the same way, through the engine's
exact scoring (teacher forcing the original text):

- ELBO bits per character over the test text (plain: ``evaluate.elbo``;
  upscaling: the sum of the stage bounds, ``upscale.upscale_elbo``), several
  passes with the standard error;
- bits per character of generating whole windows of D characters from nothing
  in K steps (random order, the DP schedule; for an upscaling model K is the
  total over its stages, split by ``upscale.split_budget``);
- infilling: one contiguous span of 1, 4, 16 or 64 characters masked in random
  test windows (the same windows for every model), bits per masked character
  under confidence-first and left-to-right orders.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ardm_core.checkpoint import load_model  # noqa: E402
from ardm_core.evaluate import elbo  # noqa: E402
from ardm_core.paths import default_test_file  # noqa: E402
from ardm_core.session import score  # noqa: E402
from ardm_core.upscale import stage_tables, upscale_elbo  # noqa: E402
from ardm_core.upscale_session import upscale_score  # noqa: E402

SPANS = (1, 4, 16, 64)
BUDGETS = (20, 50)


def model_elbo(model, text: str, passes: int, seed: int) -> dict:
    t0 = time.perf_counter()
    if model.is_upscale:
        bpc, se, per_stage = upscale_elbo(model.net, stage_tables(model), model.vocab.encode(text), model.config.block_size,
                                          passes=passes, seed=seed)
        out = {"bpc": bpc, "stderr": se, "stage_bpc": dict(zip(model.stages.stage_names, per_stage))}
    else:
        e = elbo(model, text, passes=passes, seed=seed)
        out = {"bpc": e.bpc, "stderr": e.stderr}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def bits(model, text: str, masked, order: str, steps: int | None, seed: int) -> float:
    fn = upscale_score if model.is_upscale else score
    return float(fn(model, text, masked, order=order, steps=steps, seed=seed).total_bits)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", default=[], help="NAME=DIR, repeat for each model")
    ap.add_argument("--merge", nargs="+", default=None,
                    help="no measuring: join the JSON results of earlier runs (same settings) into one table")
    ap.add_argument("--test", default=str(default_test_file()))
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--budget-windows", type=int, default=16)
    ap.add_argument("--infill-windows", type=int, default=24)
    ap.add_argument("--max-chars", type=int, default=0, help="ELBO on the first N test characters only (0 = all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "compare_models.md"))
    args = ap.parse_args()
    if args.merge:
        parts = [json.loads(Path(f).read_text(encoding="utf-8")) for f in args.merge]
        res = {**parts[0], "models": {k: v for p in parts for k, v in p["models"].items()},
               "commands": [c for p in parts for c in p.get("commands", [])]}
        write(res, args.out)
        return
    if not args.model:
        ap.error("give --model NAME=DIR (one or more) or --merge")
    torch.set_num_threads(args.threads)
    text = Path(args.test).read_text(encoding="utf-8")
    elbo_text = text[: args.max_chars] if args.max_chars else text
    models = {}
    for spec in args.model:
        name, _, path = spec.partition("=")
        models[name] = load_model(path)
    D = next(iter(models.values())).config.block_size
    rng = random.Random(args.seed)
    budget_wins = [rng.randrange(0, len(text) - D) for _ in range(args.budget_windows)]
    infill_wins = {L: [] for L in SPANS}
    for L in SPANS:
        r = random.Random(args.seed + L)
        for _ in range(args.infill_windows):
            s = r.randrange(0, len(text) - D)
            infill_wins[L].append((s, r.randrange(8, D - L - 8)))

    res: dict = {"test_file": args.test, "elbo_chars": len(elbo_text), "budget_windows": args.budget_windows,
                 "infill_windows": args.infill_windows, "models": {},
                 "commands": ["python bench/compare_models.py " + " ".join(sys.argv[1:])]}
    for name, m in models.items():
        row: dict = {"path": str(m.path), "params": m.net.num_params(), "upscale": m.is_upscale,
                     "trained_steps": m.meta.get("trained_steps"), "init_from": m.meta.get("init_from")}
        row["elbo"] = model_elbo(m, elbo_text, args.passes, args.seed)
        print(f"{name}: ELBO {row['elbo']['bpc']:.4f} ± {row['elbo']['stderr']:.4f}", file=sys.stderr)
        t0 = time.perf_counter()
        row["budget_bpc"] = {}
        for K in BUDGETS:
            tot = sum(bits(m, text[s : s + D], range(D), "random", K, args.seed + i) for i, s in enumerate(budget_wins))
            row["budget_bpc"][str(K)] = tot / (D * len(budget_wins))
        row["budget_seconds"] = round(time.perf_counter() - t0, 1)
        print(f"{name}: budgets {row['budget_bpc']}", file=sys.stderr)
        t0 = time.perf_counter()
        row["infill_bpc"] = {}
        for L in SPANS:
            row["infill_bpc"][str(L)] = {}
            for order in ("confidence", "l2r"):
                tot = sum(bits(m, text[s : s + D], range(a, a + L), order, None, 0) for s, a in infill_wins[L])
                row["infill_bpc"][str(L)][order] = tot / (L * len(infill_wins[L]))
        row["infill_seconds"] = round(time.perf_counter() - t0, 1)
        print(f"{name}: infill {row['infill_bpc']}", file=sys.stderr)
        res["models"][name] = row
    print(json.dumps(res, indent=2))
    write(res, args.out)


def write(res: dict, out: str) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(markdown(res), encoding="utf-8")
    Path(out).with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")


def markdown(r: dict) -> str:
    names = list(r["models"])
    lines = ["# Model comparison on the test split\n", "Measured by\n"]
    lines += [f"    {c}" for c in r.get("commands", [])] + [""]
    lines += [
             f"ELBO over {r['elbo_chars']:,} characters; budgets over {r['budget_windows']} whole windows; "
             f"infill over {r['infill_windows']} windows per span length.\n",
             "| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    row = lambda label, f: lines.append(f"| {label} | " + " | ".join(f(r["models"][n]) for n in names) + " |")  # noqa: E731
    row("parameters", lambda m: f"{m['params']:,}")
    row("ELBO bpc", lambda m: f"{m['elbo']['bpc']:.4f} ± {m['elbo']['stderr']:.4f}")
    row("  by stage", lambda m: ", ".join(f"{k} {v:.3f}" for k, v in m["elbo"].get("stage_bpc", {}).items()) or "-")
    for K in BUDGETS:
        row(f"bpc, {K} steps", lambda m, K=K: f"{m['budget_bpc'][str(K)]:.4f}")
    for L in SPANS:
        for o in ("confidence", "l2r"):
            row(f"infill {L}, {o}", lambda m, L=L, o=o: f"{m['infill_bpc'][str(L)][o]:.4f}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
