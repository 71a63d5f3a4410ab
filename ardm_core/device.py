"""Pick the compute device (CUDA, then Apple MPS, then the CPU, unless told) and the precision."""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .model import forward_flops

DEVICES = ("auto", "cuda", "mps", "cpu")


def resolve_device(name: str = "auto") -> torch.device:
    if name not in DEVICES and not name.startswith("cuda:"):
        raise ValueError(f"unknown device {name!r}; choose from {list(DEVICES)}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda:") and not name[5:].isdigit():
        raise ValueError(f"unknown device {name!r}; cuda:N takes a device number (cuda:0, cuda:1, ...)")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("CUDA was requested but no CUDA device is available; use --device cpu or auto")
    if name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
        raise ValueError(f"no device {name}: this machine has {torch.cuda.device_count()} CUDA device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("MPS was requested but is not available; use --device cpu or auto")
    return torch.device(name)


def describe_device(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"CUDA ({torch.cuda.get_device_name(dev)})"
    if dev.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({torch.get_num_threads()} threads)"


# -- precision -------------------------------------------------------------------------------------
# fp32: exact. bf16: matrix products in bfloat16 (autocast; layer norms, residuals and the softmax
# stay fp32), probabilities move by ~1e-3: fine for sampling, never used by compression (float64).
# auto: bf16 only where the processor has bfloat16 units *and* the model's own forward measured
# faster in bf16 on this machine; otherwise fp32. Without native units bf16 is emulated and slow
# (4.7x slower than fp32 measured on an AVX2-only EPYC), so it is never tried there.
PRECISIONS = ("auto", "fp32", "bf16")
BF16_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")  # x86 AMX / AVX-512 BF16; "bf16" is the aarch64 feature
BF16_MIN_SPEEDUP = 1.1  # auto picks bf16 only when it is at least 10% faster: never slower than fp32
AUTO_MIN_FLOPS = 1e8  # per full-window forward: below this, per-operation overhead rules and bf16 only adds casts
_CACHE_LIMIT = 256 * 1024  # bytes: the measurement cache is small; anything bigger is ignored
_speedups: dict[str, float] = {}  # this process's measurements, by key


@dataclass(frozen=True)
class CpuInfo:
    model: str  # "Intel(R) Xeon(R) ..." as the OS names it
    flags: frozenset[str]  # instruction-set flags (/proc/cpuinfo "flags", or "Features" on ARM)


def cpu_info(path: str | os.PathLike = "/proc/cpuinfo") -> CpuInfo:
    """The processor's name and flags from /proc/cpuinfo; elsewhere the platform's name and no flags."""
    model, flags = "", frozenset()
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read(1 << 20)
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if not model and key in ("model name", "hardware", "cpu model"):
            model = value.strip()
        elif not flags and key in ("flags", "features"):
            flags = frozenset(value.split())
    return CpuInfo(model or platform.processor() or platform.machine() or "unknown", flags)


def native_bf16(info: CpuInfo | None = None) -> bool:
    """The processor computes bfloat16 products in hardware (its flags say so)."""
    info = cpu_info() if info is None else info
    return any(f in info.flags for f in BF16_FLAGS)


def measure_bf16_speedup(net: torch.nn.Module, reps: int = 5) -> float:
    """fp32 time / bf16 time of ``net``'s own forward on one full window (best of ``reps``, interleaved).

    Best-of-n: other processes only ever add time, so the fastest repetition
    of each is the fairest comparison on a busy machine. About 2 * (reps + 1)
    forward passes: a fraction of a second for a small model.
    """
    dev = next(net.parameters()).device
    ids = torch.full((1, net.cfg.block_size), net.mask_id, dtype=torch.long, device=dev)
    ids[:, ::2] = 1
    best = {False: math.inf, True: math.inf}
    with torch.inference_mode():
        for i in range(reps + 1):
            for bf16 in (False, True):
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                    if dev.type == "cuda":
                        torch.cuda.synchronize(dev)
                    t0 = time.perf_counter()
                    net(ids)
                    if dev.type == "cuda":
                        torch.cuda.synchronize(dev)
                    if i:  # the first round warms up
                        best[bf16] = min(best[bf16], time.perf_counter() - t0)
    return best[False] / best[True]


def _speedup_key(net: torch.nn.Module, dev: torch.device, info: CpuInfo) -> str:
    c = net.cfg
    flags = hashlib.sha256(" ".join(sorted(info.flags)).encode()).hexdigest()[:12]
    where = f"cpu {torch.get_num_threads()} threads" if dev.type == "cpu" else describe_device(dev)
    return (f"{info.model} [{flags}] | torch {torch.__version__} | {where} | "
            f"L{c.n_layer} C{c.n_embd} H{c.n_head} D{c.block_size} V{c.vocab_size}")


def _cache_file() -> Path:
    from .paths import cache_dir

    return cache_dir() / "precision.json"


def _read_cache(path: Path) -> dict[str, float]:
    """The cached measurements; anything malformed is ignored (and rewritten on the next save)."""
    try:
        if not path.is_file() or path.stat().st_size > _CACHE_LIMIT:
            return {}
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    entries = d.get("bf16_speedup") if isinstance(d, dict) and d.get("version") == 1 else None
    if not isinstance(entries, dict):
        return {}
    return {k: float(v) for k, v in entries.items()
            if isinstance(k, str) and len(k) < 1000 and isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v) and 0.0 < v < 1000.0}


def _save_cache(path: Path, entries: dict[str, float]) -> None:
    from .fileio import atomic_write_json

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, {"version": 1, "bf16_speedup": entries})
    except OSError:
        pass  # a read-only cache folder only costs a re-measurement next time


def bf16_speedup(net: torch.nn.Module, measure=None) -> float:
    """The measured bf16 speedup of ``net`` here: from this process, the user's cache folder, or ``measure``."""
    dev = next(net.parameters()).device
    key = _speedup_key(net, dev, cpu_info())
    if key not in _speedups:
        path = _cache_file()
        cached = _read_cache(path)
        if key not in cached:
            cached[key] = float((measure or measure_bf16_speedup)(net))
            _save_cache(path, cached)
        _speedups[key] = cached[key]
    return _speedups[key]


def resolve_precision(precision: str, net: torch.nn.Module, measure=None) -> str:
    """"fp32" or "bf16" for ``precision`` in PRECISIONS on ``net``'s device.

    "fp32" and "bf16" are the user's choice and stand. "auto" is bf16 only on
    hardware with bfloat16 units (CPU flags; a CUDA device that supports it)
    where ``net``'s forward measured at least BF16_MIN_SPEEDUP times faster
    (``measure``, cached per processor, torch version, thread count and
    model shape); fp32 everywhere else, including Apple GPUs and models too
    small to gain (under AUTO_MIN_FLOPS per window).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose from {list(PRECISIONS)}")
    if precision != "auto":
        return precision
    dev = next(net.parameters()).device
    if dev.type == "cpu":
        native = native_bf16()
    elif dev.type == "cuda":
        native = torch.cuda.is_bf16_supported(including_emulation=False)
    else:
        native = False
    if not native or forward_flops(net.cfg, 1, net.cfg.block_size) < AUTO_MIN_FLOPS:
        return "fp32"
    return "bf16" if bf16_speedup(net, measure) >= BF16_MIN_SPEEDUP else "fp32"
