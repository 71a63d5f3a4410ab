"""Schema of a model folder's ``config.json``, checked before anything is built.

A model folder may come from anywhere, so its config is untrusted input: every
field has an exact type and a range, and the size of the network it describes
(parameters, and the memory of one window's forward pass) is computed from the
numbers alone and refused above a budget before a single tensor is allocated.
Each failure is one ``ValueError`` line naming the field; the loader prefixes
the file.

The JSON itself is read with limits too: a size cap, a nesting-depth cap
checked on the raw text (``json.loads`` of very deep nesting overflows the
recursion limit) and no ``NaN``/``Infinity`` constants.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

from .model import POSITIONS

MAX_CONFIG_BYTES = 8 << 20  # a config with two L_t tables and a stage map is a few KB
MAX_JSON_DEPTH = 32  # a model config nests 5 deep
MAX_PARAMS = 500_000_000  # 2 GB of float32 weights
MAX_WINDOW_BYTES = 1 << 30  # activations of one window's forward pass (float32)
MAX_BLOCK_SIZE = 16384  # characters per window
MAX_LAYERS = 1024
MAX_STAGES = 64

# field: (type, low, high); floats accept ints, ints accept only ints (never bools or "4" or 4.0)
MODEL_FIELDS: dict[str, tuple[type, float, float]] = {
    "vocab_size": (int, 2, 1_000_000),
    "block_size": (int, 1, MAX_BLOCK_SIZE),
    "n_layer": (int, 1, MAX_LAYERS),
    "n_head": (int, 1, 65536),
    "n_embd": (int, 1, 65536),
    "mlp_ratio": (int, 1, 64),
    "dropout": (float, 0.0, 0.999),
    "positions": (str, 0, 0),
    "rope_base": (float, 1.0, 1e12),  # above 1 (open end): 0 gives NaN positions, 1 none at all
    "condition_on_known": (bool, 0, 0),
    "n_stage": (int, 1, MAX_STAGES),
    "causal": (bool, 0, 0),
    "n_class_tokens": (int, 0, 1_000_000),
}
REQUIRED_MODEL_FIELDS = ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "mlp_ratio")
WEIGHT_DTYPES = ("float32", "float16", "bfloat16")
MAX_ABS_WEIGHT = 1e6  # trained weights are of order 1; larger ones overflow float32 activations


def describe(v: Any) -> str:
    """A short repr of an untrusted value for an error line."""
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def check_int(name: str, v: Any, lo: int, hi: int) -> int:
    if type(v) is not int:
        raise ValueError(f"{name} must be an integer (got {describe(v)})")
    if not lo <= v <= hi:
        raise ValueError(f"{name} must be between {lo:,} and {hi:,} (got {v:,})")
    return v


def check_number(name: str, v: Any, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> float:
    """A finite int or float in [lo, hi]; ``lo_open``/``hi_open`` exclude an end."""
    if type(v) not in (int, float):
        raise ValueError(f"{name} must be a number (got {describe(v)})")
    inside = (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi)
    if not math.isfinite(v) or not inside:
        span = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise ValueError(f"{name} must be a finite number in {span} (got {v!r})")
    return float(v)


def check_bool(name: str, v: Any) -> bool:
    if type(v) is not bool:
        raise ValueError(f"{name} must be true or false (got {describe(v)})")
    return v


def check_str(name: str, v: Any, max_len: int = 4096) -> str:
    if type(v) is not str:
        raise ValueError(f"{name} must be a string (got {describe(v)})")
    if len(v) > max_len:
        raise ValueError(f"{name} is too long ({len(v):,} characters; at most {max_len:,})")
    return v


# -- JSON with limits ---------------------------------------------------------------------------
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)


def json_depth(text: str) -> int:
    """Deepest nesting of arrays and objects in JSON text (strings skipped), without parsing it."""
    bare = _STRING.sub("", text).encode("utf-8", "replace")
    a = np.frombuffer(bare, dtype=np.uint8)
    step = (np.isin(a, (ord("["), ord("{"))).astype(np.int32) - np.isin(a, (ord("]"), ord("}"))).astype(np.int32))
    return int(np.cumsum(step).max()) if step.size else 0


def _no_constants(name: str):
    raise ValueError(f"holds {name}, which JSON does not allow")


def parse_json(data: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse untrusted JSON bytes; every failure is a ValueError with one line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not valid JSON (not UTF-8 at byte {exc.start})") from None
    depth = json_depth(text)
    if depth > max_depth:
        raise ValueError(f"JSON nested {depth:,} deep, more than any valid file here (at most {max_depth})")
    try:
        return json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    except RecursionError:  # the depth check should have caught it; never a traceback
        raise ValueError("JSON nested too deep") from None


# -- the network's size, from its numbers alone -------------------------------------------------
def count_params(m: dict) -> int:
    """Parameters of ``ARDMTransformer(ModelConfig(**m))``, computed without building it."""
    C, V, NC = m["n_embd"], m["vocab_size"], m.get("n_class_tokens", 0)
    H = m["mlp_ratio"] * C
    block = (2 * C) + (3 * C * C + 3 * C) + (C * C + C) + (2 * C) + (C * H + H) + (H * C + C)
    n = (V + 1 + NC) * C + m["n_layer"] * block + 2 * C + C * (V + NC) + (V + NC)
    if m.get("condition_on_known"):
        n += (m["block_size"] + 1) * C
    if m.get("n_stage", 1) > 1:
        n += m["n_stage"] * C
    return n


def window_bytes(m: dict) -> int:
    """Rough peak float32 activation bytes of one window's forward pass (one layer live at a time)."""
    T, C = m["block_size"], m["n_embd"]
    outputs = m["vocab_size"] + m.get("n_class_tokens", 0)
    return 4 * (T * C * (8 + m["mlp_ratio"]) + m["n_head"] * T * T + 2 * T * outputs)


