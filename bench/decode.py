"""Decoding engine benchmark: step latency, likelihood throughput, calls == steps, DP vs naive budgets.

Prints one JSON object:
- ``step_ms``: median wall ms per step filling one window of 256 (block_size)
  characters, per order, next to the median of the network forward alone
  and ``engine_overhead_ms``, the step time with the network replaced by a
  cached output (the engine's own cost, immune to a busy machine). Target:
  <= 25 ms per step on the small preset with 2 CPU threads;
- ``likelihood_chars_per_s``: exact l2r scoring throughput (teacher forcing,
  steps batched into forward passes);
- ``calls_equal_steps``: a budgeted session on a long document made exactly
  one network call per step;
- ``budgets``: measured bpc (random order, teacher forcing) with the paper's
  DP schedule and with an equal split at K = 5, 10, 20, 50, 100, plus the
  expected bpc of each schedule under the model's L_t table (paper, text8:
  20 steps cost 1.51 vs 1.43 bpc with all 250).

    python bench/decode.py [--model FOLDER] [--data data/corpus/test.txt] [--quick] [--threads 2]

Without --model it uses the shipped model (assets/models/default).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ardm_core.budget import budget_schedule, document_table, naive_schedule  # noqa: E402
from ardm_core.checkpoint import load_model  # noqa: E402
from ardm_core.fileio import read_utf8  # noqa: E402
from ardm_core.paths import default_model_dir, default_test_file  # noqa: E402
from ardm_core.session import DecodeSession, score  # noqa: E402

BUDGETS = (5, 10, 20, 50, 100)


def step_latency(model, text: str, order: str, n_steps: int, precision: str = "fp32") -> dict:
    D = model.config.block_size
    window = text[:D]
    s = DecodeSession(model, window, range(len(window)), order=order, seed=0, precision=precision)
    s.step()  # warm-up
    ms = [s.step().ms for _ in range(n_steps)]
    return {"median_ms": round(statistics.median(ms), 2), "steps": n_steps}


class _CachedNet(torch.nn.Module):
    """Stands in for the network with one precomputed output: isolates the engine's own cost per step."""

    def __init__(self, net):
        super().__init__()
        self.cfg, self.mask_id = net.cfg, net.mask_id
        self._anchor = torch.nn.Parameter(torch.zeros(1))  # so LoadedModel.device works
        with torch.inference_mode():
            self.out = net(torch.full((1, net.cfg.block_size), net.mask_id, dtype=torch.long))

    def forward(self, ids):
        return self.out[:, : ids.shape[1]].expand(ids.shape[0], -1, -1)


def engine_overhead(model, text: str) -> dict:
    from dataclasses import replace

    stub = replace(model, net=_CachedNet(model.net))
    window = text[: model.config.block_size]
    res = {}
    for order in ("l2r", "confidence"):
        s = DecodeSession(stub, window, range(len(window)), order=order)
        res[order] = round(statistics.median(st.ms for st in s.run()), 3)
    return res


@torch.inference_mode()
def forward_ms(model, repeats: int) -> float:
    D = model.config.block_size
    x = torch.full((1, D), model.net.mask_id, dtype=torch.long, device=model.device)
    model.net(x)
    t = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.net(x)
        t.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(t), 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    ap.add_argument("--data", default=str(default_test_file()), help="text to measure on (default: the test split)")
    ap.add_argument("--quick", action="store_true", help="a few steps and windows only (about a minute)")
    ap.add_argument("--windows", type=int, default=None, help="windows of the data for the budget comparison")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    path = Path(args.model) if args.model else default_model_dir()
    if not path.exists():
        sys.exit(f"bench/decode.py: no model at {path}; pass --model FOLDER")
    model = load_model(path, "cpu")
    text = read_utf8(Path(args.data))
    D = model.config.block_size
    quick = args.quick
    n_win = args.windows or (2 if quick else 8)
    budgets = (5, 10, 20) if quick else BUDGETS
    out: dict = {"model": str(path), "params": model.net.num_params(), "block_size": D, "threads": args.threads,
                 "load_avg": round(os.getloadavg()[0], 2), "quick": quick}

    # 1. per-step latency on one window, vs the network alone
    n_steps = 16 if quick else 64
    out["forward_ms"] = forward_ms(model, n_steps)
    out["step_ms"] = {o: step_latency(model, text, o, n_steps) for o in ("l2r", "confidence")}
    out["engine_overhead_ms"] = engine_overhead(model, text)  # per step, network stubbed out
    out["target_ms"] = 25.0
    out["meets_target"] = out["step_ms"]["l2r"]["median_ms"] <= 25.0
    # bfloat16 matrix products (DecodeSession(precision="bf16"), `ardm infill --precision bf16`)
    out["step_ms_bf16"] = {o: step_latency(model, text, o, n_steps, "bf16") for o in ("l2r", "confidence")}
    out["meets_target_bf16"] = out["step_ms_bf16"]["l2r"]["median_ms"] <= 25.0

    # 2. exact likelihood throughput (l2r, D calls per window, batched)
    n_chars = D if quick else 4 * D
    t0 = time.perf_counter()
    r = score(model, text[:n_chars], range(n_chars), order="l2r") if n_chars <= D else None
    if r is None:
        bits = 0.0
        for w in range(0, n_chars, D):
            bits += score(model, text[w : w + D], range(D), order="l2r").total_bits
    else:
        bits = r.total_bits
    secs = time.perf_counter() - t0
    out["likelihood"] = {"chars": n_chars, "chars_per_s": round(n_chars / secs, 1), "bpc_l2r": round(bits / n_chars, 4)}

    # 3. one network call per step, on a document longer than a window
    long = text[: 4 * D]
    rng = np.random.default_rng(0)
    masked = np.sort(rng.choice(len(long), 60, replace=False))
    s = DecodeSession(model, long, masked, order="confidence", steps=6)
    for _ in s.run():
        pass
    out["calls_equal_steps"] = {"steps": len(s.steps), "network_calls": s.network_calls,
                                "windows_per_step": [st.windows for st in s.steps], "ok": s.network_calls == len(s.steps) == 6}

    # 4. DP vs naive budgets: measured (teacher forcing, random order) and expected from L_t
    L = model.loss_by_known
    rows = {}
    for K in budgets:
        if K > D:
            continue
        row = {}
        for planner, plan in (("dp", budget_schedule), ("naive", naive_schedule)):
            total = 0.0
            for w in range(n_win):
                win = text[w * D : (w + 1) * D]
                total += score(model, win, range(len(win)), order="random", steps=K, seed=w, planner=planner).total_bits
            row[planner] = {"bpc": round(total / (n_win * D), 4)}
            if L is not None:
                row[planner]["expected_bpc"] = round(plan(document_table(L, D), K).expected_bpc(), 4)
        rows[str(K)] = row
    full = 0.0
    for w in range(n_win):
        win = text[w * D : (w + 1) * D]
        full += score(model, win, range(len(win)), order="random", seed=w).total_bits
    out["budgets"] = {"windows": n_win, "chars": n_win * D, "order": "random", "by_steps": rows,
                      f"all_{D}_steps_bpc": round(full / (n_win * D), 4)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
