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

- ``machine``: CPU model and flags (/proc/cpuinfo), torch version, threads,
  the process's nice value and how busy the rest of the machine was while
  the timings ran (``other_cpus_busy``: average CPUs used by other processes);
- ``peak``: this machine's own fp32 matrix-multiply peak, measured in the same
  run (square products of 256 to 2048, best of several), and the ``floor_ms``
  of one forward on 1 x D (its FLOPs / peak). Every step and forward time
  comes with ``of_floor`` = floor / time: 1.0 runs at the matmul peak, the
  target is >= 0.75 on 1 x 256 (``meets_target_fp32``, and ``app_step``: the
  step at the precision ``--precision auto`` picks here, as the app runs it);
  ``interleaved``: the same ratio with the floor re-measured beside every
  block of 8 steps (20 rounds), median and range: the firmer figure where
  the machine's speed swings from minute to minute.
  A step reads the rows it fills: an l2r step computes the last block at one
  position only (``ardm_core.windows.picked_logprobs``), so it can run below
  the full-forward floor;
- ``precision``: what ``--precision auto`` picks here and the measured bf16
  speedup behind it;
- ``batching``: ms per call and GFLOP/s for batches of 1, 4, 16 windows x
  window lengths 64, 128, 256, in fp32 and bf16 (also written as a Markdown
  table with ``--table FILE``);
- ``planner``: wall ms of the budget planner (``budget_schedule``, plan cache
  cleared before every run; median of 7) on the app's input, the model's L_t
  table resampled to the document (n = 1,024 with K = 512, target <= 20 ms;
  n = 20,000 with K = 100, target <= 200 ms), and on tables with a distinct
  value at every position (the planner's worst case: 256 with K = 85, and one
  run of 1,024 with K = 512);
- ``compile`` (``--sections ...,compile``): eager vs torch.compile, fp32 and
  bf16, one shape or dynamic shapes, with compile times.

    python bench/decode.py [--model FOLDER] [--data data/corpus/test.txt] [--quick] [--threads 2]
                           [--sections machine,steps,batching,likelihood,calls,budgets] [--table FILE]

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
from ardm_core.device import PRECISIONS, bf16_speedup, cpu_info, native_bf16, resolve_precision  # noqa: E402
from ardm_core.model import forward_flops  # noqa: E402
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
def forward_ms(model, repeats: int, precision: str = "fp32") -> float:
    """Median ms of one whole forward pass on 1 x D (every row's output), fp32 or bf16 as the engine runs it."""
    D = model.config.block_size
    x = torch.full((1, D), model.net.mask_id, dtype=torch.long, device=model.device)
    with torch.inference_mode(), torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        model.net(x)
        t = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model.net(x)
            t.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(t), 2)


SECTIONS = ("machine", "steps", "batching", "compile", "likelihood", "calls", "budgets", "planner")
DEFAULT_SECTIONS = ("machine", "steps", "batching", "likelihood", "calls", "budgets", "planner")
BATCHES, LENGTHS = (1, 4, 16), (64, 128, 256)


class CpuLoad:
    """CPUs kept busy by *other* processes between start() and stop(): all busy time minus this process's."""

    def start(self) -> "CpuLoad":
        self._t0, self._busy0, self._own0 = time.perf_counter(), self._busy(), time.process_time()
        return self

    def stop(self) -> float | None:
        busy = self._busy()
        if busy is None or self._busy0 is None:
            return None
        wall = time.perf_counter() - self._t0
        other = (busy - self._busy0) - (time.process_time() - self._own0)
        return round(max(other, 0.0) / wall, 2) if wall > 0 else None

    @staticmethod
    def _busy() -> float | None:
        try:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
        return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def machine_info(threads: int) -> dict:
    info = cpu_info()
    return {"cpu": info.model, "flags": " ".join(sorted(info.flags)), "native_bf16": native_bf16(info),
            "cores": os.cpu_count(), "threads": threads, "torch": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "nice": os.nice(0),
            "load_avg": round(os.getloadavg()[0], 2)}


def matmul_peak(sizes=(256, 512, 1024, 2048), seconds: float = 0.25) -> dict:
    """Best fp32 GFLOP/s of square products n x n @ n x n (torch.mm into a preallocated output)."""
    by_size = {}
    for n in sizes:
        a, b, c = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
        torch.mm(a, b, out=c)
        reps = max(2, int(seconds * 150e9 / (2 * n**3)))
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(reps):
                torch.mm(a, b, out=c)
            best = min(best, (time.perf_counter() - t0) / reps)
        by_size[str(n)] = round(2 * n**3 / best / 1e9, 1)
    return {"gflops": max(by_size.values()), "by_size": by_size}


