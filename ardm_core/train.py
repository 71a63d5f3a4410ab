"""Training: the OA-ARDM objective on random windows, as a generator of events.

The command line, the app and the tests all drive ``train`` and render its
events. Stopping is cooperative: set ``stop`` (a threading.Event) and the loop
saves a resumable checkpoint at the end of the current step.

Several processes: under ``torchrun`` (WORLD_SIZE > 1) the network is wrapped in
DistributedDataParallel (gloo on CPU, nccl on CUDA); each rank draws its own
windows, gradients are averaged, rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import os
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.distributed as dist

from .checkpoint import load_model, load_training_state, nonfinite_tensors, save_model, save_training_state
from .data import WindowSampler, load_splits
from .device import AUTO_MIN_FLOPS, describe_device, native_bf16, resolve_device
from .fileio import DataError
from .config_check import MAX_BLOCK_SIZE, check_int, check_model_config, check_number, window_bytes
from .model import POSITIONS, PRESETS, ARDMTransformer, ModelConfig, forward_flops, preset_config
from .objective import ar_loss, ardm_loss
from .stages import load_stage_map
from .upscale import StageTables, upscale_loss, upscale_network
from .vocab import Vocab, train_vocab

OBJECTIVES = {"ardm": ardm_loss, "ar": ar_loss}
PRECISIONS = ("fp32", "bf16", "auto")


def training_precision(precision: str, dev: torch.device, mcfg: ModelConfig | None = None) -> str:
    """What a training step runs in for ``precision`` on ``dev``: "fp32" or "bf16" (bfloat16 autocast;
    weights, optimiser and EMA stay fp32).

    bf16 runs where the hardware computes it: a CUDA device that supports it,
    or a CPU with bfloat16 units (AMX or AVX-512 BF16 flags). There a step of
    the small model on 16 x 256 took 0.52 s against 0.87 s in fp32, and at
    equal time bf16 trained to the lower validation ELBO
    (bench/results/ab_precision.md). "auto" (the default) is bf16 exactly
    there, for models of at least ``device.AUTO_MIN_FLOPS`` per window (the
    tiny preset stays fp32: its steps are all overhead); "bf16" asked of
    other hardware is an error, since it would run several times slower.
    """
    if precision == "fp32":
        return "fp32"
    has = (dev.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)) or (dev.type == "cpu" and native_bf16())
    if precision == "bf16":
        if not has:
            raise ValueError(f"--precision bf16: this {dev.type.upper()} has no bfloat16 units, so bf16 would "
                             "train several times slower than fp32; use --precision fp32 (or auto)")
        return "bf16"
    if not has or (mcfg is not None and forward_flops(mcfg, 1, mcfg.block_size) < AUTO_MIN_FLOPS):
        return "fp32"
    return "bf16"


@dataclass
class TrainConfig:
    data: list[str] = field(default_factory=list)  # corpus folder (train.txt/valid.txt) or text files/folders
    out: str = "runs/default"  # run folder: resumable state + model/ (EMA weights)
    preset: str = "small"  # network preset (tiny, small, base)
    block_size: int = 256  # D, characters per window
    batch_size: int = 32  # windows per step (per process)
    steps: int = 2000  # optimiser steps in all
    lr: float = 1e-3  # peak AdamW learning rate
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup: int = 100  # linear warm-up steps
    weight_decay: float = 0.1  # AdamW decoupled weight decay (matrices only)
    clip: float = 1.0  # gradient-norm clip
    ema: float = 0.999  # EMA decay of evaluation weights
    ce_weight: float = 0.0  # extra unweighted cross-entropy on masked positions (paper: 1e-4)
    stratified: bool = True  # spread t evenly across each batch (same expectation, less noise)
    eval_every: int = 200  # validation every N steps
    eval_batches: int = 8  # validation batches of batch_size windows (fixed seed)
    save_every: int = 200  # resumable checkpoint every N steps
    seed: int = 0  # seeds weights, windows and masks
    device: str = "auto"  # auto, cuda, mps or cpu
    threads: int = 0  # torch CPU threads (0 = torch default)
    init: str | None = None  # start from an existing model folder (fine-tuning)
    condition_on_known: bool = False  # network option: embed the number of known positions
    positions: str = "rope"  # network option: rope or sinusoid
    objective: str = "ardm"  # "ardm" (order-agnostic) or "ar" (single-order causal baseline, for comparison)
    t_focus: float = 0.0  # ardm only: share of windows whose t is drawn from the infilling steps (not a bound)
    span_mix: float = 0.0  # ardm only: fraction of windows trained under span orders (contiguous infill)
    upscale: str | None = None  # depth upscaling: "default" or a stage-map JSON file (see ardm_core/stages.py)
    upscale_context: float = 0.5  # upscaling: share of windows with a fully known context set (infilling)
    minutes: float = 0.0  # stop (finished, saved) after this many minutes of training; the cosine then follows time (0 = steps only)
    precision: str = "auto"  # fp32; bf16: autocast the forward (weights, optimiser, EMA fp32); auto: bf16 where it pays (training_precision)


# -- events --------------------------------------------------------------------------
@dataclass
class TrainStarted:
    params: int
    device: str
    start_step: int
    steps: int
    world_size: int
    train_chars: int
    vocab_size: int
    precision: str = "fp32"  # what the steps run in: fp32, or bf16 autocast


@dataclass
class TrainStep:
    step: int
    steps: int
    bpc: float  # smoothed training ELBO, bits per character
    lr: float
    chars_per_s: float
    eta_s: float


@dataclass
class Validated:
    step: int
    bpc: float
    stderr: float


@dataclass
class Saved:
    step: int
    model_dir: str


@dataclass
class TrainFinished:
    step: int
    model_dir: str
    interrupted: bool
    seconds: float


TrainEvent = TrainStarted | TrainStep | Validated | Saved | TrainFinished


def lr_at(step: int, cfg: TrainConfig, elapsed: float = 0.0) -> float:
    """Linear warm-up, then cosine to lr * min_lr_ratio over the steps, or over the
    time budget when ``cfg.minutes`` is set and runs out first (``elapsed`` in seconds)."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    if cfg.minutes > 0:
        frac = max(frac, min(1.0, elapsed / (cfg.minutes * 60.0)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))


