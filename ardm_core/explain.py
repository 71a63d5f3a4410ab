"""Why this character? Attention and occlusion saliency for one filled position.

For a position filled at step S, the explanation re-runs that step's network
call on the context the model saw then (known characters plus those filled by
steps before S, ``[MASK]`` elsewhere), in the same window, with attention
recorded. It is computed on demand for one position; nothing is kept per step.

- Attention per layer and head: the position's row of each softmax
  attention matrix (every row sums to 1 over the window).
- Aggregate: attention rollout (Abnar & Zuidema 2020, "Quantifying attention
  flow in transformers", section 3): the head-averaged matrices with the
  residual stream as an identity term, ``A' = (A + I) / 2``, multiplied from
  the last layer down. A filled position enters the network as ``[MASK]``,
  so what it learns about its context reaches it through other positions in
  earlier layers; the last layer alone shows only its final read-out, from
  positions that have already mixed their neighbourhoods.
- Occlusion: each known character of the window is replaced by ``[MASK]`` in
  turn (one batched forward) and the change of the position's distribution is
  measured as KL(p || p_occluded) in bits.

Attention is read with forward hooks on the attention modules: the hook takes
the module's inputs, recomputes the weights with the module's own projections
and the model's rotary function, and returns the attention output recomputed
from those weights, so the probabilities reported are those of the recorded
path. The hook checks that this output matches the module's own to 1e-5
(fp32); a mismatch is an error, never a silently wrong picture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import model as model_module
from .orders import get_order
from .sampling import LOG2E
from .windows import plan_windows

AGGREGATE = "rollout"
CHECK_TOLERANCE = 1e-5  # recomputed vs module attention output: max difference, relative to the output's scale above 1
OCCLUSION_BATCH = 64  # rows per chunk of the occlusion forward (bounds memory only)


class ExplainError(ValueError):
    """The position or model cannot be explained; the message says why."""


@dataclass(frozen=True)
class Explanation:
    position: int  # document position explained
    step: int  # step whose prediction is explained (-1: a context given directly)
    window_start: int  # document position of window column 0
    chars: tuple[str, ...]  # the window's characters ("" where unknown at that step)
    known: np.ndarray  # (W,) bool: the column held a character at that step
    attention: np.ndarray  # (L, H, W) the position's attention row per layer and head; each row sums to 1
    aggregate: np.ndarray  # (W,) attention rollout of the position; sums to 1
    occlusion: np.ndarray  # (W,) KL(p || p with that column masked), bits; 0 where not known
    probs: np.ndarray  # (V,) the model's distribution at the position (temperature 1)
    vocab_chars: tuple[str, ...]  # character of each entry of probs
    aggregate_method: str = AGGREGATE

    @property
    def column(self) -> int:
        """The explained position's column in the window."""
        return self.position - self.window_start

    def positions(self) -> np.ndarray:
        return np.arange(self.window_start, self.window_start + len(self.chars))

    def weights(self, layer: int | None = None, head: int | None = None) -> np.ndarray:
        """(W,) weights: the aggregate (layer None), a layer's head average (head None), or one head."""
        if layer is None:
            return self.aggregate
        if not -self.attention.shape[0] <= layer < self.attention.shape[0]:
            raise ExplainError(f"layer must be between 0 and {self.attention.shape[0] - 1} (got {layer})")
        if head is None:
            return self.attention[layer].mean(0)
        if not -self.attention.shape[1] <= head < self.attention.shape[1]:
            raise ExplainError(f"head must be between 0 and {self.attention.shape[1] - 1} (got {head})")
        return self.attention[layer, head]

    def top(self, k: int = 10, weights: np.ndarray | None = None) -> list[tuple[int, str, float]]:
        """The k known context characters with the largest weight: (position, char, weight)."""
        w = self.aggregate if weights is None else weights
        cols = np.flatnonzero(self.known)
        cols = cols[np.argsort(-w[cols], kind="stable")][:k]
        return [(self.window_start + int(c), self.chars[c], float(w[c])) for c in cols]

    def top_predictions(self, k: int = 5) -> list[tuple[str, float]]:
        idx = np.argsort(-self.probs, kind="stable")[:k]
        return [(self.vocab_chars[i], float(self.probs[i])) for i in idx]


