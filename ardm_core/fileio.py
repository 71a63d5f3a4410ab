"""Atomic file writes: write a temp file beside the target, fsync, then replace."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


MAX_INPUT_BYTES = 4 << 30  # a text to read whole into memory


def read_file_bytes(path: Path, limit: int = MAX_INPUT_BYTES) -> bytes:
    """Read a file (or a pipe) of at most ``limit`` bytes; errors are one line that names the file.

    Devices are refused before reading (``/dev/zero`` never ends), and so is a file
    whose size is over the limit.
    """
    path = Path(path)
    try:
        st = os.stat(path)
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            raise DataError(f"{path}: is a device, expected a file")
        if stat.S_ISREG(st.st_mode) and st.st_size > limit:
            raise DataError(f"{path}: too big ({st.st_size:,} bytes; at most {limit:,})")
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, expected a file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise DataError(f"{path}: too big (more than {limit:,} bytes)")
    return data


def read_limited(path: Path, limit: int, what: str = "file") -> bytes:
    """Read an untrusted file of at most ``limit`` bytes: a regular file (a symlink to one is fine),
    never a folder, device or pipe, and its size is checked before a byte is read."""
    path = Path(path)
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise DataError(f"{path}: is a folder, expected a {what}")
        if not stat.S_ISREG(st.st_mode):
            raise DataError(f"{path}: not a regular file (a device, pipe or socket), expected a {what}")
        if st.st_size > limit:
            raise DataError(f"{path}: too big for a {what} ({st.st_size:,} bytes; at most {limit:,})")
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise DataError(f"{path}: missing") from None
    except OSError as exc:  # e.g. a symlink loop, no permission
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > limit:  # it grew while being read
        raise DataError(f"{path}: too big for a {what} (more than {limit:,} bytes)")
    return data


def read_utf8(path: Path) -> str:
    """Read a UTF-8 text file; errors name the file and the byte offset."""
    path = Path(path)
    data = read_file_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (invalid byte at offset {exc.start}); convert it to UTF-8") from None
    return normalise_text(text)


def normalise_text(text: str) -> str:
    """Strip a BOM and turn CRLF / lone CR into LF."""
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


class DataError(ValueError):
    """User data is missing, empty or not readable; the message says which file and why."""
