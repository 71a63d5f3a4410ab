"""Train on my writing: fine-tune a model on the user's own text files.

A thin layer over ``ardm_core.train``: it streams the user's files into a run
folder (``data/train.txt`` and ``data/valid.txt``, the last 10% of every file
held out), sizes the run to a time budget on this machine, drives
``train(cfg, stop)`` with ``init`` = the base model, and reports the bits per
character on the held-out text before and after, with an example fill by each
model. The run folder is resumable: the same command continues a cancelled run.

Memory stays bounded whatever the input: files are read in 1 MiB blocks, and
beyond ``max_chars`` characters the text is sampled evenly in 64 KiB pieces
(a run of minutes sees far fewer characters than that).

Layout of the run folder ``out``::

    finetune.json   what was asked: base model, inputs, steps, the text scan, the baseline bits
    data/           train.txt, valid.txt (the user's text, prepared once)
    state.json, state-N.safetensors   resumable training state (ardm_core.train)
    model/          the fine-tuned model, with MODEL_CARD.md once a run finishes
"""

from __future__ import annotations

import codecs
import json
import math
import os
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .checkpoint import LoadedModel, load_model
from .data import DOC_SEPARATOR, TEXT_SUFFIXES
from .device import resolve_device
from .fileio import DataError, atomic_write_json, atomic_write_text
from .objective import ardm_loss
from .paths import ASSETS, data_dir
from .train import TrainConfig, TrainEvent, TrainFinished, TrainStep, train

PLAN = "finetune.json"
MODEL_CARD = "MODEL_CARD.md"
READ_BLOCK = 1 << 20  # bytes per read
PIECE = 1 << 16  # characters per sampling piece
HOLDOUT = 0.1  # share of each file held out for before/after bits


def user_models_dir() -> Path:
    """Models trained by the user (one run folder each; the model is ``<run>/model``)."""
    return data_dir() / "models"


def user_models() -> list[Path]:
    """Model folders under the user's data folder that are complete (config.json present), newest first."""
    root = user_models_dir()
    if not root.is_dir():
        return []
    found = [d / "model" for d in root.iterdir() if (d / "model" / "config.json").is_file()]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


# -- reading the user's files -------------------------------------------------------------------
class _NotText(Exception):
    pass


def _text_blocks(path: Path) -> Iterator[str]:
    """Decoded, normalised text of a file in blocks; raises _NotText for binary or non-UTF-8 files."""
    dec = codecs.getincrementaldecoder("utf-8")()
    carry, first = "", True
    try:
        with open(path, "rb") as f:
            while True:
                raw = f.read(READ_BLOCK)
                if first and b"\x00" in raw[:8192]:
                    raise _NotText("binary (NUL bytes)")
                try:
                    text = dec.decode(raw, final=not raw)
                except UnicodeDecodeError as exc:
                    raise _NotText(f"not UTF-8 (invalid byte near offset {f.tell() - len(raw) + exc.start})") from None
                if first and text.startswith("\ufeff"):
                    text = text[1:]
                first = False
                text = carry + text
                carry = ""
                if raw and text.endswith("\r"):  # a CRLF split across blocks
                    text, carry = text[:-1], "\r"
                if text:
                    yield text.replace("\r\n", "\n").replace("\r", "\n")
                if not raw:
                    return
    except OSError as exc:
        raise _NotText(f"cannot read ({exc.strerror})") from None


def find_files(paths: list[str | os.PathLike]) -> list[Path]:
    """Files named, and the text files (.txt, .md, .rst, .text or no suffix) inside folders named."""
    if not paths:
        raise DataError("no files or folders given")
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in TEXT_SUFFIXES
                              and not any(part.startswith(".") for part in f.relative_to(p).parts)))
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(f"{p}: not found")
    return out


