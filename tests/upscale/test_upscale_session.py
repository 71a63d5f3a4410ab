"""Coarse-to-fine decoding: classes first, then characters inside them; exact scoring; budgets."""

import math

import numpy as np
import pytest

from ardm_core.checkpoint import load_model
from ardm_core.session import SamplingOptions, score
from ardm_core.upscale_session import StageView, UpscaleSession, split_budget, upscale_score

TEXT = "The cat sat on the mat. It was 9 o'clock!\nA dog barked."


def masked_positions(text, every=3):
    return [i for i in range(len(text)) if i % every == 1]


def test_classes_come_first_and_characters_stay_inside_them(tiny_upscale):
    sm = tiny_upscale.stages
    pos = masked_positions(TEXT)
    s = UpscaleSession(tiny_upscale, TEXT, pos, order="random", seed=3, sampling=SamplingOptions(temperature=1.0))
    steps = list(s.run())
    assert len(steps) == 2 * len(pos) and [st.index for st in steps] == list(range(len(steps)))
    assert [st.stage for st in steps] == [0] * len(pos) + [1] * len(pos)
    glyphs = [c.glyph for c in sm.classes[0]]
    cls = {p: glyphs.index(st.chars[0]) for st in steps[: len(pos)] for p in st.positions}
    out = s.result()
    ids = tiny_upscale.vocab.encode(out)
    for p in pos:
        assert sm.assign[0][ids[p]] == cls[p], f"character {out[p]!r} at {p} left its class"
    assert all(out[i] == TEXT[i] for i in range(len(TEXT)) if i not in set(pos))
    assert s.total_bits == pytest.approx(sum(st.step_bits for st in steps))


def test_current_chars_show_the_class_sketch_then_the_text(tiny_upscale):
    pos = masked_positions(TEXT)
    s = UpscaleSession(tiny_upscale, TEXT, pos, order="l2r", seed=0)
    for _ in range(len(pos)):
        s.step()
    sketch = s.current_chars()
    glyphs = {c.glyph for c in tiny_upscale.stages.classes[0]}
    assert all(sketch[p] in glyphs for p in pos)
    s.step()
    assert s.stage == 1 and (s.stage_of_positions() == 1).sum() == 1
    # back through the stage boundary restores the sketch
    s.back()
    s.back()
    assert s.stage == 0 and s.current_chars()[pos[-1]] is None


def test_branch_replays_the_prefix_and_keeps_the_original(tiny_upscale):
    pos = masked_positions(TEXT, 4)
    a = UpscaleSession(tiny_upscale, TEXT, pos, order="confidence", seed=1)
    steps = list(a.run())
    at = len(pos) + 2  # inside the character stage
    b = a.branch(at, seed=9)
    assert b.steps == steps[:at] and len(a.steps) == len(steps)
    rest = list(b.run())
    assert len(b.steps) == len(steps) and b.done and a.result() != "" and len(rest) == len(steps) - at


def test_budget_is_split_between_stages_and_respected(tiny_upscale):
    pos = masked_positions(TEXT)
    ks = split_budget(tiny_upscale, 10, len(pos), len(TEXT))
    assert sum(ks) == 10 and all(k >= 1 for k in ks)
    s = UpscaleSession(tiny_upscale, TEXT, pos, order="confidence", steps=10, seed=0)
    steps = list(s.run())
    assert len(steps) == 10 and s.done
    assert tuple(len(st.positions) for st in steps) == s.schedule.sizes, "the reported plan is the plan that ran"
    assert sum(len(st.positions) for st in steps) == 2 * len(pos)
    with pytest.raises(ValueError, match="between 2"):
        UpscaleSession(tiny_upscale, TEXT, pos, steps=1)


