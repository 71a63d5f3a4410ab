"""Depth upscaling: stage maps are validated, the staged model is a normalised
distribution, and the training estimator is unbiased for the staged bound."""

import itertools
import math

import numpy as np
import pytest
import torch

from ardm_core.fileio import DataError
from ardm_core.model import ModelConfig
from ardm_core.stages import load_stage_map
from ardm_core.upscale import StageTables, stage_logprobs, upscale_loss, upscale_network

CHARS = ["", "a", "b", "c", "d"]  # id 0 is <unk>
SPEC = {"stages": [{"name": "class", "classes": [
    {"name": "ab", "chars": "ab"}, {"name": "cd", "chars": "cd"}, {"name": "other", "rest": True}]}]}


def tiny_upscale(D: int, spec=SPEC, chars=CHARS, seed=0):
    sm = load_stage_map(spec, chars)
    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=len(chars), block_size=D, n_layer=1, n_head=1, n_embd=8, mlp_ratio=2)
    net = upscale_network(sm, cfg=cfg).double().eval().requires_grad_(False)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.7)
    return sm, net, StageTables(sm, "cpu")


@torch.no_grad()
def exact_stage_nll(net, tables, x: torch.Tensor, s: int, order) -> float:
    D = len(x)
    decided = torch.zeros(D, dtype=torch.bool)
    total = 0.0
    target = tables.assign[s][x]
    for pos in order:
        inp = torch.where(decided, tables.tokens(x, s), tables.tokens(x, s - 1))[None]
        total -= float(stage_logprobs(net, tables, inp, s)[0, pos, target[pos]])
        decided[pos] = True
    return total


def test_staged_model_is_a_normalised_distribution():
    D = 2
    sm, net, tables = tiny_upscale(D)
    total = 0.0
    with torch.no_grad():
        for x in itertools.product(range(1, 5), repeat=D):
            x = torch.tensor(x)
            nll = sum(exact_stage_nll(net, tables, x, s, range(D)) for s in range(sm.S))
            total += math.exp(-nll)
    assert total == pytest.approx(1.0, abs=1e-9)


def test_stage_estimator_expectation_equals_average_exact_stage_nll():
    D = 3
    sm, net, tables = tiny_upscale(D)
    x = torch.tensor([1, 3, 4])
    orders = list(itertools.permutations(range(D)))
    with torch.no_grad():
        for s in range(sm.S):
            exact = sum(exact_stage_nll(net, tables, x, s, o) for o in orders) / len(orders)
            est = []
            for o in orders:
                rank = torch.empty(D, dtype=torch.long)
                rank[list(o)] = torch.arange(D)
                for t in range(1, D + 1):
                    out = upscale_loss(net, x[None], tables=tables, stage=torch.tensor([s]), rank=rank[None],
                                       t=torch.tensor([t]), n_context=torch.tensor([0]))
                    est.append(float(out.weighted_nll[0]) / sm.S)
            assert sum(est) / len(est) == pytest.approx(exact, rel=1e-12)


def test_single_member_classes_cost_nothing_at_the_character_stage():
    spec = {"stages": [{"name": "c", "classes": [{"name": "a", "chars": "a"}, {"name": "rest", "rest": True}]}]}
    sm, net, tables = tiny_upscale(3, spec)
    x = torch.tensor([1, 1, 2])  # a a b
    assert exact_stage_nll(net, tables, x[:2], 1, [0, 1]) == pytest.approx(0.0, abs=1e-12)
    assert exact_stage_nll(net, tables, x, 1, [0, 1, 2]) > 0


def test_context_positions_are_shown_as_characters_and_not_scored():
    D = 6
    sm, net, tables = tiny_upscale(D)
    x = torch.tensor([[1, 2, 3, 4, 1, 2]])
    rank = torch.arange(D)[None]
    # 5 context positions, t = 1: only position 5 is generated, and it is the only one scored
    out = upscale_loss(net, x, tables=tables, stage=torch.tensor([0]), rank=rank, t=torch.tensor([1]),
                       n_context=torch.tensor([5]))
    inp = torch.cat([x[0, :5], tables.tokens(x[0, 5:], -1)])[None]
    ref = -float(stage_logprobs(net, tables, inp, 0)[0, 5, tables.assign[0][x[0, 5]]])
    assert float(out.weighted_nll[0]) / sm.S == pytest.approx(ref, rel=1e-12)


