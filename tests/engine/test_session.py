"""DecodeSession: filling, accounting, orders and budgets, back/branch, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ardm_core.orders import order_names
from ardm_core.session import EMPTY_MASK_MESSAGE, DecodeSession, DecodeStep, SamplingOptions

TEXT = "It is a truth universally acknowledged, that a single man in pos"  # 64 characters: one window
MASK = [3, 4, 5, 10, 11, 12, 13, 40, 41, 63]


def explicit_for(masked):
    return list(np.random.default_rng(3).permutation(masked))


def run(model, text=TEXT, masked=MASK, **kw) -> DecodeSession:
    if kw.get("order") == "explicit" and "explicit" not in kw:
        kw["explicit"] = explicit_for(masked)
    s = DecodeSession(model, text, masked, **kw)
    for st in s.run():
        assert isinstance(st, DecodeStep)
    return s


def check_filled(s: DecodeSession, text: str, masked) -> str:
    out = s.result()
    assert len(out) == len(text)
    mset = set(masked)
    assert all(out[i] == text[i] for i in range(len(text)) if i not in mset), "unmasked text changed"
    assert all(s.vocab.contains(out[i]) for i in mset), "a masked position got a non-vocabulary character"
    assert sorted(p for st in s.steps for p in st.positions) == sorted(mset), "every mask filled exactly once"
    assert s.network_calls == len(s.steps) == s.total_network_calls
    return out


@pytest.mark.parametrize("order", order_names())
@pytest.mark.parametrize("steps", [None, 1, 4, len(MASK)])
def test_every_order_and_budget_fills_everything(tiny_model, order, steps):
    s = run(tiny_model, order=order, steps=steps)
    check_filled(s, TEXT, MASK)
    assert len(s.steps) == (len(MASK) if steps is None else steps)
    if steps is not None:
        assert tuple(len(st.positions) for st in s.steps) == s.schedule.sizes
    assert s.step() is None and s.done


def test_step_accounting(tiny_model):
    s = run(tiny_model, order="random", steps=3, seed=5)
    cum = 0.0
    for i, st in enumerate(s.steps):
        assert st.index == i and st.network_calls == i + 1 and st.windows == 1 and st.ms > 0
        k = len(st.positions)
        assert len(st.chars) == len(st.probs) == len(st.entropy) == len(st.topk) == len(st.bits) == k
        for ch, p, b, h, top in zip(st.chars, st.probs, st.bits, st.entropy, st.topk):
            assert b == pytest.approx(-math.log2(p))
            assert 0 <= h <= math.log2(tiny_model.vocab.size)
            assert len(top) == 5 and all(top[j][1] >= top[j + 1][1] for j in range(4))
            assert all(c != "" for c, _ in top)  # <unk> never a candidate
            if ch in dict(top):
                assert dict(top)[ch] == pytest.approx(p)
        assert st.step_bits == pytest.approx(sum(st.bits))
        cum += st.step_bits
        assert st.cumulative_bits == pytest.approx(cum)
    assert s.total_bits == pytest.approx(cum)


def test_probabilities_are_the_models(tiny_model):
    """A step's reported distribution is the network's output on the current text."""
    s = DecodeSession(tiny_model, TEXT, MASK, order="l2r")
    ids = tiny_model.vocab.encode(TEXT)
    ids[MASK] = tiny_model.net.mask_id
    with torch.inference_mode():
        logp = tiny_model.net(torch.as_tensor(ids)[None])[0, 3].double()
    st = s.step()
    assert st.positions == (3,)
    cid = tiny_model.vocab.chars.index(st.chars)
    assert st.probs[0] == pytest.approx(float(logp[cid].exp()), rel=1e-5)
    assert st.topk[0][0][1] == pytest.approx(float(logp.exp().max()), rel=1e-5)


def test_confidence_picks_the_most_confident(tiny_model):
    s = DecodeSession(tiny_model, TEXT, MASK, order="confidence", steps=3)
    ids = tiny_model.vocab.encode(TEXT)
    ids[MASK] = tiny_model.net.mask_id
    with torch.inference_mode():
        maxp = tiny_model.net(torch.as_tensor(ids)[None])[0, MASK].exp().max(-1).values.numpy()
    st = s.step()
    k = len(st.positions)
    expected = [MASK[i] for i in np.argsort(-maxp, kind="stable")[:k]]
    assert set(st.positions) == set(expected)


def test_explicit_order_is_followed(tiny_model):
    order = explicit_for(MASK)
    s = run(tiny_model, order="explicit", explicit=order)
    assert [st.positions[0] for st in s.steps] == order
    s = run(tiny_model, order="explicit", explicit=order, steps=3)
    assert [p for st in s.steps for p in st.positions] == order


def test_seed_determinism(tiny_model):
    a = run(tiny_model, order="random", seed=11).result()
    assert a == run(tiny_model, order="random", seed=11).result()
    others = {run(tiny_model, order="random", seed=k).result() for k in range(12, 16)}
    assert others - {a}, "different seeds should give different fills"


def test_greedy_and_its_equivalents(tiny_model):
    g = run(tiny_model, order="l2r", sampling=SamplingOptions(greedy=True))
    for st in g.steps:
        assert st.chars == st.topk[0][0][0]
    for opts in (SamplingOptions(top_k=1), SamplingOptions(top_p=1e-9), SamplingOptions(temperature=1e-4)):
        assert run(tiny_model, order="l2r", sampling=opts, seed=3).result() == g.result()


def test_back_and_replay(tiny_model):
    s = DecodeSession(tiny_model, TEXT, MASK, order="confidence", steps=5, seed=2)
    first = s.step()
    before = s.current_chars()
    second = s.step()
    assert s.back() == second
    assert s.current_chars() == before and len(s.steps) == 1
    again = s.step()  # randomness depends on seed and step index: the same step again
    assert (again.positions, again.chars) == (second.positions, second.chars)
    assert again.network_calls == 2 and s.total_network_calls == 3
    while s.back():
        pass
    assert s.current_chars().count(None) == len(MASK) and s.back() is None
    assert s.step().positions == first.positions


def test_branch(tiny_model):
    s = run(tiny_model, order="random", steps=6, seed=4)
    same = s.branch(6)
    assert same.done and same.result() == s.result()
    b = s.branch(3)
    assert b.steps == s.steps[:3] and not b.done
    for _ in b.run():
        pass
    assert b.result() == s.result()  # the same seed replays exactly
    assert [st.positions for st in b.steps] == [st.positions for st in s.steps]
    c = s.branch(2, seed=99, order="l2r", steps=2)
    assert c.steps == s.steps[:2]
    for _ in c.run():
        pass
    check_filled(c, TEXT, MASK)
    assert len(c.steps) == 4 and c.network_calls == 4
    rest = sorted(set(MASK) - {p for st in s.steps[:2] for p in st.positions})
    assert [p for st in c.steps[2:] for p in st.positions] == rest  # l2r after the branch point
    assert s.done and len(s.steps) == 6  # the parent is untouched
    with pytest.raises(ValueError, match="between 0 and 6"):
        s.branch(7)
    with pytest.raises(ValueError, match="cannot change"):
        s.branch(1, text="x")


def test_unknown_characters_are_context_only(tiny_model):
    text = "It is a \u0436truth \u4e2d universally"  # Cyrillic and CJK are not in the vocabulary
    assert not tiny_model.vocab.contains("\u0436")
    masked = [0, 1, 9, 15]  # 15 is the CJK character itself: still filled, with a vocabulary char
    s = run(tiny_model, text, masked, order="l2r")
    out = check_filled(s, text, masked)
    assert out[8] == "\u0436" and out[15] != "\u4e2d"
    cur = s.current_chars()
    assert cur[8] == "\u0436"


def test_all_masked_is_unconditional_generation(tiny_model):
    s = run(tiny_model, " " * 40, range(40), order="confidence", steps=8)
    out = check_filled(s, " " * 40, range(40))
    assert len(out) == 40 and len(s.steps) == 8


def test_bool_mask_equals_positions(tiny_model):
    m = np.zeros(len(TEXT), dtype=bool)
    m[MASK] = True
    assert run(tiny_model, masked=m, order="l2r", seed=1).result() == run(tiny_model, order="l2r", seed=1).result()


def test_empty_mask_is_a_noop(tiny_model):
    s = DecodeSession(tiny_model, TEXT, [], steps=3)
    assert s.done and s.message == EMPTY_MASK_MESSAGE and s.n_masked == 0
    assert s.step() is None and list(s.run()) == [] and s.result() == TEXT


def test_bad_input(tiny_model):
    with pytest.raises(ValueError, match=r"between 1 and 10"):
        DecodeSession(tiny_model, TEXT, MASK, steps=11)
    with pytest.raises(ValueError, match=r"between 1 and 10"):
        DecodeSession(tiny_model, TEXT, MASK, steps=0)
    with pytest.raises(ValueError, match="choose from"):
        DecodeSession(tiny_model, TEXT, MASK, order="zigzag")
    with pytest.raises(ValueError, match="out of range.*64"):
        DecodeSession(tiny_model, TEXT, [3, 64, 70])
    with pytest.raises(ValueError, match="one entry per character"):
        DecodeSession(tiny_model, TEXT, np.zeros(5, dtype=bool))
    with pytest.raises(ValueError, match="explicit"):
        DecodeSession(tiny_model, TEXT, MASK, order="explicit")
    with pytest.raises(ValueError, match="missing masked positions: 63"):
        DecodeSession(tiny_model, TEXT, MASK, order="explicit", explicit=MASK[:-1])
    with pytest.raises(RuntimeError, match="not done"):
        DecodeSession(tiny_model, TEXT, MASK).result()


@pytest.mark.parametrize("kw", [dict(temperature=0), dict(temperature=-1), dict(top_k=-1), dict(top_p=0), dict(top_p=1.5)])
def test_sampling_options_validate(kw):
    with pytest.raises(ValueError):
        SamplingOptions(**kw)


def test_model_without_table_splits_evenly(tiny_model):
    from dataclasses import replace

    m = replace(tiny_model, loss_by_known=None)
    s = DecodeSession(m, TEXT, MASK, steps=3)
    assert s.schedule.sizes == (4, 3, 3)


def test_bf16_precision_fills_everything_and_stays_close(tiny_model):
    text = "It is a truth universally acknowledged."
    masked = list(range(5, 20))
    a = DecodeSession(tiny_model, text, masked, order="l2r", seed=3)
    b = DecodeSession(tiny_model, text, masked, order="l2r", seed=3, precision="bf16")
    sa, sb = a.step(), b.step()
    assert sa.positions == sb.positions
    assert abs(sa.entropy[0] - sb.entropy[0]) < 0.1
    list(b.run())
    assert b.done and all(c is not None for c in b.current_chars())
    assert b.branch(2).precision == "bf16"
    with pytest.raises(ValueError, match="unknown precision"):
        DecodeSession(tiny_model, text, masked, precision="fp8")
