"""Property tests: whatever goes in comes back, byte for byte."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ardm_core.compress import compress_bytes, decompress_bytes
from tests.conftest import SAMPLE_TEXT

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OPTS = {"window": 16, "steps": 4}
KNOWN = sorted(set(SAMPLE_TEXT))  # characters of the tiny model's vocabulary


def _round_trip(model, data: bytes, **kw) -> None:
    assert decompress_bytes(model, compress_bytes(model, data, **OPTS, **kw)) == data


@FAST
@given(st.text(max_size=60))
def test_random_unicode_model(tiny_model, text):
    _round_trip(tiny_model, text.encode("utf-8"), method="model")


@FAST
@given(st.text(alphabet=st.sampled_from(KNOWN) | st.characters(codec="utf-8"), max_size=120))
def test_mostly_known_text_auto(tiny_model, text):
    _round_trip(tiny_model, text.encode("utf-8"))


@FAST
@given(st.binary(max_size=200))
def test_random_bytes(tiny_model, data):
    _round_trip(tiny_model, data)


@FAST
@given(st.text(alphabet=st.characters(min_codepoint=0x100, codec="utf-8"), min_size=1, max_size=40))
def test_all_unknown_characters(tiny_model, text):
    assert not any(tiny_model.vocab.contains(c) for c in text)
    _round_trip(tiny_model, text.encode("utf-8"), method="model")


@FAST
@given(st.sampled_from(KNOWN + ["\u00e9", "\U0001F600", "\x00"]))
def test_one_character(tiny_model, ch):
    _round_trip(tiny_model, ch.encode("utf-8"), method="model")


def test_empty(tiny_model):
    for method in ("auto", "model"):
        _round_trip(tiny_model, b"", method=method)
