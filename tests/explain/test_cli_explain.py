"""``ardm explain`` on the command line: top characters, the JSON vector, one-line errors."""

from __future__ import annotations

import json

import pytest

from ardm_core.cli import main

TEXT = "It is a truth universally ack______ged, that a single man"


def test_prints_top_context_characters(tiny_model_dir, capsys):
    assert main(["explain", "--model", tiny_model_dir, "--text", TEXT, "--position", "30", "--order", "l2r",
                 "--top", "4"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("position 30:") and "filled at step 1" in out[0]
    rows = [line for line in out if line.startswith("  ") and "occlusion" in line]
    assert len(rows) == 4
    weights = [float(r.split()[2]) for r in rows]
    assert weights == sorted(weights, reverse=True)


def test_json_is_the_full_vector(tiny_model_dir, capsys):
    assert main(["explain", "--model", tiny_model_dir, "--text", TEXT, "--position", "31", "--json",
                 "--layer", "1", "--head", "0"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert [w["position"] for w in js["weights"]] == list(range(len(TEXT)))
    assert sum(w["weight"] for w in js["weights"]) == pytest.approx(1.0, abs=1e-5)
    assert js["weights_from"] == "layer 1 head 0" and js["filled_char"] in {c["char"] for c in js["predictions"]} | {js["filled_char"]}


def test_explicit_step_before_the_fill(tiny_model_dir, capsys):
    assert main(["explain", "--model", tiny_model_dir, "--text", TEXT, "--position", "34", "--order", "l2r",
                 "--step", "0", "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["step"] == 0 and js["filled_at_step"] == 5  # filled at step 5; explained: its prediction at step 0


@pytest.mark.parametrize("argv, msg", [
    (["--position", "3"], "is context, not filled"),
    (["--position", "999"], "--position must be between"),
    (["--position", "30", "--head", "1"], "--head needs --layer"),
    (["--position", "30", "--layer", "7"], "layer must be between"),
    (["--position", "30", "--order", "l2r", "--step", "3"], "filled at step 1"),
    (["--position", "30", "--order", "l2r", "--step", "9"], "--step must be between 0 and 5"),
])
def test_user_errors_are_one_line(tiny_model_dir, capsys, argv, msg):
    assert main(["explain", "--model", tiny_model_dir, "--text", TEXT] + argv) == 2
    err = capsys.readouterr().err
    assert msg in err and len(err.strip().splitlines()) == 1


def test_upscaling_model_is_refused_clearly(tiny_upscale_dir, capsys):
    assert main(["explain", "--model", tiny_upscale_dir, "--text", TEXT, "--position", "30"]) == 2
    assert "upscaling" in capsys.readouterr().err
