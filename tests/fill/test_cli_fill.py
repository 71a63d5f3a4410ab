"""``ardm infill --alternatives/--words/--lengths``: output shape and one-line errors (exit 2)."""

from __future__ import annotations

import gzip
import json

import pytest

from ardm_core.cli import main
from ardm_core.lexicon import build_lexicon_bytes, nonwords, parse_lexicon

from ..conftest import SAMPLE_TEXT

TEXT = "It is a truth universally ____________, that a single man."


@pytest.fixture(scope="module")
def lexicon_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("lex") / "words.tsv.gz"
    p.write_bytes(build_lexicon_bytes(SAMPLE_TEXT, min_count=1))
    return str(p)


def _run(capsys, *argv):
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_alternatives_json(capsys, tiny_model_dir, lexicon_file):
    rc, out, err = _run(capsys, "infill", "--model", tiny_model_dir, "--text", TEXT, "--alternatives", "5", "--words",
                        "--lexicon", lexicon_file, "--json", "--temperature", "2")
    assert rc == 0, err
    r = json.loads(out)
    alts = r["alternatives"]
    assert 1 <= len(alts) <= 5 and sum(a["count"] for a in alts) == 5
    assert [a["bits_per_char"] for a in alts] == sorted(a["bits_per_char"] for a in alts)
    lex = parse_lexicon(open(lexicon_file, "rb").read())
    a0 = TEXT.index("_")
    for a in alts:
        assert a["text"][:a0] == TEXT[:a0] and a["fill"] == a["text"][a0:a0 + 12]
        assert a["bits"] > 0 and a["constrained_bits"] is not None
        if not a["unconstrained_regions"]:
            assert nonwords(a["text"], lex, range(a0, a0 + 12)) == []
    assert r["network_calls"] == 12


def test_lengths_plain_output(capsys, tiny_model_dir):
    rc, out, err = _run(capsys, "infill", "--model", tiny_model_dir, "--text", "It is a ___ universally acknowledged.",
                        "--lengths", "3:6", "--alternatives", "2")
    assert rc == 0, err
    assert "lengths: 3:" in err and "chosen" in err
    assert out.startswith("It is a ") and out.rstrip().endswith("universally acknowledged.")


@pytest.mark.parametrize("extra,msg", [
    (["--alternatives", "0"], "from 1 to 64"),
    (["--alternatives", "65"], "from 1 to 64"),
    (["--lengths", "4:2"], "empty"),
    (["--lengths", "1:64"], "window"),
    (["--lengths", "a:b"], "MIN:MAX"),
    (["--words", "--lexicon", "/nonexistent/words.tsv.gz"], "missing"),
])
def test_bad_input_is_one_line(capsys, tiny_model_dir, extra, msg):
    rc, out, err = _run(capsys, "infill", "--model", tiny_model_dir, "--text", "a __ b", *extra)
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and msg in err


def test_damaged_lexicon_and_fully_masked_any_length(capsys, tiny_model_dir, tmp_path):
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(b'{"format": "ardm-lexicon", "version": 1}\nthe\t1\n'))
    rc, out, err = _run(capsys, "infill", "--model", tiny_model_dir, "--text", "a __ b", "--words", "--lexicon", str(bad))
    assert rc == 2 and "types" in err and len(err.strip().splitlines()) == 1
    rc, out, err = _run(capsys, "infill", "--model", tiny_model_dir, "--text", "____", "--lengths", "1:3")
    assert rc == 2 and "fully masked" in err
