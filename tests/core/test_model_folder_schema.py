"""Hostile model folders: config.json is checked against a schema before anything is built.

Every case must give one ModelFileError line naming the file and the field, allocate
nothing large, and never a traceback on the command line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from ardm_core.checkpoint import ModelFileError, load_model, save_model
from ardm_core.cli import main
from ardm_core.config_check import count_params, json_depth, parse_json
from ardm_core.model import ARDMTransformer, ModelConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def folder(tiny_model, tmp_path) -> Path:
    d = tmp_path / "m"
    save_model(d, tiny_model.net, tiny_model.vocab, loss_by_known=tiny_model.loss_by_known, meta={"name": "tiny"})
    return d


@pytest.fixture
def up_folder(tiny_upscale, tmp_path) -> Path:
    d = tmp_path / "up"
    m = tiny_upscale
    save_model(d, m.net, m.vocab, stages=m.stages.to_json(), stage_loss_by_known=m.stage_loss_by_known)
    return d


def edit(folder: Path, fn) -> None:
    p = folder / "config.json"
    cfg = json.loads(p.read_text())
    fn(cfg)
    p.write_text(json.dumps(cfg))


def set_model(**kv):
    return lambda cfg: cfg["model"].update(kv)


def set_top(**kv):
    return lambda cfg: cfg.update(kv)


CASES = [
    # (edit, words the message must contain)
    (set_model(n_head=0), "model.n_head"),
    (set_model(n_head=-4), "model.n_head"),
    (set_model(n_layer="4"), "model.n_layer must be an integer"),
    (set_model(n_layer=4.0), "model.n_layer must be an integer"),
    (set_model(n_layer=True), "model.n_layer must be an integer"),
    (set_model(dropout="x"), "model.dropout must be a number"),
    (set_model(dropout=1.5), "model.dropout"),
    (set_model(rope_base=0), "model.rope_base"),
    (set_model(rope_base=-3.0), "model.rope_base"),
    (set_model(rope_base=1), "model.rope_base must be a finite number in (1,"),
    (set_model(positions="learned"), "model.positions"),
    (set_model(causal="no"), "model.causal must be true or false"),
    (set_model(n_embd=10**9), "model.n_embd"),
    (set_model(n_embd=65536 - 16), "parameters"),
    (set_model(mlp_ratio=10**6), "model.mlp_ratio"),
    (set_model(n_layer=10**6), "model.n_layer"),
    (set_model(n_layer=1000, n_embd=1024, n_head=8), "parameters"),
    (set_model(block_size=10**9), "model.block_size"),
    (set_model(block_size=16384, n_head=32, n_embd=64), "GiB of activations"),
    (set_model(n_embd=30, n_head=2), "must be even"),
    (set_model(bogus=1), "unknown fields"),
    (lambda cfg: cfg["model"].pop("n_layer"), "model.n_layer is missing"),
    (set_top(model=[1, 2]), "model must be an object"),
    (set_top(format_version="2"), "format_version must be an integer"),
    (set_top(format_version=99), "newer than this program supports"),
    (set_top(format_version=0), "format_version"),
    (lambda cfg: cfg.pop("format_version"), "format_version"),
    (set_top(vocab_file=5), "vocab_file must be a string"),
    (set_top(vocab_file="../../etc/passwd"), "vocab_file must be a file name"),
    (set_top(vocab_sha256=7), "vocab_sha256"),
    (set_top(weights_dtype="int8"), "weights_dtype"),
    (set_top(loss_by_known={"a": 1}), "loss_by_known must be a list"),
    (set_top(loss_by_known=[1.0] * 65), "loss_by_known must be a list of 1 to 64"),
    (set_top(loss_by_known=[1.0, "x"]), "loss_by_known[1]"),
    (set_top(loss_by_known=[1.0, -2.0]), "loss_by_known[1]"),
    (set_top(meta="x"), "meta must be an object"),
    (set_top(meta={"name": 5}), "meta.name must be a string"),
]


@pytest.mark.parametrize("change, words", CASES)
def test_bad_config_is_one_clear_error(folder, change, words):
    edit(folder, change)
    with pytest.raises(ModelFileError) as e:
        load_model(folder)
    msg = str(e.value)
    assert "config.json" in msg and words in msg, msg
    assert "\n" not in msg


def test_parameter_count_matches_the_network():
    for kw in [dict(), dict(condition_on_known=True), dict(positions="sinusoid", n_embd=48, n_head=3),
               dict(n_stage=2, n_class_tokens=12), dict(mlp_ratio=3, n_layer=3)]:
        cfg = ModelConfig(**{**dict(vocab_size=50, block_size=32, n_layer=2, n_head=2, n_embd=32, mlp_ratio=2), **kw})
        assert count_params(cfg.__dict__) == ARDMTransformer(cfg).num_params(), kw


def test_nan_and_infinity_constants_are_refused(folder):
    p = folder / "config.json"
    p.write_text(p.read_text().replace('"loss_by_known": [', '"loss_by_known": [NaN, ', 1))
    with pytest.raises(ModelFileError, match="config.json: holds NaN"):
        load_model(folder)


def test_overflowing_number_is_refused(folder):
    p = folder / "config.json"
    p.write_text(p.read_text().replace('"loss_by_known": [', '"loss_by_known": [1e400, 3.0], "x": [', 1))
    with pytest.raises(ModelFileError, match=r"config.json: loss_by_known\[0\] must be a finite number"):
        load_model(folder)


def test_deep_nesting_is_refused_without_recursion(folder):
    (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelFileError, match="nested 100,000 deep"):
        load_model(folder)


def test_json_depth_skips_strings():
    assert json_depth('{"a": "[[[[{{{", "b": [[1]]}') == 3
    assert json_depth('"\\"[[["') == 0
    with pytest.raises(ValueError, match="nested 40 deep"):
        parse_json(b"[" * 40 + b"]" * 40)


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "vocab.model"])
def test_a_folder_in_place_of_a_file(folder, name):
    (folder / name).unlink()
    (folder / name).mkdir()
    with pytest.raises(ModelFileError, match=f"{name}: is a folder"):
        load_model(folder)


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "vocab.model"])
def test_a_symlink_loop(folder, name):
    (folder / name).unlink()
    os.symlink(folder / (name + ".b"), folder / name)
    os.symlink(folder / name, folder / (name + ".b"))
    with pytest.raises(ModelFileError, match=f"{name}: cannot read"):
        load_model(folder)


def test_the_model_folder_itself_a_symlink_loop(tmp_path):
    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")
    with pytest.raises(ModelFileError, match="model folder not found"):
        load_model(tmp_path / "a")


@pytest.mark.parametrize("name", ["model.safetensors", "config.json", "vocab.model"])
def test_a_device_in_place_of_a_file_is_not_read(folder, name):
    (folder / name).unlink()
    os.symlink("/dev/zero", folder / name)
    with pytest.raises(ModelFileError, match=f"{name}: not a regular file"):
        load_model(folder)


def test_weights_too_big_for_the_config_are_not_read(folder):
    p = folder / "model.safetensors"
    with open(p, "ab") as f:
        f.truncate(p.stat().st_size + (200 << 20))  # sparse: 200 MB more than the config can need
    with pytest.raises(ModelFileError, match="model.safetensors: too big"):
        load_model(folder)


def _rewrite_weights(folder: Path, fn) -> None:
    p = folder / "model.safetensors"
    state = load_file(p)
    fn(state)
    save_file(state, p)
    edit(folder, lambda cfg: cfg.pop("weights_sha256"))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e30])
def test_non_finite_weights_are_refused(folder, value):
    _rewrite_weights(folder, lambda s: s["tok.weight"].__setitem__((3, 1), value))
    with pytest.raises(ModelFileError, match="model.safetensors: 1 tensor.*tok.weight"):
        load_model(folder)


def test_integer_tensor_is_refused(folder):
    _rewrite_weights(folder, lambda s: s.__setitem__("ln_f.bias", torch.zeros_like(s["ln_f.bias"], dtype=torch.int32)))
    with pytest.raises(ModelFileError, match="ln_f.bias is int32"):
        load_model(folder)


def test_wrong_shape_is_refused_before_building(folder):
    edit(folder, set_model(mlp_ratio=3))
    with pytest.raises(ModelFileError, match="model.safetensors: tensor.*the config needs"):
        load_model(folder)


UP_CASES = [
    (set_top(stages="x"), "stages must be"),
    (set_top(stages={"stages": []}), "coarse stages"),
    (lambda cfg: cfg["stages"]["stages"][0]["classes"][0].update(chars=5), "\"chars\" must be a string"),
    (lambda cfg: cfg["stages"]["stages"][0]["classes"][0].update(glyph=[1]), "\"glyph\" must be a string"),
    (lambda cfg: cfg["stages"]["stages"][0].update(name={}), "\"name\" must be a string"),
    (set_top(stage_loss_by_known=[[1.0]]), "stage_loss_by_known must be a list of 2"),
    (set_top(stage_loss_by_known=[[1.0], [1e5]]), "stage_loss_by_known[1][0]"),
    (set_model(n_class_tokens=0), "go together"),
]


@pytest.mark.parametrize("change, words", UP_CASES)
def test_bad_upscaling_config(up_folder, change, words):
    edit(up_folder, change)
    with pytest.raises(ModelFileError) as e:
        load_model(up_folder)
    assert "config.json" in str(e.value) and words in str(e.value), str(e.value)


def test_the_shipped_models_pass_the_schema():
    for name in ("default", "upscale"):
        p = ROOT / "assets" / "models" / name
        if p.exists():
            load_model(p)


def test_huge_configs_allocate_nothing(tmp_path, tiny_model):
    """Each refused config is refused before allocating: peak RSS of the whole process stays small."""
    code = r"""
