"""Train the small sentencepiece word model that the "mask whole words" tool uses.

    python scripts/train_word_model.py [CORPUS] [--out assets/words/words.model]

A unigram model over the training corpus (identity normalisation, so piece
offsets map back to the text exactly). Shipped in assets/ so a fresh clone
segments words without the corpus; the app falls back to a ``\\w+`` split when
the file is missing.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import sentencepiece as spm

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="?", default=str(ROOT / "data" / "corpus" / "train.txt"))
    ap.add_argument("--out", default=str(ROOT / "assets" / "words" / "words.model"))
    ap.add_argument("--vocab-size", type=int, default=6000)  # words + common pieces; small file
    ap.add_argument("--max-chars", type=int, default=3_000_000)  # enough text for a stable unigram table
    args = ap.parse_args()
    text = Path(args.corpus).read_text(encoding="utf-8")[: args.max_chars]
    lines = [ln for ln in text.splitlines() if ln.strip()]
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=buf,
        model_type="unigram",
        vocab_size=args.vocab_size,
        normalization_rule_name="identity",  # offsets must map back to the original characters
        split_by_unicode_script=True,  # punctuation and letters never share a piece
        split_digits=True,
        character_coverage=1.0,
        num_threads=1,
        minloglevel=2,
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buf.getvalue())
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB, {args.vocab_size} pieces)")


if __name__ == "__main__":
    main()
