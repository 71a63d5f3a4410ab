from pathlib import Path

import pytest

from ardm_core.vocab import UNK_ID, Vocab, VocabError, train_vocab

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus" / "train.txt"


@pytest.fixture(scope="module")
def vocab(sample_text):
    return train_vocab([sample_text])


def roundtrip(v: Vocab, s: str) -> None:
    ids = v.encode(s)
    assert len(ids) == len(s), "exactly one id per character"
    assert v.decode(ids, original=s) == s


def test_one_id_per_char_and_round_trip(vocab, sample_text):
    ids = vocab.encode(sample_text)
    assert len(ids) == len(sample_text)
    assert (ids != UNK_ID).all(), "every training character is in the vocabulary"
    assert vocab.decode(ids) == sample_text


def test_newline_tab_space_are_symbols(vocab):
    for c in "\n\t ":
        assert vocab.contains(c)
        assert vocab.encode(c)[0] != UNK_ID


def test_run_of_unknown_chars_is_one_unk_each(vocab):
    s = "a\u4e2d\u6587\u5b57b"
    ids = vocab.encode(s)
    assert list(ids[1:4]) == [UNK_ID] * 3
    roundtrip(vocab, s)


def test_literal_sentencepiece_space_is_not_a_space(vocab):
    s = "a\u2581b"
    ids = vocab.encode(s)
    assert ids[1] == UNK_ID  # not read as " "
    assert vocab.decode(ids) != "a b"
    roundtrip(vocab, s)


def test_crlf_emoji_and_empty(vocab):
    roundtrip(vocab, "line one\r\nline two\r\n")
    roundtrip(vocab, "smile \U0001F600\U0001F600 ok")
    assert len(vocab.encode("\U0001F600")) == 1
    assert len(vocab.encode("")) == 0
    assert vocab.decode([]) == ""


def test_mask_id_is_one_past_the_vocabulary(vocab):
    assert vocab.mask_id == vocab.size
    assert UNK_ID == 0


def test_proto_round_trip_and_errors(vocab, tmp_path):
    p = tmp_path / "vocab.model"
    vocab.save(p)
    again = Vocab.load(p)
    assert again.chars == vocab.chars and again.sha256 == vocab.sha256
    (tmp_path / "bad.model").write_bytes(b"not a model")
    with pytest.raises(VocabError, match="bad.model"):
        Vocab.load(tmp_path / "bad.model")
    with pytest.raises(VocabError, match="missing"):
        Vocab.load(tmp_path / "nope.model")


def test_empty_training_text_is_refused():
    with pytest.raises(VocabError, match="empty"):
        train_vocab([""])


@pytest.mark.skipif(not CORPUS.exists(), reason="corpus not built (ardm corpus build)")
def test_whole_corpus_round_trip():
    text = CORPUS.read_text(encoding="utf-8")
    v = train_vocab([text])
    ids = v.encode(text)
    assert len(ids) == len(text)
    assert (ids != UNK_ID).all()
    assert v.decode(ids) == text


def test_encode_equals_the_character_by_character_lookup(vocab):
    """The vectorised encode gives exactly what a dictionary lookup per character gives, on any text."""
    import random

    rng = random.Random(0)
    alphabet = list(vocab.chars[1:]) + ["é", "\u2581", "\U0001f600", "\ud800", "\x00", "\u2029", "ÿ", "\uffff"]
    for n in (0, 1, 7, 500):
        text = "".join(rng.choice(alphabet) for _ in range(n))
        want = [vocab._index.get(c, UNK_ID) for c in text]
        assert vocab.encode(text).tolist() == want
        assert vocab.encode(text).dtype.name == "int64" and len(vocab.encode(text)) == len(text)
