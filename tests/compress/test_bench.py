"""bench/compress.py runs end to end on a tiny model and writes JSON and Markdown."""

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_smoke(tiny_model_dir, tmp_path, sample_text, monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_compress", ROOT / "bench" / "compress.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    split = tmp_path / "test.txt"
    split.write_text(sample_text * 3, encoding="utf-8")
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    monkeypatch.setattr(sys, "argv", ["compress.py", "--model", tiny_model_dir, "--test", str(split),
                                      "--lengths", "40,100", "--texts", "2", "--steps", "window,4",
                                      "--whole-chars", "150", "--verify", "1", "--json", str(out_json), "--out", str(out_md)])
    bench.main()
    r = json.loads(out_json.read_text())
    assert set(r["ardm"]) == {"K=64", "K=4"} and set(r["classic"]) == {"40", "100", "whole"}
    assert r["ardm"]["K=4"]["whole"]["network_calls_per_char"] == 12 / 150  # 3 windows of 64, 64, 22 chars
    assert r["ardm"]["K=4"]["40"]["verified_texts"] == 1
    md = out_md.read_text()
    assert "| ARDM K=4 |" in md and "| PPMd order 6 |" in md and "Target 2" in md