# -- finding the step and its context through the session's public record -----------------------
def fill_step(steps: Sequence, position: int) -> int | None:
    """Index in ``steps`` (DecodeSteps or step records) of the step that filled ``position``; None if none did."""
    for i, st in enumerate(steps):
        if position in st.positions:
            return i
    return None


def context_at(text: str, masked: Sequence[int], steps: Sequence, step: int) -> tuple[str, np.ndarray]:
    """The document as the model saw it at ``step``: (text with earlier fills written in, unknown positions)."""
    chars = list(text)
    unknown = np.zeros(len(text), dtype=bool)
    unknown[np.asarray(masked, dtype=np.int64)] = True
    for st in steps[:step]:
        for p, c in zip(st.positions, st.chars):
            chars[p] = c
            unknown[p] = False
    return "".join(chars), np.flatnonzero(unknown)


def explain_session(session, position: int, step: int | None = None, *, occlusion: bool = True) -> Explanation:
    """Explain ``position`` of a DecodeSession at the step that filled it (or at ``step``).

    Uses the session's public record only: ``text``, ``masked_positions``,
    ``steps`` and ``order``.
    """
    return explain_record(session.model, session.text, session.masked_positions, session.steps, position, step,
                          order=session.order, occlusion=occlusion)


def explain_record(model, text: str, masked: Sequence[int], steps: Sequence, position: int, step: int | None = None,
                   *, order: str = "confidence", occlusion: bool = True) -> Explanation:
    """Explain ``position`` of a recorded fill: ``steps`` are DecodeSteps (or records with
    ``index``, ``positions`` and ``chars``) of a run over ``masked`` positions of ``text``.

    At an explicit ``step`` the position must still be unknown then: its
    prediction at that step is explained, whichever step fills it.
    """
    n = len(text)
    if not isinstance(position, (int, np.integer)) or isinstance(position, bool) or not 0 <= position < n:
        raise ExplainError(f"position must be between 0 and {n - 1} (got {position!r})")
    position = int(position)
    if any(getattr(st, "stage", -1) >= 0 for st in steps):
        raise ExplainError("this is a coarse-to-fine run (an upscaling model decides it stage by stage); "
                           "the attention view explains runs of a plain model")
    filled_at = fill_step(steps, position)
    if position not in set(np.asarray(masked, dtype=np.int64).tolist()):
        raise ExplainError(f"position {position} ({text[position]!r}) is known context, not a filled character; "
                           "explain a masked position")
    if step is None:
        if filled_at is None:
            raise ExplainError(f"position {position} is not filled yet (run the fill past it, or pass a step)")
        step = filled_at
    if not isinstance(step, (int, np.integer)) or isinstance(step, bool) or not 0 <= step < len(steps):
        raise ExplainError(f"step must be between 0 and {len(steps) - 1} (steps taken), got {step!r}")
    step = int(step)
    if filled_at is not None and step > filled_at:
        raise ExplainError(f"position {position} was filled at step {filled_at}; at step {step} it is context, not predicted")
    ctx, unknown = context_at(text, masked, steps, step)
    # the window the step's network call used: its targets were the step's positions, or for a
    # dynamic order every position still unknown (windows.plan_windows, as in DecodeSession.step)
    try:
        dynamic = get_order(order).dynamic
    except ValueError:
        dynamic = False
    targets = unknown if dynamic else np.asarray(steps[step].positions, dtype=np.int64)
    targets = np.union1d(targets, [position])
    return explain(model, ctx, unknown, position, targets=targets, step=step, occlusion=occlusion)


