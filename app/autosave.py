"""Autosave of the document with its masks, and the crash-recovery offer (no Qt).

The window writes a snapshot every few seconds while the document has unsaved
changes; a clean exit deletes it. So a snapshot found at start-up means the last
session ended without closing the window, and the app offers it back.
Writes are atomic: a crash during a write leaves the previous snapshot.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ardm_core.fileio import atomic_write_json
from ardm_core.paths import data_dir

AUTOSAVE_FILE = "autosave.json"
FORMAT = "ardm-studio-autosave"


@dataclass
class Snapshot:
    """Everything needed to rebuild the editor: what it shows, and what the masks hide."""

    text: str  # document text with every masked character replaced by its original
    masked: list[int]  # positions (Python string indices) that are masked
    file_path: str = ""  # the file the document came from, if any
    saved_at: float = field(default_factory=time.time)


def autosave_path() -> Path:
    return data_dir() / AUTOSAVE_FILE


def write_snapshot(snap: Snapshot, path: Path | None = None) -> Path:
    path = path or autosave_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"format": FORMAT, **asdict(snap)})
    return path


def read_snapshot(path: Path | None = None) -> Snapshot | None:
    """The snapshot left by an earlier session, or None (missing or unreadable)."""
    path = path or autosave_path()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != FORMAT:
            return None
        text = str(raw["text"])
        masked = sorted({int(p) for p in raw.get("masked", []) if 0 <= int(p) < len(text)})
        return Snapshot(text=text, masked=masked, file_path=str(raw.get("file_path", "")),
                        saved_at=float(raw.get("saved_at", 0.0)))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def clear_snapshot(path: Path | None = None) -> None:
    path = path or autosave_path()
    try:
        path.unlink()
    except FileNotFoundError:
        pass
