"""Copy a trained model into assets/ the way the shipped models were made.

    python scripts/ship_model.py RUN/model assets/models/NAME --name NAME [--fp16]
        [--calibrate data/corpus/valid.txt --rounds 8] [--note "..."]

Writes the weights (fp16 with --fp16: bench/fp16_weights.py measured no
difference in ELBO), re-estimates the L_t table (one per stage for an
upscaling model) on held-out text, and records provenance in config.json's
meta. The target folder is replaced atomically.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ardm_core.checkpoint import load_model, save_model  # noqa: E402
from ardm_core.evaluate import estimate_loss_by_known  # noqa: E402
from ardm_core.fileio import read_utf8  # noqa: E402
from ardm_core.upscale import estimate_stage_tables, stage_tables  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--name", required=True)
    ap.add_argument("--fp16", action="store_true")
    ap.add_argument("--calibrate", default=None, help="held-out text for the L_t table(s)")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--note", default=None, help="extra provenance line for meta")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="override a meta field, e.g. --set trained_steps=6100 (for a fine-tuned run's totals)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    m = load_model(args.src)
    meta = dict(m.meta)
    meta["name"] = args.name
    if args.note:
        meta["note"] = args.note
    for kv in args.set:
        key, _, value = kv.partition("=")
        meta[key] = json.loads(value)
    lbk, stage_lbk = m.loss_by_known, m.stage_loss_by_known
    if args.calibrate:
        text = read_utf8(Path(args.calibrate))
        meta["loss_by_known_source"] = f"{Path(args.calibrate).name}, {args.rounds} rounds, seed 0"
        if m.is_upscale:
            stage_lbk = estimate_stage_tables(m.net, stage_tables(m), m.vocab.encode(text), m.config.block_size,
                                              rounds=args.rounds)
            meta["stage_loss_by_known_mean_bits"] = [round(float(t.mean()), 4) for t in stage_lbk]
        else:
            raw, lbk = estimate_loss_by_known(m, text, rounds=args.rounds)
            meta["loss_by_known_mean_bits"] = round(float(raw.mean()), 4)
    save_model(args.dst, m.net, m.vocab, loss_by_known=lbk, meta=meta, dtype=torch.float16 if args.fp16 else None,
               stages=m.stages.to_json() if m.is_upscale else None, stage_loss_by_known=stage_lbk)
    print(f"{args.dst}: {sum(f.stat().st_size for f in Path(args.dst).iterdir()) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
