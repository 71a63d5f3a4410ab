"""Train on a machine with one large GPU for a fixed number of minutes, then evaluate.

For a lent accelerator machine with a copy of this repository and no network:
it needs only torch, numpy, safetensors and sentencepiece (no platformdirs,
constriction or Qt), installs nothing and fetches nothing. Bring the corpus with
the repository (``ardm corpus build --out data/corpus`` here first).

    python scripts/train_on_device.py --minutes 8                       # on the GPU
    python scripts/train_on_device.py --device cpu --minutes 1 --preset tiny --init none   # a smoke test here

Size: the default trains the ``small`` shape (3.2M parameters) from the shipped
weights. It is the shape that ships as the default: on two CPU cores it decodes a
256-character step in well under 25 ms, so the app stays interactive. On one H200
it trains at about 1.7M characters/s with batch 1024 even while sharing the GPU
with two other runs, against about 10,000 on two CPU cores (bench/results/
device_h200.md). ``--init none --preset medium`` (10.8M parameters, 6 x 384)
trains the larger option from fresh weights; ``--preset base`` (85M) is the
paper's text8 shape, far too slow for the app on a CPU.

Batch 1024 at a peak of 1e-3 is the CUDA default because it beat batch 256 at
5e-4 at equal time from the same start (valid 2.265 against 2.297 after 7.5
minutes, same file).

The learning rate warms up, then follows a cosine over the time budget (or over
``--steps`` if that ends first). It writes OUT/model (EMA weights, the same
format as every model folder), with --fp16-copy also OUT/model-fp16 (half the
bytes, to carry back), and OUT/device_result.json with the ELBO on the test
splits. Run it again with the same --out and a larger --minutes to go on.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(REPO / "data" / "corpus"), help="corpus folder (train.txt, valid.txt, test splits)")
    p.add_argument("--out", default=str(REPO / "runs" / "device"), help="run folder (resumable; model/ inside)")
    p.add_argument("--minutes", type=float, default=8.0, help="training time budget")
    p.add_argument("--device", default="cuda", help="cuda (default), cpu or auto")
    p.add_argument("--preset", default="small", help="network shape when not starting from --init (tiny, small, medium, base)")
    p.add_argument("--init", default=str(REPO / "assets" / "models" / "default"),
                   help="start from this model folder ('none': fresh weights of --preset)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="auto: bf16 autocast where the hardware has bfloat16 units (CUDA, a CPU with AMX or "
                        "AVX-512 BF16) and the model is large enough to gain, fp32 elsewhere")
    p.add_argument("--batch-size", type=int, default=0, help="windows per step (0: 1024 on CUDA, 16 on CPU)")
    p.add_argument("--lr", type=float, default=0.0,
                   help="peak learning rate (0: 1e-3 on CUDA or for fresh weights, 5e-4 from --init on CPU)")
    p.add_argument("--steps", type=int, default=10_000_000, help="step cap (the time budget normally ends the run first)")
    p.add_argument("--eval-chars", type=int, default=200_000, help="characters of each test split to evaluate")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fp16-copy", action="store_true",
                   help="also write OUT/model-fp16, the same weights in half the bytes (easier to carry back)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        import torch  # noqa: F401

        from ardm_core.checkpoint import load_model
        from ardm_core.evaluate import elbo
        from ardm_core.fileio import read_utf8
        from ardm_core.train import TrainConfig, TrainFinished, TrainStarted, TrainStep, Validated, train
    except ImportError as exc:
        print(f"train_on_device: missing package ({exc}); this script needs torch, numpy, safetensors and sentencepiece",
              file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("train_on_device: no CUDA device here; pass --device cpu for a smoke test", file=sys.stderr)
        return 2
    data = Path(args.data)
    if not (data / "train.txt").is_file():
        print(f"train_on_device: {data}/train.txt not found; build the corpus first (ardm corpus build --out {data})",
              file=sys.stderr)
        return 2
    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    init = None if args.init.lower() == "none" else args.init
    cfg = TrainConfig(
        data=[str(data)], out=args.out, preset=args.preset, steps=args.steps, minutes=args.minutes,
        batch_size=args.batch_size or (1024 if cuda else 16), lr=args.lr or (5e-4 if init and not cuda else 1e-3),
        warmup=200 if cuda else 10, min_lr_ratio=0.1, eval_every=500 if cuda else 50, eval_batches=8,
        save_every=500 if cuda else 50, seed=args.seed, device=args.device, threads=args.threads, init=init,
        precision=args.precision)
    t0 = time.time()
    last = 0.0
    finished = None
    ran_in = cfg.precision
    for ev in train(cfg):
        if isinstance(ev, TrainStarted):
            print(f"{ev.params:,} parameters on {ev.device}; {ev.train_chars:,} training characters; "
                  f"batch {cfg.batch_size} x {cfg.block_size}; {ev.precision}; {cfg.minutes:g} minutes", flush=True)
            ran_in = ev.precision
        elif isinstance(ev, TrainStep) and time.time() - last > 30:
            last = time.time()
            print(f"step {ev.step}  bpc {ev.bpc:.3f}  lr {ev.lr:.2e}  {ev.chars_per_s:,.0f} char/s", flush=True)
        elif isinstance(ev, Validated):
            print(f"step {ev.step}  valid ELBO {ev.bpc:.4f} +- {ev.stderr:.4f}", flush=True)
        elif isinstance(ev, TrainFinished):
            finished = ev
    assert finished is not None
    model = load_model(finished.model_dir, "cuda" if cuda else "cpu")
    if args.fp16_copy:  # before the evaluation, which a wall-clock limit may cut short
        from ardm_core.checkpoint import save_model

        save_model(Path(args.out) / "model-fp16", model.net, model.vocab, loss_by_known=model.loss_by_known,
                   meta=model.meta, dtype=torch.float16)
    result = {"steps": finished.step, "train_seconds": round(finished.seconds, 1), "wall_seconds": round(time.time() - t0, 1),
              "characters_seen": finished.step * cfg.batch_size * cfg.block_size, "config": {
                  k: getattr(cfg, k) for k in ("preset", "batch_size", "lr", "minutes", "init", "seed")} | {"precision": ran_in},
              "eval": {}}
    out = Path(args.out) / "device_result.json"
    out.write_text(json.dumps(result, indent=2) + "\n")  # rewritten after each split, in case a limit cuts it short
    for split in ("test", "modern_test", "valid"):
        f = data / f"{split}.txt"
        if f.is_file():
            text = read_utf8(f)[: args.eval_chars]
            r = elbo(model, text, passes=1, seed=0)
            stderr = round(r.stderr, 4) if math.isfinite(r.stderr) else None  # one pass has no spread
            result["eval"][split] = {"bpc": round(r.bpc, 4), "stderr": stderr, "characters": len(text)}
            print(f"{split}: ELBO {r.bpc:.4f} bits per character ({len(text):,} characters)", flush=True)
            out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {finished.model_dir} and {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