def interleaved_of_floor(model, text: str, precision: str, rounds: int, steps: int = 8) -> dict:
    """The l2r step as a fraction of the floor, with the floor measured afresh beside each block of steps.

    This VM's speed swings by 2x within a minute (other tenants), so a peak
    measured once and steps timed a minute later give a ratio that is mostly
    noise. Each round times the 512 x 512 product (the size that sets the peak
    here, best of 3) and then ``steps`` steps; the ratio is taken per round and
    the median over the rounds reported, with its range.
    """
    D = model.config.block_size
    flops = forward_flops(model.config, 1, D)
    ratios, step_ms = [], []
    for r in range(rounds):
        s = DecodeSession(model, text[:D], range(D), order="l2r", seed=r, precision=precision)
        s.step()  # warm-up
        peak = matmul_peak(sizes=(512,), seconds=0.05)["gflops"]
        ms = statistics.median(s.step().ms for _ in range(steps))
        ratios.append(flops / peak / 1e6 / ms)
        step_ms.append(ms)
    q = sorted(ratios)
    return {"precision": precision, "rounds": rounds, "steps_per_round": steps,
            "median_of_floor": round(statistics.median(ratios), 2), "min": round(q[0], 2), "max": round(q[-1], 2),
            "median_step_ms": round(statistics.median(step_ms), 2),
            "rounds_at_or_above_target": sum(x >= 0.75 for x in ratios)}