# -- the computation --------------------------------------------------------------------------
def explain(model, text: str, unknown: Sequence[int], position: int, *, targets: Sequence[int] | None = None,
            step: int = -1, occlusion: bool = True) -> Explanation:
    """Attention, rollout and occlusion for ``position`` given ``text`` with ``unknown`` positions masked.

    ``targets`` are the positions predicted by the same network call (they
    decide the window of a long document, as in ``ardm_core.windows``).
    """
    if getattr(model, "is_upscale", False):
        raise ExplainError(f"{model.name} is an upscaling (coarse-to-fine) model: its predictions are read stage by stage, "
                           "which this view does not record; explain with a plain model (the shipped default)")
    net = model.net
    if not hasattr(net, "blocks") or not len(net.blocks):
        raise ExplainError("this network has no attention blocks to record")
    n = len(text)
    unknown = np.unique(np.asarray(unknown, dtype=np.int64))
    if not 0 <= position < n:
        raise ExplainError(f"position must be between 0 and {n - 1} (got {position})")
    if position not in set(unknown.tolist()):
        raise ExplainError(f"position {position} is known at this step; only an unknown (masked) position is predicted")
    D = model.config.block_size
    tg = np.asarray(sorted(set(np.asarray(targets if targets is not None else [position], dtype=np.int64).tolist()) | {position}))
    starts, owner = plan_windows(tg, n, D)
    start = int(starts[owner[int(np.searchsorted(tg, position))]])
    W = min(n, D)
    ids = model.vocab.encode(text)
    ids[unknown] = net.mask_id
    win = torch.as_tensor(ids[start:start + W], device=model.device)[None, :]  # (1, W)
    col = position - start
    logp, layers = recorded_forward(net, win)
    attn = np.stack([a[0, :, col, :] for a in layers])  # (L, H, W)
    aggregate = rollout(layers, col)
    base = logp[0, col]  # (V,)
    occ = np.zeros(W)
    known = np.ones(W, dtype=bool)
    known[unknown[(unknown >= start) & (unknown < start + W)] - start] = False
    if occlusion:
        occ = occlusion_kl(net, win[0], col, base, np.flatnonzero(known))
    chars = tuple("" if not known[i] else text[start + i] for i in range(W))
    probs = base.exp().double().cpu().numpy()
    return Explanation(position, step, start, chars, known, attn, aggregate, occ, probs, tuple(model.vocab.chars))


def _apply_rotary(module, q: torch.Tensor, k: torch.Tensor, rope) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary embedding on q and k with the model's own function (looked up at call time)."""
    cos, sin = rope
    apply = getattr(model_module, "_apply_rope", None)
    if apply is not None:
        return apply(q, cos, sin), apply(k, cos, sin)
    both = getattr(model_module, "_rope_qk", None)  # q and k side by side: (B, T, 2C) -> (B, H, T, hd) each
    if both is None:
        raise ExplainError("the network's rotary function was not found; attention cannot be recorded for this model")
    H = q.shape[1]
    qk = torch.cat([t.transpose(1, 2).flatten(2) for t in (q, k)], dim=-1)
    return both(qk, H, cos, sin)


def _attention_hook(store: list):
    def hook(module, args, kwargs, output):
        names = ("x", "rope", "attn_mask")
        given = dict(zip(names, args))
        given.update({k: v for k, v in kwargs.items() if k in names})
        x, rope, attn_mask = given["x"], given.get("rope"), given.get("attn_mask")
        B, T, C = x.shape
        H = module.n_head
        q, k, v = module.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))  # (B, H, T, hd)
        if getattr(module, "rope", False):
            q, k = _apply_rotary(module, q, k, rope)
        scores = (q.float() @ k.float().transpose(-1, -2)) / math.sqrt(C // H)  # (B, H, T, T)
        if attn_mask is not None:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        elif getattr(module, "causal", False):
            scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1), float("-inf"))
        w = F.softmax(scores, dim=-1)
        y = module.proj((w @ v.float()).to(x.dtype).transpose(1, 2).reshape(B, T, C))
        diff = float((y.float() - output.float()).abs().max())
        if not diff <= CHECK_TOLERANCE * max(1.0, float(output.float().abs().max())):
            raise ExplainError(f"recorded attention does not reproduce the network's attention output "
                               f"(max difference {diff:.2e}); the view cannot be trusted for this model")
        store.append(w.detach().double().cpu().numpy())
        return y

    return hook


