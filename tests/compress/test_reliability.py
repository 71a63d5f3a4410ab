"""Nothing lost, nothing trusted: every file compress() returns decodes, the end-of-data rule is exact,
promised lengths are limits, and the model tag covers everything the probabilities depend on."""

import dataclasses
import tracemalloc
from pathlib import Path

import brotli
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ardm_core.compress as codec
from ardm_core.checkpoint import LoadedModel
from ardm_core.codec_format import CompressedFileError, Header, ModelMismatchError, crc32, pack_header, read_header
from ardm_core.compress import CompressionCheckError, compress, compress_bytes, decompress_bytes
from ardm_core.model import ARDMTransformer
from tests.conftest import SAMPLE_TEXT

ROOT = Path(__file__).resolve().parents[2]

KNOWN = sorted(set(SAMPLE_TEXT))


def _round_trip(model, data: bytes, **kw) -> bytes:
    blob = compress_bytes(model, data, **kw)
    assert decompress_bytes(model, blob) == data
    return blob


# -- 1. the end-of-data rule ---------------------------------------------------------------
@pytest.mark.parametrize("text, steps, window", [
    (SAMPLE_TEXT[:64], 1, 64),  # one step codes a whole window: far more than MAX_BITS_PAST_END bits
    ("\r" * 14, 1, 32),
    (SAMPLE_TEXT[:256], 2, 64),
])
def test_large_steps_decode(tiny_model, text, steps, window):
    blob = compress_bytes(tiny_model, text.encode(), steps=steps, window=window, method="model", verify=False)
    assert decompress_bytes(tiny_model, blob) == text.encode()


CHARS = st.sampled_from(KNOWN + ["\r", "\n", "\u00e9", "\u2713", "\U0001F600", "\x00"]) | st.characters(codec="utf-8")


@st.composite
def coding_cases(draw):
    """(text, K, window): K = 1..4, small windows, texts that often fill whole windows exactly."""
    window = draw(st.sampled_from([1, 2, 3, 5, 8, 16, 32, 64]))
    steps = draw(st.integers(1, min(4, window)))
    n = draw(st.sampled_from([window, 2 * window, 3 * window]) | st.integers(0, 3 * window))
    return draw(st.text(alphabet=CHARS, min_size=n, max_size=n)), steps, window


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=coding_cases(), seed=st.integers(0, 2**32 - 1))
def test_small_k_and_small_windows_round_trip(tiny_model, case, seed):
    text, steps, window = case
    _round_trip(tiny_model, text.encode(), steps=steps, window=window, seed=seed, method="model", verify=False)


def test_damaged_length_still_stops_early(tiny_model):
    """The exact rule still stops a length field that promises far more than the data holds."""
    blob = compress_bytes(tiny_model, SAMPLE_TEXT[:64].encode(), steps=1, window=64, method="model")
    header, offset = read_header(blob)
    for length in (65, 200, 1 << 39):
        forged = pack_header(dataclasses.replace(header, length=length)) + blob[offset:]
        with pytest.raises(CompressedFileError):
            decompress_bytes(tiny_model, forged)


# -- 2. the encoder checks its own output --------------------------------------------------
def _drifting_decoder(real):
    def decode(*args, **kwargs):
        text, calls = yield from real(*args, **kwargs)
        return text[:-1] + ("b" if text[-1:] == "a" else "a"), calls
    return decode


def test_a_file_that_would_not_decode_is_refused(tiny_model, monkeypatch):
    monkeypatch.setattr(codec, "_decode_text", _drifting_decoder(codec._decode_text))
    data = SAMPLE_TEXT[:80].encode()
    with pytest.raises(CompressionCheckError, match="failed its check"):
        compress_bytes(tiny_model, data, window=16, steps=4, method="model")
    result = list(compress(tiny_model, data, window=16, steps=4))[-1]  # auto: the best classic block instead
    assert result.method in ("brotli", "stored") and "failed its check" in result.note
    assert decompress_bytes(None, result.data) == data