def check_budget(m: dict) -> None:
    n = count_params(m)
    if n > MAX_PARAMS:
        raise ValueError(f"the network would have {n:,} parameters, more than this program loads ({MAX_PARAMS:,})")
    b = window_bytes(m)
    if b > MAX_WINDOW_BYTES:
        raise ValueError(f"one window of {m['block_size']:,} characters would need about {b / 2**30:.1f} GiB of activations "
                         f"(at most {MAX_WINDOW_BYTES / 2**30:.0f} GiB)")


def check_model_config(m: Any) -> dict:
    """Validate the ``model`` section (types, ranges, consistency, size budget); returns it unchanged."""
    if type(m) is not dict:
        raise ValueError(f"model must be an object with the network config (got {describe(m)})")
    unknown = sorted(set(m) - set(MODEL_FIELDS))
    if unknown:
        raise ValueError(f"model has unknown fields {[describe(u) for u in unknown[:5]]}")
    for name in REQUIRED_MODEL_FIELDS:
        if name not in m:
            raise ValueError(f"model.{name} is missing")
    for name, v in m.items():
        kind, lo, hi = MODEL_FIELDS[name]
        where = f"model.{name}"
        if kind is int:
            check_int(where, v, int(lo), int(hi))
        elif kind is float:
            check_number(where, v, lo, hi, lo_open=name == "rope_base")
        elif kind is bool:
            check_bool(where, v)
        else:
            check_str(where, v)
    if m.get("positions", "rope") not in POSITIONS:
        raise ValueError(f"model.positions must be one of {list(POSITIONS)} (got {describe(m['positions'])})")
    C, heads = m["n_embd"], m["n_head"]
    if C % heads:
        raise ValueError(f"model.n_embd ({C}) must be divisible by model.n_head ({heads})")
    if m.get("positions", "rope") == "rope" and (C // heads) % 2:
        raise ValueError(f"model.n_embd / model.n_head ({C // heads}) must be even for rotary positions")
    if m.get("positions") == "sinusoid" and C % 2:
        raise ValueError(f"model.n_embd ({C}) must be even for sinusoid positions")
    if (m.get("n_class_tokens", 0) > 0) != (m.get("n_stage", 1) > 1):
        raise ValueError("model.n_stage > 1 and model.n_class_tokens > 0 go together (an upscaling model has both)")
    check_budget(m)
    return m


def check_loss_table(name: str, v: Any, block_size: int) -> None:
    if type(v) is not list or not 1 <= len(v) <= block_size:
        raise ValueError(f"{name} must be a list of 1 to {block_size} numbers (got {describe(v) if type(v) is not list else f'{len(v):,} entries'})")
    for i, x in enumerate(v):
        if type(x) not in (int, float) or not math.isfinite(x) or not 0 <= x <= 1e4:
            raise ValueError(f"{name}[{i}] must be a finite number of bits >= 0 (got {describe(x)})")


def _check_stage_spec(spec: Any, n_coarse: int) -> None:
    if type(spec) is not dict or type(spec.get("stages")) is not list:
        raise ValueError('stages must be {"stages": [...]} for an upscaling model')
    if len(spec["stages"]) != n_coarse:
        raise ValueError(f"stages lists {len(spec['stages'])} coarse stages but the network has {n_coarse}")


def check_config(cfg: Any, *, format_name: str, format_version: int, default_vocab: str) -> dict:
    """Validate a whole ``config.json`` object; returns it. Errors name the field."""
    if type(cfg) is not dict or cfg.get("format") != format_name:
        raise ValueError(f"not an ARDM model config (format must be {format_name!r})")
    v = cfg.get("format_version")
    if type(v) is not int:
        raise ValueError(f"format_version must be an integer (got {describe(v)})")
    if v > format_version:
        raise ValueError(f"format version {v} is newer than this program supports ({format_version}); update ARDM Studio")
    if v < 1:
        raise ValueError(f"format_version must be at least 1 (got {v})")
    if "model" not in cfg:
        raise ValueError("model (the network config) is missing")
    m = check_model_config(cfg["model"])
    vf = cfg.get("vocab_file", default_vocab)
    check_str("vocab_file", vf, 255)
    if not vf or vf in (".", "..") or "/" in vf or "\\" in vf or "\0" in vf:
        raise ValueError(f"vocab_file must be a file name inside the model folder (got {describe(vf)})")
    for name in ("vocab_sha256", "weights_sha256"):
        h = cfg.get(name)
        if h is not None and (type(h) is not str or not re.fullmatch(r"[0-9a-f]{64}", h)):
            raise ValueError(f"{name} must be a sha256 hex digest (got {describe(h)})")
    wd = cfg.get("weights_dtype", "float32")
    if wd not in WEIGHT_DTYPES:
        raise ValueError(f"weights_dtype must be one of {list(WEIGHT_DTYPES)} (got {describe(wd)})")
    if cfg.get("loss_by_known") is not None:
        check_loss_table("loss_by_known", cfg["loss_by_known"], m["block_size"])
    meta = cfg.get("meta", {})
    if type(meta) is not dict:
        raise ValueError(f"meta must be an object (got {describe(meta)})")
    if "name" in meta and meta["name"] is not None:
        check_str("meta.name", meta["name"], 200)
    S = m.get("n_stage", 1)
    if S > 1:
        _check_stage_spec(cfg.get("stages"), S - 1)
        tabs = cfg.get("stage_loss_by_known")
        if tabs is not None:
            if type(tabs) is not list or len(tabs) != S:
                raise ValueError(f"stage_loss_by_known must be a list of {S} tables, one per stage (got {describe(tabs)})")
            for s, t in enumerate(tabs):
                check_loss_table(f"stage_loss_by_known[{s}]", t, m["block_size"])
    return cfg


__all__ = ["check_config", "check_model_config", "check_budget", "count_params", "window_bytes", "parse_json",
           "json_depth", "check_int", "check_number", "MAX_PARAMS", "MAX_BLOCK_SIZE", "MAX_CONFIG_BYTES"]
