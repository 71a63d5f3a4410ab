"""Model folders and resumable training state: safetensors plus JSON, no pickle.

A model folder holds:
- ``model.safetensors``: the network weights (EMA weights after training);
- ``config.json``: network config, training metadata, the L_t table (expected
  bits per position with t known, for parallel-budget planning) and the
  vocabulary's sha256;
- ``vocab.model``: the sentencepiece char model.

Every failure to load names the file and what is wrong with it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .config_check import MAX_ABS_WEIGHT, MAX_CONFIG_BYTES, check_config, check_model_config, count_params, parse_json
from .fileio import DataError, atomic_write_bytes, atomic_write_json, read_limited
from .model import ARDMTransformer, ModelConfig
from .vocab import Vocab, VocabError

FORMAT = "ardm-model"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
VOCAB = "vocab.model"
MAX_VOCAB_BYTES = 4 << 20  # a char model of a few hundred symbols is a few KB
MAX_HEADER_BYTES = 16 << 20  # safetensors JSON header beside the tensor data


class ModelFileError(ValueError):
    """A model folder is missing, truncated or inconsistent; the message names the file."""


@dataclass
class LoadedModel:
    net: ARDMTransformer
    vocab: Vocab
    config: ModelConfig
    path: Path | None
    loss_by_known: np.ndarray | None  # L_t per number known (0..D-1), bits, non-increasing
    meta: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""  # sha256 over weights and vocabulary bytes
    stages: Any = None  # depth upscaling: the StageMap (None for a plain model)
    stage_loss_by_known: list[np.ndarray] | None = None  # upscaling: one L_t table per stage

    @property
    def is_upscale(self) -> bool:
        return self.stages is not None

    @property
    def name(self) -> str:
        return self.meta.get("name") or (self.path.name if self.path else "model")

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device: torch.device | str) -> "LoadedModel":
        self.net.to(device)
        return self


def _fingerprint(weights: bytes, vocab_proto: bytes) -> str:
    h = hashlib.sha256()
    h.update(hashlib.sha256(weights).digest())
    h.update(hashlib.sha256(vocab_proto).digest())
    return h.hexdigest()


def _cpu_state(state: dict[str, torch.Tensor], dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in state.items():
        v = v.detach().cpu()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        out[k] = v.contiguous()
    return out


def state_to_bytes(state: dict[str, torch.Tensor], dtype: torch.dtype | None = None) -> bytes:
    return st_save(_cpu_state(state, dtype))


def save_model(
    path: str | os.PathLike,
    net: ARDMTransformer,
    vocab: Vocab,
    *,
    loss_by_known: np.ndarray | None = None,
    meta: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
    stages: dict | None = None,
    stage_loss_by_known: list | None = None,
) -> Path:
    """Write a model folder atomically: build it beside the target, then swap it in.

    Weights holding NaN or an infinity (also after conversion to ``dtype``) are refused: a
    model that cannot compute is never written.
    """
    path = Path(path)
    state = _cpu_state(net.state_dict(), dtype)
    bad = nonfinite_tensors(state)
    if bad:
        raise ModelFileError(f"{path}: not written: {len(bad)} tensor(s) hold NaN or infinite values ({', '.join(bad[:3])})")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot write the model folder ({exc.strerror})") from None
    try:
        weights = st_save(state)
        atomic_write_bytes(tmp / WEIGHTS, weights)
        vocab.save(tmp / VOCAB)
        cfg = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": net.cfg.to_dict(),
            "vocab_file": VOCAB,
            "vocab_sha256": vocab.sha256,
            "weights_sha256": hashlib.sha256(weights).hexdigest(),
            "weights_dtype": str(dtype or "float32").replace("torch.", ""),
            "loss_by_known": None if loss_by_known is None else [round(float(x), 6) for x in loss_by_known],
            "meta": meta or {},
        }
        if stages is not None:
            cfg["stages"] = stages
            cfg["stage_loss_by_known"] = None if stage_loss_by_known is None else [
                [round(float(x), 6) for x in table] for table in stage_loss_by_known]
        atomic_write_json(tmp / CONFIG, cfg)
        os.chmod(tmp, 0o755)
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _read(path: Path, limit: int, what: str) -> bytes:
    try:
        return read_limited(path, limit, what)
    except DataError as exc:
        raise ModelFileError(str(exc)) from None


def read_config(path: str | os.PathLike) -> dict:
    """A model folder's config.json, read with limits and checked against the schema (ardm_core.config_check)."""
    cfg_path = Path(path) / CONFIG
    data = _read(cfg_path, MAX_CONFIG_BYTES, "model config")
    try:
        return check_config(parse_json(data), format_name=FORMAT, format_version=FORMAT_VERSION, default_vocab=VOCAB)
    except ValueError as exc:
        raise ModelFileError(f"{cfg_path}: {exc}") from None