import json, resource, shutil, sys
from pathlib import Path
from ardm_core.checkpoint import ModelFileError, load_model
src = Path(sys.argv[1])
cases = [dict(n_embd=10**9), dict(mlp_ratio=10**6), dict(n_layer=10**6), dict(block_size=10**9),
         dict(n_layer=1000, n_embd=1024, n_head=8), dict(block_size=16384, n_head=32, n_embd=64)]
for i, kv in enumerate(cases):
    d = Path(sys.argv[2]) / str(i)
    shutil.copytree(src, d)
    cfg = json.loads((d / "config.json").read_text()); cfg["model"].update(kv)
    (d / "config.json").write_text(json.dumps(cfg))
    try:
        load_model(d)
        sys.exit(f"loaded {kv}")
    except ModelFileError:
        pass
# the peak of this process's own memory (VmHWM): ru_maxrss would also count the pytest process it was forked from
try:
    hwm = [l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:")]
    print(int(hwm[0].split()[1]) // 1024)
except (OSError, IndexError):
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""
    src = tmp_path / "src"
    save_model(src, tiny_model.net, tiny_model.vocab)
    res = subprocess.run([sys.executable, "-c", code, str(src), str(tmp_path)], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    assert int(res.stdout.strip()) < 1024, f"peak RSS {res.stdout.strip()} MB"


@pytest.mark.parametrize("command", [["eval", "{text}"], ["infill", "--text", "ab_c"], ["sample", "--length", "4"],
                                     ["score", "--text", "abc"], ["calibrate", "{text}"]])
def test_cli_on_a_nan_model_is_one_clear_line(folder, tmp_path, capsys, command):
    _rewrite_weights(folder, lambda s: s["head.bias"].fill_(float("nan")))
    text = tmp_path / "t.txt"
    text.write_text("hello world " * 20)
    argv = [a.format(text=text) for a in command] + ["--model", str(folder)]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "NaN" in err and "head.bias" in err and len(err.strip().splitlines()) == 1


def test_cli_on_hostile_config_is_one_clear_line(folder, tmp_path, capsys):
    edit(folder, set_model(n_head="4"))
    code = main(["infill", "--model", str(folder), "--text", "ab_c"])
    err = capsys.readouterr().err
    assert code == 2 and "model.n_head must be an integer" in err and len(err.strip().splitlines()) == 1
