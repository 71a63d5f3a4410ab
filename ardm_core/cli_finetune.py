"""``ardm finetune``: train on my writing, with a before/after report."""

from __future__ import annotations

import sys
import threading
import time

from .paths import default_model_dir, model_dir


def register(sub) -> None:
    from .finetune import FinetuneConfig

    d = FinetuneConfig(inputs=[], out="", base="")
    p = sub.add_parser(
        "finetune", help="fine-tune a model on your own writing (files or folders of .txt/.md)",
        description="Streams the text of FILES (folders: their .txt/.md files; binary files are skipped and listed), "
                    "holds out the last 10%% of each file, fine-tunes the model for about --minutes on this machine, "
                    "then reports bits per character on the held-out text before and after, with an example fill by "
                    "each. Ctrl-C saves a resumable checkpoint: rerun the same command to continue. The base model is "
                    "never written to; the new one is DIR/model, with a MODEL_CARD.md.")
    p.add_argument("files", nargs="+", metavar="FILES", help="text files and folders of your writing")
    p.add_argument("--out", required=True, help="run folder (new, or a cancelled run to resume); the model is DIR/model")
    p.add_argument("--model", default=None, help=f"model folder to start from, or a shipped model's name such as medium "
                   f"(default: the shipped model, {default_model_dir()})")
    p.add_argument("--minutes", type=float, default=d.minutes, help=f"time budget on this machine (default {d.minutes:g})")
    p.add_argument("--steps", type=int, default=0, help="optimiser steps instead of --minutes (0 = fit the time)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"windows per step (default {d.batch_size})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"peak learning rate (default {d.lr:g})")
    p.add_argument("--max-chars", type=int, default=d.max_chars, help="characters prepared at most; beyond, sampled evenly")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (CUDA, MPS, then CPU), cuda, mps or cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.set_defaults(func=cmd_finetune)


def cmd_finetune(args) -> int:
    from .cli import UserError
    from .cli_train import _bar, _hms, ctrl_c_saves
    from .finetune import FinetuneConfig, FinetuneFinished, Prepared, finetune
    from .train import TrainStep, Validated

    if args.minutes <= 0 and not args.steps:
        raise UserError(f"--minutes must be more than 0 (got {args.minutes:g})")
    if args.steps < 0 or args.batch_size < 1 or args.max_chars < 1:
        raise UserError("--steps, --batch-size and --max-chars must be positive")
    base = model_dir(args.model)
    cfg = FinetuneConfig(inputs=list(args.files), out=args.out, base=str(base), minutes=args.minutes, steps=args.steps,
                         batch_size=args.batch_size, lr=args.lr, max_chars=args.max_chars, seed=args.seed,
                         device=args.device, threads=args.threads)
    stop = threading.Event()
    with ctrl_c_saves(stop):
        tty = sys.stderr.isatty()
        last_print, held_out = 0.0, None
        try:
            for ev in finetune(cfg, stop):
                if isinstance(ev, Prepared):
                    s = ev.scan
                    print(("resuming: " if ev.resumed else "") + s.summary(), file=sys.stderr)
                    for f, why in s.skipped:
                        print(f"  skipped {f}: {why}", file=sys.stderr)
                    print(f"training on {s.train_chars:,} characters" + (" (sampled evenly)" if s.sampled else "")
                          + f", held out {s.valid_chars:,}; {ev.steps} steps at {ev.seconds_per_step:.2f} s/step "
                          f"(about {_hms(ev.steps * ev.seconds_per_step)}); held-out bits before: {ev.bpc_before:.3f}",
                          file=sys.stderr)
                elif isinstance(ev, Validated):
                    held_out = ev.bpc
                elif isinstance(ev, TrainStep):
                    now = time.time()
                    if tty or now - last_print > 10 or ev.step == ev.steps:
                        last_print = now
                        ho = f"  held-out {held_out:.3f} bpc" if held_out is not None else ""
                        line = f"[{_bar(ev.step / ev.steps)}] {ev.step}/{ev.steps}  bpc {ev.bpc:.3f}{ho}  left {_hms(ev.eta_s)}"
                        print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)
                elif isinstance(ev, FinetuneFinished):
                    if tty:
                        print(file=sys.stderr)
                    state = (f"stopped at step {ev.step} of {ev.steps}; rerun the same command to continue"
                             if ev.interrupted else f"done: {ev.step} steps")
                    print(state, file=sys.stderr)
                    print(f"held-out bits per character: before {ev.bpc_before:.3f}   after {ev.bpc_after:.3f}")
                    if ev.example:
                        print(f"example   masked: {ev.example.masked!r}")
                        print(f"          before: {ev.example.before!r}")
                        print(f"           after: {ev.example.after!r}")
                    print(f"model: {ev.model_dir} (card: {ev.card})")
        except OSError as exc:
            raise UserError(f"{args.out}: could not write ({exc.strerror or exc}); the last saved checkpoint is kept") from None
    return 0
