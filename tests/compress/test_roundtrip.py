import numpy as np
import pytest

from ardm_core.codec_format import read_header
from ardm_core.compress import (
    CodingProgress,
    CodingResult,
    _groups,
    compress,
    compress_bytes,
    decompress,
    decompress_bytes,
    probability_net,
)

TEXTS = {
    "prose": "It is a truth universally acknowledged, that a single man in possession of a good fortune.",
    "one char": "a",
    "one unknown char": "\u00e9",
    "unknowns and repeats": "na\u00efve caf\u00e9 \u2713 \U0001F600 \U0001F600 \u00e9\u00e9 \x00 \x7f end",
    "all unknown": "\u4e2d\u6587\u5b57\u7b26\u4e32\u4e2d\u6587",
    "crlf, bom, tabs": "\ufeffline one\r\nline two\r\n\tindented\rold mac\n",
    "max code point": "x\U0010FFFFy\U00010000z",
}


@pytest.mark.parametrize("name", list(TEXTS))
def test_model_method_round_trips(tiny_model, opts, name):
    data = TEXTS[name].encode("utf-8")
    blob = compress_bytes(tiny_model, data, method="model", **opts)
    assert read_header(blob)[0].method == "model"
    assert decompress_bytes(tiny_model, blob) == data


def test_long_text_is_coded_window_by_window(tiny_model, sample_text, opts):
    data = (sample_text * 2).encode()  # 900+ chars: several groups of 16-char windows, a short last window
    events = list(compress(tiny_model, data, method="model", **opts))
    res = events[-1]
    assert isinstance(res, CodingResult) and all(isinstance(e, CodingProgress) for e in events[:-1])
    n_win = -(-len(sample_text * 2) // opts["window"])
    assert len(sample_text * 2) % opts["window"], "the last window should be short"
    assert res.network_calls == (n_win - 1) * opts["steps"] + min(opts["steps"], len(sample_text * 2) % opts["window"])
    assert events[-2].windows_done == events[-2].windows == n_win
    back = list(decompress(tiny_model, res.data))
    assert back[-1].data == data and back[-1].network_calls == res.network_calls


def test_full_model_window_and_one_symbol_per_step(tiny_model, sample_text):
    data = sample_text[:80].encode()
    blob = compress_bytes(tiny_model, data, steps=64, method="model")  # window = block size, K = D
    h = read_header(blob)[0]
    assert h.window == 0 and h.steps == 64
    assert decompress_bytes(tiny_model, blob) == data


def test_loaded_model_folder(tiny_loaded, sample_text, opts):
    data = sample_text[:100].encode()
    blob = compress_bytes(tiny_loaded, data, method="model", **opts)
    import hashlib

    from ardm_core.compress import probability_net

    L = np.round(tiny_loaded.loss_by_known * 1024) / 1024
    plan = b"L" + L.astype("<f8").tobytes()
    assert read_header(blob)[0].fingerprint == hashlib.sha256(probability_net(tiny_loaded).digest + plan).digest()[:4]
    assert decompress_bytes(tiny_loaded, blob) == data


def test_format_1_files_still_decode(tiny_loaded, sample_text, opts):
    """Version 1 tagged the loader's fingerprint (weights and vocabulary) and the L_t table; same layout otherwise."""
    import dataclasses
    import hashlib

    from ardm_core.codec_format import pack_header

    data = sample_text[:100].encode()
    header, offset = read_header(compress_bytes(tiny_loaded, data, method="model", **opts))
    L = np.round(tiny_loaded.loss_by_known * 1024) / 1024
    old_tag = hashlib.sha256(bytes.fromhex(tiny_loaded.fingerprint) + b"L" + L.astype("<f8").tobytes()).digest()[:4]
    v1 = pack_header(dataclasses.replace(header, version=1, fingerprint=old_tag))
    blob = compress_bytes(tiny_loaded, data, method="model", **opts)
    assert decompress_bytes(tiny_loaded, v1 + blob[offset:]) == data


@pytest.mark.parametrize("data, method", [
    (b"", "stored"),
    (b"\xff\xfe\x00 not utf-8 \xc3", "stored"),
    (np.random.default_rng(0).bytes(1000), "stored"),
    (b"abc" * 400, "brotli"),
])
def test_auto_falls_back(tiny_model, opts, data, method):
    res = list(compress(tiny_model, data, **opts))[-1]
    assert res.method == method
    assert decompress_bytes(None, res.data) == data  # fallback blocks need no model


def test_auto_picks_the_smallest(tiny_model, sample_text, opts):
    data = sample_text.encode()
    sizes = {m: len(compress_bytes(tiny_model, data, method=m, **opts)) for m in ("model", "brotli", "stored")}
    assert len(compress_bytes(tiny_model, data, **opts)) == min(sizes.values())


def test_empty_input_every_method(tiny_model, opts):
    for method in ("auto", "model", "brotli", "stored"):
        blob = compress_bytes(tiny_model, b"", method=method, **opts)
        assert decompress_bytes(tiny_model, blob) == b""


def test_option_errors(tiny_model, opts):
    with pytest.raises(ValueError, match="unknown method 'zip'"):
        compress_bytes(tiny_model, b"x", method="zip")
    with pytest.raises(ValueError, match="not UTF-8"):
        compress_bytes(tiny_model, b"\xff", method="model")
    with pytest.raises(ValueError, match="steps must be between 1 and the window size 16"):
        compress_bytes(tiny_model, b"x", steps=17, window=16)
    with pytest.raises(ValueError, match="window must be between 1 and the model's block size 64"):
        compress_bytes(tiny_model, b"x", window=65)
    with pytest.raises(ValueError, match="needs a model"):
        compress_bytes(None, b"x", method="model")


def test_code_length_is_close_to_the_information_content(tiny_model, sample_text, opts):
    """A real entropy coder: the payload is within a few bytes of sum(-log2 p) under the coded tables."""
    text = sample_text[:300]
    ids = tiny_model.vocab.encode(text)
    net = probability_net(tiny_model)
    bits = 0.0
    for win in (w for group in _groups(tiny_model, len(text), opts["window"], opts["steps"], 0) for w in group):
        seg = ids[win.start : win.start + win.n]
        for s in range(win.steps):
            row = np.full((1, opts["window"]), net.mask_id)
            row[0, : win.n] = np.where(win.step_of < s, seg, net.mask_id)
            (w,) = net.weights(row, np.array([win.n]), [win.targets(s)])
            p = w[np.arange(len(w)), seg[win.targets(s)]] / w.sum(1)
            bits += float(-np.log2(p).sum())
    assert not (ids == 0).any()
    blob = compress_bytes(tiny_model, text.encode(), method="model", **opts)
    payload_bits = 8 * (len(blob) - read_header(blob)[1])
    assert bits - 8 < payload_bits < bits + 40, (payload_bits, bits)


def test_model_weights_and_global_rng_untouched(tiny_model, sample_text, opts):
    import torch

    before = {k: v.clone() for k, v in tiny_model.net.state_dict().items()}
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    probability_net.__globals__["_NETS"].clear()  # force a fresh float64 copy
    compress_bytes(tiny_model, sample_text[:40].encode(), method="model", **opts)
    assert torch.equal(torch.rand(3), expected)
    for k, v in tiny_model.net.state_dict().items():
        assert v.dtype == torch.float32 and torch.equal(v, before[k])


def test_default_steps_come_from_the_l_table(tiny_model, sample_text):
    from ardm_core.budget import budget_schedule
    from ardm_core.compress import auto_steps

    L = np.round((1.6 + 3.0 * np.exp(-np.arange(256) / 20)) * 1024) / 1024  # already on the 1/1024 grid
    K = auto_steps(L, 256)
    best = budget_schedule(L, 256).expected_bits
    assert budget_schedule(L, K).expected_bits <= 1.01 * best < budget_schedule(L, K - 1).expected_bits
    assert auto_steps(L, 256, tolerance=0.001) > K > auto_steps(L, 256, tolerance=0.05)
    assert auto_steps(None, 256) == 20 and auto_steps(None, 8) == 8
    blob = compress_bytes(tiny_model, sample_text[:50].encode(), method="model")
    assert read_header(blob)[0].steps == auto_steps(tiny_model.loss_by_known, 64)
