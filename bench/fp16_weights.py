"""Does storing a model's weights in fp16 cost anything? ELBO with fp32 and fp16-rounded weights, same masks.

    python bench/fp16_weights.py --model assets/models/default [--chars 131072] [--passes 2]

Both evaluations draw the same t and orders (same seed), so the difference is
the weights' rounding alone. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ardm_core.checkpoint import load_model  # noqa: E402
from ardm_core.evaluate import elbo  # noqa: E402
from ardm_core.paths import default_test_file  # noqa: E402
from ardm_core.upscale import stage_tables, upscale_elbo  # noqa: E402


def measure(model, text: str, passes: int) -> float:
    if model.is_upscale:
        return upscale_elbo(model.net, stage_tables(model), model.vocab.encode(text), model.config.block_size,
                            passes=passes, seed=0)[0]
    return elbo(model, text, passes=passes, seed=0).bpc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--test", default=str(default_test_file()))
    ap.add_argument("--chars", type=int, default=131072)
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    text = Path(args.test).read_text(encoding="utf-8")[: args.chars]
    model = load_model(args.model)
    fp32 = measure(model, text, args.passes)
    with torch.no_grad():
        for p in model.net.parameters():
            p.copy_(p.half().float())
    fp16 = measure(model, text, args.passes)
    print(json.dumps({"model": args.model, "chars": len(text), "passes": args.passes, "fp32_bpc": round(fp32, 5),
                      "fp16_weights_bpc": round(fp16, 5), "difference": round(fp16 - fp32, 5)}))


if __name__ == "__main__":
    main()