def _ids(model, B: int, T: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(B * 1000 + T)
    ids = torch.randint(1, model.config.vocab_size, (B, T), generator=g)
    ids[torch.rand(B, T, generator=g) < 0.5] = model.net.mask_id
    return ids.to(model.device)


@torch.inference_mode()
def time_calls(fns: dict, ids: torch.Tensor, reps: int) -> dict:
    """Median and min ms of each fn(ids) (a dict of (callable, bf16) pairs), interleaved so load hits all alike."""
    ts: dict = {k: [] for k in fns}
    for i in range(reps + 1):
        for k, (f, bf16) in fns.items():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                t0 = time.perf_counter()
                f(ids)
                if i:
                    ts[k].append((time.perf_counter() - t0) * 1000)
    return {k: {"median_ms": round(statistics.median(v), 2), "min_ms": round(min(v), 2)} for k, v in ts.items()}


def batching_table(model, peak: float, quick: bool) -> list[dict]:
    net = model.net
    rows = []
    for T in LENGTHS:
        for B in BATCHES:
            flops = forward_flops(model.config, B, T)
            reps = max(5, min(25, int(4e9 / flops))) if not quick else 3
            res = time_calls({"fp32": (net, False), "bf16": (net, True)}, _ids(model, B, T), reps)
            row = {"batch": B, "T": T, "gflop": round(flops / 1e9, 3), "reps": reps}
            for k, r in res.items():
                row[k] = {**r, "gflops": round(flops / r["median_ms"] / 1e6, 1),
                          "of_peak": round(flops / r["median_ms"] / 1e6 / peak, 2)}
            rows.append(row)
    return rows


def batching_markdown(out: dict) -> str:
    m, p = out["machine"], out["peak"]
    lines = [
        "# Forward pass: batch x window length",
        "",
        f"Shipped model ({out['params']:,} parameters), {m['cpu']}, {m['threads']} threads, torch {m['torch']}. "
        f"fp32 matmul peak measured in the same run: {p['gflops']} GFLOP/s (square products 256-2048). "
        f"Other processes kept {out.get('other_cpus_busy', {}).get('batching', '?')} CPUs busy on average during these "
        f"timings (nice {m['nice']}). ms = median per call (min in brackets); GFLOP/s and % of the fp32 peak from the median.",
        "",
        "| batch x T | GFLOP | fp32 ms | fp32 GFLOP/s | fp32 % peak | bf16 ms | bf16 GFLOP/s | bf16 / fp32 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in out["batching"]:
        f, b = r["fp32"], r["bf16"]
        lines.append(f"| {r['batch']} x {r['T']} | {r['gflop']} | {f['median_ms']} ({f['min_ms']}) | {f['gflops']} | "
                     f"{round(100 * f['of_peak'])}% | {b['median_ms']} ({b['min_ms']}) | {b['gflops']} | "
                     f"{round(f['median_ms'] / b['median_ms'], 2)}x |")
    lines += ["", "    " + out["command"], ""]
    return "\n".join(lines)


def compile_comparison(model, peak_floor_ms: float, reps: int) -> dict:
    """Eager vs torch.compile (inductor, frozen weights), fp32 and bf16, on 1 x D and 4 x D."""
    import copy

    net = model.net
    D = model.config.block_size
    res: dict = {"compile_s": {}}
    fns = {"eager_fp32": (net, False), "eager_bf16": (net, True)}
    for dynamic in (False, True):
        for bf16 in (False, True):
            name = f"{'dynamic' if dynamic else 'static'}_{'bf16' if bf16 else 'fp32'}"
            fn = torch.compile(copy.deepcopy(net).requires_grad_(False), dynamic=dynamic, options={"freezing": True})
            t0 = time.perf_counter()
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                for B in ((2, 1) if dynamic else (1,)):
                    fn(_ids(model, B, D))
            res["compile_s"][name] = round(time.perf_counter() - t0, 1)
            fns[name] = (fn, bf16)
    res["1x%d" % D] = time_calls(fns, _ids(model, 1, D), reps)
    for k, r in res["1x%d" % D].items():
        r["of_floor"] = round(peak_floor_ms / r["median_ms"], 2)
    dyn = {k: v for k, v in fns.items() if not k.startswith("static")}
    res["4x%d" % D] = time_calls(dyn, _ids(model, 4, D), max(3, reps // 4))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    ap.add_argument("--data", default=str(default_test_file()), help="text to measure on (default: the test split)")
    ap.add_argument("--quick", action="store_true", help="a few steps and windows only (about a minute)")
    ap.add_argument("--windows", type=int, default=None, help="windows of the data for the budget comparison")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sections", default=",".join(DEFAULT_SECTIONS),
                    help=f"comma-separated, from {','.join(SECTIONS)} (compile is slow: minutes the first time)")
    ap.add_argument("--table", default=None, help="also write the batching table as Markdown to this file")
    args = ap.parse_args()
    sections = [x.strip() for x in args.sections.split(",") if x.strip()]
    bad = sorted(set(sections) - set(SECTIONS))
    if bad:
        sys.exit(f"bench/decode.py: unknown sections {bad}; choose from {list(SECTIONS)}")
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
                 "load_avg": round(os.getloadavg()[0], 2), "quick": quick,
                 "command": "python bench/decode.py " + " ".join(sys.argv[1:])}
    busy = out["other_cpus_busy"] = {}

    # 0. the machine and its own fp32 matmul peak: the floor every forward is measured against
    out["machine"] = machine_info(args.threads)
    load = CpuLoad().start()
    out["peak"] = matmul_peak()
    peak = out["peak"]["gflops"]
    flops = forward_flops(model.config, 1, D)
    floor_ms = flops / peak / 1e6
    out["peak"].update({"forward_gflop": round(flops / 1e9, 3), "floor_ms": round(floor_ms, 2)})
    busy["peak"] = load.stop()

    # 1. per-step latency on one window, vs the network alone, as a fraction of the floor
    n_steps = 16 if quick else 64
    if "steps" in sections:
        load.start()
        out["forward_ms"] = forward_ms(model, n_steps)
        out["forward_of_floor"] = round(floor_ms / out["forward_ms"], 2)
        out["forward_ms_bf16"] = forward_ms(model, n_steps, "bf16")
        out["forward_bf16_of_floor"] = round(floor_ms / out["forward_ms_bf16"], 2)
        for name, prec in (("step_ms", "fp32"), ("step_ms_bf16", "bf16")):
            out[name] = {o: step_latency(model, text, o, n_steps, prec) for o in ("l2r", "confidence")}
            for r in out[name].values():
                r["of_floor"] = round(floor_ms / r["median_ms"], 2)
        out["engine_overhead_ms"] = engine_overhead(model, text)  # per step, network stubbed out
        out["target_of_floor"] = 0.75
        busy["steps"] = load.stop()
        # what `--precision auto` picks here, and the measurement behind it (cached in the user's cache folder)
        auto = resolve_precision("auto", model.net)
        out["precision"] = {"choices": list(PRECISIONS), "auto": auto, "native_bf16": native_bf16(),
                            "bf16_speedup": round(bf16_speedup(model.net), 2) if native_bf16() else None}
        # the step in fp32, and the step the app takes here (at the precision `auto` picks)
        out["meets_target_fp32"] = out["step_ms"]["l2r"]["of_floor"] >= 0.75
        app_step = out["step_ms_bf16" if auto == "bf16" else "step_ms"]["l2r"]
        out["app_step"] = {"precision": auto, **app_step, "meets_target": app_step["of_floor"] >= 0.75}
        # the same ratio with the floor measured beside each block of steps (the firmer figure on a noisy VM)
        out["interleaved"] = {p: interleaved_of_floor(model, text, p, 6 if quick else 20)
                              for p in dict.fromkeys(("fp32", auto))}

    # 2. batch x window length
    if "batching" in sections:
        load.start()
        out["batching"] = batching_table(model, peak, quick)
        busy["batching"] = load.stop()
        if args.table:
            Path(args.table).write_text(batching_markdown(out), encoding="utf-8")

    if "compile" in sections:
        load.start()
        out["compile"] = compile_comparison(model, floor_ms, 8 if quick else 30)
        busy["compile"] = load.stop()

    if "likelihood" in sections:
        out["likelihood"] = likelihood(model, text, D, quick)
    if "calls" in sections:
        out["calls_equal_steps"] = calls_equal_steps(model, text, D)
    if "budgets" in sections:
        out["budgets"] = budgets_table(model, text, D, n_win, budgets)
    if "planner" in sections:
        load.start()
        out["planner"] = planner_timing(model.loss_by_known, quick)
        busy["planner"] = load.stop()
    print(json.dumps(out, indent=1))


def planner_timing(L, quick: bool, repeats: int = 7) -> dict:
    """Median wall ms of one cold plan (the plan cache cleared first) per case, with the targets."""
    from ardm_core import budget

    def cold_ms(table, K: int, n_runs: int) -> float:
        t = []
        for _ in range(n_runs):
            budget._planned.cache_clear()
            t0 = time.perf_counter()
            budget_schedule(table, K)
            t.append((time.perf_counter() - t0) * 1000)
        return round(statistics.median(t), 2)

    res: dict = {"repeats": repeats, "cases": []}
    if L is not None:
        for n, K, target in ((1024, 512, 20.0), (20000, 100, 200.0)):
            table = document_table(L, n)
            runs = int(np.count_nonzero(np.diff(table)) + 1)
            ms = cold_ms(table, K, repeats)
            res["cases"].append({"table": "model L_t resampled to the document", "n": n, "K": K, "runs": runs,
                                 "median_ms": ms, "target_ms": target, "meets_target": ms <= target})
    worst = [(256, 85, repeats)] + ([] if quick else [(1024, 512, 1)])
    for n, K, reps in worst:
        table = np.linspace(5.0, 1.0, n)  # every position its own run
        res["cases"].append({"table": "strictly decreasing (every position a run)", "n": n, "K": K, "runs": n,
                             "median_ms": cold_ms(table, K, reps), "repeats": reps})
    return res


def likelihood(model, text: str, D: int, quick: bool) -> dict:
    """Exact likelihood throughput (l2r, D calls per window, batched)."""
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
    return {"chars": n_chars, "chars_per_s": round(n_chars / secs, 1), "bpc_l2r": round(bits / n_chars, 4)}


def calls_equal_steps(model, text: str, D: int) -> dict:
    """One network call per step, on a document longer than a window."""
    long = text[: 4 * D]
    rng = np.random.default_rng(0)
    masked = np.sort(rng.choice(len(long), 60, replace=False))
    s = DecodeSession(model, long, masked, order="confidence", steps=6)
    for _ in s.run():
        pass
    return {"steps": len(s.steps), "network_calls": s.network_calls,
            "windows_per_step": [st.windows for st in s.steps], "ok": s.network_calls == len(s.steps) == 6}


def budgets_table(model, text: str, D: int, n_win: int, budgets) -> dict:
    """DP vs naive budgets: measured (teacher forcing, random order) and expected from L_t."""
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
    return {"windows": n_win, "chars": n_win * D, "order": "random", "by_steps": rows,
            f"all_{D}_steps_bpc": round(full / (n_win * D), 4)}


if __name__ == "__main__":
    main()
