"""Automatic precision: bf16 only with native units and a measured gain; fp32 otherwise; forcing stands."""

from __future__ import annotations

import json

import pytest
import torch

from ardm_core import device
from ardm_core.device import CpuInfo, cpu_info, native_bf16, resolve_precision
from ardm_core.model import ARDMTransformer, preset_config

AMX = CpuInfo("Test CPU with AMX", frozenset({"avx2", "avx512f", "avx512_bf16", "amx_bf16"}))
AVX2 = CpuInfo("Test CPU without bf16", frozenset({"avx2", "fma"}))


@pytest.fixture
def net():
    # the small preset's shape (enough work for bf16 to be worth measuring), short windows
    return ARDMTransformer(preset_config("small", vocab_size=20, block_size=128)).eval()


@pytest.fixture(autouse=True)
def _fresh_measurements(monkeypatch):
    monkeypatch.setattr(device, "_speedups", {})


def _stub(speedup: float, calls: list):
    def measure(net):
        calls.append(net)
        return speedup
    return measure


def test_cpuinfo_flags_are_read(tmp_path):
    f = tmp_path / "cpuinfo"
    f.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 amx_bf16\n\nprocessor\t: 1\n")
    info = cpu_info(f)
    assert info.model == "Some CPU" and "amx_bf16" in info.flags
    assert native_bf16(info) and not native_bf16(AVX2)
    assert cpu_info(tmp_path / "missing").flags == frozenset()


def test_auto_falls_back_to_fp32_where_bf16_is_slower(monkeypatch, net):
    monkeypatch.setattr(device, "cpu_info", lambda: AMX)
    calls: list = []
    assert resolve_precision("auto", net, measure=_stub(0.6, calls)) == "fp32"  # bf16 measured slower
    assert len(calls) == 1


def test_auto_needs_a_clear_gain(monkeypatch, net):
    monkeypatch.setattr(device, "cpu_info", lambda: AMX)
    assert resolve_precision("auto", net, measure=_stub(1.05, [])) == "fp32"  # within noise: keep fp32


def test_auto_picks_bf16_where_it_measured_faster_and_caches_the_measurement(monkeypatch, net):
    monkeypatch.setattr(device, "cpu_info", lambda: AMX)
    calls: list = []
    assert resolve_precision("auto", net, measure=_stub(1.6, calls)) == "bf16"
    assert resolve_precision("auto", net, measure=_stub(1.6, calls)) == "bf16"
    assert len(calls) == 1  # measured once
    monkeypatch.setattr(device, "_speedups", {})  # a new process reads the user's cache folder
    assert resolve_precision("auto", net, measure=_stub(0.5, calls)) == "bf16"
    assert len(calls) == 1
    saved = json.loads(device._cache_file().read_text())
    assert list(saved["bf16_speedup"].values()) == [1.6]


def test_without_native_units_bf16_is_never_measured(monkeypatch, net):
    monkeypatch.setattr(device, "cpu_info", lambda: AVX2)
    calls: list = []
    assert resolve_precision("auto", net, measure=_stub(5.0, calls)) == "fp32"
    assert calls == []


def test_tiny_models_stay_fp32_unmeasured(monkeypatch):
    monkeypatch.setattr(device, "cpu_info", lambda: AMX)
    tiny = ARDMTransformer(preset_config("tiny", vocab_size=20, block_size=32))
    calls: list = []
    assert resolve_precision("auto", tiny, measure=_stub(5.0, calls)) == "fp32"
    assert calls == []


def test_users_can_force_either(monkeypatch, net):
    monkeypatch.setattr(device, "cpu_info", lambda: AVX2)
    assert resolve_precision("bf16", net, measure=_stub(0.1, [])) == "bf16"
    monkeypatch.setattr(device, "cpu_info", lambda: AMX)
    assert resolve_precision("fp32", net, measure=_stub(9.0, [])) == "fp32"
    with pytest.raises(ValueError, match="unknown precision"):
        resolve_precision("fp8", net)


def test_a_damaged_cache_is_ignored_and_rewritten(monkeypatch, net):
    monkeypatch.setattr(device, "cpu_info", lambda: AMX)
    path = device._cache_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    for junk in ('{"version": 1, "bf16_speedup": {"x": "fast"}}', "[1, 2]", "not json", '{"version": 1, "bf16_speedup": {"k": NaN}}'):
        path.write_text(junk)
        monkeypatch.setattr(device, "_speedups", {})
        calls: list = []
        assert resolve_precision("auto", net, measure=_stub(0.7, calls)) == "fp32"
        assert len(calls) == 1
    assert json.loads(path.read_text())["version"] == 1


def test_the_real_measurement_runs_and_is_positive():
    small = ARDMTransformer(preset_config("tiny", vocab_size=20, block_size=16)).eval()
    s = device.measure_bf16_speedup(small, reps=1)
    assert s > 0 and torch.isfinite(torch.tensor(s))


def test_a_session_resolves_auto_once_and_branches_keep_it(monkeypatch):
    from dataclasses import replace

    from ardm_core.session import DecodeSession
    from tests.conftest import make_tiny_model

    tiny = make_tiny_model()
    big = ARDMTransformer(preset_config("small", vocab_size=tiny.vocab.size, block_size=64)).eval()
    model = replace(tiny, net=big, config=big.cfg, loss_by_known=None)
    monkeypatch.setattr(device, "cpu_info", lambda: AMX)
    for speedup, want in ((0.5, "fp32"), (2.0, "bf16")):
        monkeypatch.setattr(device, "_speedups", {})
        device._cache_file().unlink(missing_ok=True)
        monkeypatch.setattr(device, "measure_bf16_speedup", lambda n, s=speedup: s)
        s = DecodeSession(model, "ab__", [2, 3], order="l2r", precision="auto")
        assert s.precision == want
        s.step()
        assert s.branch(1).precision == want
    assert DecodeSession(tiny, "ab__", [2, 3], precision="auto").precision == "fp32"  # too small to measure