@dataclass
class TextScan:
    files: list[str] = field(default_factory=list)  # files with text
    skipped: list[list[str]] = field(default_factory=list)  # [file, reason] for binary, non-UTF-8 or empty files
    chars: int = 0  # characters in the files with text
    outside_vocab: int = 0  # of those, characters the model has no symbol for (context only, never learnt)
    train_chars: int = 0  # written to data/train.txt (0 for a scan only)
    valid_chars: int = 0  # written to data/valid.txt
    sampled: bool = False  # more than max_chars: pieces sampled evenly

    @property
    def outside_share(self) -> float:
        return self.outside_vocab / self.chars if self.chars else 0.0

    def summary(self) -> str:
        s = f"{self.chars:,} characters in {len(self.files)} file(s), {100 * self.outside_share:.2f}% outside the vocabulary"
        if self.skipped:
            s += f"; skipped {len(self.skipped)}: " + ", ".join(f"{Path(f).name} ({why})" for f, why in self.skipped[:5])
            s += " ..." if len(self.skipped) > 5 else ""
        return s


def _refuse_empty(scan: TextScan, paths) -> None:
    if not scan.chars:
        where = ", ".join(map(str, paths))
        extra = f" ({len(scan.skipped)} skipped: not text)" if scan.skipped else ""
        raise DataError(f"{where}: no text to train on{extra}; give .txt or .md files with your writing")


def scan_texts(paths: list[str | os.PathLike], vocab) -> TextScan:
    """Count characters and the share outside ``vocab``, streaming; nothing is written."""
    scan = TextScan()
    for f in find_files(paths):
        n = 0
        try:
            for block in _text_blocks(f):
                n += len(block)
                scan.outside_vocab += int((vocab.encode(block) == 0).sum())
        except _NotText as exc:
            scan.skipped.append([str(f), str(exc)])
            continue
        if n == 0:
            scan.skipped.append([str(f), "empty"])
            continue
        scan.files.append(str(f))
        scan.chars += n
    _refuse_empty(scan, paths)
    return scan


def prepare_texts(paths: list[str | os.PathLike], vocab, out_dir: Path, *, holdout: float = HOLDOUT,
                  max_chars: int = 8_000_000) -> TextScan:
    """Write ``out_dir/train.txt`` and ``valid.txt``: the last ``holdout`` of each file is held out."""
    scan = scan_texts(paths, vocab)
    keep = min(1.0, max_chars / scan.chars)
    scan.sampled = keep < 1.0
    out_dir.mkdir(parents=True, exist_ok=True)
    tmps = {}
    try:
        for name in ("train", "valid"):
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out_dir)
            tmps[name] = (open(fd, "w", encoding="utf-8", newline=""), tmp)
        piece, written = 0, {"train": 0, "valid": 0}
        for f in scan.files:
            n = sum(len(b) for b in _text_blocks(Path(f)))
            cut = n - int(round(n * holdout))
            pos = 0
            for name in ("train", "valid"):
                if written[name]:
                    tmps[name][0].write(DOC_SEPARATOR)
                    written[name] += len(DOC_SEPARATOR)
            for block in _text_blocks(Path(f)):
                for s in range(0, len(block), PIECE):
                    part = block[s:s + PIECE]
                    kept = math.floor((piece + 1) * keep) > math.floor(piece * keep)
                    piece += 1
                    if kept:
                        a = max(0, min(len(part), cut - pos))
                        for name, text in (("train", part[:a]), ("valid", part[a:])):
                            if text:
                                tmps[name][0].write(text)
                                written[name] += len(text)
                    pos += len(part)
        for name, (fh, tmp) in tmps.items():
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            os.replace(tmp, out_dir / f"{name}.txt")
    except BaseException:
        for fh, tmp in tmps.values():
            fh.close()
            Path(tmp).unlink(missing_ok=True)
        raise
    scan.train_chars, scan.valid_chars = written["train"], written["valid"]
    return scan


