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


def _rope_qk(qk: torch.Tensor, n_head: int, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``_apply_rope`` on q and k at once, as one complex product: qk (B, T, 2C) -> q, k (B, H, T, hd).

    Each (even, odd) pair is the complex number even + i*odd and turns by
    multiplication with cos + i*sin: the same four products and two sums as
    ``_apply_rope``, so fp32 and fp64 results are bit-identical, in one
    kernel instead of ten and without a concatenation. Reduced-precision
    inputs turn in fp32 (there is no bfloat16 complex type).
    """
    B, T, C2 = qk.shape
    hd = C2 // (2 * n_head)
    if torch.compiler.is_compiling():  # the compiler fuses the real form into one kernel; it has no complex kernels
        x = qk.unflatten(-1, (2 * n_head, hd // 2, 2))
        x1, x2, c, s = x[..., 0], x[..., 1], cos[:, None, :], sin[:, None, :]
        r = torch.stack((x1 * c - x2 * s, x1 * s + x2 * c), dim=-1).flatten(-2)
        return r[:, :, :n_head].transpose(1, 2), r[:, :, n_head:].transpose(1, 2)
    dtype = qk.dtype
    if dtype not in (torch.float32, torch.float64):
        qk = qk.float()
    z = torch.view_as_complex(qk.unflatten(-1, (2 * n_head, hd // 2, 2)))  # (B, T, 2H, hd/2), a view
    turn = torch.complex(cos.to(qk.dtype), sin.to(qk.dtype))[:, None, :]  # (T, 1, hd/2)
    r = torch.view_as_real(z * turn).flatten(-2).to(dtype)  # (B, T, 2H, hd), contiguous
    return r[:, :, :n_head].transpose(1, 2), r[:, :, n_head:].transpose(1, 2)


def _linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)``; under bfloat16 autocast in inference, with a bf16 copy of the weight made once.

    Autocast casts an fp32 weight to bf16 on every call (3.2M parameters per
    forward of the small model: 12-17% of a bf16 step here). The copy is
    exactly that cast, kept until the weight changes, so results are
    bit-identical to plain autocast. It is a plain attribute: not a
    parameter, not in the state dict. Gradients, fp32 and hooked layers take
    the ordinary path.
    """
    dev = x.device.type
    w = layer.weight
    if (torch.is_grad_enabled() or not torch.is_autocast_enabled(dev) or torch.get_autocast_dtype(dev) != torch.bfloat16
            or w.dtype != torch.float32 or layer._forward_hooks or layer._forward_pre_hooks
            or nn.modules.module._global_forward_hooks or nn.modules.module._global_forward_pre_hooks):
        return layer(x)
    key = (w.data_ptr(), w._version, w.device)
    cached = layer.__dict__.get("_bf16_weights")
    if cached is None or cached[0] != key:
        b = layer.bias
        cached = (key, w.detach().to(torch.bfloat16), None if b is None else b.detach().to(torch.bfloat16))
        layer.__dict__["_bf16_weights"] = cached
    return F.linear(x, cached[1], cached[2])


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


class ARDMTransformer(nn.Module):
    """f(x_masked) -> log-probabilities over characters at every position."""

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
    ) -> torch.Tensor:
        """Log-probabilities (B, T, V) with <unk> (id 0) excluded: it gets -inf.

        Upscaling models (``n_class_tokens`` > 0) are read through
        ``ardm_core.upscale``, which restricts ``logits`` to one stage's symbols.
        """
        if raw:
            return self.logits(ids, lengths, stage)
        logits = self.logits(ids, lengths, stage)[..., : self.cfg.vocab_size]
        logits[..., 0] = float("-inf")  # never predict <unk>
        return F.log_softmax(logits, dim=-1)

    def logits(self, ids: torch.Tensor, lengths: torch.Tensor | None = None,
               stage: torch.Tensor | None = None) -> torch.Tensor:
        """Raw output scores (B, T, vocab_size + n_class_tokens), at least fp32."""
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
        for block in self.blocks:
            x = block(x, rope, attn_mask)
        logits = _linear(self.head, self.ln_f(x))  # (B, T, V + classes)
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