def test_default_map_covers_every_character_once_and_nests():
    from ardm_core.vocab import Vocab  # noqa: F401  (the shipped vocabulary's characters)

    chars = [""] + list("\n\t\r etoahnsirdlumf,ywcgpb.vIkAT';SEO-LRMNH:CWDB\"?GFP!xUJjYq_][KzV10~2Z3()4567Q89X&=*+>{}@|£/")
    sm = load_stage_map("default", chars)
    assert sm.S == 2 and sm.sizes[1] == len(chars)
    names = [c.name for c in sm.classes[0]]
    cls = {ch: names[sm.assign[0][i]] for i, ch in enumerate(chars) if i}
    assert cls[" "] == "space" and cls["\n"] == "newline" and cls["e"] == "vowel" and cls["t"] == "consonant"
    assert cls["A"] == "Vowel" and cls["T"] == "Consonant" and cls["7"] == "digit" and cls["."] == "stop"
    assert cls["£"] == "other" and names[sm.assign[0][0]] == "other"  # <unk> goes to the rest class
    assert len({c.glyph for c in sm.classes[0]}) == len(names), "distinct glyphs"


@pytest.mark.parametrize("spec, message", [
    ({"stages": []}, "at least one coarse stage"),
    ({"stages": [{"classes": [{"name": "x", "chars": "ab"}]}]}, "exactly one class with \"rest\""),
    ({"stages": [{"classes": [{"name": "x", "chars": "ab"}, {"name": "y", "chars": "b"}, {"name": "r", "rest": True}]}]},
     "'b' is in both 'x' and 'y'"),
    ({"stages": [{"classes": [{"name": "x", "chars": "ab"}, {"name": "r", "rest": True}]},
                 {"classes": [{"name": "bc", "chars": "bc"}, {"name": "r", "rest": True}]}]}, "must refine"),
])
def test_bad_stage_maps_are_refused_with_a_reason(spec, message):
    with pytest.raises(DataError, match=message):
        load_stage_map(spec, CHARS)


def test_three_stage_map_is_a_normalised_distribution():
    spec = {"stages": [
        {"name": "coarse", "classes": [{"name": "abcd", "chars": "abcd"}, {"name": "r", "rest": True}]},
        {"name": "fine", "classes": [{"name": "ab", "chars": "ab"}, {"name": "cd", "chars": "cd"}, {"name": "r", "rest": True}]},
    ]}
    sm, net, tables = tiny_upscale(2, spec)
    assert sm.S == 3
    total = sum(math.exp(-sum(exact_stage_nll(net, tables, torch.tensor(x), s, [1, 0]) for s in range(3)))
                for x in itertools.product(range(1, 5), repeat=2))
    assert total == pytest.approx(1.0, abs=1e-9)


def test_warm_start_keeps_the_plain_model_at_the_character_stage():
    from ardm_core.model import ARDMTransformer

    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=8, mlp_ratio=2)
    base = ARDMTransformer(cfg).eval()
    sm = load_stage_map(SPEC, CHARS)
    net = upscale_network(sm, base).eval()
    tables = StageTables(sm, "cpu")
    x = torch.tensor([[1, 2, base.mask_id, base.mask_id]])
    # at the last stage with every undecided position's class unknown-free, outputs match on chars
    a = base(x)
    inp = torch.tensor([[1, 2, tables.tokens(torch.tensor(3), 0), tables.tokens(torch.tensor(4), 0)]])
    b = net(inp, stage=torch.tensor([1]), raw=True)[..., :5]
    torch.testing.assert_close(net(x, stage=torch.tensor([1]))[0, :2], a[0, :2])
    assert b.shape == (1, 4, 5)


def test_upscale_training_fresh_warm_started_and_resumed(tmp_path, sample_text):
    from ardm_core.checkpoint import load_model
    from ardm_core.train import TrainConfig, TrainFinished, train

    d = tmp_path / "corpus"
    d.mkdir()
    (d / "train.txt").write_text(sample_text * 6, encoding="utf-8")
    (d / "valid.txt").write_text(sample_text * 2, encoding="utf-8")
    base = dict(data=[str(d)], preset="tiny", block_size=32, batch_size=4, steps=6, warmup=2, eval_every=3,
                eval_batches=2, save_every=3, threads=1, seed=3)
    plain = list(train(TrainConfig(out=str(tmp_path / "plain"), **base)))[-1]
    up = list(train(TrainConfig(out=str(tmp_path / "up"), init=plain.model_dir, upscale="default", **base)))
    assert isinstance(up[-1], TrainFinished)
    m = load_model(up[-1].model_dir)
    assert m.is_upscale and m.stages.S == 2 and m.config.n_class_tokens == m.stages.n_class_tokens
    fresh = list(train(TrainConfig(out=str(tmp_path / "fresh"), upscale="default", **base)))[-1]
    assert load_model(fresh.model_dir).is_upscale
    # resuming an upscaling run keeps its stage map
    more = list(train(TrainConfig(out=str(tmp_path / "fresh"), upscale="default", **{**base, "steps": 9})))
    assert more[0].start_step == 6 and load_model(more[-1].model_dir).is_upscale