# -- time ------------------------------------------------------------------------------------------
def seconds_per_step(model: LoadedModel, batch_size: int, block_size: int, *, repeats: int = 2) -> float:
    """Measured wall seconds of one training step (forward + backward) of ``model`` on its device."""
    net = model.net
    dev = model.device
    was = net.training
    g = torch.Generator(device=dev).manual_seed(0)
    ids = torch.randint(1, model.config.vocab_size, (batch_size, block_size), device=dev)
    net.train()
    try:
        times = []
        for _ in range(repeats + 1):
            t0 = time.perf_counter()
            loss = ardm_loss(net, ids, generator=g).loss
            loss.backward()
            times.append(time.perf_counter() - t0)
        net.zero_grad(set_to_none=True)
    finally:
        net.train(was)
    return float(np.median(times[1:]))  # the first includes one-off allocation


# -- the run ---------------------------------------------------------------------------------------
@dataclass
class FinetuneConfig:
    inputs: list[str]  # files and folders of the user's writing
    out: str  # run folder (resumable); the model lands in <out>/model
    base: str  # model folder to start from (never written to)
    minutes: float = 10.0  # time budget on this machine (sizes the number of steps)
    steps: int = 0  # optimiser steps; 0 = as many as fit in ``minutes``
    batch_size: int = 16  # windows per step
    block_size: int = 0  # characters per window; 0 = the base model's
    lr: float = 3e-4  # peak learning rate (lower than from scratch: keep what the model knows)
    holdout: float = HOLDOUT  # share of each file held out for the before/after bits
    max_chars: int = 8_000_000  # at most this many characters are prepared (memory bound)
    eval_chars: int = 20_000  # held-out characters measured before and after
    seed: int = 0
    device: str = "auto"
    threads: int = 0


@dataclass
class Prepared:
    scan: TextScan
    steps: int
    seconds_per_step: float
    resumed: bool
    bpc_before: float


@dataclass
class ExampleFill:
    masked: str  # the held-out snippet with "_" at the positions filled
    before: str  # filled by the base model
    after: str  # filled by the fine-tuned model


@dataclass
class FinetuneFinished:
    model_dir: str
    step: int
    steps: int
    interrupted: bool  # cancelled or out of time: rerun to resume
    bpc_before: float
    bpc_after: float
    example: ExampleFill | None
    card: str  # path of MODEL_CARD.md


FinetuneEvent = Prepared | TrainEvent | FinetuneFinished


def _check_out(out: Path, base: Path) -> None:
    out_r, base_r = out.resolve(), base.resolve()
    shipped = (ASSETS / "models").resolve()
    for danger, what in ((shipped, "the shipped models' folder"), (base_r, "the base model")):
        if out_r == danger or danger in out_r.parents or out_r in danger.parents:
            raise DataError(f"{out}: --out would write over {what} ({danger}); choose a new folder")
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / PLAN).exists():
        raise DataError(f"{out}: folder is not empty and holds no fine-tuning run; choose a new folder")


def _inputs_key(paths) -> list[str]:
    return [str(Path(p).resolve()) for p in paths]


def check_finetune_config(cfg: FinetuneConfig) -> None:
    """Every number typed, finite and in range (the training options' rules); one ValueError line."""
    from .config_check import MAX_BLOCK_SIZE, check_int, check_number
    from .train import max_threads

    check_number("--minutes", cfg.minutes, 0.0, 7 * 24 * 60)
    check_int("--steps", cfg.steps, 0, 10**9)
    if not cfg.minutes > 0 and not cfg.steps:
        raise ValueError(f"--minutes must be more than 0 (got {cfg.minutes})")
    check_int("--batch-size", cfg.batch_size, 1, 65536)
    check_int("--block-size", cfg.block_size, 0, MAX_BLOCK_SIZE)  # 0 = the base model's
    check_number("--lr", cfg.lr, 0.0, 1.0, lo_open=True, hi_open=True)
    check_number("holdout", cfg.holdout, 0.0, 0.5, lo_open=True, hi_open=True)
    check_int("--max-chars", cfg.max_chars, 1, 10**10)
    check_int("eval_chars", cfg.eval_chars, 1, 10**9)
    check_int("--seed", cfg.seed, 0, 2**32 - 1)
    check_int("--threads", cfg.threads, 0, max_threads())


