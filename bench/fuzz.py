"""Fuzz the codec, the .ardm reader, model-folder loading and every command line.

Four categories, each printed as one table row:

  roundtrip   compress -> decompress through the API on random texts (English
              slices, odd Unicode, lone CR, empty, long), K = 1..4 and larger,
              small windows, random seeds, with tiny untrained models (and the
              shipped model for a few cases in the long mode).
  ardm        ``ardm decompress`` on damaged .ardm files: truncations, bit
              flips, header edits that keep the header check valid, garbage,
              and decompression bombs.
  model       ``ardm`` commands on malformed model folders: bad config.json
              values, wrong types, huge sizes, NaN/inf weights, symlinks to
              /dev/zero, loops, folders where files belong.
  cli         every ``ardm`` subcommand (read from the argument parser) with
              one bad option value, a bad file, an unknown option.

Outcomes per case:
  ok          round trip exact; damaged file that still decodes to exactly the original;
              a command that accepted its input and printed no nan
  clear       a clear error: non-zero exit, an error line, no traceback
  undecodable (roundtrip) the decoder refused the encoder's own output
  wrong       wrong bytes returned, a damaged file decoded to something else, or a
              command that accepted bad input and printed nan / inf
  crash       a traceback, a signal, or a non-zero exit without an error line
  hang        no answer within the timeout

Cases run in worker processes that execute the real ``ardm`` entry point
(``ardm_core.cli.main``) in process, so a case costs milliseconds rather than
a fresh interpreter; a worker that dies (a crash) or stops answering (a hang)
is killed and replaced. Peak RSS is measured per case: the worker resets its
high-water mark (/proc/self/clear_refs) before each case and reads VmHWM after
it, so the figure includes the interpreter, torch and everything the case
allocated. ``--fresh`` runs each cli case in a new interpreter instead
(``python -m ardm_core``, peak RSS from wait4), slower but with nothing shared.

    python bench/fuzz.py --quick            # a few hundred cases, under a minute
    python bench/fuzz.py                    # the long run (docs/RELIABILITY.md)
    python bench/fuzz.py --only roundtrip --roundtrips 20000 --json out.json

Exit status 0 when every target holds: no undecodable or wrong round trip, no
wrong output, crash or hang anywhere, and every case under --rss-limit-mb.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CATEGORIES = ("roundtrip", "ardm", "model", "cli")
OUTCOMES = ("ok", "clear", "undecodable", "wrong", "crash", "hang")
ODD = ["\r", "\r\n", "\n", "\t", "\x00", "\x7f", "\ufeff", "\u2028", "\u0301", "\u202e", "\U0010FFFF", "\ue000",
       "\U0001F600", "\U0001F1EB\U0001F1F7", "\u4e2d\u6587", "\u00e9", "e\u0301", "\u05e9\u05dc\u05d5\u05dd", " ", "  "]
NAN_WORD = re.compile(r"(?<![A-Za-z])(nan|inf)(?![A-Za-z])", re.IGNORECASE)


# == worker side: everything that imports torch ==================================================
class Worker:
    """Runs cases by name; all state (models, files) lives under ``workdir``."""

    def __init__(self, workdir: Path):
        import torch

        from tests.conftest import SAMPLE_TEXT, make_tiny_model

        from ardm_core.checkpoint import save_model

        torch.set_num_threads(1)
        self.torch = torch
        self.decoders: list = []
        import ardm_core.compress as codec

        class Watched(codec._Decoder):  # records how much each decode read past the end of its data
            def __init__(inner, payload: bytes):
                super().__init__(payload)
                self.decoders.append(inner)

        codec._Decoder = Watched
        self.workdir = workdir
        self.sample = SAMPLE_TEXT
        self.english = (ROOT / "assets" / "corpus" / "test.txt").read_text(encoding="utf-8")
        self.tiny = make_tiny_model(block_size=64, seed=0)
        self.tiny16 = make_tiny_model(block_size=16, seed=1)
        self.tiny16.loss_by_known = None  # no L_t table: equal step sizes
        self.default = None
        self.tiny_dir = workdir / "tiny-model"
        if not (self.tiny_dir / "config.json").exists():
            tmp = workdir / f".tiny-{os.getpid()}"
            save_model(tmp, self.tiny.net, self.tiny.vocab, loss_by_known=self.tiny.loss_by_known, meta={"name": "tiny"})
            try:
                os.replace(tmp, self.tiny_dir)
            except OSError:  # another worker made it first
                shutil.rmtree(tmp, ignore_errors=True)
        self.loaded = None
        self.bases: dict[int, tuple[bytes, bytes]] = {}
        self.bombs: dict[int, bytes] = {}

    # -- round trips -------------------------------------------------------------------------
    def text_for(self, rng: random.Random, max_len: int) -> str:
        r = rng.random()
        n = (rng.randint(0, 3) if r < 0.06 else rng.randint(1, 64) if r < 0.55 else
             rng.randint(64, 400) if r < 0.95 else rng.randint(400, 1000))
        n = min(n, max_len)
        kind = rng.choice(["english", "english", "english", "vocab", "unicode", "cr", "repeat", "mixed", "random"])
        if kind == "english":
            start = rng.randrange(max(1, len(self.english) - n))
            return self.english[start : start + n]
        if kind == "vocab":
            return "".join(rng.choice(self.sample) for _ in range(n))
        if kind == "unicode":
            return "".join(rng.choice(ODD) for _ in range(n))[:n]
        if kind == "cr":
            return "".join(rng.choice(["\r", "\r\n", "\n", "a", " "]) for _ in range(n))
        if kind == "repeat":
            return rng.choice(["a", " ", "\r", "\U0001F600", "ab", "\u00e9"]) * n
        if kind == "mixed":
            return "".join(rng.choice(ODD) if rng.random() < 0.1 else rng.choice(self.sample) for _ in range(n))
        out = []
        for _ in range(n):
            cp = rng.choice([rng.randrange(0x80), rng.randrange(0x800), rng.randrange(0x10000), rng.randrange(0x110000)])
            out.append(chr(cp) if not 0xD800 <= cp <= 0xDFFF else "?")
        return "".join(out)

    def roundtrip(self, seed: int, quick: bool) -> dict:
        from ardm_core.codec_format import CompressedFileError
        from ardm_core.compress import CompressionCheckError, compress_bytes, decompress_bytes

        rng = random.Random(seed)
        use_default = not quick and rng.random() < 0.01
        if use_default:  # the shipped model on English at small K, where version 1 failed 3% of files
            model = self.default_model()
            text = self.english[(s := rng.randrange(len(self.english) - 300)) : s + rng.randint(1, 300)]
        else:
            model = self.tiny if rng.random() < 0.8 else self.tiny16
            text = self.text_for(rng, 300 if quick else 1000)
        block = model.config.block_size
        window = rng.choice([1, 2, 3, 4, 5, 7, 8, 13, 16, 31, 32, 64, 256, None])
        window = None if window is None or window > block else window
        w = window or block
        r = rng.random()
        steps = rng.randint(1, min(4, w)) if r < 0.6 or use_default else rng.randint(1, w) if r < 0.85 else None
        method = "model" if rng.random() < 0.85 else "auto"
        verify = rng.random() < 0.1
        data = text.encode("utf-8")
        if rng.random() < 0.03:  # not UTF-8: brotli or stored
            data = bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))
            method = "auto"
        label = (f"{'default' if use_default else 'tiny' if model is self.tiny else 'tiny16'} chars={len(text)} "
                 f"K={steps} window={window} seed={seed % 2**32} method={method} verify={verify}")
        try:
            blob = compress_bytes(model, data, steps=steps, window=window, seed=seed % 2**32, method=method,
                                  verify=verify)
        except CompressionCheckError as exc:
            return {"outcome": "undecodable", "label": label, "detail": str(exc)}
        self.decoders.clear()
        try:
            back = decompress_bytes(model, blob)
        except CompressedFileError as exc:
            return {"outcome": "undecodable", "label": label, "detail": str(exc)}
        past_end = max((d.past_end_bits for d in self.decoders), default=0.0)
        return {"outcome": "ok" if back == data else "wrong", "label": label, "detail": "",
                "past_end_bits": round(past_end, 2)}

    def default_model(self):
        if self.default is None:
            from ardm_core.checkpoint import load_model

            self.default = load_model(ROOT / "assets" / "models" / "default", "cpu")
        return self.default

    # -- damaged .ardm files -----------------------------------------------------------------
    def base_file(self, k: int) -> tuple[bytes, bytes]:
        """(original, compressed) number k: model-coded mostly, some brotli and stored."""
        if k not in self.bases:
            from ardm_core.checkpoint import load_model
            from ardm_core.compress import compress_bytes

            if self.loaded is None:
                self.loaded = load_model(self.tiny_dir, "cpu")
            rng = random.Random(10_000 + k)
            text = self.text_for(rng, 400) or "x"
            data = text.encode() if k % 5 else bytes(rng.randrange(256) for _ in range(rng.randint(1, 200)))
            method = ["model", "model", "auto", "brotli", "stored"][k % 5] if k % 5 else "auto"
            w = rng.choice([4, 16, None])
            blob = compress_bytes(self.loaded, data, steps=rng.randint(1, 4), window=w, method=method,
                                  seed=rng.randrange(2**32))
            self.bases[k] = (data, blob)
        return self.bases[k]

    def bomb(self, size: int) -> bytes:
        if size not in self.bombs:
            import brotli

            c = brotli.Compressor(quality=1)
            chunk = b"\0" * (1 << 24)
            parts = [c.process(chunk) for _ in range(size >> 24)]
            self.bombs[size] = b"".join(parts) + c.finish()
        return self.bombs[size]

    def damaged(self, seed: int, quick: bool) -> tuple[str, bytes, bytes]:
        """(label, original, damaged file)."""
        import dataclasses

        from ardm_core.codec_format import Header, crc32, pack_header, read_header

        rng = random.Random(seed)
        original, blob = self.base_file(rng.randrange(12))
        header, offset = read_header(blob)
        payload = blob[offset:]
        kind = rng.choice(["truncate", "flip", "flip", "bytes", "header", "header", "header", "append", "payload",
                           "bomb", "raw"])
        if kind == "truncate":
            cut = rng.randrange(len(blob))
            return f"truncated to {cut}/{len(blob)} bytes", original, blob[:cut]
        if kind == "flip":
            bad = bytearray(blob)
            flips = [(rng.randrange(len(bad)), rng.randrange(8)) for _ in range(rng.choice([1, 1, 2, 8]))]
            for i, b in flips:
                bad[i] ^= 1 << b
            return f"bit flips {flips} ({header.method})", original, bytes(bad)
        if kind == "bytes":
            bad = bytearray(blob)
            for _ in range(rng.randint(1, 4)):
                bad[rng.randrange(len(bad))] = rng.randrange(256)
            return f"random bytes ({header.method})", original, bytes(bad)
        if kind == "header":  # edits that pass the header check: only the decoder can catch them
            field = rng.choice(["length", "length", "steps", "window", "seed", "fingerprint", "crc32", "method",
                                "version"])
            value = {
                "length": rng.choice([0, 1, header.length + 1, max(header.length - 1, 0), header.length * 2 + 7,
                                      1 << 20, 1 << 31, 1 << 40, 1 << 40 - 1]),
                "steps": rng.choice([1, 2, 10**6, 1 << 62]),
                "window": rng.choice([1, 3, 63, 64, 65, 10**6, 1 << 62]),
                "seed": rng.choice([0, 1, (1 << 32) - 1]),
                "fingerprint": bytes(rng.randrange(256) for _ in range(4)),
                "crc32": rng.randrange(1 << 32),
                "method": rng.choice(["stored", "brotli", "model"]),
                "version": rng.choice([1, 2]),
            }[field]
            h = dataclasses.replace(header, **{field: value})
            if field == "method" and value == "model" and not h.fingerprint:
                h = dataclasses.replace(h, fingerprint=b"\0\0\0\0", steps=1)
            if h.method == "model" and h.steps < 1:
                h = dataclasses.replace(h, steps=1)
            return f"header {field}={value!r} ({header.method})", original, pack_header(h) + payload
        if kind == "append":
            extra = rng.choice([b"\0", b"\0" * 64, b"garbage", bytes(rng.randrange(256) for _ in range(100))])
            return f"appended {len(extra)} bytes ({header.method})", original, blob + extra
        if kind == "payload":
            n = len(payload)
            fill = rng.choice(["zeros", "ones", "random", "empty", "double"])
            new = {"zeros": b"\0" * n, "ones": b"\xff" * n, "random": bytes(rng.randrange(256) for _ in range(n)),
                   "empty": b"", "double": payload * 2}[fill]
            return f"payload {fill} ({header.method})", original, blob[:offset] + new
        if kind == "bomb":
            size = rng.choice([1 << 26, 1 << 26, 1 << 30] if not quick else [1 << 26])
            # the output is held until its CRC is checked, so a header that promises N bytes may cost N bytes:
            # promises near the size only for the small bomb, to keep every case under the RSS limit
            promise = rng.choice([0, 10, 1000, size // 2, size - 1] if size < 1 << 28 else [0, 10, 1000, 1 << 20])
            data = self.bomb(size)
            return (f"brotli bomb of {size >> 20} MiB under a header saying {promise} bytes", original,
                    pack_header(Header("brotli", promise, crc32(b"\0" * min(promise, 1 << 20)))) + data)
        raw = rng.choice([b"", b"\xc1", b"\xc1Z", b"\xc1Z\x02", b"\xc1Z\x02\x02", bytes(rng.randrange(256) for _ in range(50)),
                          b"PK\x03\x04" + b"\0" * 30, b"\xc1Z\x02\x00" + b"\xff" * 20, blob[:offset]])
        return f"raw {raw[:12]!r}...", original, raw

    def ardm(self, seed: int, quick: bool, run_cli) -> dict:
        label, original, bad = self.damaged(seed, quick)
        d = self.workdir / "ardm"
        d.mkdir(exist_ok=True)
        src, out = d / f"case-{os.getpid()}.ardm", d / f"out-{os.getpid()}.bin"
        src.write_bytes(bad)
        out.unlink(missing_ok=True)
        res = run_cli(["decompress", "--model", str(self.tiny_dir), str(src), "-o", str(out), "--force", "-q"])
        if res["outcome"] == "ok":
            got = out.read_bytes() if out.exists() else None
            res["outcome"] = "ok" if got == original else "wrong"
        elif res["outcome"] == "clear" and out.exists():
            res["outcome"] = "wrong"
            res["detail"] = "an output file was written although decoding failed: " + res["detail"]
        res["label"] = label
        return res

    # -- model folders -------------------------------------------------------------------------
    def model_case(self, index: int, seed: int) -> tuple[str, Path, bool]:
        """(label, folder, must_fail) for malformed folder number ``index`` (cycled)."""
        cases = model_folder_cases()
        name, edit, must_fail = cases[index % len(cases)]
        d = self.workdir / "models" / f"m{os.getpid()}"
        if d.exists() or d.is_symlink():
            _remove(d)
        d.parent.mkdir(exist_ok=True)
        shutil.copytree(self.tiny_dir, d)
        edit(d)
        return name, d, must_fail

    def model_argv(self, folder: Path, seed: int) -> tuple[list[str], str]:
        rng = random.Random(seed)
        d = self.workdir / "inputs"
        d.mkdir(exist_ok=True)
        text = d / "small.txt"
        if not text.exists():
            text.write_text(self.sample[:300], encoding="utf-8")
        good = d / "good.ardm"
        if not good.exists():
            from ardm_core.checkpoint import load_model
            from ardm_core.compress import compress_bytes

            good.write_bytes(compress_bytes(load_model(self.tiny_dir, "cpu"), self.sample[:120].encode(),
                                            window=16, steps=4, method="model"))
        out = d / f"out-{os.getpid()}"
        cmd = rng.choice(["compress", "decompress", "sample", "score", "infill", "eval"])
        m = ["--model", str(folder)]
        argv = {
            "compress": ["compress", *m, str(text), "-o", str(out), "--force", "-q", "--steps", "4"],
            "decompress": ["decompress", *m, str(good), "-o", str(out), "--force", "-q"],
            "sample": ["sample", *m, "--length", "12", "--steps", "3", "--device", "cpu"],
            "score": ["score", *m, "--text", "hello there", "--device", "cpu"],
            "infill": ["infill", *m, "--text", "he__o th_re", "--steps", "2", "--device", "cpu"],
            "eval": ["eval", *m, str(text), "--passes", "1", "--max-chars", "100", "--device", "cpu"],
        }[cmd]
        return argv, cmd


def _remove(p: Path) -> None:
    if p.is_symlink() or p.is_file():
        p.unlink()
    elif p.is_dir():
        for child in p.iterdir():
            _remove(child)
        p.rmdir()


# -- malformed model folders: (label, edit(folder), must_fail) ------------------------------------
def _config_edit(path_keys: tuple, value, raw: bytes | None = None):
    def edit(d: Path) -> None:
        cfg_path = d / "config.json"
        if raw is not None:
            cfg_path.write_bytes(raw)
            return
        cfg = json.loads(cfg_path.read_text())
        node = cfg
        for k in path_keys[:-1]:
            node = node[k]
        if value is _DELETE:
            node.pop(path_keys[-1], None)
        else:
            node[path_keys[-1]] = value
        cfg_path.write_text(json.dumps(cfg, allow_nan=True))
    return edit


_DELETE = object()


def _weights_edit(kind: str):
    def edit(d: Path) -> None:
        import hashlib

        import torch
        from safetensors.torch import load_file, save_file

        w = load_file(str(d / "model.safetensors"))
        name = next(k for k in sorted(w) if "tok" in k) if kind == "inf-embedding" else sorted(w)[0]
        if kind == "nan":
            for k in w:
                if w[k].is_floating_point():
                    w[k] = torch.full_like(w[k], float("nan"))
        elif kind == "one-nan":
            w[name] = w[name].clone()
            w[name].view(-1)[0] = float("nan")
        elif kind == "inf-embedding":
            w[name] = torch.full_like(w[name], float("inf"))
        elif kind == "huge":
            for k in w:
                if w[k].is_floating_point():
                    w[k] = w[k] * 1e30
        elif kind == "wrong-shape":
            w[name] = torch.zeros(3, 3)
        elif kind == "missing-tensor":
            w.pop(name)
        elif kind == "extra-tensor":
            w["bogus.weight"] = torch.zeros(2)
        save_file(w, str(d / "model.safetensors"))
        cfg = json.loads((d / "config.json").read_text())
        cfg["weights_sha256"] = hashlib.sha256((d / "model.safetensors").read_bytes()).hexdigest()
        (d / "config.json").write_text(json.dumps(cfg))
    return edit


def _file_edit(name: str, kind: str):
    def edit(d: Path) -> None:
        p = d / name
        if kind == "missing":
            p.unlink()
        elif kind == "folder":
            p.unlink()
            p.mkdir()
        elif kind == "loop":
            p.unlink()
            p.symlink_to(p.name)
        elif kind == "dev-zero":
            p.unlink()
            p.symlink_to("/dev/zero")
        elif kind == "dev-null":
            p.unlink()
            p.symlink_to("/dev/null")
        elif kind == "empty":
            p.write_bytes(b"")
        elif kind == "truncated":
            p.write_bytes(p.read_bytes()[: max(1, p.stat().st_size // 2)])
        elif kind == "garbage":
            p.write_bytes(os.urandom(2000))
        elif kind == "huge-header":  # safetensors: an 8-byte header length of 2**62
            p.write_bytes(struct.pack("<Q", 1 << 62) + b"{}")
    return edit


def _folder_edit(kind: str):
    def edit(d: Path) -> None:
        if kind == "is-file":
            _remove(d)
            d.write_text("not a folder")
        elif kind == "missing":
            _remove(d)
        elif kind == "loop":
            _remove(d)
            d.symlink_to(d.name)
    return edit


def model_folder_cases() -> list[tuple[str, object, bool]]:
    m = ("model",)
    cases: list[tuple[str, object, bool]] = []
    for key, values in {
        "n_head": [0, -4, 3, "4", None, 2.0],
        "n_layer": ["4", 4.0, 0, -1, 10**6, True, 10**30],
        "n_embd": [10**9, 0, -32, 33, "32"],
        "mlp_ratio": [10**6, 0, -2, 2.5],
        "dropout": ["x", -1, 2.0, float("nan")],
        "block_size": [10**9, 0, -5, 1.5, 2**62],
        "rope_base": [0, -1.0, float("nan"), float("inf"), "x", 1e-300],
        "vocab_size": [1, 0, 10**9, 53, 55, "54"],
        "positions": ["bogus", 5, None],
        "condition_on_known": ["yes", 2],
        "n_stage": [0, -1, 10**9],
        "causal": ["x"],
        "n_class_tokens": [-1, 10**9],
        "bogus_field": [1],
    }.items():
        for v in values:
            cases.append((f"config model.{key}={v!r}", _config_edit(m + (key,), v), True))
    for key, v in [("format_version", "2"), ("format_version", 99), ("format_version", -1), ("format", "other"),
                   ("vocab_file", 5), ("vocab_file", "/dev/zero"), ("vocab_file", "../../../etc/passwd"),
                   ("vocab_file", ""), ("loss_by_known", {}), ("loss_by_known", "x"), ("loss_by_known", [1.0] * 3),
                   ("loss_by_known", [float("nan")] * 64), ("loss_by_known", [1e309] * 64),
                   ("loss_by_known", [-1.0] * 64), ("loss_by_known", [[1.0]] * 64), ("meta", "x"), ("meta", []),
                   ("model", []), ("model", "x"), ("model", _DELETE), ("weights_sha256", 5), ("vocab_sha256", None),
                   ("weights_dtype", "float128"), ("weights_dtype", 3)]:
        cases.append((f"config {key}={'<deleted>' if v is _DELETE else repr(v)[:40]}", _config_edit((key,), v), True))
    for label, raw in [("config []", b"[]"), ("config 5", b"5"), ("config null", b"null"), ("config invalid JSON", b"{"),
                       ("config empty", b""), ("config nested 100000 deep", b"[" * 100000 + b"]" * 100000),
                       ("config NaN literal", b'{"format": NaN}'), ("config not UTF-8", b"\xff\xfe{}")]:
        cases.append((label, _config_edit((), None, raw=raw), True))
    for kind in ["nan", "one-nan", "inf-embedding", "huge", "wrong-shape", "missing-tensor", "extra-tensor"]:
        cases.append((f"weights {kind}", _weights_edit(kind), True))
    for name in ["config.json", "model.safetensors", "vocab.model"]:
        for kind in ["missing", "folder", "loop", "dev-zero", "dev-null", "empty", "truncated", "garbage"]:
            cases.append((f"{name} {kind}", _file_edit(name, kind), True))
    cases.append(("model.safetensors header length 2**62", _file_edit("model.safetensors", "huge-header"), True))
    for kind in ["is-file", "missing", "loop"]:
        cases.append((f"folder {kind}", _folder_edit(kind), True))
    return cases


# -- bad command lines ------------------------------------------------------------------------------
FRESH = "{fresh-folder}"  # replaced by a new, empty path for every case: a training run never resumes another's
LONG_RUNNING = {("train", "--steps"), ("train", "--minutes"), ("finetune", "--steps"), ("finetune", "--minutes"),
                ("train", "--eval-every"), ("train", "--save-every"), ("finetune", "--max-chars"),
                ("train", "--warmup")}


def cli_cases(workdir: Path, tiny_dir: Path) -> list[tuple[str, list[str]]]:
    """One bad value per case, for every option of every subcommand the parser knows."""
    import argparse as ap

    from ardm_core.cli import build_parser

    d = workdir / "inputs"
    d.mkdir(exist_ok=True)
    text, empty, binary, folder = d / "cli.txt", d / "empty.txt", d / "binary.bin", d / "a-folder"
    text.write_text((ROOT / "assets" / "corpus" / "test.txt").read_text(encoding="utf-8")[:3000], encoding="utf-8")
    empty.write_text("")
    binary.write_bytes(bytes(range(256)) * 4)
    folder.mkdir(exist_ok=True)
    packed = d / "cli.txt.ardm"
    missing = d / "no-such-folder" / "file"
    m = str(tiny_dir)
    out = str(d / "cli-out")
    bases = {
        "train": ["train", "--data", str(text), "--out", FRESH, "--preset", "tiny", "--block-size", "16",
                  "--batch-size", "2", "--steps", "2", "--warmup", "1", "--eval-every", "2", "--eval-batches", "1",
                  "--save-every", "2", "--threads", "1", "--device", "cpu"],
        "finetune": ["finetune", str(text), "--out", FRESH, "--model", m, "--steps", "2", "--batch-size", "2",
                     "--minutes", "0.2", "--threads", "1", "--device", "cpu"],
        "eval": ["eval", "--model", m, str(text), "--passes", "1", "--max-chars", "200", "--device", "cpu"],
        "calibrate": ["calibrate", "--model", m, str(text), "--rounds", "1"],
        "infill": ["infill", "--model", m, "--text", "he__o wo_ld", "--steps", "2", "--device", "cpu"],
        "sample": ["sample", "--model", m, "--length", "16", "--steps", "2", "--device", "cpu"],
        "score": ["score", "--model", m, "--text", "hello world", "--device", "cpu"],
        "compress": ["compress", "--model", m, str(text), "-o", str(packed), "--force", "-q"],
        "decompress": ["decompress", "--model", m, str(packed), "-o", out, "--force", "-q"],
        "explain": ["explain", "--model", m, "--text", "he__o", "--steps", "2", "--device", "cpu"],
        "corpus": ["corpus", "build"],
    }
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, ap._SubParsersAction))
    cases: list[tuple[str, list[str]]] = [("no command", []), ("unknown command", ["bogus"])]
    for name, sp in sub.choices.items():
        base = bases.get(name, [name])
        cases.append((f"{name} --bogus", base + ["--bogus"]))
        if any(a.required for a in sp._actions):  # without its required arguments; otherwise [name] is a valid run
            cases.append((f"{name} no arguments", [name]))
        for a in sp._actions:
            if isinstance(a, (ap._HelpAction, ap._SubParsersAction)) or a.nargs == 0:
                continue
            opt = a.option_strings[-1] if a.option_strings else None
            typ = a.type
            tname = getattr(typ, "__name__", str(typ))
            if a.choices:
                values = ["bogus", ""]
            elif typ is int or tname in ("integer", "int", "positive_int", "non_negative_int"):
                values = ["-1", "-5", "0", "nan", "x", "", "1e999", "99999999999999999999"]
            elif typ is float or "float" in tname or "fraction" in tname:
                values = ["nan", "inf", "-inf", "-1", "x", "", "1e999", "0"]
            else:
                values = ["", str(missing), str(folder), str(empty), str(binary), "/dev/null", "/dev/zero",
                          "\u2603" * 3]
            if (name, opt) == ("train", "--threads") or (name, opt) == ("finetune", "--threads"):
                values = values + ["1000000"]
            for v in values:
                if (name, opt) in LONG_RUNNING and v in ("99999999999999999999", "1e999", "inf"):
                    continue  # a huge budget is a valid (very long) run, not bad input
                if name == "corpus" and v in ("", "/dev/null") and opt is None:
                    continue
                if opt is None:  # positional: replace the first occurrence of its base value
                    argv = _replace_positional(base, sp, a, v)
                    if argv is None:
                        continue
                else:
                    argv = _set_option(base, a.option_strings, v)
                cases.append((f"{name} {opt or a.dest}={v!r}", argv))
    return cases


def _set_option(base: list[str], names: list[str], value: str) -> list[str]:
    argv = list(base)
    for i, tok in enumerate(argv):
        if tok in names and i + 1 < len(argv):
            argv[i + 1] = value
            return argv
    return argv + [names[-1], value]


def _replace_positional(base: list[str], sp, action, value: str) -> list[str] | None:
    """Swap the positional's value in ``base`` (the first token that is not an option or an option's value)."""
    takes_value = {s for a in sp._actions if a.option_strings and a.nargs != 0 for s in a.option_strings}
    positions = []
    i = 1
    while i < len(base):
        if base[i] in takes_value:
            i += 2
            continue
        if base[i].startswith("-"):
            i += 1
            continue
        positions.append(i)
        i += 1
    pos_actions = [a for a in sp._actions if not a.option_strings and not isinstance(a, argparse._SubParsersAction)]
    if action not in pos_actions:
        return None
    k = pos_actions.index(action)
    if k >= len(positions):
        return None
    argv = list(base)
    argv[positions[k]] = value
    return argv


# -- in-process runner for one command line ------------------------------------------------------
def run_cli_in_process(argv: list[str], workdir: Path) -> dict:
    """Run ``ardm argv`` through the real entry point; classify the result."""
    import torch

    from ardm_core.cli import main

    threads = torch.get_num_threads()
    err, out = io.StringIO(), io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    stdin = io.TextIOWrapper(io.BytesIO(b""), encoding="utf-8")
    cwd = os.getcwd()
    os.chdir(workdir)
    rc, crash = None, ""
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            old_stdin, sys.stdin = sys.stdin, stdin
            try:
                rc = main(argv)
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:  # anything main() lets through is a traceback for the user
                crash = traceback.format_exc()
            finally:
                sys.stdin = old_stdin
    finally:
        os.chdir(cwd)
        torch.set_num_threads(threads)
    out.flush()
    stdout = out.buffer.getvalue().decode("utf-8", "replace")
    return classify(rc, err.getvalue() + crash, stdout)


def classify(rc, stderr: str, stdout: str) -> dict:
    tail = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    if "Traceback (most recent call last)" in stderr:
        last = [ln for ln in stderr.strip().splitlines() if ln and not ln.startswith(" ")]
        return {"outcome": "crash", "detail": (last[-1] if last else "traceback")[:300], "rc": rc}
    if rc == 0:
        if NAN_WORD.search(stdout) or NAN_WORD.search(stderr):
            return {"outcome": "wrong", "detail": "accepted and printed nan/inf: " + (stdout + stderr)[-200:], "rc": 0}
        return {"outcome": "ok", "detail": tail[:300], "rc": 0}
    if rc in (1, 2) and "error" in stderr.lower():
        return {"outcome": "clear", "detail": tail[:300], "rc": rc}
    return {"outcome": "crash", "detail": f"exit {rc}: {tail[:280]}", "rc": rc}


# -- worker protocol --------------------------------------------------------------------------------
def _peak_reset() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_kb() -> int:
    with open("/proc/self/status") as f:
        m = re.search(r"VmHWM:\s+(\d+)", f.read())
    return int(m.group(1)) if m else 0


def worker_main(workdir: str, memory_limit_mb: int) -> None:
    import resource

    if memory_limit_mb:  # a case that allocates without bound fails here instead of taking the machine down
        limit = memory_limit_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    proto_out = os.fdopen(os.dup(1), "w", buffering=1)
    proto_in = os.fdopen(os.dup(0), "r")
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(os.open(os.path.join(workdir, f"worker-{os.getpid()}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND), 1)
    w = Worker(Path(workdir))
    cases_dir = Path(workdir) / "cwd"
    cases_dir.mkdir(exist_ok=True)
    proto_out.write(json.dumps({"ready": True}) + "\n")
    for line in proto_in:
        case = json.loads(line)
        cat, seed, quick = case["category"], case["seed"], case["quick"]
        _peak_reset()
        try:
            if cat == "roundtrip":
                res = w.roundtrip(seed, quick)
            elif cat == "ardm":
                res = w.ardm(seed, quick, lambda argv: run_cli_in_process(argv, cases_dir))
            elif cat == "model":
                label, folder, must_fail = w.model_case(case["index"], seed)
                argv, cmd = w.model_argv(folder, seed)
                _peak_reset()
                res = run_cli_in_process(argv, cases_dir)
                res["label"] = f"{label} [{cmd}]"
                if must_fail and res["outcome"] == "ok":
                    res["outcome"] = "ok"  # accepted: counted apart (see 'accepted' in the table)
                    res["accepted"] = True
            else:
                fresh = Path(tempfile.mkdtemp(dir=cases_dir)) / "out"
                argv = [str(fresh) if a == FRESH else a for a in case["argv"]]
                res = run_cli_in_process(argv, cases_dir)
                res["label"] = case["label"]
        except BaseException:
            res = {"outcome": "crash", "detail": "harness: " + traceback.format_exc().strip().splitlines()[-1],
                   "label": f"{cat} seed {seed}"}
        res["rss_kb"] = _peak_kb()
        proto_out.write(json.dumps(res) + "\n")


# == parent side: no torch =============================================================================
class Pool:
    """One worker process; restarted after a crash or a hang."""

    def __init__(self, workdir: Path, timeout: float, python: str, memory_limit_mb: int):
        self.workdir, self.timeout, self.python, self.memory_limit_mb = workdir, timeout, python, memory_limit_mb
        self.proc: subprocess.Popen | None = None
        self.restarts = 0

    def start(self) -> None:
        env = dict(os.environ, PYTHONHASHSEED="0", OMP_NUM_THREADS="1", QT_QPA_PLATFORM="offscreen",
                   HOME=str(self.workdir / "home"), XDG_CONFIG_HOME=str(self.workdir / "home" / ".config"),
                   XDG_DATA_HOME=str(self.workdir / "home" / ".local"), XDG_CACHE_HOME=str(self.workdir / "home" / ".cache"))
        (self.workdir / "home").mkdir(exist_ok=True)
        self.proc = subprocess.Popen([self.python, str(Path(__file__).resolve()), "--worker", str(self.workdir),
                                      "--memory-limit-mb", str(self.memory_limit_mb)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, bufsize=1, env=env, cwd=str(ROOT), start_new_session=True)
        line = self._read(600)
        if line is None or not line.strip().startswith("{"):
            raise RuntimeError(f"the fuzz worker did not start (log in {self.workdir})")

    def _read(self, timeout: float) -> str | None:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        return self.proc.stdout.readline()

    def kill(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
            self.proc = None

    def run(self, case: dict) -> dict:
        if self.proc is None:
            self.start()
        t0 = time.monotonic()
        self.proc.stdin.write(json.dumps(case) + "\n")
        self.proc.stdin.flush()
        line = self._read(self.timeout)
        if line is None:
            self.kill()
            self.restarts += 1
            return {"outcome": "hang", "detail": f"no answer in {self.timeout:.0f} s", "rss_kb": 0}
        if not line:
            code = self.proc.wait()
            self.proc = None
            self.restarts += 1
            sig = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit {code}"
            return {"outcome": "crash", "detail": f"worker died ({sig})", "rss_kb": 0}
        res = json.loads(line)
        res["seconds"] = round(time.monotonic() - t0, 3)
        return res


def run_fresh(argv: list[str], workdir: Path, timeout: float, python: str, memory_limit_mb: int) -> dict:
    """One command line in a new interpreter; peak RSS from wait4."""
    import resource

    env = dict(os.environ, OMP_NUM_THREADS="1", QT_QPA_PLATFORM="offscreen", HOME=str(workdir / "home"))

    def limit() -> None:
        if memory_limit_mb:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit_mb << 20, memory_limit_mb << 20))

    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([python, "-m", "ardm_core", *argv], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                cwd=str(workdir / "cwd"), env=dict(env, PYTHONPATH=str(ROOT)), start_new_session=True,
                                preexec_fn=limit)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = -9
                return {"outcome": "hang", "detail": f"no exit in {timeout:.0f} s", "rss_kb": usage.ru_maxrss}
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        out.seek(0)
        rc = proc.returncode
        res = classify(rc, err.read().decode("utf-8", "replace"), out.read().decode("utf-8", "replace"))
        if rc < 0:
            res = {"outcome": "crash", "detail": f"signal {signal.Signals(-rc).name}", "rc": rc}
        res["rss_kb"] = usage.ru_maxrss
        return res


def plan(args) -> dict[str, list[dict]]:
    """The cases of each category (model/cli argv lists need the worker's files, built lazily)."""
    rng = random.Random(args.seed)
    out = {}
    if "roundtrip" in args.only:
        out["roundtrip"] = [{"category": "roundtrip", "seed": rng.randrange(2**62), "quick": args.quick}
                            for _ in range(args.roundtrips)]
    if "ardm" in args.only:
        out["ardm"] = [{"category": "ardm", "seed": rng.randrange(2**62), "quick": args.quick} for _ in range(args.ardm)]
    if "model" in args.only:
        n = len(model_folder_cases())
        idx = list(range(n)) * (args.model // n + 1)
        if args.model < n:
            idx = rng.sample(range(n), args.model)
        out["model"] = [{"category": "model", "index": i, "seed": rng.randrange(2**62), "quick": args.quick}
                        for i in idx[: args.model]]
    return out


def summarise(results: dict[str, list[dict]], rss_limit_mb: float) -> tuple[str, bool]:
    head = f"{'category':<10} {'cases':>6} {'ok':>6} {'accepted':>8} {'clear':>6} {'undecodable':>11} {'wrong':>6} " \
           f"{'crash':>6} {'hang':>5} {'peak RSS MB':>11} {'> limit':>7}"
    lines = [head, "-" * len(head)]
    good = True
    for cat in CATEGORIES:
        rs = results.get(cat)
        if not rs:
            continue
        count = {o: sum(r["outcome"] == o for r in rs) for o in OUTCOMES}
        accepted = sum(bool(r.get("accepted")) for r in rs)
        peak = max((r.get("rss_kb", 0) for r in rs), default=0) / 1024
        over = sum(r.get("rss_kb", 0) / 1024 > rss_limit_mb for r in rs)
        lines.append(f"{cat:<10} {len(rs):>6} {count['ok'] - accepted:>6} {accepted:>8} {count['clear']:>6} "
                     f"{count['undecodable']:>11} {count['wrong']:>6} {count['crash']:>6} {count['hang']:>5} "
                     f"{peak:>11.0f} {over:>7}")
        good &= not (count["undecodable"] or count["wrong"] or count["crash"] or count["hang"] or over)
        if cat == "roundtrip":
            good &= count["clear"] == 0
    return "\n".join(lines), good


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a few hundred cases, under a minute")
    p.add_argument("--only", default=",".join(CATEGORIES), help=f"comma-separated categories ({', '.join(CATEGORIES)})")
    p.add_argument("--roundtrips", type=int, default=None)
    p.add_argument("--ardm", type=int, default=None, help="damaged .ardm files")
    p.add_argument("--model", type=int, default=None, help="malformed model-folder cases")
    p.add_argument("--cli", type=int, default=None, help="command-line cases (0 = all the parser gives)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=None, help="seconds per case before it counts as a hang")
    p.add_argument("--fresh", action="store_true", help="model and cli cases each in a new interpreter")
    p.add_argument("--rss-limit-mb", type=float, default=1024, help="a case whose peak RSS is above this fails")
    p.add_argument("--memory-limit-mb", type=int, default=6144,
                   help="address-space limit of each worker (RLIMIT_AS; 0 = none): a runaway allocation then "
                        "shows as a crash (MemoryError) instead of exhausting the machine")
    p.add_argument("--json", default=None, help="write every case's outcome here")
    p.add_argument("--details", type=int, default=10, help="failing cases to print per category")
    p.add_argument("--progress", type=int, default=500, help="print a progress line every N cases")
    p.add_argument("--workdir", default=None)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--merge", nargs="+", default=None, metavar="JSON", help="print one table from these --json reports")
    args = p.parse_args(argv)
    if args.merge:
        return merge(args)
    if args.worker:
        worker_main(args.worker, args.memory_limit_mb)
        return 0
    args.only = [c for c in args.only.split(",") if c]
    for c in args.only:
        if c not in CATEGORIES:
            p.error(f"unknown category {c!r}")
    q = args.quick
    args.roundtrips = args.roundtrips if args.roundtrips is not None else (120 if q else 10_000)
    args.ardm = args.ardm if args.ardm is not None else (80 if q else 2_500)
    args.model = args.model if args.model is not None else (30 if q else 2 * len(model_folder_cases()))
    args.cli = args.cli if args.cli is not None else (30 if q else 0)
    args.timeout = args.timeout or (30.0 if q else 120.0)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="ardm-fuzz-"))
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "cwd").mkdir(exist_ok=True)
    python = sys.executable
    pool = Pool(workdir, args.timeout, python, args.memory_limit_mb)
    results: dict[str, list[dict]] = {}
    t_start = time.monotonic()
    interrupted = False

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        cases = plan(args)
        for cat in CATEGORIES:
            if cat not in args.only:
                continue
            t0 = time.monotonic()
            if cat == "cli":
                pool.run({"category": "roundtrip", "seed": 0, "quick": True})  # makes the tiny model folder
                all_cases = cli_cases(workdir, workdir / "tiny-model")
                rng = random.Random(args.seed + 1)
                chosen = all_cases if not args.cli or args.cli >= len(all_cases) else rng.sample(all_cases, args.cli)
                cases["cli"] = [{"category": "cli", "seed": 0, "quick": q, "argv": a, "label": lab} for lab, a in chosen]
            rs = results[cat] = []
            for n, case in enumerate(cases[cat], 1):
                if n % args.progress == 0:
                    print(f"{cat}: {n}/{len(cases[cat])} cases, {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
                if args.fresh and cat == "cli":
                    res = run_fresh(case["argv"], workdir, args.timeout, python, args.memory_limit_mb)
                    res["label"] = case["label"]
                else:
                    res = pool.run(case)
                res.setdefault("label", case.get("label") or f"{cat} seed {case['seed']}")
                res["case"] = {k: v for k, v in case.items() if k != "quick"}
                rs.append(res)
            print(f"{cat}: {len(rs)} cases in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: report the cases done so far
        interrupted = True
        print("interrupted: the table covers the cases finished so far", file=sys.stderr)
    finally:
        pool.kill()
    return report(args, results, time.monotonic() - t_start, pool.restarts, workdir, interrupted)


def report(args, results: dict[str, list[dict]], seconds: float, restarts: int, workdir, interrupted: bool) -> int:
    table, good = summarise(results, args.rss_limit_mb)
    print(table)
    if results.get("roundtrip"):
        past = [r.get("past_end_bits", 0.0) for r in results["roundtrip"]]
        print(f"round trips: most information decoded after the data ran out {max(past):.1f} bits "
              f"(the decoder's limit is 256)")
    print(f"({seconds:.0f} s, {restarts} worker restarts{', interrupted' if interrupted else ''}, workdir {workdir})")
    for cat, rs in results.items():
        bad = [r for r in rs if r["outcome"] in ("undecodable", "wrong", "crash", "hang")
               or r.get("rss_kb", 0) / 1024 > args.rss_limit_mb or (cat == "roundtrip" and r["outcome"] == "clear")]
        accepted = [r for r in rs if r.get("accepted")]
        for r in bad[: args.details]:
            print(f"  {cat} {r['outcome']}: {r.get('label', '')}: {r.get('detail', '')} "
                  f"[{r.get('rss_kb', 0) // 1024} MB]")
        for r in accepted[: args.details]:
            print(f"  {cat} accepted: {r.get('label', '')}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": {k: v for k, v in vars(args).items() if k not in ("worker", "merge")},
                                               "seconds": seconds, "interrupted": interrupted, "results": results},
                                              indent=1, default=str))
    if workdir and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if good and not interrupted else 1


def merge(args) -> int:
    """One table from several --json reports (runs with different --seed, side by side or one after another)."""
    results: dict[str, list[dict]] = {}
    seconds, interrupted = 0.0, False
    for name in args.merge:
        r = json.loads(Path(name).read_text())
        for cat, rs in r["results"].items():
            results.setdefault(cat, []).extend(rs)
        seconds += r.get("seconds", 0.0)
        interrupted |= r.get("interrupted", False)
    args.json = None
    return report(args, results, seconds, 0, None, interrupted)


if __name__ == "__main__":
    sys.exit(main())