def test_the_check_decodes_with_the_real_decoder(tiny_model):
    result = list(compress(tiny_model, SAMPLE_TEXT[:100].encode(), window=16, steps=4, method="model"))[-1]
    assert result.check_calls == result.network_calls > 0 and not result.note
    events = list(compress(tiny_model, SAMPLE_TEXT[:100].encode(), window=16, steps=4, method="model"))
    assert any(getattr(e, "phase", "") == "verify" for e in events)


# -- 3. promised lengths are limits ---------------------------------------------------------
def test_brotli_bomb_stops_at_the_promised_length():
    bomb = brotli.compress(b"\0" * 50_000_000, quality=5)
    blob = pack_header(Header("brotli", 10, crc32(b"\0" * 10))) + bomb
    assert len(blob) < 100_000
    tracemalloc.start()
    try:
        with pytest.raises(CompressedFileError, match="more than the 10 bytes"):
            decompress_bytes(None, blob)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8_000_000, peak  # the limit, not the 50 MB the block inflates to


def test_brotli_block_shorter_than_promised():
    data = b"hello " * 1000
    blob = pack_header(Header("brotli", len(data) + 1, crc32(data))) + brotli.compress(data)
    with pytest.raises(CompressedFileError, match="header says"):
        decompress_bytes(None, blob)
    blob = pack_header(Header("brotli", len(data), crc32(data))) + brotli.compress(data)
    assert decompress_bytes(None, blob) == data
    for cut in (1, 5, 20):
        with pytest.raises(CompressedFileError):
            decompress_bytes(None, blob[:-cut])


# -- 4. the model tag covers the architecture ----------------------------------------------
def _same_weights(model: LoadedModel, **changes) -> LoadedModel:
    cfg = dataclasses.replace(model.config, **changes)
    net = ARDMTransformer(cfg).eval()
    net.load_state_dict(model.net.state_dict())
    return dataclasses.replace(model, net=net, config=cfg)


@pytest.mark.parametrize("changes", [{"n_head": 4}, {"rope_base": 5000.0}, {"n_head": 1}])
def test_same_weights_other_architecture_is_another_model(tiny_model, changes):
    blob = compress_bytes(tiny_model, SAMPLE_TEXT[:100].encode(), window=16, steps=4, method="model")
    other = _same_weights(tiny_model, **changes)
    with pytest.raises(ModelMismatchError, match="different model"):
        decompress_bytes(other, blob)


def test_same_architecture_same_weights_same_tag(tiny_model):
    blob = compress_bytes(tiny_model, SAMPLE_TEXT[:100].encode(), window=16, steps=4, method="model")
    twin = _same_weights(tiny_model, dropout=0.1)  # dropout does nothing in eval mode
    assert codec.model_tag(twin) == codec.model_tag(tiny_model)
    assert decompress_bytes(twin, blob) == SAMPLE_TEXT[:100].encode()


def test_weights_changed_in_place_change_the_tag(tiny_model):
    from tests.conftest import make_tiny_model

    m = make_tiny_model(seed=5)
    before = codec.model_tag(m)
    with torch.no_grad():
        next(m.net.parameters()).add_(1e-3)
    assert codec.model_tag(m) != before


# -- 5. plain models only ---------------------------------------------------------------------
def test_upscaling_model_is_refused_plainly(tiny_upscale):
    with pytest.raises(ValueError, match="compression needs a plain model"):
        compress_bytes(tiny_upscale, b"hello", method="model")


@pytest.mark.shipped
def test_shipped_model_small_k_round_trip_through_the_cli(tmp_path, capsys):
    """The reported case: 256 characters of the test split at K = 1 and 2 with the shipped model."""
    from ardm_core.cli import main
    from ardm_core.paths import default_model_dir

    if not (default_model_dir() / "config.json").exists():
        pytest.skip("no shipped model")
    text = (ROOT / "assets" / "corpus" / "test.txt").read_text(encoding="utf-8")[7000:7256]
    src = tmp_path / "t.txt"
    src.write_text(text, encoding="utf-8")
    for k in ("1", "2"):
        assert main(["compress", str(src), "--steps", k, "-f", "-q"]) == 0
        assert main(["decompress", str(src) + ".ardm", "-o", str(tmp_path / "t.out"), "-f", "-q"]) == 0
        assert (tmp_path / "t.out").read_bytes() == src.read_bytes()