def finetune(cfg: FinetuneConfig, stop: threading.Event | None = None) -> Iterator[FinetuneEvent]:
    """Prepare (or resume) a run, fine-tune, and report before/after; a generator of events."""
    stop = stop or threading.Event()
    check_finetune_config(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out, base_dir = Path(cfg.out), Path(cfg.base)
    _check_out(out, base_dir)
    dev = resolve_device(cfg.device)
    base = load_model(base_dir, dev)
    if base.is_upscale:
        raise DataError(f"{base_dir}: fine-tuning an upscaling model is not supported here; start from a plain model")
    block = cfg.block_size or base.config.block_size
    if block > base.config.block_size:
        raise ValueError(f"--block-size {block} exceeds the base model's {base.config.block_size}")
    plan_path = out / PLAN
    data = out / "data"
    resumed = plan_path.exists()
    if resumed:
        try:
            plan = json.loads(plan_path.read_text(encoding="utf-8"))
            steps, sps, bpc_before = int(plan["steps"]), float(plan["seconds_per_step"]), float(plan["bpc_before"])
            scan = TextScan(**plan["scan"])
            if plan["inputs"] != _inputs_key(cfg.inputs) or plan["base_fingerprint"] != base.fingerprint:
                raise DataError(f"{out}: holds a run on other files or another base model; pass the same files "
                                "and --model to resume, or a new --out")
        except (ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, DataError):
                raise
            raise DataError(f"{plan_path}: unreadable ({exc}); delete {out} to start afresh") from None
    else:
        out.mkdir(parents=True, exist_ok=True)
        scan = prepare_texts(cfg.inputs, base.vocab, data, holdout=cfg.holdout, max_chars=cfg.max_chars)
        if scan.train_chars < block:
            raise DataError(f"{scan.train_chars} characters of text to train on is less than one window of {block}; "
                            "give more text")
        sps = seconds_per_step(base, cfg.batch_size, block)
        steps = cfg.steps or max(1, int(cfg.minutes * 60 * 0.85 / sps))  # 15% for evaluations and saves
        bpc_before = heldout_bpc(base, data, cfg.eval_chars, cfg.seed)
        atomic_write_json(plan_path, {"base": str(base_dir.resolve()), "base_name": base.name,
                                      "base_fingerprint": base.fingerprint, "inputs": _inputs_key(cfg.inputs),
                                      "steps": steps, "seconds_per_step": sps, "bpc_before": bpc_before,
                                      "scan": asdict(scan), "config": asdict(cfg)})
    yield Prepared(scan, steps, sps, resumed, bpc_before)

    tcfg = TrainConfig(data=[str(data)], out=str(out), init=str(base_dir), block_size=block, batch_size=cfg.batch_size,
                       steps=steps, lr=cfg.lr, warmup=min(50, max(1, steps // 10)),
                       ema=0.5 ** (10 / max(steps, 10)),  # EMA half-life of a tenth of the run
                       eval_every=max(1, steps // 5), eval_batches=2, save_every=max(1, steps // 10),
                       seed=cfg.seed, device=cfg.device, threads=cfg.threads)
    deadline = time.monotonic() + (cfg.minutes * 60 * 1.1 if cfg.minutes > 0 else math.inf)
    finished = None
    for ev in train(tcfg, stop):
        if isinstance(ev, TrainStep) and time.monotonic() > deadline:
            stop.set()  # out of time: train saves a resumable checkpoint at the end of this step
        if isinstance(ev, TrainFinished):
            finished = ev
        yield ev
    assert finished is not None
    tuned = load_model(finished.model_dir, dev)
    bpc_after = heldout_bpc(tuned, data, cfg.eval_chars, cfg.seed)
    example = example_fill(base, tuned, data)
    card = write_model_card(Path(finished.model_dir), base, scan, steps, finished, bpc_before, bpc_after, cfg)
    yield FinetuneFinished(finished.model_dir, finished.step, steps, finished.interrupted, bpc_before, bpc_after,
                           example, str(card))


def _heldout(data: Path, limit: int) -> str:
    with open(data / "valid.txt", encoding="utf-8", newline="") as f:
        return f.read(limit)


def heldout_bpc(model: LoadedModel, data: Path, limit: int, seed: int = 0) -> float:
    """ELBO bits per character on the first ``limit`` held-out characters (same masks for every model)."""
    from .evaluate import elbo

    text = _heldout(data, limit)
    if not text:
        return float("nan")
    return elbo(model, text, passes=2, seed=seed).bpc


def example_fill(before: LoadedModel, after: LoadedModel, data: Path, length: int = 120) -> ExampleFill | None:
    """The middle fifth of a held-out snippet filled greedily by each model (same mask, same order)."""
    from .sampling import SamplingOptions
    from .session import DecodeSession

    text = _heldout(data, 4000)
    start = text.find("\n\n") + 2 if len(text) > 2 * length and "\n\n" in text[:length] else 0
    snippet = text[start:start + length]
    if len(snippet) < 10:
        return None
    a, b = int(len(snippet) * 0.4), int(len(snippet) * 0.6)
    masked = list(range(a, b))
    fills = []
    for m in (before, after):
        s = DecodeSession(m, snippet, masked, order="confidence", sampling=SamplingOptions(greedy=True))
        for _ in s.run():
            pass
        fills.append(s.result())
    return ExampleFill(snippet[:a] + "_" * (b - a) + snippet[b:], fills[0], fills[1])


def write_model_card(model_dir: Path, base: LoadedModel, scan: TextScan, steps: int, fin: TrainFinished,
                     bpc_before: float, bpc_after: float, cfg: FinetuneConfig) -> Path:
    """MODEL_CARD.md in the model folder: what it was trained on, how, and how it measures."""
    names = [Path(f).name for f in scan.files]
    lines = [
        f"# {model_dir.parent.name}: fine-tuned on the user's writing",
        "",
        f"- Base model: {base.name} ({base.path}), fingerprint {base.fingerprint[:16]}",
        f"- Trained on: {len(scan.files)} file(s), {scan.chars:,} characters "
        f"({100 * scan.outside_share:.2f}% outside the vocabulary: context only)",
        f"- Held out: the last {100 * cfg.holdout:.0f}% of each file ({scan.valid_chars:,} characters)",
        f"- Training text used: {scan.train_chars:,} characters" + (" (sampled evenly: the input exceeded the limit)" if scan.sampled else ""),
        f"- Steps: {fin.step} of {steps}, batch {cfg.batch_size}, learning rate {cfg.lr:g}, {fin.seconds:.0f} s"
        + (" (stopped early; rerun to continue)" if fin.interrupted else ""),
        f"- Bits per character on the held-out text (ELBO, first {cfg.eval_chars:,} characters): "
        f"{bpc_before:.3f} before, {bpc_after:.3f} after",
        f"- Written: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}",
        "",
        "## Files",
        "",
        *[f"- {n}" for n in names[:200]],
        *([f"- ... and {len(names) - 200} more"] if len(names) > 200 else []),
    ]
    if scan.skipped:
        lines += ["", "## Skipped (not text)", "", *[f"- {Path(f).name}: {why}" for f, why in scan.skipped[:200]]]
    path = model_dir / MODEL_CARD
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


__all__ = ["FinetuneConfig", "finetune", "Prepared", "FinetuneFinished", "ExampleFill", "TextScan", "scan_texts",
           "prepare_texts", "find_files", "seconds_per_step", "heldout_bpc", "example_fill", "user_models_dir",
           "user_models", "MODEL_CARD"]
