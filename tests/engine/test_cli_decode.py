"""ardm infill / sample / score."""

from __future__ import annotations

import json

import pytest

from ardm_core import cli_decode
from ardm_core.cli import main


def test_infill_prints_the_filled_text(tiny_model_dir, capsys):
    text = "It is a tr__h universally ack___ledged"
    assert main(["infill", "--model", tiny_model_dir, "--text", text, "--order", "l2r", "--seed", "1"]) == 0
    out = capsys.readouterr().out.rstrip("\n")
    assert len(out) == len(text) and "_" not in out
    assert all(a == b for a, b in zip(out, text) if b != "_")


def test_infill_json(tiny_model_dir, tmp_path, capsys):
    f = tmp_path / "t.txt"
    f.write_text("It is a #### universally", encoding="utf-8")
    assert main(["infill", "--model", tiny_model_dir, "--file", str(f), "--mask-char", "#", "--steps", "2", "--json",
                 "--top-p", "0.9", "--top-k", "10", "--temperature", "0.8"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["network_calls"] == 2 and len(js["steps"]) == 2
    assert sorted(p for st in js["steps"] for p in st["positions"]) == [8, 9, 10, 11]
    assert js["bits"] == pytest.approx(sum(st["bits"] for st in js["steps"]))
    assert "#" not in js["result"] and all(len(st["probs"]) == len(st["chars"]) for st in js["steps"])


def test_seed_gives_identical_output(tiny_model_dir, capsys):
    args = ["infill", "--model", tiny_model_dir, "--text", "a____b____c", "--order", "random", "--seed", "7"]
    main(args)
    a = capsys.readouterr().out
    main(args)
    assert capsys.readouterr().out == a


def test_infill_without_masks_is_a_noop_with_a_message(tiny_model_dir, capsys):
    assert main(["infill", "--model", tiny_model_dir, "--text", "nothing masked"]) == 0
    cap = capsys.readouterr()
    assert cap.out == "nothing masked\n" and "nothing to fill" in cap.err


def test_sample(tiny_model_dir, capsys):
    assert main(["sample", "--model", tiny_model_dir, "--length", "30", "--steps", "5", "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert len(js["result"]) == 30 and js["network_calls"] == 5


def test_score_compares_orders(tiny_model_dir, capsys):
    assert main(["score", "--model", tiny_model_dir, "--text", "It is a truth universally", "--spans", "3:5,10:14",
                 "--order", "l2r,r2l,confidence", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["order"] for r in rows] == ["l2r", "r2l", "confidence"]
    assert all(r["masked"] == 6 and r["network_calls"] == 6 and r["bits_per_char"] > 0 for r in rows)
    assert main(["score", "--model", tiny_model_dir, "--text", "It is a truth", "--masked-text", "It is a ___th"]) == 0
    assert "3 characters" in capsys.readouterr().out


@pytest.mark.parametrize("argv,msg", [
    (["infill", "--text", "a_b", "--order", "zigzag"], "choose from"),
    (["infill", "--text", "a__b", "--steps", "3"], "between 1 and 2"),
    (["infill", "--text", "a__b", "--order", "explicit", "--explicit", "1,1,9"], "repeated: 1"),
    (["infill", "--text", "a_b", "--mask-char", "ab"], "exactly one character"),
    (["infill", "--text", "a_b", "--temperature", "0"], "temperature"),
    (["sample", "--length", "0"], "at least 1"),
    (["score", "--text", "abc", "--spans", "2:9"], "spans"),
])
def test_user_errors_are_one_line(tiny_model_dir, capsys, argv, msg):
    assert main(argv[:1] + ["--model", tiny_model_dir] + argv[1:]) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1 and "Traceback" not in err


def test_missing_shipped_model_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli_decode, "default_model_dir", lambda: tmp_path / "nope")
    assert main(["infill", "--text", "a_b"]) == 2
    assert "shipped model is not installed" in capsys.readouterr().err
