"""``ardm compress`` / ``ardm decompress``: round trips, no silent overwrites, one-line errors."""

import io
import sys

import pytest

from ardm_core.checkpoint import save_model
from ardm_core.cli import main
from tests.conftest import make_tiny_model


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.err


@pytest.fixture
def src(tmp_path, sample_text):
    f = tmp_path / "doc.txt"
    f.write_bytes((sample_text[:200] + " \u2713\r\n").encode())
    return f


def test_round_trip_with_default_names(capsys, tiny_model_dir, src, tmp_path):
    code, err = run(capsys, "compress", "--model", tiny_model_dir, src, "--steps", "8")
    assert code == 0, err
    packed = tmp_path / "doc.txt.ardm"
    assert packed.exists() and "bits/char" in err
    original = src.read_bytes()
    src.unlink()
    code, err = run(capsys, "decompress", "--model", tiny_model_dir, packed)
    assert code == 0, err
    assert src.read_bytes() == original and "checksum ok" in err
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temp files left behind"


def test_never_overwrites_without_force(capsys, tiny_model_dir, src, tmp_path):
    out = tmp_path / "out.ardm"
    out.write_bytes(b"precious")
    code, err = run(capsys, "compress", "--model", tiny_model_dir, src, "-o", out)
    assert code == 2 and "already exists; use --force" in err and err.count("\n") == 1
    assert out.read_bytes() == b"precious"
    assert run(capsys, "compress", "--model", tiny_model_dir, src, "-o", out, "--force")[0] == 0
    restored = tmp_path / "back.txt"
    restored.write_bytes(b"precious")
    code, err = run(capsys, "decompress", "--model", tiny_model_dir, out, "-o", restored)
    assert code == 2 and "already exists" in err and restored.read_bytes() == b"precious"
    assert run(capsys, "decompress", "--model", tiny_model_dir, out, "-o", restored, "-f")[0] == 0
    assert restored.read_bytes() == src.read_bytes()


def test_wrong_model_and_damage_write_nothing(capsys, tiny_model_dir, src, tmp_path):
    packed = tmp_path / "p.ardm"
    assert run(capsys, "compress", "--model", tiny_model_dir, src, "-o", packed, "-q", "--method", "model")[0] == 0
    other = tmp_path / "other-model"
    m = make_tiny_model(seed=3)
    save_model(other, m.net, m.vocab, loss_by_known=m.loss_by_known)
    target = tmp_path / "restored.txt"
    code, err = run(capsys, "decompress", "--model", other, packed, "-o", target)
    assert code == 2 and "different model" in err and not target.exists()
    damaged = tmp_path / "d.ardm"
    damaged.write_bytes(packed.read_bytes()[:-2])
    code, err = run(capsys, "decompress", "--model", tiny_model_dir, damaged, "-o", target)
    assert code == 2 and ("corrupted" in err or "checksum" in err) and not target.exists()
    code, err = run(capsys, "decompress", "--model", tiny_model_dir, src, "-o", target)
    assert code == 2 and "not an ARDM compressed file" in err and not target.exists()


def test_binary_input_and_stdout(capsysbinary, tiny_model_dir, tmp_path):
    data = bytes(range(256))
    f = tmp_path / "blob.bin"
    f.write_bytes(data)
    assert main(["compress", "--model", tiny_model_dir, str(f), "-q"]) == 0
    capsysbinary.readouterr()
    assert main(["decompress", "--model", tiny_model_dir, str(f) + ".ardm", "-o", "-", "-q"]) == 0
    assert capsysbinary.readouterr().out == data


def test_stdin(capsys, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"piped text")))
    out = tmp_path / "piped.ardm"
    assert run(capsys, "compress", "--model", tiny_model_dir, "-", "-o", out)[0] == 0
    back = tmp_path / "piped.txt"
    assert run(capsys, "decompress", "--model", tiny_model_dir, out, "-o", back)[0] == 0
    assert back.read_bytes() == b"piped text"


@pytest.mark.parametrize("argv, message", [
    (["compress", "{src}", "--steps", "0"], "steps must be between 1"),
    (["compress", "{tmp}/missing.txt"], "file not found"),
    (["decompress", "{src}"], "give -o OUT"),
    (["compress", "{src}", "-o", "{src}"], "would replace the input"),
])
def test_user_errors_are_one_line(capsys, tiny_model_dir, src, tmp_path, argv, message):
    argv = [a.format(src=src, tmp=tmp_path) for a in argv]
    code, err = run(capsys, argv[0], "--model", tiny_model_dir, *argv[1:])
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_unwritable_folder_is_named_correctly(capsys, tiny_model_dir, src, tmp_path):
    code, err = run(capsys, "compress", "--model", tiny_model_dir, src, "-o", "/proc/version", "--force")
    assert code == 2 and err.count("\n") == 1 and "does not exist" not in err and "/proc" in err, err
    code, err = run(capsys, "compress", "--model", tiny_model_dir, src, "-o", tmp_path / "no" / "x.ardm")
    assert code == 2 and "does not exist" in err and str(tmp_path / "no") in err, err


def test_special_files_are_never_replaced(capsys, tiny_model_dir, src, tmp_path):
    import os

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code, err = run(capsys, "compress", "--model", tiny_model_dir, src, "-o", fifo, "--force")
    assert code == 2 and "not a regular file" in err and err.count("\n") == 1, err
    assert fifo.is_fifo()


def test_upscaling_model_is_refused_plainly(capsys, tiny_upscale_dir, src):
    code, err = run(capsys, "compress", "--model", tiny_upscale_dir, src, "--method", "model")
    assert code == 2 and "compression needs a plain model" in err and err.count("\n") == 1, err


def test_a_file_that_fails_its_check_is_never_written(capsys, tiny_model_dir, src, tmp_path, monkeypatch):
    import ardm_core.compress as codec

    real = codec._decode_text

    def drifting(*args, **kwargs):
        text, calls = yield from real(*args, **kwargs)
        return text[::-1] + "x", calls

    monkeypatch.setattr(codec, "_decode_text", drifting)
    out = tmp_path / "out.ardm"
    out.write_bytes(b"precious")
    code, err = run(capsys, "compress", "--model", tiny_model_dir, src, "-o", out, "--force", "--method", "model")
    assert code == 2 and "failed its check" in err and err.count("\n") == 1, err
    assert out.read_bytes() == b"precious"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temp files left behind"
    code, err = run(capsys, "compress", "--model", tiny_model_dir, src, "-o", out, "--force")  # auto: a classic block
    assert code == 0 and "warning: the model-coded file failed its check" in err
    monkeypatch.setattr(codec, "_decode_text", real)
    back = tmp_path / "back.txt"
    assert run(capsys, "decompress", "--model", tiny_model_dir, out, "-o", back)[0] == 0
    assert back.read_bytes() == src.read_bytes()


def test_empty_model_argument_is_an_error(capsys, src):
    """An empty --model is a mistake, not a request for the shipped model."""
    for cmd in ("compress", "decompress"):
        code, err = run(capsys, cmd, "--model", "", src, "-o", "-")
        assert code == 2 and "--model is empty" in err and err.count("\n") == 1, err


def test_special_input_files_are_refused(capsys, tiny_model_dir, tmp_path):
    for dev in ("/dev/zero", "/dev/urandom"):
        code, err = run(capsys, "compress", "--model", tiny_model_dir, dev, "-o", tmp_path / "z.ardm")
        assert code == 2 and "not a regular file" in err and err.count("\n") == 1, err
    assert not (tmp_path / "z.ardm").exists()
