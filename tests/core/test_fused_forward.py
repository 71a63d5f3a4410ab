"""The network's fused forward pass against a plain reference written out here.

The reference is the model's mathematics with nothing fused: rotary tables
computed afresh, each of q and k rotated on its own with a concatenation,
attention as an explicit softmax of q k^T. The fast forward must agree to
1e-5 in fp32 on tiny models of every kind and on the shipped model.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ardm_core.checkpoint import load_model
from ardm_core.model import ARDMTransformer, preset_config
from ardm_core.paths import default_model_dir

TOL = 1e-5


def _reference_rope(x: torch.Tensor, base: float) -> torch.Tensor:
    """x (B, H, T, hd): each (even, odd) pair turned by the angle t * base^(-2i/hd)."""
    T, hd = x.shape[-2], x.shape[-1]
    inv = 1.0 / (base ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    ang = torch.outer(torch.arange(T, dtype=torch.float32), inv)
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


def _reference_sinusoid(T: int, C: int, dtype) -> torch.Tensor:
    pos = torch.arange(T, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, C, 2, dtype=torch.float32) * (-math.log(10000.0) / C))
    pe = torch.zeros(T, C)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
    return pe.to(dtype)


@torch.no_grad()
def reference_logits(net: ARDMTransformer, ids, lengths=None, stage=None) -> torch.Tensor:
    """The network's raw outputs (B, T, V + classes), computed step by step from its parameters."""
    cfg = net.cfg
    B, T = ids.shape
    C, H = cfg.n_embd, cfg.n_head
    hd = C // H
    x = net.tok.weight[ids]
    if cfg.positions == "sinusoid":
        x = x + _reference_sinusoid(T, C, x.dtype)
    valid = torch.ones(B, T, dtype=torch.bool) if lengths is None else torch.arange(T)[None, :] < lengths[:, None]
    if cfg.condition_on_known:
        n_known = ((ids != cfg.vocab_size) & valid).sum(1).clamp(max=cfg.block_size)
        x = x + net.known_emb.weight[n_known][:, None, :]
    if cfg.n_stage > 1:
        x = x + net.stage_emb.weight[stage][:, None, :]
    visible = torch.ones(B, 1, T, T, dtype=torch.bool)
    if lengths is not None:
        visible = visible & valid[:, None, None, :]
    elif cfg.causal:
        visible = visible & torch.ones(T, T, dtype=torch.bool).tril()
    for blk in net.blocks:
        h = F.layer_norm(x, (C,), blk.ln1.weight, blk.ln1.bias)
        qkv = h @ blk.attn.qkv.weight.T + blk.attn.qkv.bias
        q, k, v = (qkv[..., i * C : (i + 1) * C].reshape(B, T, H, hd).transpose(1, 2) for i in range(3))
        if cfg.positions == "rope":
            q, k = _reference_rope(q, cfg.rope_base), _reference_rope(k, cfg.rope_base)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        w = torch.softmax(scores.masked_fill(~visible, float("-inf")), dim=-1)
        y = (w @ v).transpose(1, 2).reshape(B, T, C)
        x = x + (y @ blk.attn.proj.weight.T + blk.attn.proj.bias)
        h = F.layer_norm(x, (C,), blk.ln2.weight, blk.ln2.bias)
        lin1, lin2 = blk.mlp[0], blk.mlp[2]
        x = x + (F.gelu(h @ lin1.weight.T + lin1.bias) @ lin2.weight.T + lin2.bias)
    x = F.layer_norm(x, (C,), net.ln_f.weight, net.ln_f.bias)
    return x @ net.head.weight.T + net.head.bias


def _tiny(seed: int = 0, **overrides) -> ARDMTransformer:
    torch.manual_seed(seed)
    net = ARDMTransformer(preset_config("tiny", vocab_size=40, block_size=48, **overrides)).eval()
    with torch.no_grad():  # weights of a trained size, not the near-zero init, so differences would show
        for p in net.parameters():
            p.normal_(0.0, 0.3)
    return net


def _ids(net: ARDMTransformer, B: int, T: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, net.cfg.vocab_size, (B, T), generator=g)
    ids[torch.rand(B, T, generator=g) < 0.5] = net.mask_id
    return ids


