"""Encoder and decoder must build bit-identical probability tables, whatever the batching or threads."""

import numpy as np
import pytest
import torch

from ardm_core.compress import (
    BITS_X8_PER_NAT,
    Q_FLOOR,
    Q_UNK,
    WEIGHT_TABLE,
    compress_bytes,
    decompress_bytes,
    probability_net,
    quantised_weights,
    step_sizes,
    window_order,
)


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.mark.parametrize("enc, dec", [((1, 1), (2, 3)), ((2, 64), (1, 1)), ((1, 5), (2, 16))])
def test_decode_with_other_threads_and_batching(tiny_model, sample_text, threads, enc, dec):
    data = (sample_text + " \u00e9\u2713").encode()  # several groups of windows, escapes included
    threads(enc[0])
    blob = compress_bytes(tiny_model, data, window=16, steps=4, method="model", batch_rows=enc[1])
    threads(dec[0])
    assert decompress_bytes(tiny_model, blob, batch_windows=dec[1]) == data


def test_output_does_not_depend_on_encoder_batching(tiny_model, sample_text, threads):
    data = sample_text.encode()
    blobs = set()
    for n_threads, rows in ((1, 1), (2, 7), (2, 100)):
        threads(n_threads)
        blobs.add(compress_bytes(tiny_model, data, window=16, steps=4, method="model", batch_rows=rows))
    assert len(blobs) == 1


def test_tables_are_identical_across_arrangements(tiny_model, sample_text, threads):
    net = probability_net(tiny_model)
    D = tiny_model.config.block_size
    ids = tiny_model.vocab.encode(sample_text[: 6 * D]).reshape(6, D)
    rng = np.random.default_rng(0)
    rows = np.where(rng.random(ids.shape) < 0.5, ids, net.mask_id)
    lengths = np.array([D, D, D, 40, D, 7])
    targets = [np.arange(D)] * 6
    threads(2)
    together = net.weights(rows, lengths, targets)
    threads(1)
    alone = [net.weights(rows[i : i + 1], lengths[i : i + 1], targets[:1])[0] for i in range(6)]
    backwards = net.weights(rows[::-1].copy(), lengths[::-1].copy(), targets)[::-1]
    for a, b, c in zip(together, alone, backwards):
        assert np.array_equal(a, b) and np.array_equal(a, c)


def test_float64_noise_does_not_reach_the_table():
    """Logits that differ by float64 rounding (1e-13) give the same table; float32-sized noise would not."""
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 4, (2000, 100))
    base = quantised_weights(logits)
    assert np.array_equal(base, quantised_weights(logits * (1 + 1e-14) + 1e-13))
    assert not np.array_equal(base, quantised_weights(logits + rng.normal(0, 1e-2, logits.shape)))


def test_quantiser_rule():
    assert [round(2 ** (32 - k / 8)) for k in range(8)] == WEIGHT_TABLE.tolist()
    assert BITS_X8_PER_NAT == 8 / np.log(2)
    logits = np.log(np.array([[1.0, 0.5, 0.25, 0.125, 1e-12]]))
    logits[0, 0] = 5.0  # <unk>: whatever the network says, it gets the escape weight
    w = quantised_weights(logits)
    assert w.dtype == np.float64 and np.array_equal(w, np.round(w))
    assert w[0, 1] == 2**32 and w[0, 2] == 2**31 and w[0, 3] == 2**30  # exact halvings
    assert w[0, 4] == 2 ** (32 - Q_FLOOR // 8)  # floored at 2^-20 of the favourite
    assert w[0, 0] == 2 ** (32 - Q_UNK // 8)
    with pytest.raises(ValueError, match="non-finite"):
        quantised_weights(np.array([[0.0, np.nan, 1.0]]))


def test_hooked_logits_match_the_model(tiny_model, sample_text):
    """The coder's logits are the network's: same distribution as forward() (float32 vs float64)."""
    net = probability_net(tiny_model)
    ids = tiny_model.vocab.encode(sample_text[:64])[None]
    ids[0, ::3] = net.mask_id
    net.net(torch.from_numpy(ids), torch.tensor([64]))
    logits = net._logits.numpy()[0][:, 1:]
    p64 = np.exp(logits - logits.max(1, keepdims=True))
    p64 /= p64.sum(1, keepdims=True)
    with torch.no_grad():
        p32 = tiny_model.net(torch.from_numpy(ids)).exp()[0, :, 1:].numpy()
    np.testing.assert_allclose(p64, p32, atol=1e-5)


# -- format pins: changing any of these breaks old files and needs a new FORMAT_VERSION --
def test_window_order_is_pinned():
    assert window_order(0, 0, 10).tolist() == PINNED_ORDER
    assert sorted(window_order(5, 3, 257).tolist()) == list(range(257))
    assert window_order(0, 1, 10).tolist() != PINNED_ORDER and window_order(1, 0, 10).tolist() != PINNED_ORDER


def test_step_sizes_are_pinned():
    L = 2.0 + 2.5 * np.exp(-np.arange(64) / 8)  # a typical shape: steep first, then flat
    assert step_sizes(L, 8, 64) == (2, 3, 3, 4, 5, 7, 12, 28)
    assert step_sizes(L, 5, 40) == (4, 4, 6, 9, 17)  # a short last window plans over its own length
    assert step_sizes(L, 4, 3) == (1, 1, 1)
    assert step_sizes(None, 4, 10) == (3, 3, 2, 2)
    assert step_sizes(L, 64, 64) == (1,) * 64


PINNED_ORDER = [8, 7, 6, 5, 3, 9, 2, 4, 1, 0]


def test_constriction_coding_is_pinned():
    """constriction turns float weights into its own fixed-point table; a new version that did it
    differently would make old files undecodable, so the exact bytes are pinned here."""
    from ardm_core.compress import _Encoder

    enc = _Encoder(record=False)
    w = np.array([[2.0**32, 2.0**31, 3.0e9, 4096.0, 1.0e6]] * 6)
    enc.symbols(np.array([0, 1, 2, 3, 4, 2]), w)
    enc.choice(3, np.array([5.0, 1, 1, 7]))
    enc.uniform(1000, 4096)
    assert enc.payload().hex() == "e0556d4f630f479c"
