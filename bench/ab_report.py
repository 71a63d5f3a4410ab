"""Training A/B arms side by side, on the same characters: one Markdown table and JSON.

    python bench/ab_report.py --arm NAME=MODEL_DIR [--arm ...] --valid data/corpus/valid.txt
        --modern-valid data/corpus/modern_valid.txt [--max-chars 300000] [--infill-windows 48]
        [--title "..."] [--notes FILE] --out bench/results/ab_training.md

For every arm (a model folder, e.g. the ``model/`` of a run trained by
bench/ab_training.sh), with the same seeds for every arm so the differences
are paired:
- the ELBO (bits per character) on the first ``--max-chars`` characters of the
  classic and of the modern-English valid split (``ardm eval`` with --passes 1
  --seed 1: one random t and order per window, the same ones for every arm);
- infilling: the exact bits per masked character of a contiguous span of 16
  and of 64 characters in ``--infill-windows`` random valid windows, filled
  most-confident first with the originals teacher-forced (bench/model_quality.py's
  measure), the same windows and spans for every arm;
- what the arm's run recorded: steps, characters seen, training seconds and
  its options (from the run's state.json, when the folder is a run's model/).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ardm_core.checkpoint import load_model  # noqa: E402
from ardm_core.data import chunk_windows  # noqa: E402
from ardm_core.objective import LN2, ardm_loss  # noqa: E402
from ardm_core.fileio import atomic_write_json, atomic_write_text  # noqa: E402
from model_quality import infill_exact  # noqa: E402


def infill_bits(model, text: str, L: int, windows: int, seed: int) -> np.ndarray:
    """(windows,) bits of each window's masked span (the same windows and spans for every model)."""
    ids = model.vocab.encode(text)
    D = model.config.block_size
    r = random.Random(seed * 1000 + L)
    out = []
    for _ in range(windows):
        s = r.randrange(0, len(ids) - D)
        a = r.randrange(8, D - L - 8)
        out.append(infill_exact(model.net, torch.as_tensor(ids[s:s + D]), slice(a, a + L), "confidence")[0])
    return np.asarray(out)


@torch.inference_mode()
def window_bits(model, text: str, seed: int, batch_size: int = 32) -> tuple[np.ndarray, int]:
    """(windows,) the ELBO's bits of each window, one pass, and the characters in all: ``ardm_core.evaluate.elbo``
    with passes=1 and this seed, kept per window so two models can be compared window by window."""
    ids = model.vocab.encode(text)
    wins, lengths = chunk_windows(ids, model.config.block_size)
    model.net.eval()
    g = torch.Generator(device=model.device).manual_seed(seed)
    out = []
    for s in range(0, len(wins), batch_size):
        w, ln = wins[s:s + batch_size].to(model.device), lengths[s:s + batch_size].to(model.device)
        out.append(ardm_loss(model.net, w, ln, generator=g, stratified=False).weighted_nll.double().cpu().numpy() / LN2)
    return np.concatenate(out), len(ids)


def paired(a: np.ndarray, b: np.ndarray, chars: int) -> tuple[float, float]:
    """(a - b) per character, and its standard error, from per-window bits of two models on the same windows."""
    d = a - b
    return float(d.sum() / chars), float(d.std(ddof=1) * math.sqrt(len(d)) / chars)


KEEP = ("batch_size", "lr", "warmup", "min_lr_ratio", "t_focus", "span_mix", "precision")


