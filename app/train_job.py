"""Worker-side jobs of "Train on my writing" (no Qt): scan the chosen text, fine-tune.

They run in the training worker's own thread (app.train_dialog), so a fill in
the editor never waits for training. Events are the core's plain dataclasses
(ardm_core.finetune and ardm_core.train) plus ``ScanReady``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any, Iterator

# imported in the GUI thread at start-up (see app.jobs): never a first torch import inside a job
from ardm_core.checkpoint import STATE_JSON, load_model
from ardm_core.finetune import PLAN, FinetuneConfig, TextScan, finetune, scan_texts, seconds_per_step, user_models_dir


@dataclass(frozen=True)
class ScanReady:
    scan: TextScan
    seconds_per_step: float  # measured on this machine with the base model
    steps_per_minute: float


@dataclass(frozen=True)
class UnfinishedRun:
    """A run folder under the user's models whose training stopped before its last step."""

    path: str
    name: str
    step: int
    steps: int
    inputs: tuple[str, ...]
    base: str


def scan_job(state: Any, inputs: list[str], base: str, batch_size: int) -> Iterator[Any]:
    """Characters found, the share outside the base model's vocabulary, and the speed of a step."""
    model = getattr(state, "model", None)
    if model is None or str(model.path) != str(base):
        model = state.model = load_model(base)
    scan = scan_texts(inputs, model.vocab)
    sps = seconds_per_step(model, batch_size, model.config.block_size)
    yield ScanReady(scan, sps, 60.0 / sps)


def finetune_job(cfg: FinetuneConfig, stop: threading.Event) -> Iterator[Any]:
    yield from finetune(cfg, stop)


def unfinished_runs() -> list[UnfinishedRun]:
    """Cancelled or paused runs that can be resumed (read from their finetune.json and state.json)."""
    root = user_models_dir()
    out = []
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir()):
        try:
            plan = json.loads((d / PLAN).read_text(encoding="utf-8"))
            step = int(json.loads((d / STATE_JSON).read_text(encoding="utf-8")).get("step", 0)) if (d / STATE_JSON).exists() else 0
            steps = int(plan["steps"])
            inputs = tuple(str(p) for p in plan["inputs"])
            base = str(plan["base"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if step < steps:
            out.append(UnfinishedRun(str(d), d.name, step, steps, inputs, base))
    return out


__all__ = ["ScanReady", "UnfinishedRun", "scan_job", "finetune_job", "unfinished_runs"]