def nonfinite_tensors(state: dict[str, torch.Tensor], max_abs: float = float("inf")) -> list[str]:
    """Names of floating tensors holding NaN, an infinity, or a value larger than ``max_abs``."""
    bad = []
    for k, v in state.items():
        if v.is_floating_point() and v.numel():
            a = v.detach().float().abs().max()
            if not bool(torch.isfinite(a)) or float(a) > max_abs:
                bad.append(k)
    return bad


def expected_shapes(mcfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of the network a config describes, without allocating it."""
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in ARDMTransformer(mcfg).state_dict().items()}


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a model folder. Everything in it is checked (schema, sizes, hashes, shapes, finite
    weights) before the network is built; every failure is one ModelFileError line naming the file."""
    path = Path(path)
    if not path.is_dir():
        raise ModelFileError(f"{path}: model folder not found (expected a folder with {WEIGHTS}, {CONFIG}, {VOCAB})")
    cfg_path = path / CONFIG
    cfg = read_config(path)
    try:
        mcfg = ModelConfig(**cfg["model"])
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{cfg_path}: bad network config ({exc})") from None
    vocab_path = path / cfg.get("vocab_file", VOCAB)
    try:
        vocab = Vocab.from_proto(_read(vocab_path, MAX_VOCAB_BYTES, "vocabulary"))
    except VocabError as exc:
        raise ModelFileError(f"{vocab_path}: {exc}") from None
    if cfg.get("vocab_sha256") and cfg["vocab_sha256"] != vocab.sha256:
        raise ModelFileError(f"{vocab_path}: does not match {CONFIG} (sha256 differs); the folder mixes files of different models")
    if vocab.size != mcfg.vocab_size:
        raise ModelFileError(f"{vocab_path}: has {vocab.size} symbols but the network expects {mcfg.vocab_size}")
    stages, stage_lbk = None, None
    if mcfg.n_class_tokens:
        from .stages import load_stage_map

        try:
            stages = load_stage_map(cfg["stages"], vocab.chars)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ModelFileError(f"{cfg_path}: bad stage map ({exc})") from None
        if stages.n_class_tokens != mcfg.n_class_tokens or stages.S != mcfg.n_stage:
            raise ModelFileError(f"{cfg_path}: the stage map does not match the network ({stages.n_class_tokens} class symbols in "
                                 f"{stages.S} stages, the network has {mcfg.n_class_tokens} in {mcfg.n_stage})")
        if cfg.get("stage_loss_by_known"):
            stage_lbk = [np.asarray(t, dtype=np.float64) for t in cfg["stage_loss_by_known"]]
    shapes = expected_shapes(mcfg)
    n_values = sum(int(np.prod(s)) for s in shapes.values())
    w_path = path / WEIGHTS
    weights = _read(w_path, 4 * n_values + MAX_HEADER_BYTES, "weights file of this config")
    if cfg.get("weights_sha256") and hashlib.sha256(weights).hexdigest() != cfg["weights_sha256"]:
        raise ModelFileError(f"{w_path}: corrupted or truncated (sha256 does not match {CONFIG})")
    try:
        state = st_load(weights)
    except (SafetensorError, Exception) as exc:  # safetensors raises several types for bad headers
        raise ModelFileError(f"{w_path}: not a readable safetensors file ({exc})") from None
    missing, unexpected = set(shapes) - set(state), set(state) - set(shapes)
    if missing or unexpected:
        raise ModelFileError(f"{w_path}: tensors do not match the config (missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")
    for k, shape in shapes.items():
        if tuple(state[k].shape) != shape or not state[k].is_floating_point():
            raise ModelFileError(f"{w_path}: tensor {k} is {str(state[k].dtype).replace('torch.', '')} {list(state[k].shape)}, "
                                 f"the config needs floating point {list(shape)}")
    bad = nonfinite_tensors(state, MAX_ABS_WEIGHT)
    if bad:
        raise ModelFileError(f"{w_path}: {len(bad)} tensor(s) hold NaN, infinite or implausibly large values "
                             f"({', '.join(bad[:3])}); the model is unusable (retrain, or restore an earlier checkpoint)")
    net = ARDMTransformer(mcfg)
    net.load_state_dict({k: v.float() for k, v in state.items()})
    net.eval().to(device)
    lbk = cfg.get("loss_by_known")
    return LoadedModel(
        net=net,
        vocab=vocab,
        config=mcfg,
        path=path,
        loss_by_known=None if lbk is None else np.asarray(lbk, dtype=np.float64),
        meta=cfg.get("meta", {}),
        fingerprint=_fingerprint(weights, vocab.model_proto),
        stages=stages,
        stage_loss_by_known=stage_lbk,
    )


def update_model_config(path: str | os.PathLike, **updates: Any) -> None:
    """Rewrite chosen top-level fields of a model's config.json atomically."""
    cfg = read_config(path)
    for k, v in updates.items():
        if k == "meta":
            cfg.setdefault("meta", {}).update(v)
        else:
            cfg[k] = v
    atomic_write_json(Path(path) / CONFIG, cfg)


# -- resumable training state -------------------------------------------------------
STATE_WEIGHTS = "state.safetensors"
STATE_JSON = "state.json"


def save_training_state(run_dir: Path, tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> None:
    """Tensors first, then the JSON that points at them: a crash between leaves the old pair usable."""
    run_dir.mkdir(parents=True, exist_ok=True)
    data = state_to_bytes(tensors)
    name = f"state-{info['step']}.safetensors"
    atomic_write_bytes(run_dir / name, data)
    info = {**info, "tensors": name, "tensors_sha256": hashlib.sha256(data).hexdigest()}
    prev = None
    if (run_dir / STATE_JSON).exists():
        try:
            prev = parse_json(_read(run_dir / STATE_JSON, MAX_CONFIG_BYTES, "training state"))["tensors"]
        except (ValueError, KeyError, TypeError):
            prev = None
        if type(prev) is not str or not prev.startswith("state-") or Path(prev).name != prev:
            prev = None  # only ever delete a state file of this folder
    atomic_write_json(run_dir / STATE_JSON, info)
    if prev and prev != name:
        try:
            (run_dir / prev).unlink()
        except FileNotFoundError:
            pass


def load_training_state(run_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """The resumable state of a run folder, checked like a model folder (limits, schema, sha256, finite values)."""
    js = run_dir / STATE_JSON
    if not js.exists():
        return None
    hint = f"delete {run_dir} (or use another --out) to start afresh"
    try:
        info = parse_json(_read(js, MAX_CONFIG_BYTES, "training state"))
        if type(info) is not dict:
            raise ValueError("not an object")
        name = info.get("tensors")
        if type(name) is not str or not name.startswith("state-") or not name.endswith(".safetensors") or "/" in name or "\\" in name:
            raise ValueError(f"tensors must name a state-N.safetensors file in the run folder (got {name!r})")
        if type(info.get("step")) is not int or info["step"] < 0:
            raise ValueError(f"step must be an integer >= 0 (got {info.get('step')!r})")
        mcfg = check_model_config(info.get("model"))
        limit = 4 * 4 * count_params(mcfg) + MAX_HEADER_BYTES + (1 << 20)  # weights, EMA, two Adam moments, RNG, vocab
    except ValueError as exc:
        raise ModelFileError(f"{js}: training state is unreadable ({exc}); {hint}") from None
    data = _read(run_dir / name, limit, "training state")
    if hashlib.sha256(data).hexdigest() != info.get("tensors_sha256"):
        raise ModelFileError(f"{run_dir / name}: corrupted (sha256 mismatch); {hint}")
    try:
        tensors = st_load(data)
    except Exception as exc:  # safetensors raises several types for bad headers
        raise ModelFileError(f"{run_dir / name}: not a readable safetensors file ({exc}); {hint}") from None
    bad = nonfinite_tensors(tensors)
    if bad:
        raise ModelFileError(f"{run_dir / name}: {len(bad)} tensor(s) hold NaN or infinite values ({', '.join(bad[:3])}); {hint}")
    return tensors, info
