"""The command line with an upscaling model: infill --upscale, score, eval and calibrate."""

import json
import subprocess
import sys

from ardm_core.cli import main


def run_cli(*args):
    return main(list(args))


def test_infill_upscale_fills_only_the_masks(tiny_upscale_dir, capsys):
    assert run_cli("infill", "--model", tiny_upscale_dir, "--upscale", "--text", "The c_t sat on th_ mat.", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    res = out["result"]
    assert len(res) == len("The c_t sat on th_ mat.") and res[:5] == "The c" and "_" not in res
    stages = [st["stage"] for st in out["steps"]]
    assert stages == [0, 0, 1, 1]


def test_infill_upscale_refuses_a_plain_model(tiny_model_dir, capsys):
    assert run_cli("infill", "--model", tiny_model_dir, "--upscale", "--text", "a_c") == 2
    err = capsys.readouterr().err
    assert "not an upscaling model" in err and "Traceback" not in err


def test_score_eval_and_calibrate_an_upscale_model(tiny_upscale_dir, tmp_path, capsys, sample_text):
    f = tmp_path / "t.txt"
    f.write_text(sample_text, encoding="utf-8")
    assert run_cli("score", "--model", tiny_upscale_dir, "--file", str(f), "--spans", "3:9", "--json") == 0
    r = json.loads(capsys.readouterr().out)[0]
    assert r["masked"] == 6 and r["total_bits"] > 0
    assert run_cli("eval", str(f), "--model", tiny_upscale_dir, "--passes", "2", "--json") == 0
    e = json.loads(capsys.readouterr().out)
    assert len(e["stage_bpc"]) == 2 and abs(sum(e["stage_bpc"]) - e["bpc"]) < 1e-9
    import shutil

    mine = tmp_path / "model"
    shutil.copytree(tiny_upscale_dir, mine)  # calibrate rewrites the folder's config
    assert run_cli("calibrate", "--model", str(mine), str(f), "--rounds", "1") == 0
    assert "class stage" in capsys.readouterr().out


def test_infill_upscale_reports_the_sketch_and_bits_per_stage(tiny_upscale_dir, capsys):
    assert run_cli("infill", "--model", tiny_upscale_dir, "--text", "ab_ d_f", "--seed", "2") == 0
    out, err = capsys.readouterr()
    assert len(out.strip()) == 7 and "_" not in out
    sketch = err.split("class sketch: ")[1].splitlines()[0]
    assert sketch[:2] == "ab" and sketch[3:5] == " d" and "_" not in sketch
    assert "stage 1 (class)" in err and "stage 2 (character)" in err
