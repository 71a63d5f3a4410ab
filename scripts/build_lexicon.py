"""Build the word lexicon that "real words only" decoding uses.

    python scripts/build_lexicon.py [CORPUS] [--out assets/lexicon/words.tsv.gz] [--min-count 2]

Counts every maximal run of letters of the training corpus (lower-cased) and
the token-type bigrams (a word, or one non-letter character), keeps the words
seen at least ``--min-count`` times and at most 24 letters long, and writes a
gzip'd file: one JSON header line (source, sha256 of the corpus, counts), then
``word<TAB>count`` lines, commonest first. The output is byte-for-byte
reproducible from the same corpus (fixed gzip timestamp, sorted lines).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ardm_core.fileio import atomic_write_bytes  # noqa: E402
from ardm_core.lexicon import build_lexicon_bytes, parse_lexicon  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="?", default=str(ROOT / "data" / "corpus" / "train.txt"))
    ap.add_argument("--out", default=str(ROOT / "assets" / "lexicon" / "words.tsv.gz"))
    ap.add_argument("--min-count", type=int, default=2, help="drop words seen fewer times (typos, one-off names)")
    args = ap.parse_args()
    corpus = Path(args.corpus)
    if not corpus.exists():
        print(f"{corpus}: corpus not found (build it with `ardm corpus` or pass its path)", file=sys.stderr)
        return 2
    data = corpus.read_bytes()
    text = data.decode("utf-8")
    source = f"{corpus.name} sha256:{hashlib.sha256(data).hexdigest()}"
    blob = build_lexicon_bytes(text, min_count=args.min_count, source=source)
    lex = parse_lexicon(blob, args.out)  # the file must read back
    atomic_write_bytes(Path(args.out), blob)
    print(f"{args.out}: {len(lex)} words (min count {args.min_count}), {len(lex.types) - 1} non-letter token types, "
          f"{len(blob)} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
