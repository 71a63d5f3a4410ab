"""Hand-picked positions as an order of the core: the picks, one per step, then the rest under another order."""

from __future__ import annotations

import numpy as np
import pytest

from ardm_core.orders import Plan
from ardm_core.session import DecodeSession, score

TEXT = "It is a truth universally acknowledged, that a single man in possession of a good fortune"
MASK = list(range(40, 52))
PICKS = [45, 42, 47]


def filled_order(s) -> list[int]:
    return [p for st in s.steps for p in st.positions]


def test_picks_then_the_rest_under_the_order(tiny_model):
    s = DecodeSession(tiny_model, TEXT, MASK, order="r2l", picks=PICKS, seed=1)
    list(s.run())
    rest = sorted(set(MASK) - set(PICKS), reverse=True)
    assert filled_order(s) == PICKS + rest and len(s.steps) == len(MASK)
    # a budget covers the rest: three pick steps, then K steps
    b = DecodeSession(tiny_model, TEXT, MASK, order="l2r", picks=PICKS, steps=3, seed=1)
    list(b.run())
    assert [len(st.positions) for st in b.steps][:3] == [1, 1, 1] and len(b.steps) == 6
    assert filled_order(b) == PICKS + sorted(set(MASK) - set(PICKS))


def test_a_branch_inside_the_picks_keeps_the_picks_left(tiny_model):
    """Resampling at step 1 of picks (45, 42, 47) then r2l: 42 and 47 come next, then the rest right to left."""
    s = DecodeSession(tiny_model, TEXT, MASK, order="r2l", picks=PICKS, seed=1)
    s.step()
    b = s.branch(1, seed=7)
    list(b.run())
    rest = sorted(set(MASK) - set(PICKS), reverse=True)
    assert filled_order(b) == PICKS + rest
    c = s.branch(1, order="l2r", picks=())  # another order, without the picks
    list(c.run())
    assert filled_order(c) == [45] + sorted(set(MASK) - {45})


def test_the_app_resamples_a_hand_picked_run_without_losing_picks(tiny_model):
    from app.jobs import EngineState, FillControl, advance_job, branch_job, start_fill_job
    from app.run_record import RunOptions

    state, control = EngineState(model=tiny_model), FillControl()
    opts = RunOptions(order="explicit", explicit=tuple(PICKS), rest_order="r2l", seed=0)
    list(start_fill_job(state, 1, TEXT, MASK, opts))
    list(advance_job(state, control, control.generation, 1))  # paused after step 1
    list(branch_job(state, 2, 1, RunOptions(**{**opts.__dict__, "seed": 5})))
    list(advance_job(state, control, control.generation, None))
    assert filled_order(state.session) == PICKS + sorted(set(MASK) - set(PICKS), reverse=True)


def test_score_with_picks_equals_teacher_forced_steps(tiny_model):
    r = score(tiny_model, TEXT, MASK, order="centre-out", picks=PICKS, steps=4)
    s = DecodeSession(tiny_model, TEXT, MASK, order="centre-out", picks=PICKS, steps=4, teacher=True)
    bits = np.zeros(len(TEXT))
    for st in s.run():
        bits[list(st.positions)] = st.bits
    assert np.allclose(r.bits, bits[MASK], atol=1e-4) and r.network_calls == len(s.steps) == 7
    assert s.result() == TEXT  # teacher forcing writes the truth


@pytest.mark.parametrize("picks,match", [([45, 45], "repeated: 45"), ([3], "not masked"), (["x"], "integer positions")])
def test_bad_picks_are_refused_before_any_network_call(tiny_model, picks, match):
    with pytest.raises(ValueError, match=match):
        DecodeSession(tiny_model, TEXT, MASK, order="l2r", picks=picks)


def test_a_plan_must_cover_the_masks_exactly():
    masked = np.arange(10)
    with pytest.raises(ValueError, match="cover the 10 positions"):
        Plan(20, masked, "l2r", sizes=[4, 4])
    p = Plan(20, masked, "random", sizes=[4, 6], seed=3)
    steps = p.fixed_steps()
    assert [len(g) for g in steps] == [4, 6] and sorted(np.concatenate(steps).tolist()) == list(range(10))
