"""bench/fuzz.py --quick: random round trips and damaged .ardm files, with its own worker processes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _fuzz(tmp_path, *args: str, timeout: float = 600) -> tuple[int, dict, str]:
    out = tmp_path / "fuzz.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "fuzz.py"), "--quick", "--json", str(out), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    return proc.returncode, json.loads(out.read_text()) if out.exists() else {}, proc.stdout + proc.stderr


def test_quick_codec_fuzz(tmp_path):
    """Every round trip exact, every damaged file a clear error (or the exact original), none above 1 GB."""
    code, report, text = _fuzz(tmp_path, "--only", "roundtrip,ardm", "--roundtrips", "60", "--ardm", "40")
    assert code == 0, text
    rt, ardm = report["results"]["roundtrip"], report["results"]["ardm"]
    assert len(rt) == 60 and all(r["outcome"] == "ok" for r in rt), text
    assert len(ardm) == 40 and all(r["outcome"] in ("ok", "clear") for r in ardm), text
    assert sum(r["outcome"] == "clear" for r in ardm) > 20  # the damage is real: most files are refused
    assert "roundtrip" in text and "peak RSS MB" in text


@pytest.mark.slow
def test_quick_fuzz_all_categories(tmp_path):
    """The whole quick mode: model folders and command lines too (about a minute on an idle machine)."""
    code, report, text = _fuzz(tmp_path)
    assert set(report["results"]) == {"roundtrip", "ardm", "model", "cli"}, text
    assert code == 0, text
