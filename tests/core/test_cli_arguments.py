"""Every number and name on the command line is checked: one line on stderr, exit 2, before any work."""

from __future__ import annotations

import os

import pytest

from ardm_core.cli import main
from ardm_core.device import resolve_device


def run_cli(capsys, argv):
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


CASES = [
    # eval --max-chars -5 said "file is empty"
    (["eval", "--model", "{model}", "{text}", "--max-chars", "-5"], "argument --max-chars: must be an integer, at least 0"),
    (["eval", "--model", "{model}", "{text}", "--passes", "1000000000"], "at most 10,000"),
    (["eval", "--model", "{model}", "{text}", "--seed", "99999999999999999999999"], "argument --seed"),
    (["eval", "--model", "{model}", "{text}", "--seed", "-1"], "argument --seed"),
    (["eval", "--model", "{model}", "{text}", "--order", ""], "--order is empty"),
    (["calibrate", "--model", "{model}", "{text}", "--rounds", "100000000000"], "argument --rounds"),
    (["calibrate", "--model", "{model}", "{text}", "--rounds", "0"], "argument --rounds"),
    (["sample", "--model", "{model}", "--length", "100000000"], "argument --length: must be an integer, at least 1 and at most"),
    (["sample", "--model", "{model}", "--length", "nan"], "argument --length: must be an integer (got 'nan')"),
    # score --order '' exited 0 and printed nothing
    (["score", "--model", "{model}", "--text", "hello", "--order", ""], "--order names no order"),
    (["score", "--model", "{model}", "--text", "hello", "--order", " , "], "--order names no order"),
    # --explicit without --order explicit was silently ignored
    (["score", "--model", "{model}", "--text", "hello", "--explicit", "0,1"], "--explicit gives the positions of --order explicit"),
    (["infill", "--model", "{model}", "--text", "he__o", "--explicit", "2,3"], "--explicit gives the positions of --order explicit"),
    (["sample", "--model", "{model}", "--length", "3", "--explicit", "0,1,2"], "--explicit gives the positions of --order explicit"),
    (["infill", "--model", "{model}", "--text", "he__o", "--seed", "x"], "argument --seed: must be an integer"),
    (["infill", "--model", "{model}", "--text", "he__o", "--device", "cuda:x"], "cuda:N takes a device number"),
    (["infill", "--model", "{model}", "--text", "he__o", "--device", "tpu"], "unknown device"),
    (["train", "--data", "{text}", "--out", "{out}", "--eval-batches", "0"], "--eval-batches must be between 1"),
    (["train", "--data", "{text}", "--out", "{out}", "--steps", "lots"], "argument --steps: invalid int value"),
    # a device as an input file was read forever
    (["eval", "--model", "{model}", "/dev/zero"], "/dev/zero: is a device"),
    (["infill", "--model", "{model}", "--file", "/dev/zero"], "/dev/zero: is a device"),
    (["score", "--model", "{model}", "--file", "/dev/urandom"], "/dev/urandom: is a device"),
    (["calibrate", "--model", "{model}", "/dev/zero"], "/dev/zero: is a device"),
    (["train", "--data", "/dev/zero", "--out", "{out}", "--preset", "tiny"], "/dev/zero: is a device"),
    (["train", "--data", "{text}", "--out", "{out}", "--preset", "tiny", "--block-size", "32", "--upscale", "/dev/zero"],
     "/dev/zero: not a regular file"),
    (["train", "--data", "{text}", "--out", "{out}", "--preset", "tiny", "--block-size", "32", "--upscale", "{deep}"],
     "JSON nested 200 deep"),
    (["infill", "--model", "{model}", "--text", "a fl__k", "--words", "--lexicon", "/dev/zero"], "/dev/zero: not a regular file"),
    # finetune shares the training options' rules (--threads -1 was a traceback, 1000000 a segfault)
    (["finetune", "{text}", "--out", "{out}", "--model", "{model}", "--threads", "-1"], "--threads must be between 0"),
    (["finetune", "{text}", "--out", "{out}", "--model", "{model}", "--threads", "1000000"], "--threads must be between 0"),
    (["finetune", "{text}", "--out", "{out}", "--model", "{model}", "--minutes", "inf"], "--minutes must be a finite number"),
    (["finetune", "{text}", "--out", "{out}", "--model", "{model}", "--lr", "nan"], "--lr must be a finite number"),
    (["finetune", "{text}", "--out", "{out}", "--model", "{model}", "--steps", "5", "--batch-size", "0"], "--batch-size"),
]


@pytest.mark.parametrize("argv, message", CASES)
def test_bad_argument_is_one_line_and_exit_2(capsys, tmp_path, tiny_model_dir, argv, message):
    text = tmp_path / "t.txt"
    text.write_text("hello world " * 20)
    (tmp_path / "deep.json").write_text("[" * 200 + "]" * 200)
    subs = {"model": tiny_model_dir, "text": str(text), "out": str(tmp_path / "run"), "deep": str(tmp_path / "deep.json")}
    code, out, err = run_cli(capsys, [a.format(**subs) for a in argv])
    assert code == 2, err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert out == ""


def test_explicit_with_its_order_still_works(capsys, tiny_model_dir):
    code, out, err = run_cli(capsys, ["infill", "--model", tiny_model_dir, "--text", "he__o", "--order", "explicit",
                                      "--explicit", "3,2"])
    assert code == 0, err
    code, out, err = run_cli(capsys, ["score", "--model", tiny_model_dir, "--text", "hello", "--order", "l2r,explicit",
                                      "--explicit", "4,3,2,1,0"])
    assert code == 0, err
    assert "explicit" in out and "l2r" in out


def test_a_pipe_is_still_read(capsys, tiny_model_dir):
    r, w = os.pipe()
    os.write(w, b"hello world")
    os.close(w)
    try:
        code, out, err = run_cli(capsys, ["score", "--model", tiny_model_dir, "--file", f"/dev/fd/{r}"])
    finally:
        os.close(r)
    assert code == 0, err
    assert "11 characters" in out


def test_help_exits_0(capsys):
    assert main(["train", "--help"]) == 0
    assert "--upscale MAP" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["cuda:", "cuda:-1", "cuda:1x"])
def test_device_names(name):
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device(name)
