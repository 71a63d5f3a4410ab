"""Train on my writing: it lowers the bits on the user's text, resumes after a cancel,
streams its input, skips binary files, and never writes over the base or shipped model."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from ardm_core import finetune as ft
from ardm_core.checkpoint import load_model
from ardm_core.cli import main
from ardm_core.fileio import DataError
from ardm_core.paths import ASSETS
from ardm_core.train import TrainStarted, TrainStep
from tests.conftest import SAMPLE_TEXT


@pytest.fixture
def writing(tmp_path) -> Path:
    d = tmp_path / "writing"
    (d / "drafts").mkdir(parents=True)
    (d / "chapter1.txt").write_text(SAMPLE_TEXT * 6)
    (d / "drafts" / "notes.md").write_text(SAMPLE_TEXT[::-1] * 3)
    (d / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20)
    (d / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (d / "image.png").write_bytes(b"\x00" * 10)  # not a text suffix: not even looked at
    return d


def _run(cfg, stop=None, stop_at=None):
    stop = stop or threading.Event()
    events = []
    for ev in ft.finetune(cfg, stop):
        events.append(ev)
        if stop_at is not None and isinstance(ev, TrainStep) and ev.step == stop_at:
            stop.set()
    return events


def _cfg(writing, tmp_path, base, **kw):
    return ft.FinetuneConfig(inputs=[str(writing)], out=str(tmp_path / "run"), base=base, batch_size=8, threads=1,
                             **{"steps": 30, **kw})


def test_fine_tuning_lowers_the_bits_on_the_users_text(writing, tmp_path, tiny_model_dir):
    events = _run(_cfg(writing, tmp_path, tiny_model_dir))
    prep, fin = events[0], events[-1]
    assert isinstance(prep, ft.Prepared) and isinstance(fin, ft.FinetuneFinished)
    assert fin.bpc_after < fin.bpc_before - 0.1 and not fin.interrupted and fin.step == 30
    # the held-out text is measured with both models: the reported numbers are reproducible
    data = tmp_path / "run" / "data"
    assert ft.heldout_bpc(load_model(fin.model_dir), data, 20_000) == pytest.approx(fin.bpc_after, abs=1e-6)
    card = Path(fin.card).read_text()
    assert "chapter1.txt" in card and "notes.md" in card and "photo.txt" in card and f"{fin.bpc_after:.3f}" in card
    assert fin.example is not None and len(fin.example.before) == len(fin.example.after) == len(fin.example.masked)
    # binary and non-UTF-8 files are skipped and listed
    skipped = {Path(f).name: why for f, why in prep.scan.skipped}
    assert set(skipped) == {"photo.txt", "latin1.txt"} and "binary" in skipped["photo.txt"] and "UTF-8" in skipped["latin1.txt"]


def test_the_last_tenth_of_each_file_is_held_out(writing, tiny_loaded, tmp_path):
    scan = ft.prepare_texts([writing], tiny_loaded.vocab, tmp_path / "data")
    train = (tmp_path / "data" / "train.txt").read_text()
    valid = (tmp_path / "data" / "valid.txt").read_text()
    a, b = SAMPLE_TEXT * 6, SAMPLE_TEXT[::-1] * 3
    cut_a, cut_b = len(a) - round(len(a) * 0.1), len(b) - round(len(b) * 0.1)
    assert train.split("\n\n\n") == [a[:cut_a], b[:cut_b]]
    assert valid.split("\n\n\n") == [a[cut_a:], b[cut_b:]]
    assert scan.chars == len(a) + len(b) and not scan.sampled


def test_big_input_is_streamed_and_sampled(tmp_path, tiny_loaded, monkeypatch):
    monkeypatch.setattr(ft, "READ_BLOCK", 1000)  # many blocks per file, a CRLF split across two of them
    monkeypatch.setattr(ft, "PIECE", 500)
    d = tmp_path / "big"
    d.mkdir()
    line = "x" * 998 + "\r\n"  # the CR ends a read block, its LF starts the next
    for i in range(5):
        (d / f"{i}.txt").write_text(line * 40, newline="")
    scan = ft.prepare_texts([d], tiny_loaded.vocab, tmp_path / "data", max_chars=20_000)
    train = (tmp_path / "data" / "train.txt").read_text()
    assert "\r" not in train and "\n\n\n" in train  # files joined by the separator, CRLF normalised
    assert scan.chars == 5 * 40 * 999 and scan.sampled
    assert 18_000 <= scan.train_chars + scan.valid_chars <= 22_000


def test_cancel_and_resume(writing, tmp_path, tiny_model_dir):
    cfg = _cfg(writing, tmp_path, tiny_model_dir, steps=20)
    first = _run(cfg, stop_at=6)
    assert first[-1].interrupted and first[-1].step == 6
    assert json.loads((tmp_path / "run" / "state.json").read_text())["step"] == 6
    again = _run(cfg)
    assert again[0].resumed and again[0].bpc_before == first[0].bpc_before
    started = next(e for e in again if isinstance(e, TrainStarted))
    assert started.start_step == 6 and again[-1].step == 20 and not again[-1].interrupted
    # other files into the same run folder: refused, nothing changes
    other = tmp_path / "other.txt"
    other.write_text(SAMPLE_TEXT)
    with pytest.raises(DataError, match="other files"):
        _run(ft.FinetuneConfig(inputs=[str(other)], out=cfg.out, base=tiny_model_dir, steps=20))


def test_bad_inputs_are_refused_clearly(tmp_path, tiny_model_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no text to train on"):
        _run(ft.FinetuneConfig(inputs=[str(empty)], out=str(tmp_path / "r1"), base=tiny_model_dir))
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.txt").write_bytes(b"\x00\x01\x02" * 100)
    with pytest.raises(DataError, match=r"1 skipped: not text"):
        _run(ft.FinetuneConfig(inputs=[str(junk)], out=str(tmp_path / "r2"), base=tiny_model_dir))
    assert not (tmp_path / "r2" / "model").exists()


def test_never_writes_over_the_base_or_shipped_model(tmp_path, tiny_model_dir, writing):
    before = {p.name: p.read_bytes() for p in Path(tiny_model_dir).iterdir()}
    for out in (tiny_model_dir, str(Path(tiny_model_dir).parent), str(ASSETS / "models" / "default"),
                str(ASSETS / "models" / "mine")):
        with pytest.raises(DataError, match="write over"):
            _run(ft.FinetuneConfig(inputs=[str(writing)], out=out, base=tiny_model_dir))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty"):
        _run(ft.FinetuneConfig(inputs=[str(writing)], out=str(busy), base=tiny_model_dir))
    assert {p.name: p.read_bytes() for p in Path(tiny_model_dir).iterdir()} == before
    assert (busy / "thesis.txt").read_text() == "mine"


def test_cli_reports_before_and_after(writing, tmp_path, tiny_model_dir, capsys):
    assert main(["finetune", str(writing), "--out", str(tmp_path / "run"), "--model", tiny_model_dir, "--steps", "10",
                 "--batch-size", "4", "--threads", "1"]) == 0
    out, err = capsys.readouterr()
    assert "held-out bits per character: before" in out and "model:" in out
    assert "skipped" in err and "photo.txt" in err and "10/10" in err


def test_cli_empty_folder_is_one_line(tmp_path, tiny_model_dir, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["finetune", str(tmp_path / "empty"), "--out", str(tmp_path / "run"), "--model", tiny_model_dir]) == 2
    err = capsys.readouterr().err
    assert "no text to train on" in err and len(err.strip().splitlines()) == 1


def test_a_full_disk_while_saving_is_one_line_and_loses_nothing(writing, tmp_path, tiny_model_dir, capsys, monkeypatch):
    import errno

    from ardm_core import checkpoint

    real = checkpoint.atomic_write_bytes
    calls = {"n": 0}

    def full_after_two(path, data):
        calls["n"] += 1
        if calls["n"] > 2:  # the first checkpoint's state is written, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    base_before = {p.name: p.read_bytes() for p in Path(tiny_model_dir).iterdir()}
    monkeypatch.setattr(checkpoint, "atomic_write_bytes", full_after_two)
    argv = ["finetune", str(writing), "--out", str(tmp_path / "run"), "--model", tiny_model_dir, "--steps", "10",
            "--batch-size", "4", "--threads", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "No space left on device" in err[-1] and "checkpoint is kept" in err[-1]
    assert {p.name: p.read_bytes() for p in Path(tiny_model_dir).iterdir()} == base_before
    leftovers = [p.name for p in (tmp_path / "run").rglob("*") if p.name.startswith(".")]
    assert leftovers == []  # no temp files or half-written model folders
    # with space again, the same command goes on from what was saved and finishes
    monkeypatch.setattr(checkpoint, "atomic_write_bytes", real)
    assert main(argv) == 0
    assert "held-out bits per character" in capsys.readouterr().out
