"""Ranked alternatives, real-words decoding through the session, and any-length gaps (tiny and stub models)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ardm_core.alternatives import MAX_ALTERNATIVES, fill_alternatives
from ardm_core.checkpoint import LoadedModel
from ardm_core.lexicon import WordsOptions, build_lexicon_bytes, nonwords, parse_lexicon
from ardm_core.sampling import SamplingOptions
from ardm_core.session import DecodeSession

from ..conftest import SAMPLE_TEXT

TEXT = "It is a truth universally acknowledged, that a single man in possession of a good fortune."
LEX = parse_lexicon(build_lexicon_bytes(SAMPLE_TEXT, min_count=1))
WORDS = WordsOptions(LEX, document_words=False)


def _free_of(regions, p):
    return any(a <= p < b for a, b in regions)


@settings(max_examples=25)
@given(st.data())
def test_words_session_never_ends_with_a_nonword(tiny_model, data):
    """Random masks, orders (hand-picked included) and budgets K: every touched letter run is a lexicon word."""
    n = len(TEXT)
    masked = sorted(data.draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=14)))
    order = data.draw(st.sampled_from(["l2r", "r2l", "random", "confidence", "centre-out", "explicit"]))
    explicit = data.draw(st.permutations(masked)) if order == "explicit" else None
    K = data.draw(st.one_of(st.none(), st.integers(1, len(masked))))
    s = DecodeSession(tiny_model, TEXT, masked, order=order, explicit=explicit, steps=K, words=WORDS,
                      sampling=SamplingOptions(temperature=data.draw(st.sampled_from([0.5, 1.0, 3.0]))),
                      seed=data.draw(st.integers(0, 99)))
    for _ in s.run():
        pass
    out = s.result()
    free = s.unconstrained_regions
    checked = [p for p in masked if not _free_of(free, p)]
    assert nonwords(out, LEX, checked) == []
    for stp in s.steps:
        assert len(stp.constrained_bits) == len(stp.positions)
        assert all(c >= 0 for c in stp.constrained_bits)


def test_unsatisfiable_region_is_filled_freely_and_reported(tiny_model):
    text = "qqqq_ is a truth."
    s = DecodeSession(tiny_model, text, [4], words=WORDS)
    for _ in s.run():
        pass
    assert s.unconstrained_regions == [(0, 5)]


def test_words_with_document_words():
    lex = LEX.with_words(["zorro"])
    assert lex.is_word("Zorro") and not LEX.is_word("zorro")


def test_words_refuses_upscaling_models(tiny_upscale_dir, capsys):
    from ardm_core.cli import main

    assert main(["infill", "--model", tiny_upscale_dir, "--text", "a __ b", "--words"]) == 2
    assert "plain model" in capsys.readouterr().err
    assert main(["infill", "--model", tiny_upscale_dir, "--text", "a __ b", "--alternatives", "2"]) == 2


def test_alternatives_sorted_distinct_and_replay(tiny_model):
    masked = list(range(8, 13))
    r1 = fill_alternatives(tiny_model, TEXT, masked, n=6, seed=3)
    r2 = fill_alternatives(tiny_model, TEXT, masked, n=6, seed=3)
    texts = [a.text for a in r1.alternatives]
    assert len(set(texts)) == len(texts)
    assert [a.score_bits for a in r1.alternatives] == sorted(a.score_bits for a in r1.alternatives)
    assert sum(a.count for a in r1.alternatives) == 6
    assert [(a.text, a.bits) for a in r1.alternatives] == [(a.text, a.bits) for a in r2.alternatives]
    assert r1.network_calls == 5  # one batched call per step, not one per alternative
    for a in r1.alternatives:
        assert a.fill == a.text[8:13] and a.length == 5
        assert a.bits_per_char == pytest.approx(a.bits / 5)


def test_batched_alternatives_equal_single_sessions(tiny_model):
    """The batch changes nothing but the cost: each alternative is what its seed gives alone."""
    masked = [3, 4, 20, 21, 22]
    r = fill_alternatives(tiny_model, TEXT, masked, n=4, seed=10, order="random", steps=3, words=WORDS)
    for a in r.alternatives:
        s = DecodeSession(tiny_model, TEXT, masked, order="random", steps=3, seed=a.seed, words=WORDS)
        for _ in s.run():
            pass
        assert s.result() == a.text
        assert s.total_bits == pytest.approx(a.bits, abs=1e-4)
        assert a.constrained_bits == pytest.approx(sum(sum(x.constrained_bits) for x in s.steps), abs=1e-4)


def test_greedy_duplicates_merge(tiny_model):
    r = fill_alternatives(tiny_model, TEXT, [5, 6], n=5, sampling=SamplingOptions(greedy=True))
    assert len(r.alternatives) == 1 and r.alternatives[0].count == 5


@pytest.mark.parametrize("n", [0, -1, MAX_ALTERNATIVES + 1, 2.5, True])
def test_bad_counts(tiny_model, n):
    with pytest.raises(ValueError, match="alternatives"):
        fill_alternatives(tiny_model, TEXT, [1], n=n)


@pytest.mark.parametrize("lengths,msg", [((3, 2), "empty"), ((0, 3), "empty"), ((1, 64), "window"), (("a", 2), "integers")])
def test_bad_length_ranges(tiny_model, lengths, msg):
    with pytest.raises(ValueError, match=msg):
        fill_alternatives(tiny_model, TEXT, [5, 6], n=1, lengths=lengths)


def test_any_length_needs_known_text(tiny_model):
    with pytest.raises(ValueError, match="fully masked"):
        fill_alternatives(tiny_model, "abc", [0, 1, 2], n=1, lengths=(1, 3))
    with pytest.raises(ValueError, match="one contiguous"):
        fill_alternatives(tiny_model, TEXT, [1, 5], n=1, lengths=(1, 3))


# -- any length on a stub network with a known answer -----------------------------------------------
@dataclass
class _Cfg:
    vocab_size: int
    block_size: int


class _Stub(torch.nn.Module):
    """Knows one text: when the window has its length, predicts its characters with p = 0.99; otherwise uniform."""

    def __init__(self, ids: np.ndarray, V: int, D: int):
        super().__init__()
        self.ids, self.V = torch.as_tensor(ids), V
        self.cfg = _Cfg(V, D)
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    @property
    def mask_id(self) -> int:
        return self.V

    def forward(self, x):
        B, T = x.shape
        logp = torch.full((B, T, self.V), float(np.log(1.0 / (self.V - 1))))
        if T == len(self.ids):
            logp = torch.full((B, T, self.V), float(np.log(0.01 / (self.V - 2))))
            logp.scatter_(2, self.ids[None, :, None].expand(B, T, 1), float(np.log(0.99)))
        logp[:, :, 0] = -np.inf
        return logp


def test_any_length_picks_the_length_the_model_knows(tiny_model):
    truth = "a good fortune"
    vocab = tiny_model.vocab
    stub = _Stub(vocab.encode(truth), vocab.size, 64)
    model = LoadedModel(net=stub, vocab=vocab, config=stub.cfg, path=None, loss_by_known=None)
    text = "a go____rtune"  # the gap (positions 4..7) is a placeholder: the true gap is "od fo", 5 characters
    r = fill_alternatives(model, text, [4, 5, 6, 7], n=2, lengths=(2, 8), sampling=SamplingOptions(greedy=True))
    assert r.chosen_length == 5
    assert r.alternatives[0].text == truth and r.alternatives[0].length == 5
    assert [d["length"] for d in r.lengths] == list(range(2, 9))
    best = {d["length"]: d["score_bits"] for d in r.lengths}
    assert all(best[5] < v for L, v in best.items() if L != 5)


def test_context_trim_places_fills_back(tiny_model):
    text = "x" * 30 + TEXT + "y" * 30
    a = 30 + 8
    r = fill_alternatives(tiny_model, text, list(range(a, a + 5)), n=3, seed=1, context=10)
    for alt in r.alternatives:
        assert len(alt.text) == len(text) and alt.text[:a] == text[:a] and alt.text[a + 5:] == text[a + 5:]
        assert alt.spans == ((a, a + 5),) and alt.fill == alt.text[a:a + 5]
    with pytest.raises(ValueError, match="context"):
        fill_alternatives(tiny_model, text, [a], n=1, context=-1)
