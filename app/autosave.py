"""Autosave of the document with its masks, fills and run, and the crash-recovery offer (no Qt).

The window writes a snapshot shortly after each pause in editing while the
document has unsaved changes; a clean exit (after the user saved or discarded)
deletes it. So a snapshot found at start-up means the last session ended without
closing the window, and the app offers it back.

A snapshot holds enough to rebuild exactly what the user had: the original text
(every character behind a mask or a fill), the masked positions and the filled
characters of the document as it stood before the run on screen, and that run
with the number of its steps shown. Writes are atomic: a crash during a write
leaves the previous snapshot.

``AutosaveWriter`` builds and writes the snapshots that typing triggers in one
background thread: for a 2 MB document with 300,000 masks that is about 0.3 s
of string building and JSON the window never waits for. The window only reads
the document (``MaskedDocument.capture``, tens of ms) on its own thread. Writes
the user waits on (before a Save/Discard question) and the deletion at a clean
exit go through the same writer, so a background write still pending can never
bring back an older snapshot, or one the user has just discarded.

The file is untrusted input: ``read_snapshot`` checks its size before reading,
every type and range before building anything, and raises ``SnapshotError``
(one line) for anything malformed; the window then sets the file aside with
``set_aside`` and tells the user, and starts as usual.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ardm_core.fileio import atomic_write_text
from ardm_core.paths import data_dir

from .run_record import RunRecord

AUTOSAVE_FILE = "autosave.json"
FORMAT = "ardm-studio-autosave"
MAX_FILE_BYTES = 256 * 1024 * 1024  # larger files are not read at all
MAX_TEXT_CHARS = 32 * 1024 * 1024


class SnapshotError(ValueError):
    """The autosave file exists but cannot be trusted (one line, for the user)."""


@dataclass
class Snapshot:
    """Everything needed to rebuild the editor exactly."""

    text: str  # the original text: every masked or filled character replaced by its original
    masked: list[int]  # positions (Python string indices) masked before the run on screen
    filled: list[tuple[int, str]] = field(default_factory=list)  # (position, character shown) of earlier fills
    run: RunRecord | None = None  # the run on screen, if any
    view: int = 0  # how many of the run's steps the document shows
    file_path: str = ""  # the file the document came from, if any
    saved_at: float = field(default_factory=time.time)

    def display_before_run(self) -> str:
        """The text as shown before the run: earlier fills written over their originals (masks not drawn)."""
        chars = list(self.text)
        for p, c in self.filled:
            chars[p] = c
        return "".join(chars)

    def to_json(self) -> dict:
        return {"format": FORMAT, "text": self.text, "masked": list(self.masked),
                "filled": [[p, c] for p, c in self.filled], "run": self.run.to_json() if self.run else None,
                "view": self.view, "file_path": self.file_path, "saved_at": self.saved_at}


def autosave_path() -> Path:
    return data_dir() / AUTOSAVE_FILE


JSON_OPTIONS = {"ensure_ascii": False, "separators": (",", ":")}  # compact: json's C encoder throughout
PIECE = 4096  # list items per call of the encoder


def json_pieces(obj) -> Iterator[str]:
    """``json.dumps(obj, **JSON_OPTIONS)`` in pieces: joined, the same text, byte for byte.

    One call of the C encoder holds the interpreter lock from start to end: on
    300,000 masks that is about 0.1 s in which the window's thread cannot run,
    even though the autosave runs in its own thread. Long lists are encoded
    PIECE items at a time and dicts key by key, so the lock changes hands between pieces.
    """
    if isinstance(obj, dict):
        yield "{"
        for n, (k, v) in enumerate(obj.items()):
            yield ("," if n else "") + json.dumps(str(k), **JSON_OPTIONS) + ":"
            yield from json_pieces(v)
        yield "}"
    elif isinstance(obj, (list, tuple)) and len(obj) > PIECE:
        yield "["
        for i in range(0, len(obj), PIECE):
            part = obj[i:i + PIECE]
            if any(isinstance(x, (dict, list, tuple)) and len(x) > PIECE for x in part):
                for j, x in enumerate(part):
                    yield "," if i or j else ""
                    yield from json_pieces(x)
            else:
                yield ("," if i else "") + json.dumps(part, **JSON_OPTIONS)[1:-1]
        yield "]"
    else:
        yield json.dumps(obj, **JSON_OPTIONS)


def write_snapshot(snap: Snapshot, path: Path | None = None) -> Path:
    path = path or autosave_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(json_pieces(snap.to_json())) + "\n")
    return path


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def _index(v, n: int, what: str) -> int:
    if type(v) is not int or not 0 <= v < n:
        raise SnapshotError(f"{what} must be an integer position in the text (got {str(v)[:40]!r})")
    return v


def parse_snapshot(raw) -> Snapshot:
    """Validate a decoded snapshot; raises SnapshotError saying what is wrong."""
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise SnapshotError(f"not an ARDM Studio autosave (format must be {FORMAT!r})")
    text = raw.get("text")
    if not isinstance(text, str):
        raise SnapshotError("'text' must be a string")
    n = len(text)
    if n > MAX_TEXT_CHARS:
        raise SnapshotError(f"'text' holds {n:,} characters, more than {MAX_TEXT_CHARS:,}")
    masked_raw = raw.get("masked", [])
    filled_raw = raw.get("filled", [])
    if not isinstance(masked_raw, list) or not isinstance(filled_raw, list):
        raise SnapshotError("'masked' and 'filled' must be lists")
    if len(masked_raw) + len(filled_raw) > n:
        raise SnapshotError("more masked and filled positions than characters")
    masked = sorted({_index(p, n, "a masked position") for p in masked_raw})
    filled: dict[int, str] = {}
    for item in filled_raw:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[1], str) and len(item[1]) == 1):
            raise SnapshotError("each filled entry must be [position, one character]")
        filled[_index(item[0], n, "a filled position")] = item[1]
    if set(filled) & set(masked):
        raise SnapshotError("a position is both masked and filled")
    file_path = raw.get("file_path", "")
    saved_at = raw.get("saved_at", 0.0)
    if not isinstance(file_path, str) or len(file_path) > 4096:
        raise SnapshotError("'file_path' must be a path")
    if type(saved_at) not in (int, float) or not math.isfinite(saved_at):
        raise SnapshotError("'saved_at' must be a time")
    snap = Snapshot(text=text, masked=masked, filled=sorted(filled.items()), file_path=file_path,
                    saved_at=float(saved_at))
    run_raw, view = raw.get("run"), raw.get("view", 0)
    if run_raw is not None:
        try:
            run = RunRecord.from_json(run_raw)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise SnapshotError(f"its run is malformed: {exc}") from None
        if run.text != snap.display_before_run() or not set(run.masked) <= set(masked):
            raise SnapshotError("its run does not match its text and masks")
        if type(view) is not int or not 0 <= view <= len(run.steps):
            raise SnapshotError(f"'view' must be between 0 and {len(run.steps)}")
        snap.run, snap.view = run, view
    return snap


def read_snapshot(path: Path | None = None) -> Snapshot | None:
    """The snapshot left by an earlier session; None when there is none.

    Raises SnapshotError when the file is there but malformed (the caller sets it aside).
    """
    path = path or autosave_path()
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SnapshotError(f"cannot read it ({exc.strerror})") from None
    if size > MAX_FILE_BYTES:
        raise SnapshotError(f"it is {size:,} bytes, more than {MAX_FILE_BYTES:,}")
    try:
        raw = json.loads(path.read_bytes().decode("utf-8"), parse_constant=_reject_constant)
    except OSError as exc:
        raise SnapshotError(f"cannot read it ({exc.strerror})") from None
    except (ValueError, RecursionError) as exc:  # bad UTF-8, bad JSON, NaN/Infinity, absurd nesting
        raise SnapshotError(f"not valid JSON ({str(exc)[:120]})") from None
    return parse_snapshot(raw)


def set_aside(path: Path | None = None) -> Path | None:
    """Rename a malformed snapshot to ``autosave.json.bad-<time>`` (kept for the user); returns the new name."""
    path = path or autosave_path()
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for k in range(100):
        dest = path.with_name(f"{path.name}.bad-{stamp}" + (f"-{k}" if k else ""))
        if dest.exists():
            continue
        try:
            path.rename(dest)
        except OSError:
            return None
        return dest
    return None


def clear_snapshot(path: Path | None = None) -> None:
    path = path or autosave_path()
    try:
        path.unlink()
    except FileNotFoundError:
        pass


class AutosaveWriter:
    """Builds and writes snapshots in one background thread; the newest one wins.

    ``submit(make)`` returns at once; ``make()`` (building the Snapshot) and the
    write run in the thread. A job not yet written is dropped by a newer
    ``submit``, by ``write`` (the same, done now in the calling thread) and by
    ``clear`` (delete the file): every call takes a new epoch, and a job writes
    only if its epoch is still the newest once it holds the file. ``done`` is
    called in the writer thread with (seconds it took, an OSError or None).
    """

    def __init__(self, path: Path | None = None, done: Callable[[float, OSError | None], None] | None = None) -> None:
        self.path = path  # None: autosave_path() at each write
        self.done = done
        self._file = threading.Lock()  # held while the file is written or deleted
        self._cv = threading.Condition()
        self._epoch = 0
        self._job: tuple[int, Callable[[], Snapshot]] | None = None
        self._busy = False
        self._thread: threading.Thread | None = None

    def _next_epoch(self) -> int:
        with self._cv:
            self._epoch += 1
            self._job = None
            return self._epoch

    def submit(self, make: Callable[[], Snapshot]) -> None:
        with self._cv:
            self._epoch += 1
            self._job = (self._epoch, make)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="autosave", daemon=True)
                self._thread.start()
            self._cv.notify_all()

    def write(self, snap: Snapshot) -> Path:
        """Write now, in this thread (after a write under way); raises OSError."""
        self._next_epoch()
        with self._file:
            return write_snapshot(snap, self.path)

    def clear(self) -> None:
        """Delete the snapshot (a clean exit, a discarded draft); a pending write is dropped."""
        self._next_epoch()
        with self._file:
            clear_snapshot(self.path)

    def wait(self, timeout: float = 10.0) -> bool:
        """Until no job is waiting or being written (tests, and quitting); False on timeout."""
        with self._cv:
            return self._cv.wait_for(lambda: self._job is None and not self._busy, timeout)

    def _loop(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._job is not None)
                (epoch, make), self._job = self._job, None
                self._busy = True
            t0 = time.perf_counter()
            error: OSError | None = None
            try:
                snap = make()
                with self._file:
                    if epoch == self._epoch:  # nothing newer was asked for meanwhile
                        write_snapshot(snap, self.path)
            except OSError as exc:
                error = exc
            except Exception as exc:  # a bug must not kill the thread: later saves still have to happen
                error = OSError(f"autosave failed: {exc!r}")
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()
            if self.done is not None:
                try:
                    self.done(time.perf_counter() - t0, error)
                except RuntimeError:  # the window is gone (its signal's object deleted)
                    pass
