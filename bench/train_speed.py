"""Training characters/s and 1x256 forward latency for each preset on this machine.

Prints JSON. Timings are medians over several repeats (this machine is noisy).
    python bench/train_speed.py [--presets tiny small base] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from ardm_core.model import ARDMTransformer, preset_config
from ardm_core.objective import ardm_loss


def median_time(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=["tiny", "small", "base"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = {"threads": args.threads, "torch": torch.__version__, "presets": {}}
    for name in args.presets:
        cfg = preset_config(name, vocab_size=94, block_size=256)
        net = ARDMTransformer(cfg)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
        batch = args.batch if name != "base" else 4  # base is a GPU preset: keep the CPU probe short
        ids = torch.randint(1, 94, (batch, 256))

        def step():
            loss = ardm_loss(net, ids).loss
            opt.zero_grad()
            loss.backward()
            opt.step()

        reps = args.repeats if name != "base" else 2
        t_step = median_time(step, reps, warmup=1)
        net.eval()
        x = torch.randint(1, 94, (1, 256))

        def fwd():
            with torch.inference_mode():
                net(x)

        t_fwd = median_time(fwd, 20 if name != "base" else 5)
        results["presets"][name] = {
            "params": net.num_params(),
            "train_batch": batch,
            "train_step_s": round(t_step, 4),
            "train_chars_per_s": round(batch * 256 / t_step, 1),
            "forward_1x256_ms": round(t_fwd * 1000, 2),
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
