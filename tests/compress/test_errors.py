"""Damaged files, the wrong model, checksum mismatches: a clear error, never wrong output."""

import dataclasses

import brotli
import pytest

from ardm_core.codec_format import CompressedFileError, ModelMismatchError, crc32, pack_header, read_header
from ardm_core.compress import compress_bytes, decompress_bytes
from tests.conftest import make_tiny_model

TEXT = "The quick brown fox \u2713 jumps over the lazy dog; caf\u00e9."


@pytest.fixture(scope="module")
def model_blob(tiny_model):
    return compress_bytes(tiny_model, TEXT.encode(), window=16, steps=4, method="model")


def _never_wrong(model, blob: bytes, original: bytes) -> bool:
    """True if decoding raised CompressedFileError, False if it returned the original; fails on anything else."""
    try:
        out = decompress_bytes(model, blob)
    except CompressedFileError:
        return True
    assert out == original, "decoder returned wrong output"
    return False


def test_wrong_model_is_named(model_blob):
    other = make_tiny_model(seed=1)
    with pytest.raises(ModelMismatchError, match="compressed with a different model"):
        decompress_bytes(other, model_blob)


def test_changed_l_table_is_a_different_model(tiny_model, model_blob):
    """The L_t table decides the step sizes but lives outside the weights' fingerprint."""
    other = dataclasses.replace(tiny_model, loss_by_known=tiny_model.loss_by_known * 0.9)
    with pytest.raises(ModelMismatchError, match="L_t table"):
        decompress_bytes(other, model_blob)


def test_model_file_needs_a_model(model_blob):
    with pytest.raises(ValueError, match="give the model"):
        decompress_bytes(None, model_blob)


def test_every_truncation_fails_cleanly(tiny_model, model_blob):
    caught = sum(_never_wrong(tiny_model, model_blob[:cut], TEXT.encode()) for cut in range(len(model_blob)))
    assert caught >= len(model_blob) - 1


def test_every_bit_flip_fails_cleanly_or_is_harmless(tiny_model, model_blob):
    # one flipped bit per byte, cycling through the bit positions, keeps the suite fast
    for i in range(len(model_blob)):
        bad = bytearray(model_blob)
        bad[i] ^= 1 << (i * 3 % 8)
        _never_wrong(tiny_model, bytes(bad), TEXT.encode())


def test_appended_garbage_fails_cleanly(tiny_model, model_blob):
    _never_wrong(tiny_model, model_blob + b"\x00\x01garbage", TEXT.encode())


def test_checksum_mismatch(tiny_model, model_blob):
    header, offset = read_header(model_blob)
    forged = pack_header(dataclasses.replace(header, crc32=header.crc32 ^ 1)) + model_blob[offset:]
    with pytest.raises(CompressedFileError, match="checksum mismatch"):
        decompress_bytes(tiny_model, forged)


def test_drifted_decoder_is_caught(tiny_model, model_blob, monkeypatch):
    """A decoder whose probabilities differ (here: other weights behind a forged tag) must fail, not guess."""
    import ardm_core.compress as codec

    tag = read_header(model_blob)[0].fingerprint
    monkeypatch.setattr(codec, "model_tag", lambda model, version=None: tag)
    with pytest.raises(CompressedFileError) as caught:
        decompress_bytes(make_tiny_model(seed=2), model_blob)
    assert not isinstance(caught.value, ModelMismatchError)


def test_damaged_fallback_blocks():
    data = b"hello hello hello hello hello hello hello" * 10
    stored = pack_header(read_header(compress_bytes(None, data, method="stored"))[0]) + data
    with pytest.raises(CompressedFileError, match="truncated"):
        decompress_bytes(None, stored[:-1])
    blob = compress_bytes(None, data, method="brotli")
    with pytest.raises(CompressedFileError):
        decompress_bytes(None, blob[:-3])
    header, off = read_header(blob)
    other = brotli.compress(b"something else")
    forged = pack_header(dataclasses.replace(header, length=14, crc32=crc32(b"something els_"))) + other
    with pytest.raises(CompressedFileError, match="checksum mismatch"):
        decompress_bytes(None, forged)


def test_not_our_file():
    with pytest.raises(CompressedFileError, match="not an ARDM compressed file"):
        decompress_bytes(None, b"\x1f\x8b\x08\x00 a gzip file")


