"""The lexicon file and the exact word constraint, without a model."""

from __future__ import annotations

import gzip
import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ardm_core.lexicon import (LexiconError, RegionPrior, WordConstraint, build_lexicon_bytes, document_words,
                               load_lexicon, nonwords, parse_lexicon)

CORPUS = "a ba. ab a, bab ba a ab.\nA ba bab, ab a ba.\n"
VOCAB = ("", "a", "b", "A", "B", "c", " ", ".", ",", "\n")  # id 0 is <unk>


def lexicon(text: str = CORPUS, min_count: int = 1):
    return parse_lexicon(build_lexicon_bytes(text, min_count=min_count))


def test_build_is_reproducible_and_reads_back():
    a, b = build_lexicon_bytes(CORPUS), build_lexicon_bytes(CORPUS)
    assert a == b
    lex = parse_lexicon(a)
    assert set(lex.counts) == {"a", "ba", "ab", "bab"}
    assert lex.counts["a"] == 5  # "A" counts as "a"
    assert lex.types[0] == "W" and "\n" in lex.types


def test_min_count_drops_rare_words():
    lex = lexicon(CORPUS, min_count=3)
    assert set(lex.counts) == {"a", "ba", "ab"}


def test_case_rules():
    lex = lexicon()
    for w in ("ab", "Ab", "AB", "A", "a"):
        assert lex.is_word(w)
    for w in ("aB", "BaB", "abc", "c", ""):
        assert not lex.is_word(w)


def test_damaged_files_are_refused(tmp_path):
    with pytest.raises(LexiconError, match="missing"):
        load_lexicon(tmp_path / "none.gz")
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(LexiconError, match="gzip"):
        load_lexicon(bad)
    good = gzip.decompress(build_lexicon_bytes(CORPUS)).decode()
    header, body = good.split("\n", 1)
    cases = {
        "header": "{not json\n" + body,
        "version": json.dumps({"format": "other"}) + "\n" + body,
        "line 2 is": header + "\nab\tx\n",
        "holds no words": header + "\n",
    }
    for what, text in cases.items():
        bad.write_bytes(gzip.compress(text.encode()))
        with pytest.raises(LexiconError, match=what):
            load_lexicon(bad)
    h = json.loads(header)
    h["bigrams"] = [[1]]
    bad.write_bytes(gzip.compress((json.dumps(h) + "\n" + body).encode()))
    with pytest.raises(LexiconError, match="bigrams"):
        load_lexicon(bad)


def test_shipped_lexicon_loads_and_holds_common_words():
    lex = load_lexicon()
    assert 10_000 < len(lex) < 100_000
    for w in ("the", "and", "tea", "Elinor", "LORD"):
        assert lex.is_word(w), w
    assert lex.counts["the"] > lex.counts["thereat"] * 100


def test_document_words_skip_runs_touching_masks():
    text = "the cat xq_ dog"
    assert document_words(text, [10]) == ["the", "cat", "dog"]
    assert document_words(text) == ["the", "cat", "xq", "dog"]


def _completions(lex, chars, alphabet):
    """Every completion of the masked positions (brute force) and whether each is valid."""
    holes = [i for i, c in enumerate(chars) if c is None]
    for fill in itertools.product(alphabet, repeat=len(holes)):
        out = list(chars)
        for p, c in zip(holes, fill):
            out[p] = c
        text = "".join(out)
        yield fill, not nonwords(text, lex, holes)


@settings(max_examples=150)
@given(st.lists(st.sampled_from(["a", "b", "A", "c", " ", ".", None]), min_size=1, max_size=7))
def test_allowed_sets_are_exact(chars):
    """A character is allowed at a masked position iff some completion with it there makes every touched run a word."""
    lex = lexicon()
    if None not in chars:
        chars[0] = None
    alphabet = [c for c in VOCAB[1:]]
    holes = [i for i, c in enumerate(chars) if c is None]
    if len(holes) > 4:  # keep the brute force small
        return
    valid = [fill for fill, ok in _completions(lex, chars, alphabet) if ok]
    rp = RegionPrior(lex, VOCAB, chars)
    for k, p in enumerate(holes):
        res = rp.result(p)
        expect = {f[k] for f in valid}
        got = {VOCAB[i] for i in np.flatnonzero(np.isfinite(res.logq[p]))} if np.isfinite(res.log_z) else set()
        # regions are independent: a position's allowed set only needs its own region satisfiable
        if expect or got:
            region_ok = np.isfinite(res.log_z)
            if not region_ok:
                assert got == set()
                continue
            mine = [f for f, ok in _completions(lex, chars, alphabet)
                    if not nonwords("".join(c if c is not None else f[holes.index(i)] for i, c in enumerate(chars)),
                                    lex, [q for q in holes if res.start <= q < res.end])]
            assert got == {f[k] for f in mine}, (chars, p)


@settings(max_examples=100)
@given(st.data())
def test_filling_under_the_constraint_never_ends_with_a_nonword(data):
    """Random masks, random fill order, random choices among the allowed characters: no non-word survives."""
    lex = lexicon()
    text = data.draw(st.text(alphabet="abAc .,", min_size=1, max_size=12))
    masked = sorted(data.draw(st.sets(st.integers(0, len(text) - 1), min_size=1)))
    chars = [None if i in masked else c for i, c in enumerate(text)]
    wc = WordConstraint(lex, VOCAB, chars, prior_weight=data.draw(st.sampled_from([0.0, 1.0])))
    free = wc.report.unconstrained
    order = data.draw(st.permutations(masked))
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    for p in order:
        logp = np.log(rng.dirichlet(np.ones(len(VOCAB))))
        logp[0] = -np.inf
        adj, applied = wc.adjust(p, logp)
        pr = np.exp(adj - adj.max())
        i = int(rng.choice(len(VOCAB), p=pr / pr.sum()))
        assert i != 0
        wc.fill(p, VOCAB[i])
        chars[p] = VOCAB[i]
    assert wc.report.unconstrained == free  # a consistent fill never strands a region
    out = "".join(chars)
    checked = [p for p in masked if not any(a <= p < b for a, b in free)]
    assert nonwords(out, lex, checked) == []


def test_unsatisfiable_region_is_reported_and_left_free():
    lex = lexicon()
    chars = list("cc") + [None] + list(" ab")
    wc = WordConstraint(lex, VOCAB, chars)
    assert wc.report.unconstrained == [(0, 3)]
    logp = np.log(np.full(len(VOCAB), 1.0 / len(VOCAB)))
    adj, applied = wc.adjust(2, logp)
    assert not applied and np.array_equal(adj, logp)


def test_prior_prefers_common_words():
    lex = lexicon("the the the the thy then.\n")
    vocab = ("", "t", "h", "e", "y", "n", " ", ".", "\n")
    rp = RegionPrior(lex, vocab, list("th") + [None] + list(" x"))
    q = np.exp(rp.result(2).logq[2])
    assert q[vocab.index("e")] > 3 * q[vocab.index("y")]
    assert not np.isfinite(rp.result(2).logq[2][vocab.index("n")])  # "thn" is no word
