"""The attention view: weights are distributions, the recorded path is the normal forward,
and on a model trained to copy, the most-attended character is the one that matters."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ardm_core import explain as explain_module
from ardm_core.checkpoint import LoadedModel
from ardm_core.explain import ExplainError, explain, explain_session, recorded_forward, to_json
from ardm_core.model import ARDMTransformer, preset_config
from ardm_core.objective import ardm_loss
from ardm_core.session import DecodeSession
from ardm_core.vocab import train_vocab
from tests.conftest import SAMPLE_TEXT, make_tiny_model


def _filled(model, text, masked, order="l2r", **kw):
    s = DecodeSession(model, text, masked, order=order, **kw)
    for _ in s.run():
        pass
    return s


def test_weights_are_distributions(tiny_model):
    s = _filled(tiny_model, SAMPLE_TEXT[:60], range(20, 30))
    ex = explain_session(s, 25)
    assert ex.attention.shape == (tiny_model.config.n_layer, tiny_model.config.n_head, 60)
    assert (ex.attention >= 0).all() and np.allclose(ex.attention.sum(-1), 1.0, atol=1e-5)
    assert (ex.aggregate >= 0).all() and ex.aggregate.sum() == pytest.approx(1.0, abs=1e-9)
    js = to_json(ex)
    assert sum(w["weight"] for w in js["weights"]) == pytest.approx(1.0, abs=1e-9)
    assert [w["position"] for w in js["weights"]] == list(range(60))
    assert all(w["char"] is None for w in js["weights"] if not w["known"])
    # occlusion: non-negative on known characters, zero elsewhere
    assert (ex.occlusion >= 0).all() and (ex.occlusion[~ex.known] == 0).all() and ex.occlusion[ex.known].sum() > 0
    # the step that filled it: earlier fills (positions 20..24, l2r) are context, later ones are not
    assert ex.step == 5 and ex.known[20:25].all() and not ex.known[25:30].any()


@pytest.mark.parametrize("overrides", [{}, {"positions": "sinusoid"}, {"condition_on_known": True}])
def test_recorded_path_reproduces_the_forward(overrides):
    m = make_tiny_model(seed=3, **overrides)
    ids = torch.as_tensor(m.vocab.encode(SAMPLE_TEXT[:64]))[None, :].clone()
    ids[0, 10:30] = m.net.mask_id
    with torch.inference_mode():
        plain = m.net(ids)
    logp, layers = recorded_forward(m.net, ids)
    assert len(layers) == m.config.n_layer
    torch.testing.assert_close(logp, plain, atol=1e-5, rtol=0)


@pytest.mark.parametrize("order", ["l2r", "confidence"])
def test_probabilities_match_the_step_in_a_long_document(tiny_model, order):
    text = (SAMPLE_TEXT * 2)[:300]  # several windows of 64
    masked = list(range(40, 60)) + list(range(200, 215))
    s = _filled(tiny_model, text, masked, order=order, steps=7)
    for p in (45, 210):
        ex = explain_session(s, p)
        st = s.steps[ex.step]
        i = st.positions.index(p)
        assert ex.probs[tiny_model.vocab.chars.index(st.chars[i])] == pytest.approx(st.probs[i], abs=1e-5)
        assert len(ex.chars) == tiny_model.config.block_size and ex.window_start <= p < ex.window_start + 64


def test_a_broken_recording_is_an_error_not_a_wrong_picture(tiny_model, monkeypatch):
    s = _filled(tiny_model, SAMPLE_TEXT[:40], range(5, 9))
    rotary = explain_module._apply_rotary
    monkeypatch.setattr(explain_module, "_apply_rotary", lambda mod, q, k, rope: rotary(mod, 3 * q, k, rope))
    with pytest.raises(ExplainError, match="does not reproduce"):
        explain_session(s, 6)


def test_bad_positions_and_models(tiny_model, tiny_upscale):
    s = DecodeSession(tiny_model, SAMPLE_TEXT[:40], range(5, 9), order="l2r")
    s.step()
    with pytest.raises(ExplainError, match="known context"):
        explain_session(s, 2)
    with pytest.raises(ExplainError, match="not filled yet"):
        explain_session(s, 8)
    with pytest.raises(ExplainError, match="between 0 and 39"):
        explain_session(s, 40)
    for _ in s.run():
        pass
    with pytest.raises(ExplainError, match="filled at step 1"):
        explain_session(s, 6, step=3)
    assert explain_session(s, 8, step=1).step == 1  # still unknown at step 1: its prediction then
    with pytest.raises(ExplainError, match="upscaling"):
        explain(tiny_upscale, SAMPLE_TEXT[:40], [5], 5)


# -- a model trained to copy the character 3 to the left (or right) -----------------------------
ALPHABET = "abcdefgh"


def _copy_model(steps: int = 120, seed: int = 0) -> LoadedModel:
    """Windows of 6: three random letters, then the same three again (x[i+3] = x[i])."""
    vocab = train_vocab([ALPHABET * 4])
    torch.manual_seed(seed)
    cfg = preset_config("tiny", vocab_size=vocab.size, block_size=6, n_embd=48, n_head=2)
    net = ARDMTransformer(cfg)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    letters = torch.as_tensor(vocab.encode(ALPHABET))
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        half = letters[torch.randint(0, len(letters), (64, 3), generator=g)]
        loss = ardm_loss(net, torch.cat([half, half], 1), generator=g).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    return LoadedModel(net=net, vocab=vocab, config=cfg, path=None, loss_by_known=None, meta={"name": "copy"})


def test_the_most_attended_character_matters_most():
    m = _copy_model()
    text = "cahcah"
    ex = explain(m, text, [4], 4)  # 'a' at 4 copies position 1
    assert ex.probs[m.vocab.chars.index("a")] > 0.8  # the model has learnt the pattern
    ranked = ex.top(5)
    most, least = ranked[0][0], ranked[-1][0]
    assert most == 1
    # masking the most-attended character moves the prediction more than masking the least-attended
    kl_most = explain(m, text, [4, most], 4, occlusion=False).probs
    kl_least = explain(m, text, [4, least], 4, occlusion=False).probs
    def kl(q):
        p = ex.probs > 0  # <unk> has probability 0
        return float((ex.probs[p] * (np.log2(ex.probs[p]) - np.log2(q[p]))).sum())
    assert kl(kl_most) > kl(kl_least) + 1.0
    # the occlusion saliency agrees (it is the same measurement, batched)
    assert ex.occlusion[most] == pytest.approx(kl(kl_most), rel=1e-3, abs=1e-4)
    assert ex.occlusion.argmax() == most