@torch.inference_mode()
def recorded_forward(net, ids: torch.Tensor) -> tuple[torch.Tensor, list[np.ndarray]]:
    """Log-probabilities (B, T, V) through the recorded path and each layer's weights (B, H, T, T)."""
    store: list[np.ndarray] = []
    handles = [block.attn.register_forward_hook(_attention_hook(store), with_kwargs=True) for block in net.blocks]
    was = net.training
    net.eval()
    try:
        # the module-by-module forward: a compiled shortcut (where one is registered) would skip the hooks
        logp = (net.log_probs if hasattr(net, "log_probs") else net)(ids)
    finally:
        for h in handles:
            h.remove()
        net.train(was)
    if len(store) != len(net.blocks):
        raise ExplainError(f"recorded {len(store)} attention layers of {len(net.blocks)}; "
                           "this network's forward does not run its attention modules")
    return logp, store


def rollout(layers: list[np.ndarray], col: int) -> np.ndarray:
    """Attention rollout of column ``col`` of the first batch row: e_col^T A'_L ... A'_1, A' = (mean_h A + I) / 2."""
    T = layers[0].shape[-1]
    r = np.zeros(T)
    r[col] = 1.0
    for a in reversed(layers):
        m = a[0].mean(0)  # (T, T), rows sum to 1
        r = 0.5 * (r @ m) + 0.5 * r
    return r / r.sum()


@torch.inference_mode()
def occlusion_kl(net, win: torch.Tensor, col: int, base_logp: torch.Tensor, columns: np.ndarray) -> np.ndarray:
    """KL(p || p_occluded) in bits at ``col`` when each of ``columns`` is masked in turn (batched)."""
    out = np.zeros(len(win))
    if not len(columns):
        return out
    p = base_logp.exp()
    cols_t = torch.as_tensor(columns, device=win.device)
    for s in range(0, len(columns), OCCLUSION_BATCH):
        c = cols_t[s:s + OCCLUSION_BATCH]
        batch = win[None, :].repeat(len(c), 1)  # (b, W)
        batch[torch.arange(len(c), device=win.device), c] = net.mask_id
        lq = net(batch)[:, col]  # (b, V)
        terms = torch.where(p > 0, p * (base_logp - lq), torch.zeros_like(p))
        out[columns[s:s + OCCLUSION_BATCH]] = (terms.sum(-1).clamp(min=0).double() * LOG2E).cpu().numpy()
    return out


def to_json(ex: Explanation, *, layer: int | None = None, head: int | None = None) -> dict:
    """A JSON-ready dict: the full weight vector over the window with positions (sums to 1)."""
    w = ex.weights(layer, head)
    return {
        "position": ex.position,
        "step": ex.step,
        "weights_from": "aggregate" if layer is None else (f"layer {layer}" + ("" if head is None else f" head {head}")),
        "aggregate_method": ex.aggregate_method,
        "window_start": ex.window_start,
        "predictions": [{"char": c, "prob": p} for c, p in ex.top_predictions(5)],
        "weights": [{"position": int(ex.window_start + i), "char": ex.chars[i] or None, "known": bool(ex.known[i]),
                     "weight": float(w[i]), "occlusion_bits": float(ex.occlusion[i])} for i in range(len(ex.chars))],
        "layers": int(ex.attention.shape[0]),
        "heads": int(ex.attention.shape[1]),
    }


__all__ = ["Explanation", "ExplainError", "explain", "explain_session", "explain_record", "fill_step", "context_at", "recorded_forward",
           "rollout", "occlusion_kl", "to_json", "AGGREGATE"]
