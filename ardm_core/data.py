"""Training and evaluation text: read UTF-8 files or folders, cut windows of D characters."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .fileio import DataError, read_utf8

TEXT_SUFFIXES = {".txt", ".md", ".text", ".rst", ""}
DOC_SEPARATOR = "\n\n\n"


def collect_files(paths: list[str | os.PathLike]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in TEXT_SUFFIXES and not f.name.startswith("."))
            if not found:
                raise DataError(f"{p}: folder holds no text files (.txt, .md, .rst)")
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            raise DataError(f"{p}: file not found")
    return files


def read_texts(paths: list[str | os.PathLike]) -> str:
    """All files joined by a blank-line separator; errors name the file (and byte offset)."""
    parts = []
    for f in collect_files(paths):
        text = read_utf8(f)
        if text.strip():
            parts.append(text)
    if not parts:
        raise DataError(f"{', '.join(map(str, paths))}: no text (the files are empty)")
    return DOC_SEPARATOR.join(parts)


@dataclass
class Splits:
    train: str
    valid: str
    source: str


def load_splits(paths: list[str | os.PathLike], *, valid_fraction: float = 0.05) -> Splits:
    """A corpus folder with train.txt/valid.txt is used as split; anything else is
    split by holding out the last ``valid_fraction`` of the text as validation."""
    if len(paths) == 1 and Path(paths[0]).is_dir() and (Path(paths[0]) / "train.txt").exists():
        d = Path(paths[0])
        train = read_utf8(d / "train.txt")
        valid = read_utf8(d / "valid.txt") if (d / "valid.txt").exists() else ""
        if not valid:
            cut = int(len(train) * (1 - valid_fraction))
            train, valid = train[:cut], train[cut:]
        return Splits(train, valid, str(d))
    text = read_texts(paths)
    cut = int(len(text) * (1 - valid_fraction))
    return Splits(text[:cut], text[cut:], ", ".join(map(str, paths)))


class WindowSampler:
    """Random windows of ``block`` ids from one long encoded text."""

    def __init__(self, ids: np.ndarray, block: int, *, name: str = "text"):
        if len(ids) < block:
            raise DataError(f"{name}: {len(ids)} characters is shorter than one window of {block}; give more text or a smaller --block-size")
        self.ids = torch.from_numpy(ids.astype(np.int64))
        self.block = block

    def sample(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        starts = torch.randint(0, len(self.ids) - self.block + 1, (batch,), generator=generator)
        idx = starts[:, None] + torch.arange(self.block)[None, :]
        return self.ids[idx]  # (B, D)


def chunk_windows(ids: np.ndarray, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut a text into consecutive windows (the last may be shorter): (N, D) ids and (N,) lengths."""
    n = len(ids)
    if n == 0:
        raise DataError("no characters to evaluate")
    n_win = -(-n // block)
    out = torch.zeros(n_win, block, dtype=torch.long)
    lengths = torch.full((n_win,), block, dtype=torch.long)
    t = torch.from_numpy(ids.astype(np.int64))
    for i in range(n_win):
        seg = t[i * block : (i + 1) * block]
        out[i, : len(seg)] = seg
        lengths[i] = len(seg)
    return out, lengths
