"""Character vocabulary: a sentencepiece ``char`` model, one id per character.

sentencepiece decides the inventory (which characters, with full coverage of the
training text) and is saved with every model, but encoding is done here, from
the model's pieces, because sentencepiece itself merges runs of unknown
characters into one piece and reads a literal U+2581 as a space. Here every
input character becomes exactly one id, and a character the vocabulary lacks
becomes ``<unk>`` on its own; callers keep the original string so nothing is
lost.

Id layout: 0 is ``<unk>``, 1..V-1 are characters, V is the absorbing
``[MASK]`` (one past the vocabulary). The network predicts over 0..V-1 with
``<unk>`` excluded, so it never predicts ``[MASK]`` or ``<unk>``.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import sentencepiece as spm

SP_SPACE = "\u2581"  # sentencepiece's visible space
UNK_ID = 0
# Symbols that sentencepiece would otherwise treat as line/field separators.
CONTROL_SYMBOLS = ("\n", "\t", "\r")


class VocabError(ValueError):
    """A vocabulary file is missing, unreadable or not a char model."""


@dataclass(frozen=True)
class Vocab:
    """Maps characters to ids and back; ``mask_id`` is one past the vocabulary."""

    chars: tuple[str, ...]  # index = id; chars[0] is "" for <unk>
    model_proto: bytes  # the serialized sentencepiece model, saved with every model

    def __post_init__(self) -> None:
        index = {c: i for i, c in enumerate(self.chars) if i != UNK_ID}
        object.__setattr__(self, "_index", index)
        # id by code point, up to the largest code point in the vocabulary (a 2 MB text encodes in
        # milliseconds, where a Python loop over its characters took a quarter of a second)
        singles = {ord(c): i for c, i in index.items() if len(c) == 1}
        lut = np.full(max(singles, default=-1) + 1, UNK_ID, dtype=np.int64)
        lut[list(singles)] = list(singles.values())
        object.__setattr__(self, "_lut", lut)

    # -- sizes and special ids ---------------------------------------------------
    @property
    def size(self) -> int:
        """Number of predictable ids (including <unk>, excluding [MASK])."""
        return len(self.chars)

    @property
    def mask_id(self) -> int:
        return len(self.chars)

    @property
    def unk_id(self) -> int:
        return UNK_ID

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.model_proto).hexdigest()

    # -- encoding ----------------------------------------------------------------
    def encode(self, text: str) -> np.ndarray:
        """Exactly one id per character of ``text`` (int64); unknown -> <unk>."""
        lut = self._lut  # type: ignore[attr-defined]
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        ids = np.full(len(codes), UNK_ID, dtype=np.int64)
        known = codes < len(lut)
        ids[known] = lut[codes[known]]
        return ids

    def decode(self, ids: Iterable[int], original: str | None = None) -> str:
        """Characters for ``ids``; <unk> takes the character from ``original`` if given."""
        out = []
        for i, t in enumerate(ids):
            t = int(t)
            if t == UNK_ID or t >= len(self.chars):
                if original is not None:
                    out.append(original[i])
                else:
                    out.append("\ufffd" if t == UNK_ID else "_")
            else:
                out.append(self.chars[t])
        return "".join(out)

    def contains(self, ch: str) -> bool:
        return ch in self._index  # type: ignore[attr-defined]

    # -- files -------------------------------------------------------------------
    @classmethod
    def from_proto(cls, proto: bytes) -> "Vocab":
        sp = spm.SentencePieceProcessor()
        try:
            sp.LoadFromSerializedProto(proto)
        except Exception as exc:  # sentencepiece raises RuntimeError/OSError variants
            raise VocabError(f"not a sentencepiece model ({exc})") from None
        if sp.unk_id() != UNK_ID:
            raise VocabError(f"<unk> must have id {UNK_ID}, found {sp.unk_id()}")
        chars: list[str] = [""]
        for i in range(1, sp.get_piece_size()):
            piece = sp.id_to_piece(i)
            if sp.is_control(i) or sp.is_unknown(i):
                raise VocabError(f"unexpected control piece {piece!r} at id {i}")
            if piece == SP_SPACE:
                piece = " "
            if len(piece) != 1:
                raise VocabError(f"piece {piece!r} at id {i} is not one character; not a char model")
            chars.append(piece)
        if len(set(chars)) != len(chars):
            raise VocabError("vocabulary has duplicate characters")
        return cls(tuple(chars), proto)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocab":
        path = Path(path)
        try:
            proto = path.read_bytes()
        except FileNotFoundError:
            raise VocabError(f"{path}: vocabulary file is missing") from None
        except OSError as exc:
            raise VocabError(f"{path}: cannot read vocabulary ({exc.strerror})") from None
        try:
            return cls.from_proto(proto)
        except VocabError as exc:
            raise VocabError(f"{path}: {exc}") from None

    def save(self, path: str | os.PathLike) -> None:
        from .fileio import atomic_write_bytes

        atomic_write_bytes(Path(path), self.model_proto)


def train_vocab(texts: Iterable[str], *, max_chars: int = 20_000_000) -> Vocab:
    """Train a sentencepiece char model on ``texts`` with identity normalisation.

    Newline, tab and carriage return are added as user symbols because
    sentencepiece reads its input line by line and would never see them.
    """
    lines: list[str] = []
    total = 0
    for text in texts:
        for line in text.replace("\r", "\n").split("\n"):
            line = "".join(c for c in line if c not in CONTROL_SYMBOLS)
            if line:
                lines.append(line)
                total += len(line)
        if total >= max_chars:
            break
    if not lines:
        raise VocabError("cannot build a vocabulary from empty text")
    alphabet = {c for line in lines for c in line}
    model = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp) / "lines.txt"
        inp.write_text("\n".join(lines), encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(inp),
            model_writer=model,
            model_type="char",
            vocab_size=len(alphabet) + 1 + len(CONTROL_SYMBOLS),
            character_coverage=1.0,
            normalization_rule_name="identity",
            add_dummy_prefix=False,
            remove_extra_whitespaces=False,
            split_by_whitespace=False,
            user_defined_symbols=list(CONTROL_SYMBOLS),
            unk_id=UNK_ID,
            bos_id=-1,
            eos_id=-1,
            pad_id=-1,
            max_sentence_length=1 << 20,
            input_sentence_size=0,
            minloglevel=2,
            hard_vocab_limit=False,
        )
    return Vocab.from_proto(model.getvalue())