def run_info(model, model_dir: Path) -> dict:
    """The run's options (the model's meta) and its step and seconds (the run's state.json, one folder up)."""
    cfg = model.meta.get("train_config") or {}
    out = {"options": {k: cfg[k] for k in KEEP if k in cfg}}
    try:
        st = json.loads((model_dir.parent / "state.json").read_text(encoding="utf-8"))
        out.update(step=st.get("step"), seconds=round(float(st.get("seconds", 0.0))))
    except (OSError, ValueError, TypeError):
        pass
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arm", action="append", required=True, metavar="NAME=MODEL_DIR")
    ap.add_argument("--valid", required=True)
    ap.add_argument("--modern-valid", required=True)
    ap.add_argument("--max-chars", type=int, default=300_000)
    ap.add_argument("--infill-windows", type=int, default=48)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--baseline", default="control", help="the arm the others are compared with (default: control)")
    ap.add_argument("--title", default="Training A/B")
    ap.add_argument("--notes", help="a Markdown file whose text goes under the table")
    ap.add_argument("--out", required=True, help="the .md to write (the .json beside it)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    texts = {name: Path(p).read_text(encoding="utf-8")[: args.max_chars]
             for name, p in (("valid", args.valid), ("modern_valid", args.modern_valid))}
    rows, raw = [], {}
    for spec in args.arm:
        name, _, path = spec.partition("=")
        t0 = time.perf_counter()
        model = load_model(path)
        row = {"arm": name, "model": path, "characters_seen": model.meta.get("characters_seen"),
               "trained_steps": model.meta.get("trained_steps"), **run_info(model, Path(path))}
        raw[name] = {}
        for split, text in texts.items():
            bits, chars = window_bits(model, text, args.seed)
            raw[name][split] = (bits, chars)
            row[split] = round(float(bits.sum() / chars), 4)
        for L in (16, 64):
            bits = infill_bits(model, texts["valid"], L, args.infill_windows, args.seed)
            raw[name][f"infill{L}"] = (bits, L * args.infill_windows)
            row[f"infill{L}"] = round(float(bits.sum() / (L * args.infill_windows)), 4)
        row["eval_seconds"] = round(time.perf_counter() - t0, 1)
        print(json.dumps(row), file=sys.stderr, flush=True)
        rows.append(row)
    base = args.baseline if args.baseline in raw else rows[0]["arm"]
    for row in rows:  # each arm against the baseline, window by window
        if row["arm"] != base:
            row["vs_baseline"] = {k: [round(x, 4) for x in paired(raw[row["arm"]][k][0], raw[base][k][0], raw[base][k][1])]
                                  for k in raw[base]}
    out = Path(args.out)
    result = {"command": "python bench/ab_report.py " + " ".join(sys.argv[1:]), "max_chars": args.max_chars,
              "infill_windows": args.infill_windows, "seed": args.seed, "baseline": base, "arms": rows}
    atomic_write_json(out.with_suffix(".json"), result)
    lines = [f"# {args.title}", "", f"Command: `{result['command']}`", "",
             f"ELBO: bits per character on the first {args.max_chars:,} characters of each valid split, one pass "
             f"with seed {args.seed} (the same t and orders for every arm). Infill: exact bits per masked character of "
             f"a 16- and a 64-character span in {args.infill_windows} valid windows, most-confident first, teacher "
             "forced (the same windows for every arm). Lower is better throughout.", "",
             "| arm | options | steps | characters | train s | classic valid | modern valid | infill 16 | infill 64 |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        opts = ", ".join(f"{k} {v}" for k, v in r.get("options", {}).items())
        chars = f"{r['characters_seen']:,}" if r.get("characters_seen") else ""
        lines.append(f"| {r['arm']} | {opts} | {r.get('step', '')} | {chars} | {r.get('seconds', '')} | "
                     f"{r['valid']:.4f} | {r['modern_valid']:.4f} | {r['infill16']:.4f} | {r['infill64']:.4f} |")
    lines += ["", f"Each arm minus **{base}**, window by window on the same windows (± one standard error of the "
              "paired difference; negative is better):", "",
              "| arm | classic valid | modern valid | infill 16 | infill 64 |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        if "vs_baseline" in r:
            v = r["vs_baseline"]
            lines.append(f"| {r['arm']} | " + " | ".join(f"{v[k][0]:+.4f} ± {v[k][1]:.4f}"
                                                        for k in ("valid", "modern_valid", "infill16", "infill64")) + " |")
    if args.notes:
        lines += ["", Path(args.notes).read_text(encoding="utf-8").strip()]
    atomic_write_text(out, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