KINDS = {
    "rope": {},
    "sinusoid": {"positions": "sinusoid"},
    "known": {"condition_on_known": True},
    "causal": {"causal": True},
    "stages": {"n_stage": 3, "n_class_tokens": 5},
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_tiny_models_match_the_reference(kind):
    net = _tiny(**KINDS[kind])
    stage = torch.tensor([0, 2, 1]) if net.cfg.n_stage > 1 else None
    for T in (48, 17, 1):  # the cached rotary tables at full and partial length
        ids = _ids(net, 3, T)
        with torch.inference_mode():
            got = net.logits(ids, stage=stage)
        assert (got - reference_logits(net, ids, stage=stage)).abs().max().item() <= TOL


def test_padded_rows_match_the_reference():
    net = _tiny()
    ids = _ids(net, 3, 48)
    lengths = torch.tensor([48, 30, 5])
    with torch.inference_mode():
        got = net.logits(ids, lengths)
    ref = reference_logits(net, ids, lengths)
    for b, n in enumerate(lengths.tolist()):  # padding positions themselves are never read
        assert (got[b, :n] - ref[b, :n]).abs().max().item() <= TOL


def test_log_probabilities_match_the_reference():
    net = _tiny()
    ids = _ids(net, 2, 48)
    with torch.inference_mode():
        got = net(ids)
    ref = torch.log_softmax(reference_logits(net, ids)[..., :].index_fill(-1, torch.tensor([0]), float("-inf")), -1)
    assert torch.isinf(got[..., 0]).all()
    assert (got[..., 1:] - ref[..., 1:]).abs().max().item() <= TOL


def test_windows_longer_than_the_block_size_still_turn_correctly():
    net = _tiny()
    ids = _ids(net, 1, 80)  # past the cached tables: computed afresh
    with torch.inference_mode():
        got = net.logits(ids)
    assert (got - reference_logits(net, ids)).abs().max().item() <= TOL


def test_float64_copy_matches_the_reference_closely():
    """Compression's float64 path runs the same forward: it agrees far below fp32 rounding."""
    net = _tiny().double()
    ids = _ids(net, 2, 48)
    with torch.inference_mode():
        got = net.logits(ids)
    assert got.dtype == torch.float64
    assert (got - reference_logits(net, ids)).abs().max().item() <= 1e-12


def test_training_gradients_flow_through_the_fused_rotary():
    net = _tiny().train()
    ids = _ids(net, 2, 48)
    net.logits(ids).square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_rotary_tables_are_not_part_of_the_state_dict():
    net = _tiny()
    assert not any("rope" in k for k in net.state_dict())
    assert ARDMTransformer(net.cfg).load_state_dict(net.state_dict()) is not None


@pytest.mark.skipif(not default_model_dir().exists(), reason="the shipped model is not present")
def test_shipped_model_matches_the_reference():
    """Probabilities to 1e-5; logits (up to ~20 in size) to 1e-5 of their scale.

    Two fp32 computations that sum in different orders differ by a few units
    in the last place: at logits near 20 that is ~1e-5 absolute (the
    reference itself is 3e-5 from a float64 evaluation), so the logit check
    is relative to the largest logit. In float64 the two agree to 1e-12.
    """
    model = load_model(default_model_dir(), "cpu")
    net = model.net.eval()
    D = model.config.block_size
    for B, T in ((1, D), (3, D // 2)):
        ids = _ids(net, B, T, seed=T)
        with torch.inference_mode():
            got = net.logits(ids)
        ref = reference_logits(net, ids)
        scale = max(1.0, ref.abs().max().item())
        assert (got - ref).abs().max().item() <= TOL * scale
        assert (got.softmax(-1) - ref.softmax(-1)).abs().max().item() <= TOL
    net64 = net.double()
    ids = _ids(net64, 1, D, seed=D)
    with torch.inference_mode():
        got = net64.logits(ids)
    assert (got - reference_logits(net64, ids)).abs().max().item() <= 1e-12


def _plain_autocast_logits(net: ARDMTransformer, ids) -> torch.Tensor:
    """bf16 autocast through nn.Linear itself: a no-op hook on every layer turns the cached bf16 weights off."""
    handles = [m.register_forward_hook(lambda *a: None) for m in net.modules() if isinstance(m, torch.nn.Linear)]
    try:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return net.logits(ids)
    finally:
        for h in handles:
            h.remove()


def test_bf16_with_cached_weights_is_exactly_plain_autocast():
    net = _tiny()
    ids = _ids(net, 2, 48)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        got = net.logits(ids)
    assert got.dtype == torch.float32
    assert torch.equal(got, _plain_autocast_logits(net, ids))
    assert not any("bf16" in k for k in net.state_dict())
    with torch.no_grad():  # weights changed in place: the cached copy must follow
        for p in net.parameters():
            p.mul_(1.5)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        again = net.logits(ids)
    assert torch.equal(again, _plain_autocast_logits(net, ids))
    assert not torch.equal(again, got)
    if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        packed = [e[3] for m in net.modules() if isinstance(m, torch.nn.Linear)
                  for e in m.__dict__.get("_bf16_weights", {}).values()]
        assert packed and all(p is not None for p in packed)  # the path checked above is oneDNN's packed one


def test_bf16_rows_only_equal_plain_autocast_at_those_rows():
    net = _tiny()
    ids = _ids(net, 2, 48)
    rows = _some_rows(2, 48, 6)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        got = net.logits(ids, rows=rows)
    ref = _plain_autocast_logits(net, ids)[torch.arange(2)[:, None], rows]
    assert (got - ref).abs().max().item() <= 0.05 * max(1.0, ref.abs().max().item())  # bf16 rounding, not more


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_rotary_is_bit_identical_to_the_written_out_one(dtype):
    """Same products, same sums: compression's float64 logits do not move (archives stay decodable)."""
    from ardm_core.model import _apply_rope, _rope_qk, _rope_tables

    H, hd, T = 4, 64, 256
    qk = torch.randn(3, T, 2 * H * hd, dtype=dtype)
    cos, sin = _rope_tables(T, hd, 10000.0, None, dtype)
    q, k = _rope_qk(qk, H, cos, sin)
    q0, k0 = (qk[..., i * H * hd : (i + 1) * H * hd].unflatten(-1, (H, hd)).transpose(1, 2) for i in (0, 1))
    assert torch.equal(q, _apply_rope(q0, cos, sin)) and torch.equal(k, _apply_rope(k0, cos, sin))


# -- the outputs at some rows only (a decode step reads the positions it fills) ------------------------------
def _some_rows(B: int, T: int, R: int, seed: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    rows = torch.stack([torch.randperm(T, generator=g)[:R] for _ in range(B)])
    rows[0, -1] = rows[0, 0]  # a row asked twice (the padding of window_logprobs repeats offsets)
    return rows


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_rows_only_match_the_reference_at_those_rows(kind):
    net = _tiny(**KINDS[kind])
    stage = torch.tensor([0, 2, 1]) if net.cfg.n_stage > 1 else None
    for T, R in ((48, 5), (17, 17), (1, 1)):
        ids = _ids(net, 3, T)
        rows = _some_rows(3, T, R)
        with torch.inference_mode():
            got = net.logits(ids, stage=stage, rows=rows)
        ref = reference_logits(net, ids, stage=stage)[torch.arange(3)[:, None], rows]
        assert got.shape == ref.shape and (got - ref).abs().max().item() <= TOL


def test_rows_only_with_padding_and_in_float64():
    net = _tiny()
    ids = _ids(net, 3, 48)
    lengths = torch.tensor([48, 30, 5])
    rows = torch.tensor([[0, 47, 20], [29, 1, 2], [4, 0, 0]])  # inside each row's length
    with torch.inference_mode():
        got = net.logits(ids, lengths, rows=rows)
    ref = reference_logits(net, ids, lengths)[torch.arange(3)[:, None], rows]
    assert (got - ref).abs().max().item() <= TOL
    net64 = net.double()
    with torch.inference_mode():
        got = net64.logits(ids, rows=rows)
    assert (got - reference_logits(net64, ids)[torch.arange(3)[:, None], rows]).abs().max().item() <= 1e-12


@pytest.mark.skipif(not default_model_dir().exists(), reason="the shipped model is not present")
def test_shipped_model_rows_only_match_the_full_forward():
    """The rows path against the model's own full forward (fp32: same tolerance as the reference test)."""
    model = load_model(default_model_dir(), "cpu")
    net = model.net.eval()
    D = model.config.block_size
    ids = _ids(net, 2, D, seed=D)
    rows = _some_rows(2, D, 40)
    with torch.inference_mode():
        full = net.logits(ids)[torch.arange(2)[:, None], rows]
        got = net.logits(ids, rows=rows)
        lp_full, lp = net(ids)[torch.arange(2)[:, None], rows], net(ids, rows=rows)
    assert (got - full).abs().max().item() <= TOL * max(1.0, full.abs().max().item())
    assert (lp[..., 1:].exp() - lp_full[..., 1:].exp()).abs().max().item() <= TOL
