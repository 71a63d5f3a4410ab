import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from ardm_core.checkpoint import load_model
from ardm_core.fileio import DataError
from ardm_core.train import TrainConfig, TrainFinished, TrainStep, Validated, train
from tests.core.train_helpers import tiny_cfg, write_corpus

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def corpus(tmp_path, sample_text):
    return write_corpus(tmp_path, sample_text)


def test_train_writes_model_and_lt_table(corpus, tmp_path):
    events = list(train(tiny_cfg(corpus, tmp_path / "run")))
    steps = [e for e in events if isinstance(e, TrainStep)]
    assert [e.step for e in steps] == list(range(1, 13))
    assert any(isinstance(e, Validated) for e in events)
    fin = events[-1]
    assert isinstance(fin, TrainFinished) and not fin.interrupted
    m = load_model(fin.model_dir)
    assert m.meta["trained_steps"] == 12
    assert len(m.loss_by_known) == 32
    assert all(a >= b for a, b in zip(m.loss_by_known, m.loss_by_known[1:])), "L_t sorted non-increasing"


def test_loss_goes_down(corpus, tmp_path):
    events = list(train(tiny_cfg(corpus, tmp_path / "run", steps=60, lr=3e-3, eval_every=60)))
    bpcs = [e.bpc for e in events if isinstance(e, TrainStep)]
    assert bpcs[-1] < bpcs[0] - 0.3


def test_stop_then_resume_matches_uninterrupted(corpus, tmp_path):
    full = list(train(tiny_cfg(corpus, tmp_path / "a")))
    stop = threading.Event()
    part = []
    for e in train(tiny_cfg(corpus, tmp_path / "b"), stop):
        part.append(e)
        if isinstance(e, TrainStep) and e.step == 6:
            stop.set()
    assert part[-1].interrupted and part[-1].step == 6
    resumed = list(train(tiny_cfg(corpus, tmp_path / "b")))
    assert resumed[0].start_step == 6
    a, b = load_model(tmp_path / "a" / "model"), load_model(tmp_path / "b" / "model")
    for (k, va), vb in zip(a.net.state_dict().items(), b.net.state_dict().values()):
        torch.testing.assert_close(va, vb, msg=k)


def test_init_fine_tunes_existing_model(corpus, tmp_path):
    first = list(train(tiny_cfg(corpus, tmp_path / "base")))[-1]
    tuned = list(train(tiny_cfg(corpus, tmp_path / "tuned", init=first.model_dir, steps=4)))[-1]
    m = load_model(tuned.model_dir)
    assert m.vocab.sha256 == load_model(first.model_dir).vocab.sha256
    assert m.meta["init_from"] == first.model_dir


def test_span_mix_trains_and_keeps_a_uniform_lt_table(corpus, tmp_path):
    events = list(train(tiny_cfg(corpus, tmp_path / "run", span_mix=0.5, steps=8)))
    m = load_model(events[-1].model_dir)
    assert m.meta["train_config"]["span_mix"] == 0.5
    assert all(a >= b for a, b in zip(m.loss_by_known, m.loss_by_known[1:]))
    with pytest.raises(ValueError, match=r"--span-mix must be a finite number in \[0, 1\]"):
        list(train(tiny_cfg(corpus, tmp_path / "bad", span_mix=1.5)))
    with pytest.raises(ValueError, match="ardm objective only"):
        list(train(tiny_cfg(corpus, tmp_path / "bad2", span_mix=0.5, objective="ar")))


def test_corpus_shorter_than_a_window(tmp_path):
    (tmp_path / "short.txt").write_text("too short", encoding="utf-8")
    with pytest.raises(DataError, match="shorter than one window"):
        list(train(TrainConfig(data=[str(tmp_path / "short.txt")], out=str(tmp_path / "o"), preset="tiny", block_size=32)))


def test_non_utf8_names_file_and_offset(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"hello \xff world")
    with pytest.raises(DataError, match=r"bad.txt: not UTF-8 .*offset 6"):
        list(train(TrainConfig(data=[str(tmp_path / "bad.txt")], out=str(tmp_path / "o"), preset="tiny")))


@pytest.mark.slow
def test_torchrun_two_processes_end_with_identical_weights(corpus, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "ardm_core",
           "train", "--data", str(corpus), "--out", str(out), "--preset", "tiny", "--block-size", "32",
           "--batch-size", "4", "--steps", "6", "--warmup", "2", "--eval-every", "3", "--eval-batches", "1",
           "--save-every", "3", "--threads", "1", "--device", "cpu", "--json"]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)
    assert res.returncode == 0, res.stderr[-2000:]
    shas = [(out / f"rank{r}.sha256").read_text() for r in (0, 1)]
    assert shas[0] == shas[1]
    started = [json.loads(l) for l in res.stdout.splitlines() if '"TrainStarted"' in l]
    assert started and started[0]["world_size"] == 2
    assert load_model(out / "model").meta["world_size"] == 2
