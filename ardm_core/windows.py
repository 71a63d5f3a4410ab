"""Long documents: the network sees windows of D = block_size characters.

The rule, applied afresh at every step to the positions that step needs
predictions for (the positions it fills, or for dynamic orders every position
still masked):

1. A document of at most D characters is one window: the whole text.
2. Otherwise the target positions are covered greedily from the left: the
   leftmost uncovered target p starts a cluster holding every target in
   ``[p, p + D)``. Greedy covering uses the fewest windows possible.
3. Each cluster ``[p, q]`` gets the window of D characters centred on it,
   ``start = p - (D - (q - p + 1)) // 2`` clamped to ``[0, N - D]``, so its
   targets see as much context on both sides as fits (about ``D/2`` each
   side for a single position, less only at the document's ends).
4. All windows of a step run as one batched forward pass (split into chunks
   of ``max_batch`` rows only to bound memory) and count as ONE network call.
   A caller may pass ``cancel`` (a function returning True to stop): it is
   asked before each chunk, and ``Cancelled`` is raised between chunks, so a
   step over a long document can be stopped part way; nothing is written.

Teacher forcing (``teacher_forced_logprobs``) builds the same windows for
every step of a fixed plan at once, so many steps share one forward pass.

Every target lies in exactly one window, so its prediction is well defined.
Context is whatever the window holds: known characters, characters filled by
earlier steps, ``<unk>`` for characters outside the vocabulary, and
``[MASK]`` for positions still to fill.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .orders import fill_steps


class Cancelled(Exception):
    """Raised between window batches when the caller's ``cancel`` function returns True."""


