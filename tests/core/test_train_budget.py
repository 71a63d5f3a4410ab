"""A time budget for training (the GPU path) and the device script's CPU smoke test."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from ardm_core.checkpoint import load_model
from ardm_core.train import TrainConfig, TrainFinished, lr_at, train

REPO = Path(__file__).resolve().parents[2]


def test_cosine_follows_the_time_budget_when_it_ends_first():
    cfg = TrainConfig(steps=1_000_000, warmup=10, lr=1e-3, min_lr_ratio=0.1, minutes=2.0)
    assert lr_at(5, cfg, elapsed=0.0) == pytest.approx(1e-3 * 6 / 10)  # warm-up is by steps
    assert lr_at(50, cfg, elapsed=0.0) == pytest.approx(1e-3, rel=1e-3)
    assert lr_at(50, cfg, elapsed=60.0) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))  # half the time: half the cosine
    assert lr_at(50, cfg, elapsed=500.0) == pytest.approx(1e-4)
    steps_only = replace(cfg, minutes=0.0)
    assert lr_at(50, steps_only, elapsed=500.0) == pytest.approx(1e-3, rel=1e-3)


@pytest.mark.parametrize("bad", [dict(minutes=-1.0), dict(minutes=math.nan), dict(precision="fp8")])
def test_bad_budget_or_precision_is_refused(tmp_path, sample_text, bad):
    (tmp_path / "train.txt").write_text(sample_text * 4)
    with pytest.raises(ValueError, match="minutes|precision"):
        list(train(TrainConfig(data=[str(tmp_path)], out=str(tmp_path / "run"), preset="tiny", block_size=32, **bad)))


def test_time_budget_ends_the_run_finished_and_saved(tmp_path, sample_text):
    (tmp_path / "train.txt").write_text(sample_text * 4)
    cfg = TrainConfig(data=[str(tmp_path)], out=str(tmp_path / "run"), preset="tiny", block_size=32, batch_size=2,
                      steps=1_000_000, minutes=0.02, warmup=2, eval_every=10_000, eval_batches=1, save_every=10_000,
                      device="cpu", threads=1)
    end = list(train(cfg))[-1]
    assert isinstance(end, TrainFinished) and not end.interrupted and 0 < end.step < 1_000_000
    assert (tmp_path / "run" / "model" / "model.safetensors").exists()


def test_device_script_smoke_on_cpu(tmp_path, sample_text, monkeypatch):
    data = tmp_path / "corpus"
    data.mkdir()
    for split in ("train", "valid", "test", "modern_test"):
        (data / f"{split}.txt").write_text(sample_text * (20 if split == "train" else 3))
    spec = importlib.util.spec_from_file_location("train_on_device", REPO / "scripts" / "train_on_device.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    args = ["--data", str(data), "--out", str(tmp_path / "run"), "--device", "cpu", "--preset", "tiny", "--init", "none",
            "--threads", "1", "--fp16-copy"]
    rc = mod.main(args + ["--minutes", "0.03"])
    assert rc == 0
    def no_nan(const):
        raise AssertionError(f"{const} in device_result.json is not JSON")

    result = json.loads((tmp_path / "run" / "device_result.json").read_text(), parse_constant=no_nan)
    assert set(result["eval"]) == {"test", "modern_test", "valid"}
    assert all(math.isfinite(e["bpc"]) and e["bpc"] > 0 for e in result["eval"].values())
    assert result["config"]["precision"] == "fp32" and result["steps"] > 0
    # the half-size copy to carry back holds the same weights, rounded to fp16
    from safetensors.torch import load_file

    full = load_file(tmp_path / "run" / "model" / "model.safetensors")
    half = load_file(tmp_path / "run" / "model-fp16" / "model.safetensors")
    assert set(full) == set(half) and all(half[k].dtype == torch.float16 for k in half if full[k].is_floating_point())
    assert all(torch.equal(half[k], full[k].half()) for k in half if full[k].is_floating_point())
    assert load_model(tmp_path / "run" / "model-fp16").meta["trained_steps"] == result["steps"]
    # the same --out with a larger budget goes on from where it stopped
    assert mod.main(args + ["--minutes", "0.05"]) == 0
    again = json.loads((tmp_path / "run" / "device_result.json").read_text())
    assert again["steps"] > result["steps"]
    assert mod.main(["--data", str(tmp_path / "nowhere"), "--device", "cpu"]) == 2


def test_ctrl_c_saves_a_resumable_checkpoint(tmp_path, sample_text):
    """`ardm train`: the first Ctrl-C finishes the step, saves and exits cleanly; rerunning resumes."""
    import os
    import signal
    import subprocess
    import time

    (tmp_path / "train.txt").write_text(sample_text * 40)
    cmd = [sys.executable, "-m", "ardm_core", "train", "--data", str(tmp_path), "--out", str(tmp_path / "run"),
           "--preset", "tiny", "--block-size", "32", "--batch-size", "2", "--steps", "100000", "--threads", "1",
           "--device", "cpu", "--eval-every", "100000", "--save-every", "100000", "--json"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    for line in proc.stdout:  # wait until it trains
        if '"TrainStep"' in line:
            break
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "stopping: saving a checkpoint" in err
    finished = [json.loads(x) for x in out.splitlines() if '"TrainFinished"' in x]
    assert finished and finished[-1]["interrupted"] is True
    assert (tmp_path / "run" / "model" / "model.safetensors").exists()
