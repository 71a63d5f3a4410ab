"""The worker-side job of the "Why this character?" view (no Qt).

The explanation is computed on demand in the worker thread, from the run as
recorded (text, masked positions, the steps shown) and the loaded model: one
forward with attention recorded plus one batched occlusion forward
(``ardm_core.explain``). Only the plain result crosses to the GUI thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

# imported in the GUI thread at start-up (see app.jobs): never a first torch import inside a job
from ardm_core.explain import ExplainError, Explanation, explain_record


@dataclass(frozen=True)
class ExplainReady:
    request: int  # the request this answers (older answers are dropped)
    explanation: Explanation


@dataclass(frozen=True)
class ExplainFailed:
    request: int
    message: str


def explain_job(state: Any, request: int, text: str, masked: tuple[int, ...], steps: tuple, position: int,
                order: str, fingerprint: str) -> Iterator[Any]:
    """Explain ``position`` of a recorded run with the worker's model; a mismatch is a message, not an error."""
    model = state.model
    if model is None:
        yield ExplainFailed(request, "no model is loaded")
        return
    if fingerprint and fingerprint != model.fingerprint:
        yield ExplainFailed(request, "this run was computed by another model; load that model (or rerun the fill) "
                                     "to see what it looked at")
        return
    try:
        ex = explain_record(model, text, masked, steps, position, order=order)
    except ExplainError as exc:
        yield ExplainFailed(request, str(exc))
        return
    yield ExplainReady(request, ex)
