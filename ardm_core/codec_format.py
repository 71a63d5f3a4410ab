"""The ``.ardm`` container: a compact header in front of one payload.

Short texts are where this coder is meant to shine, so every header byte
counts (one byte is 0.032 bits per character on a 250-character text). All
integers are unsigned LEB128 varints unless a width is given; fixed-width
fields are little-endian.

    offset  field
    0       magic        2 bytes  C1 5A  (0xC1 never occurs in UTF-8, so a
                                          compressed file is never valid text)
    2       version      1 byte   FORMAT_VERSION
    3       method       1 byte   0 stored, 1 brotli, 2 model
    model only:
            fingerprint  4 bytes  model tag (compress.model_tag): version 2, sha256 over the
                                  coder's weights, architecture, vocabulary and L_t table;
                                  version 1, over the loader's fingerprint and the L_t table
            seed         varint   order seed
            steps        varint   K, network calls per full window
            window       varint   characters per window; 0 = the model's block size
    all methods:
            length       varint   characters (model) or bytes (stored, brotli)
            crc32        4 bytes  CRC-32 (zlib) of the original bytes
            check        1 byte   low byte of CRC-32 over the header bytes before it
    then    payload      the rest of the file

The header check catches most damage to the header itself before any work
is done; the CRC-32 of the original catches everything else (a damaged or
truncated payload, a decoder that drifted) before any output is written.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

MAGIC = b"\xc1Z"
FORMAT_VERSION = 2  # 2: the model tag covers the architecture and the coder's own weights
OLDEST_VERSION = 1  # still read: same layout, a tag over the loader's fingerprint
METHODS = {"stored": 0, "brotli": 1, "model": 2}
METHOD_NAMES = {v: k for k, v in METHODS.items()}
FINGERPRINT_BYTES = 4
MAX_LENGTH = 1 << 40  # a terabyte of text: anything larger is a damaged length field


class CompressedFileError(ValueError):
    """A compressed file is not ours, damaged, truncated or otherwise undecodable."""


class ModelMismatchError(CompressedFileError):
    """The file was compressed with a different model than the one given."""


@dataclass(frozen=True)
class Header:
    method: str  # "stored" | "brotli" | "model"
    length: int  # characters for "model", bytes otherwise
    crc32: int  # CRC-32 of the original bytes
    fingerprint: bytes = b""  # model only: first FINGERPRINT_BYTES of the model fingerprint
    seed: int = 0  # model only: order seed
    steps: int = 0  # model only: K
    window: int = 0  # model only: characters per window; 0 = the model's block size
    version: int = FORMAT_VERSION


def fingerprint_tag(fingerprint: str, plan: bytes = b"") -> bytes:
    """The header's model tag: the fingerprint's first bytes, or with ``plan`` (the
    bytes the step plan is computed from) the first bytes of sha256(fingerprint + plan).

    ``load_model`` fingerprints are sha256 hex digests of weights and vocabulary;
    any other string (test models carry names like ``tiny-0``) is hashed first,
    so every model gets a tag. The plan matters because the model's L_t table
    lives in its config, outside the fingerprint, and decides the step sizes.
    """
    if not fingerprint:
        raise ValueError("this model has no fingerprint; load it with load_model() so files can name their model")
    try:
        raw = bytes.fromhex(fingerprint)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raw = hashlib.sha256(fingerprint.encode("utf-8")).digest()
    if plan:
        raw = hashlib.sha256(raw + plan).digest()
    return raw[:FINGERPRINT_BYTES]


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def put_varint(out: bytearray, value: int) -> None:
    if value < 0:
        raise ValueError(f"varint must be non-negative, got {value}")
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


class _Reader:
    def __init__(self, blob: bytes):
        self.blob = blob
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.blob):
            raise CompressedFileError(f"truncated file (header ends inside the {what} field)")
        out = self.blob[self.pos : self.pos + n]
        self.pos += n
        return out

    def varint(self, what: str) -> int:
        value = shift = 0
        for _ in range(10):
            (byte,) = self.take(1, what)
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
        raise CompressedFileError(f"corrupted header (the {what} field is not a valid number)")


def pack_header(h: Header) -> bytes:
    if h.method not in METHODS:
        raise ValueError(f"unknown method {h.method!r}; choose from {sorted(METHODS)}")
    out = bytearray(MAGIC)
    out.append(h.version)
    out.append(METHODS[h.method])
    if h.method == "model":
        if len(h.fingerprint) != FINGERPRINT_BYTES:
            raise ValueError(f"fingerprint tag must be {FINGERPRINT_BYTES} bytes")
        out += h.fingerprint
        put_varint(out, h.seed)
        put_varint(out, h.steps)
        put_varint(out, h.window)
    put_varint(out, h.length)
    out += h.crc32.to_bytes(4, "little")
    out.append(crc32(bytes(out)) & 0xFF)
    return bytes(out)


def read_header(blob: bytes) -> tuple[Header, int]:
    """Parse the header; returns it and the payload's offset. Raises CompressedFileError."""
    if len(blob) < len(MAGIC) or blob[: len(MAGIC)] != MAGIC:
        raise CompressedFileError("not an ARDM compressed file (bad magic bytes)")
    r = _Reader(blob)
    r.take(len(MAGIC), "magic")
    (version,) = r.take(1, "version")
    if version > FORMAT_VERSION:
        raise CompressedFileError(f"format version {version} is newer than this program supports ({FORMAT_VERSION}); update ARDM Studio")
    if version < OLDEST_VERSION:
        raise CompressedFileError(f"corrupted header (format version {version})")
    (method_id,) = r.take(1, "method")
    if method_id not in METHOD_NAMES:
        raise CompressedFileError(f"corrupted header (unknown method {method_id})")
    method = METHOD_NAMES[method_id]
    fields: dict = {}
    if method == "model":
        fields["fingerprint"] = r.take(FINGERPRINT_BYTES, "fingerprint")
        fields["seed"] = r.varint("seed")
        fields["steps"] = r.varint("steps")
        fields["window"] = r.varint("window")
    length = r.varint("length")
    crc = int.from_bytes(r.take(4, "checksum"), "little")
    (check,) = r.take(1, "header check")
    if check != crc32(blob[: r.pos - 1]) & 0xFF:
        raise CompressedFileError("corrupted header (header check failed)")
    if length > MAX_LENGTH:
        raise CompressedFileError(f"corrupted header (length {length})")
    if method == "model" and (fields["steps"] < 1 or fields["seed"] >= 1 << 32):
        raise CompressedFileError("corrupted header (steps or seed out of range)")
    return Header(method=method, length=length, crc32=crc, version=version, **fields), r.pos


__all__ = [
    "MAGIC", "FORMAT_VERSION", "OLDEST_VERSION", "METHODS", "Header", "CompressedFileError", "ModelMismatchError",
    "fingerprint_tag", "crc32", "pack_header", "read_header",
]
