"""The network: a bidirectional pre-LayerNorm Transformer over characters.

No causal mask: every position sees every other (paper section 3: one network
f predicts a categorical distribution for every masked position at once). The
absorbing ``[MASK]`` input id tells the network which positions are unknown.
Positions enter through rotary embeddings (RoPE) on queries and keys, which
lets a character model pick up locality within the first hundred steps
(measured on this hardware; learned absolute embeddings sat at the unigram
plateau for hundreds of steps).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 100  # predictable ids incl. <unk> (id 0); [MASK] is vocab_size
    block_size: int = 256  # characters per window (D)
    n_layer: int = 4  # Transformer blocks
    n_head: int = 4  # attention heads; n_embd must divide evenly
    n_embd: int = 256  # model width
    mlp_ratio: int = 4  # MLP hidden width = mlp_ratio * n_embd
    dropout: float = 0.0  # the objective already injects plenty of noise
    positions: str = "rope"  # "rope" (rotary on q, k) or "sinusoid" (added to inputs)
    rope_base: float = 10000.0  # RoPE frequency base
    condition_on_known: bool = False  # add an embedding of the number of known positions
    n_stage: int = 1  # >1 only for a depth-upscaling model: an embedding tells the stage
    causal: bool = False  # single-order baseline only: causal mask, inputs shifted right by one
    n_class_tokens: int = 0  # depth upscaling: coarse-class symbols of the stages before the last (inputs and outputs)

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}")
        if self.positions not in POSITIONS:
            raise ValueError(f"unknown positions {self.positions!r}; choose from {sorted(POSITIONS)}")
        if self.vocab_size < 2:
            raise ValueError("vocab_size must be at least 2")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown model config fields {unknown}")
        return cls(**d)


POSITIONS = ("rope", "sinusoid")

PRESETS: dict[str, dict] = {
    # tests: runs a forward pass in a millisecond
    "tiny": dict(n_layer=2, n_head=2, n_embd=32, mlp_ratio=2),
    # CPU: about 3.2M parameters, ~30 ms per 1x256 forward on 2 cores
    "small": dict(n_layer=4, n_head=4, n_embd=256, mlp_ratio=4),
    # GPU-trained option: about 10.8M parameters, 6 blocks of width 384 (3.3x small's FLOPs)
    "medium": dict(n_layer=6, n_head=6, n_embd=384, mlp_ratio=4),
    # GPU: the paper's text8 shape (12 layers, width 768, 12 heads, MLP 3072)
    "base": dict(n_layer=12, n_head=12, n_embd=768, mlp_ratio=4),
}


def preset_config(name: str, **overrides) -> ModelConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return ModelConfig(**{**PRESETS[name], **overrides})


def forward_flops(cfg: ModelConfig, batch: int, T: int) -> int:
    """Floating-point operations of one forward on (batch, T) ids, counting a multiply-add as two.

    The matrix products only (qkv, attention scores and mix, projection, MLP,
    output head): everything else is O(B T C), three orders smaller.
    """
    C, V = cfg.n_embd, cfg.vocab_size + cfg.n_class_tokens
    per_layer = 2 * T * C * 3 * C + 2 * 2 * T * T * C + 2 * T * C * C + 2 * 2 * T * C * cfg.mlp_ratio * C
    return batch * (cfg.n_layer * per_layer + 2 * T * C * V)


def _rope_tables(T: int, head_dim: int, base: float, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    inv = 1.0 / (base ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim))
    t = torch.arange(T, device=device, dtype=torch.float32)
    freqs = torch.outer(t, inv)  # (T, hd/2)
    return freqs.cos().to(dtype), freqs.sin().to(dtype)


def _apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding, written out: x (B, H, T, hd); each (even, odd) pair turns by its angle."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    r1 = x1 * cos - x2 * sin
    r2 = x1 * sin + x2 * cos
    return torch.stack((r1, r2), dim=-1).flatten(-2)


def _rope_heads(x: torch.Tensor, n: int, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of n heads side by side, as one complex product: x (B, T, n*hd) -> (B, T, n, hd).

    Each (even, odd) pair is the complex number even + i*odd and turns by
    multiplication with cos + i*sin: the same four products and two sums as
    ``_apply_rope``, so fp32 and fp64 results are bit-identical, in one
    kernel instead of ten and without a concatenation. ``cos``/``sin`` are
    (T, hd/2), or (B, T, hd/2) when each row has its own positions.
    Reduced-precision inputs turn in fp32 (there is no bfloat16 complex type).
    """
    B, T, Cn = x.shape
    hd = Cn // n
    if torch.compiler.is_compiling():  # the compiler fuses the real form into one kernel; it has no complex kernels
        y = x.unflatten(-1, (n, hd // 2, 2))
        x1, x2, c, s = y[..., 0], y[..., 1], cos.unsqueeze(-2), sin.unsqueeze(-2)
        return torch.stack((x1 * c - x2 * s, x1 * s + x2 * c), dim=-1).flatten(-2)
    dtype = x.dtype
    if dtype not in (torch.float32, torch.float64):
        x = x.float()
    z = torch.view_as_complex(x.unflatten(-1, (n, hd // 2, 2)))  # (B, T, n, hd/2), a view
    turn = torch.complex(cos.to(x.dtype), sin.to(x.dtype)).unsqueeze(-2)  # (T, 1, hd/2) or (B, T, 1, hd/2)
    return torch.view_as_real(z * turn).flatten(-2).to(dtype)  # (B, T, n, hd), contiguous


def _rope_qk(qk: torch.Tensor, n_head: int, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``_rope_heads`` on q and k at once: qk (B, T, 2C) -> q, k (B, H, T, hd)."""
    r = _rope_heads(qk, 2 * n_head, cos, sin)
    return r[:, :, :n_head].transpose(1, 2), r[:, :, n_head:].transpose(1, 2)


def _pack_bf16(w: torch.Tensor) -> torch.Tensor | None:
    """A bf16 weight (N, K) in oneDNN's own blocked layout, or None where oneDNN cannot (not a CPU tensor,
    a build without it). Packing once saves the reorder every call would do: on an AMX CPU here a bf16
    forward of the small model spends 4.0 ms in its products instead of 6.0 (bench/decode.py)."""
    if w.device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return None
    try:
        packed = torch.ops.mkldnn._reorder_linear_weight(w.contiguous(), 256)
        probe = torch.ones(1, w.shape[1], dtype=torch.bfloat16)
        if not torch.equal(torch.ops.mkldnn._linear_pointwise(probe, packed, None, "none", [], ""), F.linear(probe, w)):
            return None  # not the same numbers as the plain product: never use it
        return packed
    except (RuntimeError, AttributeError, NotImplementedError):
        return None


def _linear(layer: nn.Linear, x: torch.Tensor, part: slice | None = None) -> torch.Tensor:
    """``layer(x)`` (only the outputs ``part`` of it, if given); under bfloat16 autocast in inference,
    with a bf16 copy of the weight made once.

    Autocast casts an fp32 weight to bf16 on every call (3.2M parameters per
    forward of the small model: 12-17% of a bf16 step here). The copy is
    exactly that cast, kept until the weight changes, and on a CPU it is kept
    packed in oneDNN's layout (``_pack_bf16``); results are bit-identical to
    plain autocast (tests/core/test_fused_forward.py). It is a plain
    attribute: not a parameter, not in the state dict. Gradients, fp32,
    compiled and hooked layers take the ordinary path.
    """
    dev = x.device.type
    w = layer.weight
    if (torch.is_grad_enabled() or not torch.is_autocast_enabled(dev) or torch.get_autocast_dtype(dev) != torch.bfloat16
            or w.dtype != torch.float32 or torch.compiler.is_compiling() or layer._forward_hooks
            or layer._forward_pre_hooks or nn.modules.module._global_forward_hooks
            or nn.modules.module._global_forward_pre_hooks):
        if part is None:
            return layer(x)
        return F.linear(x, w[part], None if layer.bias is None else layer.bias[part])
    key = (w.data_ptr(), w._version, w.device)
    cache = layer.__dict__.setdefault("_bf16_weights", {})
    at = None if part is None else (part.start, part.stop)
    ent = cache.get(at)
    if ent is None or ent[0] != key:
        wb = (w if part is None else w[part]).detach().to(torch.bfloat16)
        b = layer.bias
        bb = None if b is None else (b if part is None else b[part]).detach().to(torch.bfloat16)
        packed = _pack_bf16(wb)
        ent = cache[at] = (key, wb if packed is None else None, bb, packed)
    if ent[3] is not None:
        return torch.ops.mkldnn._linear_pointwise(x.to(torch.bfloat16).contiguous(), ent[3], ent[2], "none", [], "")
    return F.linear(x, ent[1], ent[2])


def _hooked(module: nn.Module) -> bool:
    """Forward hooks on the module or anything in it, or global ones."""
    return bool(nn.modules.module._global_forward_hooks or nn.modules.module._global_forward_pre_hooks) or any(
        m._forward_hooks or m._forward_pre_hooks for m in module.modules())


def _gather_rows(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """x (B, T, ...) at the positions rows (B, R) of each row: (B, R, ...)."""
    return x[torch.arange(x.shape[0], device=x.device)[:, None], rows]


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.dropout = cfg.dropout
        self.rope = cfg.positions == "rope"
        self.causal = cfg.causal

    def forward(self, x, rope, attn_mask):
        B, T, C = x.shape
        H = self.n_head
        qkv = _linear(self.qkv, x)  # (B, T, 3C): q, k, v side by side
        if self.rope:
            q, k = _rope_qk(qkv[..., : 2 * C], H, *rope)  # (B, H, T, hd) each
        else:
            q, k = (qkv[..., i * C : (i + 1) * C].unflatten(-1, (H, C // H)).transpose(1, 2) for i in (0, 1))
        v = qkv[..., 2 * C :].unflatten(-1, (H, C // H)).transpose(1, 2)  # (B, H, T, hd), a view
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0,
            is_causal=self.causal and attn_mask is None,
        )  # (B, H, T, hd), laid out as (B, T, H, hd): the reshape below copies nothing
        return _linear(self.proj, y.transpose(1, 2).reshape(B, T, C))

    def forward_rows(self, x, rope, attn_mask, rows):
        """``forward(...)`` at the positions ``rows`` (B, R) only: (B, R, C). Keys and values come from every
        position; queries, the attention output and the projection only from the rows asked."""
        B, T, C = x.shape
        H = self.n_head
        R = rows.shape[1]
        kv = _linear(self.qkv, x, slice(C, 3 * C))  # (B, T, 2C): k, v
        q = _linear(self.qkv, _gather_rows(x, rows), slice(0, C))  # (B, R, C)
        if self.rope:
            cos, sin = rope
            k = _rope_heads(kv[..., :C], H, cos, sin).transpose(1, 2)  # (B, H, T, hd)
            q = _rope_heads(q, H, cos[rows], sin[rows]).transpose(1, 2)  # (B, H, R, hd), each at its own position
        else:
            k = kv[..., :C].unflatten(-1, (H, C // H)).transpose(1, 2)
            q = q.unflatten(-1, (H, C // H)).transpose(1, 2)
        v = kv[..., C:].unflatten(-1, (H, C // H)).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (B, H, R, hd)
        return _linear(self.proj, y.transpose(1, 2).reshape(B, R, C))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.n_embd)
        self.attn = Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.n_embd)
        hidden = cfg.mlp_ratio * cfg.n_embd
        self.mlp = nn.Sequential(nn.Linear(cfg.n_embd, hidden), nn.GELU(), nn.Linear(hidden, cfg.n_embd))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, rope, attn_mask):
        x = x + self.drop(self.attn(self.ln1(x), rope, attn_mask))
        up, act, down = self.mlp  # a Sequential for its state-dict keys (mlp.0, mlp.2)
        x = x + self.drop(_linear(down, act(_linear(up, self.ln2(x)))))
        return x

    def forward_rows(self, x, rope, attn_mask, rows):
        """``forward(...)`` at the positions ``rows`` (B, R) only (inference): (B, R, C)."""
        xr = _gather_rows(x, rows) + self.attn.forward_rows(self.ln1(x), rope, attn_mask, rows)
        up, act, down = self.mlp
        return xr + _linear(down, act(_linear(up, self.ln2(xr))))


class ARDMTransformer(nn.Module):
    """f(x_masked) -> log-probabilities over characters at every position."""

    takes_rows = True  # forward(..., rows=) computes the last block at those positions only

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        # inputs: characters, [MASK], then the class symbols of upscaling stages
        self.tok = nn.Embedding(cfg.vocab_size + 1 + cfg.n_class_tokens, cfg.n_embd)
        if cfg.condition_on_known:
            self.known_emb = nn.Embedding(cfg.block_size + 1, cfg.n_embd)
        if cfg.n_stage > 1:
            self.stage_emb = nn.Embedding(cfg.n_stage, cfg.n_embd)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        if cfg.positions == "rope":  # the rotation tables of every window length up to D, computed once
            cos, sin = _rope_tables(cfg.block_size, cfg.n_embd // cfg.n_head, cfg.rope_base, None, torch.float32)
            self.register_buffer("rope_cos", cos, persistent=False)  # (D, hd/2); not in the state dict
            self.register_buffer("rope_sin", sin, persistent=False)
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size + cfg.n_class_tokens)
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    @property
    def mask_id(self) -> int:
        return self.cfg.vocab_size

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(
        self,
        ids: torch.Tensor,  # (B, T) int64, [MASK] = vocab_size
        lengths: torch.Tensor | None = None,  # (B,) valid length per row; None = all T
        stage: torch.Tensor | None = None,  # (B,) stage index for upscaling models
        raw: bool = False,  # return ``logits`` (all outputs, unnormalised) instead
        rows: torch.Tensor | None = None,  # (B, R) positions whose outputs are wanted; None = all T
    ) -> torch.Tensor:
        """Log-probabilities (B, T, V) with <unk> (id 0) excluded: it gets -inf; (B, R, V) with ``rows``.

        Upscaling models (``n_class_tokens`` > 0) are read through
        ``ardm_core.upscale``, which restricts ``logits`` to one stage's symbols.
        """
        if raw:
            return self.logits(ids, lengths, stage, rows)
        logits = self.logits(ids, lengths, stage, rows)[..., : self.cfg.vocab_size]
        logits[..., 0] = float("-inf")  # never predict <unk>
        return F.log_softmax(logits, dim=-1)

    def logits(self, ids: torch.Tensor, lengths: torch.Tensor | None = None,
               stage: torch.Tensor | None = None, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Raw output scores (B, T, vocab_size + n_class_tokens), at least fp32.

        ``rows`` (B, R): the scores at those positions only, (B, R, ...). Every
        position still feeds the keys and values of every layer, but the last
        block computes queries, attention output, projection and MLP, and the
        head its scores, only at the rows asked: a decode step that fills one
        character of a 256-character window skips about a fifth of the work.
        Equal to ``logits(...)`` at those rows up to float rounding.
        """
        B, T = ids.shape
        x = self.tok(ids)  # (B, T, C)
        if self.cfg.positions == "sinusoid":
            x = x + _sinusoid(T, self.cfg.n_embd, x.device, x.dtype)
        if self.cfg.condition_on_known:
            valid = _valid(ids, lengths)
            n_known = ((ids != self.mask_id) & valid).sum(1).clamp(max=self.cfg.block_size)
            x = x + self.known_emb(n_known)[:, None, :]
        if self.cfg.n_stage > 1:
            if stage is None:
                raise ValueError("an upscaling model needs the stage index")
            x = x + self.stage_emb(stage)[:, None, :]
        rope = None
        if self.cfg.positions == "rope":
            rope = self._rope(T, x)
        attn_mask = None
        if lengths is not None:
            # padding keys are invisible: (B, 1, 1, T) boolean, True = attend
            attn_mask = (torch.arange(T, device=ids.device)[None, :] < lengths[:, None])[:, None, None, :]
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            if i == last and rows is not None:
                # a causal mask is laid out for queries at every position, dropout and hooks (explain.py records
                # attention) expect the whole block: compute all, then pick
                if self.cfg.causal or self.training or _hooked(block):
                    x = _gather_rows(block(x, rope, attn_mask), rows)
                else:
                    x = block.forward_rows(x, rope, attn_mask, rows)
            else:
                x = block(x, rope, attn_mask)
        logits = _linear(self.head, self.ln_f(x))  # (B, T or R, V + classes)
        if logits.dtype in (torch.float16, torch.bfloat16):
            logits = logits.float()  # softmax in at least fp32
        return logits

    def _rope(self, T: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin (T, hd/2) in x's dtype: the cached tables, or fresh ones past the block size."""
        if T <= self.rope_cos.shape[0]:
            return self.rope_cos[:T].to(x.dtype), self.rope_sin[:T].to(x.dtype)
        return _rope_tables(T, self.cfg.n_embd // self.cfg.n_head, self.cfg.rope_base, x.device, x.dtype)


def _valid(ids: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    B, T = ids.shape
    if lengths is None:
        return torch.ones(B, T, dtype=torch.bool, device=ids.device)
    return torch.arange(T, device=ids.device)[None, :] < lengths[:, None]


def _sinusoid(T: int, C: int, device, dtype) -> torch.Tensor:
    pos = torch.arange(T, device=device, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, C, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / C))
    pe = torch.zeros(T, C, device=device)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)
    return pe.to(dtype)


__all__ = ["ModelConfig", "ARDMTransformer", "PRESETS", "forward_flops", "preset_config", "replace"]