def plan_windows(targets: np.ndarray, n_text: int, D: int) -> tuple[np.ndarray, np.ndarray]:
    """Window starts (W,) and the window index of each target (k,), for sorted ``targets``."""
    targets = np.asarray(targets, dtype=np.int64)
    if n_text <= D:
        return np.zeros(1, dtype=np.int64), np.zeros(len(targets), dtype=np.int64)
    # each window holds the targets in [p, p + D) from its first target p; the next window starts at the
    # first target past that. Where each window would end is one vectorised search; only the walk along
    # the chain is a Python loop, one step per window (300,000 targets in a few ms)
    nxt = np.searchsorted(targets, targets + D, side="left")
    heads, i, k = [], 0, len(targets)
    while i < k:  # one step per window, not per target: no list of all the targets is built
        heads.append(i)
        i = int(nxt[i])
    first = np.asarray(heads, dtype=np.int64)
    end = nxt[first]
    p, q = targets[first], targets[end - 1]
    starts = np.clip(p - (D - (q - p + 1)) // 2, 0, n_text - D)
    owner = np.repeat(np.arange(len(first), dtype=np.int64), end - first)
    return starts.astype(np.int64), owner


ROWS_SHARE = 0.75  # ask the network for the target rows only while a window needs at most this share of its rows


def picked_logprobs(net, batch: torch.Tensor, win: torch.Tensor, off: torch.Tensor) -> torch.Tensor:
    """``net(batch)[win, off]``: log-probabilities (k, V) at k (window, offset) pairs of ``batch`` (w, W).

    When every window needs at most ``ROWS_SHARE`` of its rows, the network is
    asked for those rows only (``ARDMTransformer.forward(rows=)``: the last
    block and the head run at them alone; 18-20% less time for a step that
    fills one character of a 256-character window, bench/decode.py). Equal
    to the full forward at those rows up to float rounding. A network that
    takes no ``rows`` (an upscaling stage's view) runs whole.
    """
    w, W = batch.shape
    if not getattr(net, "takes_rows", False) or len(win) == 0:
        return net(batch)[win, off]
    if w == 1:  # one window (a document of at most D characters): the offsets are its rows
        return net(batch)[0, off] if len(off) > ROWS_SHARE * W else net(batch, rows=off[None])[0]
    counts = torch.bincount(win, minlength=w)
    R = int(counts.max())
    if R > ROWS_SHARE * W:
        return net(batch)[win, off]
    order = torch.argsort(win, stable=True)
    first = torch.cumsum(counts, 0) - counts  # where each window's targets start in ``order``
    rank = torch.empty_like(win)
    rank[order] = torch.arange(len(win), device=win.device) - first[win[order]]  # index within its window
    rows = torch.zeros(w, R, dtype=torch.long, device=batch.device)  # padding rows (offset 0) are computed, unread
    rows[win, rank] = off
    return net(batch, rows=rows)[win, rank]


@torch.inference_mode()
def window_logprobs(net, doc: torch.Tensor, targets: np.ndarray, D: int, *, max_batch: int = 32,
                    cancel: Callable[[], bool] | None = None) -> tuple[torch.Tensor, int]:
    """Log-probabilities (k, V) at ``targets`` (any order) given the document ids ``doc`` (N,) on the net's device.

    Returns the rows in the order of ``targets`` and the number of windows
    used. One call of this function is one network call. ``cancel`` is asked
    before each batch of windows; when it returns True, ``Cancelled`` is raised.
    """
    targets = np.asarray(targets, dtype=np.int64)
    N = int(doc.shape[0])
    dev = doc.device
    if cancel is not None and cancel():
        raise Cancelled
    if N <= D:
        tg = torch.as_tensor(targets, device=dev)
        return picked_logprobs(net, doc[None, :], torch.zeros_like(tg), tg), 1
    order = np.argsort(targets, kind="stable")
    srt = targets[order]
    starts, owner = plan_windows(srt, N, D)
    offs = torch.arange(D, device=dev)
    starts_t = torch.as_tensor(starts, device=dev)
    rows = torch.empty(len(srt), net.cfg.vocab_size, device=dev)
    tgt_sorted = torch.as_tensor(srt, device=dev)
    owner_t = torch.as_tensor(owner, device=dev)
    for b in range(0, len(starts), max_batch):
        if b and cancel is not None and cancel():
            raise Cancelled
        sl = slice(b, b + max_batch)
        batch = doc[starts_t[sl, None] + offs[None, :]]  # (w, D)
        sel = (owner_t >= b) & (owner_t < b + len(starts_t[sl]))
        rows[sel] = picked_logprobs(net, batch, owner_t[sel] - b, tgt_sorted[sel] - starts_t[owner_t[sel]])
    out = torch.empty_like(rows)
    out[torch.as_tensor(order, device=dev)] = rows
    return out, len(starts)


@torch.inference_mode()
def window_logprobs_many(net, docs: list[torch.Tensor], targets: list[np.ndarray], D: int, *,
                         max_batch: int = 32) -> tuple[list[torch.Tensor], int]:
    """``window_logprobs`` for several documents of one length at once: every window of every document in
    one batched forward pass (split only to bound memory), so the whole batch is ONE network call.

    Returns each document's rows (k_i, V) in the order of its targets, and the windows used in all.
    """
    if not docs:
        return [], 0
    N = int(docs[0].shape[0])
    dev = docs[0].device
    W = min(N, D)
    batch, picks = [], []  # picks: (doc, row in batch, offset in window, target index) per target
    for d, (doc, tg) in enumerate(zip(docs, targets)):
        tg = np.asarray(tg, dtype=np.int64)
        order = np.argsort(tg, kind="stable")
        starts, owner = plan_windows(tg[order], N, D)
        base = len(batch)
        batch.extend((doc, int(s0)) for s0 in starts)
        picks.append((base + owner, tg[order] - starts[owner], order))
    offs = torch.arange(W, device=dev)
    win = torch.as_tensor(np.concatenate([row for row, _, _ in picks]), device=dev)  # every target's window...
    off = torch.as_tensor(np.concatenate([o for _, o, _ in picks]), device=dev)  # ...and its offset in it
    got = None
    for b in range(0, len(batch), max_batch):
        rows = torch.stack([doc[s0 + offs] for doc, s0 in batch[b:b + max_batch]])  # (w, W)
        sel = (win >= b) & (win < b + len(rows))
        part = picked_logprobs(net, rows, win[sel] - b, off[sel])
        if got is None:
            got = part.new_empty(len(win), part.shape[-1])
        got[sel] = part
    out, at = [], 0
    for row, _, order in picks:
        r = got[at:at + len(row)]
        at += len(row)
        res = torch.empty_like(r)
        res[torch.as_tensor(order, device=dev)] = r
        out.append(res)
    return out, len(batch)


@torch.inference_mode()
def teacher_forced_logprobs(net, shown: np.ndarray, blank: np.ndarray, steps: list[np.ndarray], target: np.ndarray,
                            D: int, *, device, batch_rows: int = 64) -> np.ndarray:
    """log p(target[p]) at every position p that ``steps`` fill, each seen as at its own step (teacher forcing).

    ``shown`` (N,) is the document with every position already written (its
    true token), ``blank`` (N,) what an undecided position shows, ``steps``
    the positions of each step in order, ``target`` (N,) the true output
    column per position. A position is visible in step k's rows iff it is
    known or filled by a step before k. One row per (step, window); rows are
    batched ``batch_rows`` per forward pass. Returns (N,) natural-log
    probabilities, 0 where no step fills.
    """
    N = len(shown)
    step_of = fill_steps(steps, N)  # step at which a position is filled; -1 = known
    row_step, row_start, tgt_row, tgt_pos = [], [], [], []
    for k, g in enumerate(steps):
        g = np.sort(np.asarray(g, dtype=np.int64))
        starts, owner = plan_windows(g, N, D)
        tgt_row.append(owner + len(row_step))
        tgt_pos.append(g)
        row_step.extend([k] * len(starts))
        row_start.extend(starts.tolist())
    out = np.zeros(N)
    if not row_step:
        return out
    row_step_a, row_start_a = np.asarray(row_step), np.asarray(row_start)
    tgt_row_a, tgt_pos_a = np.concatenate(tgt_row), np.concatenate(tgt_pos)
    W = min(N, D)
    target_t = torch.as_tensor(target, device=device)
    shown_t = torch.as_tensor(shown, device=device)
    blank_t = torch.as_tensor(blank, device=device)
    step_t = torch.as_tensor(step_of, device=device)
    offs = torch.arange(W, device=device)
    for r0 in range(0, len(row_step_a), batch_rows):
        r1 = min(len(row_step_a), r0 + batch_rows)
        idx = torch.as_tensor(row_start_a[r0:r1], device=device)[:, None] + offs[None, :]  # (b, W)
        hidden = step_t[idx] >= torch.as_tensor(row_step_a[r0:r1], device=device)[:, None]
        logp = net(torch.where(hidden, blank_t[idx], shown_t[idx]))  # (b, W, V)
        sel = (tgt_row_a >= r0) & (tgt_row_a < r1)
        rr, pp = tgt_row_a[sel], tgt_pos_a[sel]
        pp_t = torch.as_tensor(pp, device=device)
        lp = logp[torch.as_tensor(rr - r0, device=device), torch.as_tensor(pp - row_start_a[rr], device=device), target_t[pp_t]]
        out[pp] = lp.double().cpu().numpy()
    return out


__all__ = ["Cancelled", "plan_windows", "window_logprobs", "window_logprobs_many", "teacher_forced_logprobs"]