def test_damaged_length_stops_early(tiny_model, model_blob):
    """A length field that passes the header check but promises far more text fails fast, without huge allocations."""
    header, offset = read_header(model_blob)
    forged = pack_header(dataclasses.replace(header, length=1 << 39)) + model_blob[offset:]
    with pytest.raises(CompressedFileError, match="corrupted"):
        decompress_bytes(tiny_model, forged)


def test_wrong_model_names_the_commit_that_shipped_the_right_one(model_blob, tiny_model, tmp_path, monkeypatch):
    """After a release ships new weights, the error says which commit shipped the file's model and how to get it."""
    import json

    from ardm_core import compress as compress_mod
    from ardm_core.compress import model_tag, shipped_model_hint

    history = tmp_path / "HISTORY.json"
    row = {"tag": model_tag(tiny_model).hex(), "format": 2, "model": "default", "commit": "45244eefb3",
           "date": "2026-11-29", "trained_steps": 25695}
    history.write_text(json.dumps({"models": [row]}))
    monkeypatch.setattr(compress_mod, "ASSETS", tmp_path / "assets")
    (tmp_path / "assets" / "models").mkdir(parents=True)
    history.rename(tmp_path / "assets" / "models" / "HISTORY.json")
    with pytest.raises(ModelMismatchError) as err:
        decompress_bytes(make_tiny_model(seed=1), model_blob)
    msg = str(err.value)
    assert "shipped in commit 45244eefb3 (2026-11-29, 25,695 steps)" in msg
    assert "git archive 45244eefb3 assets/models/default | tar -x -C OLD" in msg
    assert "--model OLD/assets/models/default" in msg
    # the newest entry of a model that is still shipped: that model, by name
    (tmp_path / "assets" / "models" / "default").mkdir()
    (tmp_path / "assets" / "models" / "default" / "config.json").write_text("{}")
    assert "the shipped 'default' model: decompress with --model default (the folder " in \
        shipped_model_hint(model_tag(tiny_model), 2)
    older = {**row, "tag": "00000000", "commit": "1234567abc"}
    (tmp_path / "assets" / "models" / "HISTORY.json").write_text(json.dumps({"models": [older, row]}))
    assert "git archive 45244eefb3" in shipped_model_hint(model_tag(tiny_model), 2)
    # what the table says is checked before it is printed: a date with escape codes, a boolean step count
    odd = {**row, "date": "\x1b[2J2026", "trained_steps": True}
    (tmp_path / "h.json").write_text(json.dumps({"models": [older, odd]}))
    hint = shipped_model_hint(model_tag(tiny_model), 2, tmp_path / "h.json")
    assert "commit 45244eefb3;" in hint and "\x1b" not in hint
    # a tag it does not know, another format, or a damaged table: the plain message, never an error of its own
    assert shipped_model_hint(b"\x00\x01\x02\x03", 2) == "" and shipped_model_hint(model_tag(tiny_model), 1) == ""
    for bad in ("not json", "[]", '{"models": 5}', json.dumps({"models": [{**row, "commit": "; rm -rf /"}]}),
                json.dumps({"models": [{**row, "model": "../x"}]}), json.dumps({"models": [{**row, "commit": "XYZ"}]})):
        (tmp_path / "h.json").write_text(bad)
        assert shipped_model_hint(model_tag(tiny_model), 2, tmp_path / "h.json") == ""


def test_history_lists_the_shipped_models_tags():
    """scripts/model_history.py was rerun after the last model was shipped: every shipped model's tag is listed."""
    import json

    from ardm_core.checkpoint import load_model
    from ardm_core.codec_format import FORMAT_VERSION
    from ardm_core.compress import model_tag
    from ardm_core.paths import ASSETS

    rows = json.loads((ASSETS / "models" / "HISTORY.json").read_text())["models"]
    for name in ("default", "medium"):
        model = load_model(ASSETS / "models" / name)
        for version in range(1, FORMAT_VERSION + 1):
            newest = next(r for r in rows if r["model"] == name and r["format"] == version)  # newest first
            assert newest["tag"] == model_tag(model, version).hex(), f"rerun scripts/model_history.py ({name})"
