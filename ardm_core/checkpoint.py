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
import json
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

from .fileio import atomic_write_bytes, atomic_write_json
from .model import ARDMTransformer, ModelConfig
from .vocab import Vocab, VocabError

FORMAT = "ardm-model"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
VOCAB = "vocab.model"


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


def state_to_bytes(state: dict[str, torch.Tensor], dtype: torch.dtype | None = None) -> bytes:
    out = {}
    for k, v in state.items():
        v = v.detach().cpu()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        out[k] = v.contiguous()
    return st_save(out)


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
    """Write a model folder atomically: build it beside the target, then swap it in."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot write the model folder ({exc.strerror})") from None
    try:
        weights = state_to_bytes(net.state_dict(), dtype)
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


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    path = Path(path)
    if not path.is_dir():
        raise ModelFileError(f"{path}: model folder not found (expected a folder with {WEIGHTS}, {CONFIG}, {VOCAB})")
    cfg_path = path / CONFIG
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"{cfg_path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{cfg_path}: not valid JSON ({exc})") from None
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise ModelFileError(f"{cfg_path}: not an ARDM model config (format must be {FORMAT!r})")
    if cfg.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(f"{cfg_path}: format version {cfg.get('format_version')} is newer than this program supports ({FORMAT_VERSION}); update ARDM Studio")
    try:
        mcfg = ModelConfig.from_dict(cfg["model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{cfg_path}: bad network config ({exc})") from None
    vocab_path = path / cfg.get("vocab_file", VOCAB)
    try:
        vocab = Vocab.load(vocab_path)
    except VocabError as exc:
        raise ModelFileError(str(exc)) from None
    if cfg.get("vocab_sha256") and cfg["vocab_sha256"] != vocab.sha256:
        raise ModelFileError(f"{vocab_path}: does not match {CONFIG} (sha256 differs); the folder mixes files of different models")
    if vocab.size != mcfg.vocab_size:
        raise ModelFileError(f"{vocab_path}: has {vocab.size} symbols but the network expects {mcfg.vocab_size}")
    w_path = path / WEIGHTS
    try:
        weights = w_path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"{w_path}: missing") from None
    if cfg.get("weights_sha256") and hashlib.sha256(weights).hexdigest() != cfg["weights_sha256"]:
        raise ModelFileError(f"{w_path}: corrupted or truncated (sha256 does not match {CONFIG})")
    try:
        state = st_load(weights)
    except (SafetensorError, Exception) as exc:  # safetensors raises several types for bad headers
        raise ModelFileError(f"{w_path}: not a readable safetensors file ({exc})") from None
    net = ARDMTransformer(mcfg)
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    missing, unexpected = set(net.state_dict()) - set(state), set(state) - set(net.state_dict())
    if missing or unexpected:
        raise ModelFileError(f"{w_path}: tensors do not match the config (missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelFileError(f"{w_path}: tensor shapes do not match the config ({str(exc)[:200]})") from None
    net.eval().to(device)
    lbk = cfg.get("loss_by_known")
    stages, stage_lbk = None, None
    if mcfg.n_class_tokens:
        from .stages import load_stage_map

        try:
            stages = load_stage_map(cfg.get("stages"), vocab.chars)
        except ValueError as exc:
            raise ModelFileError(f"{cfg_path}: bad stage map ({exc})") from None
        if stages.n_class_tokens != mcfg.n_class_tokens or stages.S != mcfg.n_stage:
            raise ModelFileError(f"{cfg_path}: the stage map does not match the network ({stages.n_class_tokens} class symbols in "
                                 f"{stages.S} stages, the network has {mcfg.n_class_tokens} in {mcfg.n_stage})")
        if cfg.get("stage_loss_by_known"):
            stage_lbk = [np.asarray(t, dtype=np.float64) for t in cfg["stage_loss_by_known"]]
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
    cfg_path = Path(path) / CONFIG
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    for k, v in updates.items():
        if k == "meta":
            cfg.setdefault("meta", {}).update(v)
        else:
            cfg[k] = v
    atomic_write_json(cfg_path, cfg)


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
            prev = json.loads((run_dir / STATE_JSON).read_text())["tensors"]
        except (ValueError, KeyError):
            prev = None
    atomic_write_json(run_dir / STATE_JSON, info)
    if prev and prev != name:
        try:
            (run_dir / prev).unlink()
        except FileNotFoundError:
            pass


def load_training_state(run_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    js = run_dir / STATE_JSON
    if not js.exists():
        return None
    try:
        info = json.loads(js.read_text())
        data = (run_dir / info["tensors"]).read_bytes()
    except (ValueError, KeyError, OSError) as exc:
        raise ModelFileError(f"{js}: training state is unreadable ({exc}); delete {run_dir} to start afresh") from None
    if hashlib.sha256(data).hexdigest() != info.get("tensors_sha256"):
        raise ModelFileError(f"{run_dir / info['tensors']}: corrupted (sha256 mismatch)")
    return st_load(data), info
