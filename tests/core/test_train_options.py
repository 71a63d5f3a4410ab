"""Training options are checked before anything runs, and training never writes a non-finite model."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
import torch

import ardm_core.train as train_mod
from ardm_core.checkpoint import ModelFileError, load_model, save_model
from ardm_core.cli import main
from ardm_core.train import TrainConfig, TrainingDiverged, TrainStep, check_train_config, max_threads, train
from tests.core.train_helpers import tiny_cfg as shared_tiny_cfg, write_corpus


@pytest.fixture
def corpus(tmp_path, sample_text):
    return write_corpus(tmp_path, sample_text)


def tiny_cfg(corpus, out, **kw):
    return shared_tiny_cfg(corpus, out, **{"save_every": 4, **kw})


def run_cli(capsys, *argv) -> tuple[int, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    return code, capsys.readouterr().err


BAD_FLAGS = [
    # each trained to an all-NaN model and exited 0 before
    ("--ema", "nan", "--ema must be a finite number in [0, 1)"),
    ("--clip", "nan", "--clip must be a finite number in (0,"),
    ("--min-lr-ratio", "nan", "--min-lr-ratio must be a finite number in [0, 1]"),
    ("--weight-decay", "nan", "--weight-decay must be a finite number"),
    ("--ce-weight", "nan", "--ce-weight must be a finite number"),
    # ranges
    ("--ema", "1", "--ema must be a finite number in [0, 1)"),
    ("--ema", "-0.1", "--ema"),
    ("--clip", "0", "--clip"),
    ("--clip", "inf", "--clip"),
    ("--min-lr-ratio", "1.5", "--min-lr-ratio"),
    ("--weight-decay", "-1", "--weight-decay"),
    ("--ce-weight", "-1", "--ce-weight"),
    ("--lr", "0", "--lr must be a finite number in (0, 1)"),
    ("--lr", "nan", "--lr"),
    ("--lr", "-inf", "--lr"),
    ("--span-mix", "nan", "--span-mix"),
    ("--upscale-context", "2", "--upscale-context"),
    ("--minutes", "inf", "--minutes"),
    ("--steps", "0", "--steps must be between 1"),
    ("--steps", "10000000000", "--steps must be between 1"),
    ("--batch-size", "0", "--batch-size"),
    ("--batch-size", "100000000", "--batch-size"),
    ("--block-size", "-3", "--block-size"),
    ("--block-size", "1000000000", "--block-size"),
    ("--warmup", "-1", "--warmup"),
    ("--eval-every", "0", "--eval-every"),
    ("--save-every", "0", "--save-every"),
    ("--eval-batches", "0", "--eval-batches must be between 1"),  # printed "validation nan" before
    ("--seed", "-1", "--seed"),
    ("--threads", "-1", "--threads must be between 0"),  # a traceback before
    ("--threads", "1000000", "--threads must be between 0"),  # a segfault before
    ("--upscale", "", "--upscale must be"),
    ("--positions", "learned", "unknown positions"),
    ("--objective", "mlm", "unknown objective"),
    ("--precision", "fp8", "--precision"),
    ("--out", "", "--out must name a folder"),
]


@pytest.mark.parametrize("flag, value, message", BAD_FLAGS)
def test_bad_training_option_is_one_line_and_exit_2(capsys, tmp_path, corpus, flag, value, message):
    out = tmp_path / "run"
    code, err = run_cli(capsys, "train", "--data", str(corpus), "--out", str(out), "--preset", "tiny", "--steps", "3",
                        f"{flag}={value}")
    assert code == 2, err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (out / "model").exists()


def test_threads_bound_is_the_machine():
    assert max_threads() == 4 * os.cpu_count()


@pytest.mark.parametrize("field, value", [("steps", "3"), ("steps", 3.0), ("steps", True), ("lr", "0.1"),
                                          ("stratified", 1), ("threads", 2.0), ("init", 5)])
def test_api_types_are_exact(tmp_path, corpus, field, value):
    cfg = dataclasses.replace(tiny_cfg(corpus, tmp_path / "r"), **{field: value})
    with pytest.raises(ValueError, match=field.replace("_", "-")):
        check_train_config(cfg)


def test_defaults_pass(tmp_path):
    check_train_config(TrainConfig(data=["x"]))


def test_readme_upscale_option_parses(tmp_path, corpus, tiny_model_dir, capsys):
    """`--upscale default` was rejected by argparse ("invalid NoneType value")."""
    out = tmp_path / "up"
    code = main(["train", "--data", str(corpus), "--init", tiny_model_dir, "--upscale", "default", "--out", str(out),
                 "--steps", "2", "--batch-size", "2", "--block-size", "32", "--eval-batches", "1", "--threads", "1"])
    assert code == 0, capsys.readouterr().err
    assert load_model(out / "model").is_upscale


def _poisoned_objective(monkeypatch, at_call: int):
    """The ardm loss, made NaN from the ``at_call``-th training call on."""
    real = train_mod.OBJECTIVES["ardm"]
    calls = {"n": 0}

    def loss(net, batch, **kw):
        out = real(net, batch, **kw)
        if net.training:
            calls["n"] += 1
            if calls["n"] >= at_call:
                out.loss = out.loss * float("nan")
        return out

    monkeypatch.setitem(train_mod.OBJECTIVES, "ardm", loss)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(monkeypatch, corpus, tmp_path):
    _poisoned_objective(monkeypatch, at_call=7)
    run = tmp_path / "run"
    steps = []
    with pytest.raises(TrainingDiverged) as e:
        for ev in train(tiny_cfg(corpus, run)):
            if isinstance(ev, TrainStep):
                steps.append(ev.step)
    assert steps == list(range(1, 7))
    msg = str(e.value)
    assert "step 7" in msg and "not finite" in msg and "step 4" in msg and "\n" not in msg
    m = load_model(run / "model")  # the checkpoint of step 4, finite
    assert m.meta["trained_steps"] == 4
    assert json.loads((run / "state.json").read_text())["step"] == 4
    assert all(torch.isfinite(p).all() for p in m.net.parameters())


def test_nan_loss_before_any_checkpoint_writes_nothing(monkeypatch, corpus, tmp_path):
    _poisoned_objective(monkeypatch, at_call=1)
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match="step 1: .* nothing was saved"):
        list(train(tiny_cfg(corpus, run)))
    assert not (run / "model").exists() and not (run / "state.json").exists()


def test_nan_loss_on_the_command_line(monkeypatch, corpus, tmp_path, capsys):
    _poisoned_objective(monkeypatch, at_call=5)
    code = main(["train", "--data", str(corpus), "--out", str(tmp_path / "run"), "--preset", "tiny", "--block-size", "32",
                 "--batch-size", "4", "--steps", "12", "--save-every", "4", "--eval-batches", "1", "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("ardm train: error: step 5:") and "step 4" in last and "Traceback" not in err


def test_non_finite_weights_are_never_saved(tiny_model, tmp_path):
    net = type(tiny_model.net)(tiny_model.config)
    net.load_state_dict(tiny_model.net.state_dict())
    with torch.no_grad():
        net.head.weight[0, 0] = float("inf")
    with pytest.raises(ModelFileError, match="not written.*head.weight"):
        save_model(tmp_path / "m", net, tiny_model.vocab)
    assert not (tmp_path / "m").exists()


def test_fp16_overflow_is_never_saved(tiny_model, tmp_path):
    net = type(tiny_model.net)(tiny_model.config)
    net.load_state_dict(tiny_model.net.state_dict())
    with torch.no_grad():
        net.tok.weight[1, 1] = 1e6  # finite in fp32, inf in fp16
    with pytest.raises(ModelFileError, match="tok.weight"):
        save_model(tmp_path / "m", net, tiny_model.vocab, dtype=torch.float16)


def test_resume_refuses_non_finite_state(corpus, tmp_path):
    run = tmp_path / "run"
    list(train(tiny_cfg(corpus, run, steps=4)))
    from safetensors.torch import load_file, save_file
    import hashlib

    info = json.loads((run / "state.json").read_text())
    p = run / info["tensors"]
    t = load_file(p)
    t["model.head.bias"][0] = float("nan")
    save_file(t, p)
    info["tensors_sha256"] = hashlib.sha256(p.read_bytes()).hexdigest()
    (run / "state.json").write_text(json.dumps(info))
    with pytest.raises(ModelFileError, match="NaN or infinite.*model.head.bias"):
        list(train(tiny_cfg(corpus, run, steps=8)))


@pytest.mark.parametrize("change, words", [
    (lambda i: i.update(tensors="../../etc/passwd"), "tensors must name"),
    (lambda i: i.update(step="4"), "step must be an integer"),
    (lambda i: i["model"].update(n_layer=10**6), "model.n_layer"),
])
def test_resume_refuses_a_bad_state_json(corpus, tmp_path, change, words):
    run = tmp_path / "run"
    list(train(tiny_cfg(corpus, run, steps=4)))
    info = json.loads((run / "state.json").read_text())
    change(info)
    (run / "state.json").write_text(json.dumps(info))
    with pytest.raises(ModelFileError, match=words):
        list(train(tiny_cfg(corpus, run, steps=8)))


# -- bf16 training where the hardware has it ---------------------------------------------------------------
def test_bf16_training_follows_the_hardware(monkeypatch, corpus, tmp_path, capsys):
    from ardm_core.model import preset_config

    cpu = torch.device("cpu")
    small, tiny = preset_config("small", vocab_size=90), preset_config("tiny", vocab_size=90)
    monkeypatch.setattr(train_mod, "native_bf16", lambda info=None: False)
    assert train_mod.training_precision("auto", cpu, small) == "fp32"  # a CPU without bfloat16 units
    with pytest.raises(ValueError, match="no bfloat16 units"):
        train_mod.training_precision("bf16", cpu)
    code, err = run_cli(capsys, "train", "--data", str(corpus), "--out", str(tmp_path / "r"), "--preset", "tiny",
                        "--steps", "2", "--precision", "bf16", "--device", "cpu")
    assert code == 2 and "no bfloat16 units" in err and not (tmp_path / "r" / "model").exists()
    monkeypatch.setattr(train_mod, "native_bf16", lambda info=None: True)
    assert train_mod.training_precision("auto", cpu, small) == "bf16"
    assert train_mod.training_precision("auto", cpu, tiny) == "fp32"  # too small to gain: all overhead
    assert train_mod.training_precision("bf16", cpu, tiny) == "bf16"  # asked for: it stands
    assert train_mod.training_precision("fp32", cpu, small) == "fp32"
    assert TrainConfig(data=["x"], out="y").precision == "auto"


def test_a_bf16_training_run_saves_an_fp32_model_that_learns(monkeypatch, corpus, tmp_path):
    monkeypatch.setattr(train_mod, "native_bf16", lambda info=None: True)  # autocast runs anywhere, only slower
    casts = []
    real = torch.autocast
    monkeypatch.setattr(train_mod.torch, "autocast", lambda *a, **k: (casts.append(k.get("dtype")), real(*a, **k))[1])
    events = list(train(tiny_cfg(corpus, tmp_path / "r", precision="bf16", steps=24, lr=3e-3, device="cpu")))
    started = [ev for ev in events if isinstance(ev, train_mod.TrainStarted)]
    steps = [ev for ev in events if isinstance(ev, TrainStep)]
    assert started[0].precision == "bf16" and casts and set(casts) == {torch.bfloat16}
    assert all(torch.isfinite(torch.tensor(ev.bpc)) for ev in steps) and steps[-1].bpc < steps[0].bpc
    m = load_model(tmp_path / "r" / "model")
    assert all(p.dtype == torch.float32 for p in m.net.parameters())
    assert json.loads((tmp_path / "r" / "model" / "config.json").read_text())["meta"]["train_config"]["precision"] == "bf16"
    events = list(train(tiny_cfg(corpus, tmp_path / "r2", steps=4, device="cpu")))  # the default, auto: the tiny preset stays fp32
    assert [ev.precision for ev in events if isinstance(ev, train_mod.TrainStarted)] == ["fp32"]