def test_score_sums_exact_stage_bits_and_matches_a_sampled_replay(tiny_upscale):
    """Teacher-forced staged bits equal -log2 of the probabilities a replay of the true text would have."""
    pos = masked_positions(TEXT)
    r = upscale_score(tiny_upscale, TEXT, pos, order="l2r")
    assert len(r.stage_bits) == 2 and r.total_bits == pytest.approx(sum(r.stage_bits))
    # stage by stage with dynamic-order stepping gives the same bits for l2r
    truth = tiny_upscale.vocab.encode(TEXT)
    for s in range(2):
        blank = None if s == 0 else tiny_upscale.stages.tokens(truth, s - 1)
        view = StageView(tiny_upscale, s, blank)
        fixed = score(view, TEXT, pos, order="l2r").total_bits
        assert fixed == pytest.approx(r.stage_bits[s], rel=1e-6)
    # single-member classes (space, newline) cost nothing at the character stage
    sp = [i for i, p in enumerate(pos) if TEXT[p] in " \n"]
    assert sp, "the test text masks some spaces"
    r1 = score(StageView(tiny_upscale, 1, tiny_upscale.stages.tokens(truth, 0)), TEXT, pos, order="l2r")
    assert np.allclose(r1.bits[sp], 0.0)


def test_saved_upscale_model_round_trips(tiny_upscale_dir, tiny_upscale):
    m = load_model(tiny_upscale_dir)
    assert m.is_upscale and m.stages.S == 2 and len(m.stage_loss_by_known) == 2
    r1 = upscale_score(m, TEXT, [1, 5, 9], order="l2r").total_bits
    r2 = upscale_score(tiny_upscale, TEXT, [1, 5, 9], order="l2r").total_bits
    assert r1 == pytest.approx(r2, rel=1e-5)


def test_plain_model_is_refused_with_a_clear_message(tiny_model):
    with pytest.raises(ValueError, match="not an upscaling model"):
        UpscaleSession(tiny_model, TEXT, [1, 2])


def test_the_first_class_can_be_sampled_at_the_class_stage(tiny_upscale):
    """Column 0 is <unk> only among characters; at the class stage it is a real class (space)."""
    sm = tiny_upscale.stages
    assert sm.classes[0][0].name == "space"
    text = "x" * 60
    s = UpscaleSession(tiny_upscale, text, range(60), order="random", seed=0,
                       sampling=SamplingOptions(temperature=3.0))
    glyphs = ""
    for _ in range(60):
        glyphs += s.step().chars
    counts = {c.glyph: glyphs.count(c.glyph) for c in sm.classes[0]}
    assert counts["·"] > 0, counts
    # greedy picks the likeliest class, which may be any column
    s2 = UpscaleSession(tiny_upscale, text, range(60), order="l2r", seed=0, sampling=SamplingOptions(greedy=True))
    st = s2.step()
    assert st.probs[0] == pytest.approx(max(p for _c, p in st.topk[0]))


def test_branch_with_a_new_budget_finishes_in_that_many_steps(tiny_upscale):
    pos = masked_positions(TEXT)
    a = UpscaleSession(tiny_upscale, TEXT, pos, order="random", seed=2)
    for _ in range(5):
        a.step()
    b = a.branch(5, steps=6)  # 6 more steps: the rest of the class stage and the character stage
    rest = list(b.run())
    assert len(rest) == 6 and b.done and len(b.steps) == 11
    with pytest.raises(ValueError, match="between 2"):
        a.branch(5, steps=1)
    list(a.run())
    c = a.branch(len(pos), steps=None)  # at the stage boundary: the character stage, one per step
    assert len(list(c.run())) == len(pos) and c.steps[: len(pos)] == a.steps[: len(pos)]


def test_branch_budget_is_refused_or_kept_before_any_network_call(tiny_upscale):
    """Ten masks, nine class steps taken: the rest is 1 class step and 10 character steps at most."""
    pos = masked_positions(TEXT)[:10]
    a = UpscaleSession(tiny_upscale, TEXT, pos, order="l2r", seed=0)
    for _ in range(9):
        a.step()
    with pytest.raises(ValueError, match="between 2 .* and 11"):
        a.branch(9, steps=20)  # once planned as [1, 19] and failed in the character stage
    for K in (2, 5, 11):
        b = a.branch(9, steps=K)
        assert len(list(b.run())) == K and b.done
        assert b.stage_steps[0] is None and b.stage_steps[1] == K - 1
        assert tuple(len(st.positions) for st in b.steps[9:]) == b.schedule.sizes, "the reported plan is the plan that ran"