class LossByKnown:
    """Running average of bits per masked position for each number of known positions."""

    def __init__(self, block: int, momentum: float = 0.995):
        self.sum = np.zeros(block)
        self.count = np.zeros(block)
        self.mean = np.zeros(block)
        self.momentum = momentum

    def update(self, known: np.ndarray, bits: np.ndarray) -> None:
        for k, b in zip(known.tolist(), bits.tolist()):
            self.count[k] += 1
            w = max(1.0 / self.count[k], 1 - self.momentum)
            self.mean[k] += w * (b - self.mean[k])

    def table(self) -> np.ndarray | None:
        """Sorted non-increasing (paper appendix A); gaps filled from neighbours."""
        if not self.count.any():
            return None
        seen = self.count > 0
        x = np.interp(np.arange(len(self.mean)), np.flatnonzero(seen), self.mean[seen])
        return np.sort(x)[::-1].copy()


def _ddp_setup(device_name: str) -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, resolve_device(device_name)
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    dev = resolve_device(device_name)
    if dev.type == "cuda":
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return rank, world, dev


def _weights_sha(net: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(net.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class TrainingDiverged(ValueError):
    """The loss, the gradients or the weights stopped being finite; nothing non-finite was saved."""


def max_threads() -> int:
    return 4 * (os.cpu_count() or 1)


# option: (type, low, high, low end open, high end open); the others are checked by name below
TRAIN_LIMITS: dict[str, tuple[type, float, float, bool, bool]] = {
    "block_size": (int, 1, MAX_BLOCK_SIZE, False, False),
    "batch_size": (int, 1, 65536, False, False),
    "steps": (int, 1, 10**9, False, False),
    "lr": (float, 0.0, 1.0, True, True),
    "min_lr_ratio": (float, 0.0, 1.0, False, False),
    "warmup": (int, 0, 10**9, False, False),
    "weight_decay": (float, 0.0, 10.0, False, False),
    "clip": (float, 0.0, 1e6, True, False),
    "ema": (float, 0.0, 1.0, False, True),
    "ce_weight": (float, 0.0, 1e3, False, False),
    "eval_every": (int, 1, 10**9, False, False),
    "eval_batches": (int, 1, 100_000, False, False),
    "save_every": (int, 1, 10**9, False, False),
    "seed": (int, 0, 2**32 - 1, False, False),
    "span_mix": (float, 0.0, 1.0, False, False),
    "t_focus": (float, 0.0, 1.0, False, False),
    "upscale_context": (float, 0.0, 1.0, False, False),
    "minutes": (float, 0.0, 7 * 24 * 60, False, False),  # 0 = no time limit
}


def check_train_config(cfg: TrainConfig) -> None:
    """Every option typed, finite and in range; one ValueError line naming the command-line flag."""
    for name, (kind, lo, hi, lo_open, hi_open) in TRAIN_LIMITS.items():
        flag, v = "--" + name.replace("_", "-"), getattr(cfg, name)
        if kind is int:
            check_int(flag, v, int(lo), int(hi))
        else:
            check_number(flag, v, lo, hi, lo_open=lo_open, hi_open=hi_open)
    check_int("--threads", cfg.threads, 0, max_threads())  # 0 = torch's default
    for name in ("stratified", "condition_on_known"):
        if type(getattr(cfg, name)) is not bool:
            raise ValueError(f"--{name.replace('_', '-')} must be true or false (got {getattr(cfg, name)!r})")
    if cfg.preset not in PRESETS:
        raise ValueError(f"unknown preset {cfg.preset!r}; choose from {sorted(PRESETS)}")
    if cfg.positions not in POSITIONS:
        raise ValueError(f"unknown positions {cfg.positions!r}; choose from {list(POSITIONS)}")
    if cfg.objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {cfg.objective!r}; choose from {sorted(OBJECTIVES)}")
    if cfg.precision not in PRECISIONS:
        raise ValueError(f"--precision {cfg.precision!r}: choose from {', '.join(PRECISIONS)}")
    if type(cfg.out) is not str or not cfg.out.strip():
        raise ValueError("--out must name a folder")
    if cfg.init is not None and (type(cfg.init) is not str or not cfg.init.strip()):
        raise ValueError("--init must name a model folder")
    if cfg.upscale is not None and (type(cfg.upscale) is not str or not cfg.upscale.strip()):
        raise ValueError("--upscale must be 'default' or a stage-map JSON file")
    if cfg.span_mix and cfg.objective != "ardm":
        raise ValueError("--span-mix applies to the ardm objective only")
    if cfg.t_focus and (cfg.objective != "ardm" or cfg.upscale):
        raise ValueError("--t-focus applies to the plain ardm objective only")
    if cfg.upscale and (cfg.objective != "ardm" or cfg.span_mix):
        raise ValueError("--upscale trains the staged ardm objective; it does not combine with --objective ar or --span-mix")


def device_memory(dev: torch.device) -> int | None:
    """Bytes of memory the device has in all (None where unknown)."""
    try:
        if dev.type == "cuda":
            return int(torch.cuda.get_device_properties(dev).total_memory)
        if dev.type == "cpu":
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, RuntimeError):
        pass
    return None


def check_training_memory(mcfg: ModelConfig, cfg: TrainConfig, dev: torch.device) -> None:
    """Refuse a batch whose activations (every layer kept for the backward pass) cannot fit the device at all."""
    need = cfg.batch_size * mcfg.n_layer * window_bytes({**mcfg.to_dict(), "block_size": cfg.block_size})
    have = device_memory(dev)
    if have is not None and need > have:
        raise ValueError(f"--batch-size {cfg.batch_size} of {cfg.block_size}-character windows needs about {need / 2**30:,.0f} GiB "
                         f"of activations; {describe_device(dev)} has {have / 2**30:,.0f} GiB. Lower --batch-size or --block-size")


def train(cfg: TrainConfig, stop: threading.Event | None = None) -> Iterator[TrainEvent]:
    stop = stop or threading.Event()
    check_train_config(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    loss_fn = OBJECTIVES[cfg.objective]
    loss_opts = {k: v for k, v in (("span_mix", cfg.span_mix), ("t_focus", cfg.t_focus)) if v}
    if not cfg.data:
        raise DataError("no training data given; pass --data FILE_OR_FOLDER (or build one with `ardm corpus build`)")
    rank, world, dev = _ddp_setup(cfg.device)
    training_precision(cfg.precision, dev)  # bf16 asked of hardware without it: said before anything is written
    out = Path(cfg.out)
    model_dir = out / "model"
    if rank == 0:
        try:
            out.mkdir(parents=True, exist_ok=True)
            probe = out / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise DataError(f"{out}: output folder is not writable ({exc.strerror})") from None

    splits = load_splits(cfg.data)
    resumed = load_training_state(out)
    meta_prev: dict = {}
    if resumed is not None:
        tensors, info = resumed
        vocab = Vocab.from_proto(bytes(tensors.pop("vocab_proto").numpy().tobytes()))
        mcfg = ModelConfig.from_dict(info["model"])
        net = ARDMTransformer(mcfg)
        start_step = info["step"]
        stage_spec = info.get("stages")
    elif cfg.init:
        base = load_model(cfg.init)
        vocab, mcfg, net = base.vocab, base.config, base.net
        if mcfg.block_size < cfg.block_size:
            raise ValueError(f"--block-size {cfg.block_size} exceeds the initial model's {mcfg.block_size}")
        meta_prev = {"init_from": str(cfg.init), "init_meta": base.meta}
        start_step, tensors, info = 0, None, None
        stage_spec = base.stages.to_json() if base.is_upscale else None
        if cfg.upscale and not base.is_upscale:
            sm = load_stage_map(cfg.upscale, vocab.chars)
            net = upscale_network(sm, base.net)
            mcfg, stage_spec = net.cfg, sm.to_json()
    else:
        vocab = train_vocab([splits.train])
        mcfg = preset_config(cfg.preset, vocab_size=vocab.size, block_size=cfg.block_size,
                             condition_on_known=cfg.condition_on_known, positions=cfg.positions,
                             causal=cfg.objective == "ar")
        check_model_config(mcfg.to_dict())  # the same size budget as a loaded model
        torch.manual_seed(cfg.seed)
        stage_spec = None
        if cfg.upscale:
            sm = load_stage_map(cfg.upscale, vocab.chars)
            net = upscale_network(sm, cfg=mcfg)
            mcfg, stage_spec = net.cfg, sm.to_json()
        else:
            net = ARDMTransformer(mcfg)
        start_step, tensors, info = 0, None, None
    valid_loss_fn = loss_fn
    if stage_spec is not None:
        tables = StageTables(load_stage_map(stage_spec, vocab.chars), dev)
        loss_fn = functools.partial(upscale_loss, tables=tables, context=cfg.upscale_context)
        valid_loss_fn = functools.partial(upscale_loss, tables=tables, context=0.0)

    train_ids = vocab.encode(splits.train)
    valid_ids = vocab.encode(splits.valid) if splits.valid else train_ids[-max(cfg.block_size * 4, 1):]
    sampler = WindowSampler(train_ids, cfg.block_size, name=f"{splits.source} (train)")
    valid_sampler = WindowSampler(valid_ids, cfg.block_size, name=f"{splits.source} (valid)") if len(valid_ids) >= cfg.block_size else sampler

    check_training_memory(mcfg, cfg, dev)
    net.to(dev)
    ema = ARDMTransformer(mcfg).to(dev)
    ema.load_state_dict(net.state_dict())
    ema.requires_grad_(False).eval()
    decay, no_decay = [], []
    for n, p in net.named_parameters():
        (decay if p.dim() >= 2 and "emb" not in n and not n.startswith("tok") else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.99))
    lbk = LossByKnown(cfg.block_size)
    # windows and masks each have their own generator, saved with the checkpoint so a
    # resumed run continues the exact same stream (other ranks re-seed from the step)
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + rank + 1 + start_step * 7919)
    mgen = torch.Generator(device=dev).manual_seed(cfg.seed * 1000 + rank + 500_001 + start_step * 7919)
    smoothed = None
    if tensors is not None:
        net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
        opt_state = opt.state_dict()
        for i, pid in enumerate(sorted(opt_state["param_groups"][0]["params"] + opt_state["param_groups"][1]["params"])):
            if f"opt.{i}.exp_avg" in tensors:
                opt_state["state"][pid] = {"step": tensors[f"opt.{i}.step"], "exp_avg": tensors[f"opt.{i}.exp_avg"],
                                           "exp_avg_sq": tensors[f"opt.{i}.exp_avg_sq"]}
        opt.load_state_dict(opt_state)
        lbk.mean = np.asarray(info["lbk_mean"]); lbk.count = np.asarray(info["lbk_count"])
        if rank == 0 and "rng.windows" in tensors:
            gen.set_state(tensors["rng.windows"])
            if dev.type == "cpu":
                mgen.set_state(tensors["rng.masks"])
        smoothed = info.get("smoothed_bpc")
        meta_prev = info.get("meta_prev", {})
        net.to(dev); ema.to(dev)
    model = net
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda" else None)
        model.mask_id = net.mask_id  # type: ignore[attr-defined]

    cfg = replace(cfg, precision=training_precision(cfg.precision, dev, mcfg))  # recorded as run: fp32 or bf16
    yield TrainStarted(net.num_params(), describe_device(dev), start_step, cfg.steps, world, len(train_ids), vocab.size,
                       cfg.precision)

    def meta(step: int, seconds: float) -> dict:
        return {"name": out.name, "trained_steps": step, "characters_seen": step * cfg.batch_size * cfg.block_size * world,
                "train_config": {k: v for k, v in asdict(cfg).items() if k not in ("data",)}, "data": splits.source,
                "device": describe_device(dev), "world_size": world, "train_seconds": round(seconds, 1), **meta_prev}

    saved_step = start_step if tensors is not None else None  # the last good checkpoint on disk

    def diverged(step: int, what: str) -> TrainingDiverged:
        kept = (f"the last good checkpoint (step {saved_step}) is kept in {out}" if saved_step is not None
                else "nothing was saved")
        return TrainingDiverged(f"step {step}: {what}; training stopped and {kept}. Lower --lr (or --clip) and rerun")

    def checkpoint(step: int, seconds: float) -> None:
        nonlocal saved_step
        if rank != 0:
            return
        bad = nonfinite_tensors(net.state_dict()) + nonfinite_tensors(ema.state_dict())
        if bad:
            raise diverged(step, f"the weights are no longer finite ({', '.join(sorted(set(bad))[:3])})")
        t = {f"model.{k}": v for k, v in net.state_dict().items()}
        t.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
        st = opt.state_dict()
        pids = sorted(st["param_groups"][0]["params"] + st["param_groups"][1]["params"])
        for i, pid in enumerate(pids):
            s = st["state"].get(pid)
            if s:
                t[f"opt.{i}.step"] = torch.as_tensor(s["step"], dtype=torch.float32).reshape(())
                t[f"opt.{i}.exp_avg"] = s["exp_avg"]
                t[f"opt.{i}.exp_avg_sq"] = s["exp_avg_sq"]
        t["rng.windows"] = gen.get_state()
        if dev.type == "cpu":
            t["rng.masks"] = mgen.get_state()
        t["vocab_proto"] = torch.frombuffer(bytearray(vocab.model_proto), dtype=torch.uint8)
        save_training_state(out, t, {"step": step, "model": mcfg.to_dict(), "lbk_mean": lbk.mean.tolist(),
                                     "lbk_count": lbk.count.tolist(), "smoothed_bpc": smoothed,
                                     "meta_prev": meta_prev, "seconds": seconds, "stages": stage_spec})
        save_model(model_dir, ema, vocab, loss_by_known=None if stage_spec else lbk.table(), meta=meta(step, seconds),
                   stages=stage_spec)
        saved_step = step

    prev_seconds = float(info.get("seconds", 0.0)) if info else 0.0
    t0 = time.perf_counter()
    rate_t, rate_step = t0, start_step
    step = start_step
    interrupted = False
    net.train()
    autocast = (torch.autocast(dev.type, dtype=torch.bfloat16) if cfg.precision == "bf16"
                else contextlib.nullcontext())
    while step < cfg.steps:
        if stop.is_set():
            interrupted = True
            break
        elapsed = prev_seconds + time.perf_counter() - t0  # a resumed run keeps its place in the time budget
        if cfg.minutes > 0 and elapsed >= cfg.minutes * 60.0:
            break  # the time budget is spent: finish normally (saved, not "interrupted")
        lr = lr_at(step, cfg, elapsed)
        for g in opt.param_groups:
            g["lr"] = lr
        batch = sampler.sample(cfg.batch_size, gen).to(dev)
        with autocast:
            out_loss = loss_fn(model, batch, generator=mgen, stratified=cfg.stratified, ce_weight=cfg.ce_weight, **loss_opts)
        opt.zero_grad(set_to_none=True)
        out_loss.loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.clip)
        finite = torch.isfinite(out_loss.loss.detach()) & torch.isfinite(grad_norm)
        if world > 1:  # every rank stops at the same step
            finite = finite.to(torch.int32)
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        if not bool(finite):  # before the optimiser touches the weights
            raise diverged(step + 1, f"the loss or its gradient is not finite (loss {float(out_loss.loss.detach()):.4g}, "
                                     f"gradient norm {float(grad_norm):.4g})")
        opt.step()
        step += 1
        with torch.no_grad():
            d = min(cfg.ema, (1 + step) / (10 + step))
            for pe, pn in zip(ema.parameters(), net.parameters()):
                pe.lerp_(pn, 1 - d)
        full = (out_loss.lengths == cfg.block_size).cpu().numpy() & (cfg.objective == "ardm")
        if out_loss.uniform is not None:
            full &= out_loss.uniform.cpu().numpy()  # L_t is defined for uniform orders
        lbk.update((out_loss.t.cpu().numpy() - 1)[full], out_loss.step_bits.cpu().numpy()[full])
        b = float(out_loss.bpc)
        smoothed = b if smoothed is None else 0.95 * smoothed + 0.05 * b
        now = time.perf_counter()
        cps = (step - rate_step) * cfg.batch_size * cfg.block_size * world / max(now - rate_t, 1e-9)
        if now - rate_t > 30:
            rate_t, rate_step = now, step
        eta = (cfg.steps - step) * cfg.batch_size * cfg.block_size * world / max(cps, 1e-9)
        yield TrainStep(step, cfg.steps, smoothed, lr, cps, eta)
        last = step == cfg.steps or (cfg.minutes > 0 and prev_seconds + now - t0 >= cfg.minutes * 60.0)
        if step % cfg.eval_every == 0 or last:
            bpc, se = validate(ema, valid_sampler, cfg.eval_batches, cfg.batch_size, dev, seed=cfg.seed, loss_fn=valid_loss_fn)
            if not math.isfinite(bpc):
                raise diverged(step, f"the validation loss is not finite ({bpc})")
            yield Validated(step, bpc, se)
        if step % cfg.save_every == 0 and step < cfg.steps:
            checkpoint(step, prev_seconds + now - t0)
            if rank == 0:
                yield Saved(step, str(model_dir))
    seconds = prev_seconds + time.perf_counter() - t0
    checkpoint(step, seconds)
    if world > 1:
        (out / f"rank{rank}.sha256").write_text(_weights_sha(net) + "\n")
        dist.barrier()
    yield TrainFinished(step, str(model_dir), interrupted, seconds)


@torch.inference_mode()
def validate(net, sampler: WindowSampler, batches: int, batch_size: int, dev, *, seed: int = 0,
             loss_fn=ardm_loss) -> tuple[float, float]:
    """ELBO bpc on fixed validation windows and masks (same seed every time, so curves are comparable)."""
    gen = torch.Generator().manual_seed(10_007 + seed)
    vals = []
    was = net.training
    net.eval()
    for _ in range(batches):
        batch = sampler.sample(batch_size, gen).to(dev)
        g = torch.Generator(device=dev).manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
        vals.append(float(loss_fn(net, batch, generator=g, stratified=True).bpc))
    net.train(was)
    arr = np.asarray(vals)
    return float(arr.mean()), float(arr.std(ddof=1) / math.sqrt(len(arr))) if len(arr) > 1 else 0.0
