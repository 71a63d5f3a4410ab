"""The command line: user errors are one line and a non-zero exit, never a traceback."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ardm_core.cli import main

ROOT = Path(__file__).resolve().parents[2]


def run_cli(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own errors: one line, exit 2
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_eval_reports_bpc_as_json(capsys, tiny_model_dir, tmp_path, sample_text):
    f = tmp_path / "t.txt"
    f.write_text(sample_text, encoding="utf-8")
    code, out, err = run_cli(capsys, "eval", "--model", tiny_model_dir, str(f), "--passes", "2", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["chars"] == len(sample_text) and d["bpc"] > 0 and d["stderr"] >= 0


def test_eval_exact_order_counts_one_call_per_char(capsys, tiny_model_dir, tmp_path, sample_text):
    f = tmp_path / "t.txt"
    f.write_text(sample_text[:150], encoding="utf-8")
    code, out, _ = run_cli(capsys, "eval", "--model", tiny_model_dir, str(f), "--order", "l2r", "--json")
    assert code == 0
    assert json.loads(out)["network_calls"] == 150


@pytest.mark.parametrize(
    "argv, message",
    [
        (["eval", "--model", "{model}", "{missing}"], "file not found"),
        (["eval", "--model", "{model}", "{empty}"], "empty"),
        (["eval", "--model", "{model}", "{binary}"], "not UTF-8"),
        (["eval", "--model", "{model}", "{text}", "--passes", "0"], "argument --passes: must be an integer, at least 1"),
        (["eval", "--model", "{nomodel}", "{text}"], "model folder not found"),
        (["eval", "--model", "{model}", "{text}", "--order", "sideways"], "unknown fixed order"),
        (["train", "--data", "{text}", "--out", "{out}", "--steps", "0"], "--steps must be between 1"),
        (["train", "--data", "{text}", "--out", "{out}", "--preset", "huge"], "unknown preset"),
        (["train", "--data", "{missing}", "--out", "{out}"], "file not found"),
        (["train", "--data", "{text}", "--out", "{unwritable}/x"], "not writable"),
    ],
)
def test_user_errors_are_one_line(capsys, tmp_path, tiny_model_dir, argv, message):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "binary.txt").write_bytes(b"ok\x80\x81")
    (tmp_path / "text.txt").write_text("hello world " * 40)
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "x").write_text("a file where a folder should be")
    subs = {"model": tiny_model_dir, "missing": str(tmp_path / "nope.txt"), "empty": str(tmp_path / "empty.txt"),
            "binary": str(tmp_path / "binary.txt"), "text": str(tmp_path / "text.txt"), "nomodel": str(tmp_path / "nomodel"),
            "out": str(tmp_path / "out"), "unwritable": str(ro / "x")}
    code, out, err = run_cli(capsys, *[a.format(**subs) for a in argv])
    assert code == 2
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_core_never_imports_qt():
    code = ("import sys, ardm_core, ardm_core.cli, ardm_core.train, ardm_core.evaluate, ardm_core.checkpoint\n"
            "import pkgutil, importlib\n"
            "for m in pkgutil.iter_modules(ardm_core.__path__): m.name != '__main__' and importlib.import_module('ardm_core.' + m.name)\n"
            "bad = [m for m in sys.modules if m.startswith(('PySide6', 'PyQt', 'shiboken'))]\n"
            "assert not bad, bad\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr


def test_python_dash_m_runs_the_cli():
    res = subprocess.run([sys.executable, "-m", "ardm_core", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0 and "train" in res.stdout and "eval" in res.stdout


def test_model_argument_takes_a_shipped_models_name(tmp_path, monkeypatch):
    """`--model medium` is the shipped medium model, unless a folder of that name is here; a path stays a path."""
    from ardm_core.paths import ASSETS, default_model_dir, model_dir, shipped_models

    assert {"default", "medium"} <= set(shipped_models())
    monkeypatch.chdir(tmp_path)
    assert model_dir(None) == default_model_dir()
    assert model_dir("medium") == ASSETS / "models" / "medium"
    assert model_dir("nonesuch") == Path("nonesuch")  # reported later as "model folder not found"
    assert model_dir("sub/medium") == Path("sub/medium")  # only a bare name is looked up
    (tmp_path / "medium" / "model").mkdir(parents=True)  # `ardm train --preset medium --out medium`: a run, not a model
    assert model_dir("medium") == ASSETS / "models" / "medium"
    (tmp_path / "medium" / "config.json").write_text("{}")
    assert model_dir("medium") == Path("medium")  # a model folder of the user's own comes first
    with pytest.raises(ValueError, match="--model is empty"):
        model_dir(" ")
