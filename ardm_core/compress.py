"""Lossless compression of text with an ARDM (paper section 5).

One fixed, seeded order per window and a step budget K planned by the
dynamic programme over the model's L_t table (paper section 4): a window of
D characters costs K network calls, and every character of a step is coded
with the probabilities of that one call. Entropy coding is constriction's
range coder. Nothing is bits-back, so a single short text compresses on its
own.

Determinism is the crux: encoder and decoder must build bit-identical
probability tables. They do this by
  1. running a float64 copy of the network on the CPU, each window in a fixed
     (rows, D) shape, so batching and thread counts move logits by ~1e-13;
  2. quantising every log-probability, relative to the most likely character,
     to 1/8 bit and mapping it through a fixed integer table (no exp, no libm),
     so those tiny differences almost never reach the coder (see
     docs/COMPRESSION.md for what is and is not guaranteed);
  3. deriving the order from splitmix64 (not numpy's generator, whose streams
     may change between versions) and the step sizes from the L_t table
     rounded to 1/1024 bit, where float sums are exact.
A CRC-32 of the original is checked before anything is returned, so a
mismatch is an error, never wrong output.

Characters outside the vocabulary are coded as ``<unk>`` followed by their
code point under a small adaptive model; input that is not UTF-8, or that a
classic coder stores smaller, goes into a brotli or stored block instead.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import weakref
from dataclasses import asdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import brotli
import constriction
import numpy as np
import torch

from .budget import budget_schedule
from .checkpoint import LoadedModel
from .paths import ASSETS
from .orders import Plan, fill_steps, random_permutation
from .codec_format import (
    FORMAT_VERSION,
    METHODS,
    CompressedFileError,
    Header,
    ModelMismatchError,
    crc32,
    fingerprint_tag,
    pack_header,
    read_header,
)
from .model import ARDMTransformer

DEFAULT_STEPS = None  # K: None = auto_steps(), planned from the model's own L_t measurements
AUTO_TOLERANCE = 0.01  # auto K: the fewest calls whose planned bits are within 1% of one character per call
FALLBACK_STEPS = 20  # K for a model without an L_t table
GROUP_WINDOWS = 16  # windows coded step-interleaved in one group (part of format v1)
STEPS_PER_BIT = 8  # log-probabilities are quantised to 1/8 bit
BITS_X8_PER_NAT = 11.541560327111707  # STEPS_PER_BIT / ln 2, as a literal so no libm is involved
Q_FLOOR = 20 * STEPS_PER_BIT  # no character is less likely than 2^-20 of the favourite
Q_UNK = 14 * STEPS_PER_BIT  # the escape symbol <unk> sits at 2^-14 of the favourite
# round(2 ** (32 - k / 8)) for k = 0..7, computed once with 60-digit decimals
WEIGHT_TABLE = np.array(
    [4294967296, 3938502376, 3611622603, 3311872529, 3037000500, 2784941738, 2553802834, 2341847524], dtype=np.int64
)
L_GRID = 1024  # the L_t table is rounded to 1/1024 bit before planning, so the DP's sums are exact
TRIM_MAX_CHARS = 4096  # below this, the encoder trims the coder's last bytes and proves the trim decodes
MAX_BITS_PAST_END = 256  # information decoded after the data ran out before the length is called damaged (see _Decoder)
BROTLI_CHUNK = 1 << 20  # fallback blocks are inflated at most this many bytes at a time
MAX_SEEN_ESCAPES = 1024  # distinct escaped code points the fallback model remembers
CHOICES = ("auto", *METHODS)

_CATEGORICAL = constriction.stream.model.Categorical(perfect=False)


@dataclass(frozen=True)
class CodingProgress:
    """Emitted while a text is coded; windows are D-character chunks."""

    phase: str  # "compress" | "verify" (compress decoding its own output) | "decompress"
    windows_done: int
    windows: int
    network_calls: int


@dataclass(frozen=True)
class CodingResult:
    """The outcome of compress() or decompress(): ``data`` is the output bytes."""

    data: bytes
    method: str  # "model" | "brotli" | "stored"
    original_bytes: int
    compressed_bytes: int
    chars: int | None  # characters of the original; None when it is not UTF-8
    network_calls: int
    seconds: float
    note: str = ""  # compress(): why the model-coded file was not used, when it failed its check
    check_calls: int = 0  # compress(): network calls spent decoding the output to check it

    @property
    def bits_per_char(self) -> float:
        n = self.chars if self.chars else self.original_bytes
        return 8.0 * self.compressed_bytes / n if n else 0.0


# -- 1. probabilities ------------------------------------------------------------------
def quantised_weights(logits: np.ndarray) -> np.ndarray:
    """(m, V) float64 logits -> (m, V) integer-valued float64 coder weights.

    q = round((max - logit) in units of 1/8 bit), capped at Q_FLOOR; weight =
    WEIGHT_TABLE[q % 8] >> (q // 8) ~ 2^32 * 2^(-q/8). Only subtraction,
    multiplication by a literal and floor touch floats, all correctly rounded
    IEEE operations, so equal logits give equal weights on every machine; <unk>
    (id 0, which the network never predicts) gets the fixed escape weight.
    """
    if logits.shape[1] < 2:
        raise ValueError("the vocabulary needs at least one character besides <unk>")
    real = logits[:, 1:]
    top = real.max(axis=1, keepdims=True)
    rel = (top - real) * BITS_X8_PER_NAT
    if not np.isfinite(rel).all():
        raise ValueError("the model produced non-finite logits; it cannot be used for compression")
    q = np.empty(logits.shape, dtype=np.int64)
    q[:, 1:] = np.minimum(np.floor(rel + 0.5), Q_FLOOR).astype(np.int64)
    q[:, 0] = Q_UNK
    return (WEIGHT_TABLE[q & 7] >> (q >> 3)).astype(np.float64)


class ProbabilityNet:
    """A float64 CPU copy of a model's network; its raw logits feed the coder.

    The copy keeps the caller's model untouched (the app may be using it on a
    GPU). Logits are taken from the output head by a hook, before the
    network's own softmax, so the whole path stays in float64.
    """

    def __init__(self, model: LoadedModel):
        cfg = model.config
        with torch.random.fork_rng(devices=[]):  # building the module draws init weights; keep the caller's RNG
            net = ARDMTransformer(cfg).double()
        state = {k: v.detach().to("cpu", torch.float64) if v.is_floating_point() else v.detach().cpu()
                 for k, v in model.net.state_dict().items()}
        net.load_state_dict(state)
        self.net = net.eval()
        self.mask_id = cfg.vocab_size
        self.digest = _model_digest(cfg, model.vocab, state)
        self._logits: torch.Tensor | None = None
        self.net.head.register_forward_hook(self._capture)

    def _capture(self, module, inputs, output) -> None:
        self._logits = output.detach().clone()  # before forward() edits it in place

    @torch.inference_mode()
    def weights(self, rows: np.ndarray, lengths: np.ndarray, targets: list[np.ndarray]) -> list[np.ndarray]:
        """Coder weights for each row's target positions: rows (B, D) int64, lengths (B,)."""
        self.net(torch.from_numpy(rows), torch.from_numpy(lengths))
        logits = self._logits.numpy()  # (B, D, V) float64
        self._logits = None
        return [quantised_weights(logits[b, t]) for b, t in enumerate(targets)]


# config fields that cannot change the probabilities of a network in eval mode
_NOT_IN_DIGEST = frozenset({"dropout"})


def _model_digest(cfg, vocab, state: dict[str, torch.Tensor]) -> bytes:
    """sha256 over everything the coder's probabilities depend on: the architecture (every
    config field but dropout), the vocabulary (its characters and tokenizer model) and the
    float64 weights the coder runs, each tensor with its name, dtype and shape."""
    h = hashlib.sha256(b"ardm-coder-model\0")
    arch = {k: v for k, v in asdict(cfg).items() if k not in _NOT_IN_DIGEST}
    h.update(json.dumps(arch, sort_keys=True, default=repr).encode("utf-8") + b"\0")
    h.update(hashlib.sha256("\0".join(vocab.chars).encode("utf-8", "surrogatepass")).digest())
    h.update(hashlib.sha256(bytes(vocab.model_proto)).digest())
    for name in sorted(state):
        t = state[name].contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}\0".encode("utf-8"))
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.digest()


_NETS: "weakref.WeakKeyDictionary[torch.nn.Module, tuple[tuple, ProbabilityNet]]" = weakref.WeakKeyDictionary()


def probability_net(model: LoadedModel) -> ProbabilityNet:
    """The float64 copy for ``model``, rebuilt if its weights changed in place since."""
    key = tuple((p.data_ptr(), p._version) for p in model.net.parameters())
    hit = _NETS.get(model.net)
    if hit is None or hit[0] != key:
        hit = (key, ProbabilityNet(model))
        _NETS[model.net] = hit
    return hit[1]


# -- 2. orders and step sizes -------------------------------------------------------
def window_order(seed: int, window_index: int, n: int) -> np.ndarray:
    """The generation order of window ``window_index``: a Fisher-Yates shuffle of 0..n-1 by splitmix64
    (``orders.random_permutation``'s integer-only source: the same on every machine and numpy)."""
    return random_permutation(n, seed, window_index, source="splitmix")


def quantised_loss_table(L: np.ndarray | None) -> np.ndarray | None:
    return None if L is None else np.round(np.asarray(L, dtype=np.float64) * L_GRID) / L_GRID


def step_sizes(L: np.ndarray | None, steps: int, n: int) -> tuple[int, ...]:
    """Characters per step for an n-character window with budget ``steps``.

    With an L_t table: the paper's dynamic programme (``budget_schedule``) on
    the table rounded to 1/1024 bit. Without one: an equal split, larger
    steps first. The result is part of the file format: both ends must agree.
    """
    k = min(steps, n)
    if k <= 0:
        return ()
    if L is None:
        base, extra = divmod(n, k)
        return tuple(base + (i < extra) for i in range(k))
    return _planned_sizes(quantised_loss_table(L).tobytes(), k, n)


HISTORY_MAX_BYTES = 1 << 20
_HISTORY_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_HISTORY_COMMIT = re.compile(r"[0-9a-f]{7,40}")
_HISTORY_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def shipped_model_hint(tag: bytes, version: int, history: Path | None = None) -> str:
    """". It was made with ..." and how to get that model, when ``tag`` is the tag of a model this
    repository shipped (assets/models/HISTORY.json, written by scripts/model_history.py, newest
    first); else "".

    A release that ships new weights cannot decode files made with the old ones; the
    repository's history still holds them, and this says where.
    """
    path = history or ASSETS / "models" / "HISTORY.json"
    try:
        if path.stat().st_size > HISTORY_MAX_BYTES:
            return ""
        rows = json.loads(path.read_text(encoding="utf-8")).get("models")
    except (OSError, ValueError, AttributeError):
        return ""
    for row in rows if isinstance(rows, list) else []:
        if not (isinstance(row, dict) and row.get("tag") == tag.hex() and row.get("format") == version):
            continue
        name, commit = row.get("model"), row.get("commit")
        if not (isinstance(name, str) and _HISTORY_NAME.fullmatch(name) and isinstance(commit, str)
                and _HISTORY_COMMIT.fullmatch(commit)):
            return ""
        steps, date = row.get("trained_steps"), row.get("date")
        when = ", ".join(x for x in (date if isinstance(date, str) and _HISTORY_DATE.fullmatch(date) else "",
                                     f"{steps:,} steps" if type(steps) is int and steps >= 0 else "") if x)
        folder = f"assets/models/{name}"
        newest = next((r.get("commit") for r in rows if isinstance(r, dict) and r.get("model") == name), None)
        if commit == newest and (ASSETS / "models" / name / "config.json").is_file():
            return (f". It was made with the shipped {name!r} model: decompress with --model {name} "
                    f"(the folder {ASSETS / 'models' / name})")
        return (f". It was made with the {name!r} model shipped in commit {commit}" + (f" ({when})" if when else "")
                + f"; to get it back, run in the ARDM Studio folder: git archive {commit} {folder} | tar -x -C OLD "
                f"(OLD: an empty folder), then decompress with --model OLD/{folder}")
    return ""


def model_tag(model: LoadedModel, version: int = FORMAT_VERSION) -> bytes:
    """The header's model tag: a hash of everything the probabilities and the plan depend on.

    Format 2 and later: the coder's own float64 weights, the architecture config, the
    vocabulary (``_model_digest``) and the L_t table the step sizes are planned from, so
    a model that would code differently gets another tag and decoding with it reports
    a different model, not a damaged file. Format 1 tagged only the loader's fingerprint
    (weights and vocabulary) and the L_t table; its files are still read.
    """
    L = quantised_loss_table(model.loss_by_known)
    plan = b"" if L is None else b"L" + L.astype("<f8").tobytes()
    if version == 1:
        return fingerprint_tag(model.fingerprint, plan)
    return fingerprint_tag(probability_net(model).digest.hex(), plan)


def auto_steps(L: np.ndarray | None, window: int, tolerance: float = AUTO_TOLERANCE) -> int:
    """The default budget: the smallest K whose planned bits (the DP's expected_bits under the
    model's measured L_t) are within ``tolerance`` of K = window, one character per call."""
    if L is None:
        return min(FALLBACK_STEPS, window)
    return _auto_steps(quantised_loss_table(L).tobytes(), window, tolerance)


@lru_cache(maxsize=16)
def _auto_steps(L_bytes: bytes, window: int, tolerance: float) -> int:
    L = np.frombuffer(L_bytes, dtype=np.float64)
    goal = budget_schedule(L, window, n=window).expected_bits * (1 + tolerance)
    lo, hi = 1, window  # expected bits never grow with K, so bisect for the first K under the goal
    while lo < hi:
        mid = (lo + hi) // 2
        if budget_schedule(L, mid, n=window).expected_bits <= goal:
            hi = mid
        else:
            lo = mid + 1
    return lo


@lru_cache(maxsize=64)
def _planned_sizes(L_bytes: bytes, k: int, n: int) -> tuple[int, ...]:
    L = np.frombuffer(L_bytes, dtype=np.float64)
    sizes = tuple(int(x) for x in budget_schedule(L, k, start=0, n=n, every_position=True).sizes)
    if sum(sizes) != n or len(sizes) > k or min(sizes) < 1:
        raise RuntimeError(f"budget_schedule returned an invalid plan {sizes} for n={n}, K={k}")
    return sizes


@dataclass(frozen=True)
class _Window:
    index: int
    start: int  # first character in the text
    n: int  # characters in this window
    plan: tuple[np.ndarray, ...]  # positions of each step, in fill order (orders.Plan)
    step_of: np.ndarray  # (n,) the step that fills each position

    @property
    def steps(self) -> int:
        return len(self.plan)

    def targets(self, s: int) -> np.ndarray:
        return self.plan[s]


def _groups(model: LoadedModel, n_chars: int, window: int, steps: int, seed: int) -> Iterator[list[_Window]]:
    """The windows of an n_chars text, GROUP_WINDOWS at a time (planned lazily: long files stay cheap)."""
    starts = range(0, n_chars, window)
    for g in range(0, len(starts), GROUP_WINDOWS):
        group = []
        for w in range(g, min(g + GROUP_WINDOWS, len(starts))):
            n = min(window, n_chars - starts[w])
            plan = Plan(n, np.arange(n), "explicit", explicit=window_order(seed, w, n),
                        sizes=step_sizes(model.loss_by_known, steps, n)).fixed_steps()
            group.append(_Window(w, starts[w], n, tuple(plan), fill_steps(plan, n)))
        yield group


# -- 3. the entropy coder and the escape model -------------------------------------
class _Encoder:
    """constriction's range coder; optionally keeps a transcript to prove a trimmed ending decodes."""

    def __init__(self, record: bool):
        self.enc = constriction.stream.queue.RangeEncoder()
        self.transcript: list[tuple] | None = [] if record else None

    def symbols(self, syms: np.ndarray, weights: np.ndarray) -> None:
        syms = syms.astype(np.int32)
        self.enc.encode(syms, _CATEGORICAL, weights)
        if self.transcript is not None:
            self.transcript.append(("symbols", syms, weights))

    def choice(self, sym: int, weights: np.ndarray) -> None:
        self.enc.encode(int(sym), constriction.stream.model.Categorical(weights, perfect=False))
        if self.transcript is not None:
            self.transcript.append(("choice", sym, weights))

    def uniform(self, value: int, size: int) -> None:
        self.enc.encode(int(value), constriction.stream.model.Uniform(size))
        if self.transcript is not None:
            self.transcript.append(("uniform", value, size))

    def payload(self) -> bytes:
        """The coded bytes; zero-padding to whole words is implied, and trailing bytes
        the decoder provably does not need are dropped (short texts only)."""
        data = self.enc.get_compressed().astype("<u4").tobytes()
        if self.transcript is None:
            return data
        while data and _replays(data[:-1], self.transcript):
            data = data[:-1]
        return data


class _Decoder:
    """constriction's range decoder, with the end-of-data rule.

    Past the end of the payload the decoder reads zero words, which decode to
    whatever comes first in each table, so a damaged length field could make
    it run for a very long time. The rule: after every decode call the decoder
    is asked whether it may have read all the data; the first time it says so,
    that call is replayed symbol by symbol to find the symbol after which it
    first said so, and from there on the information of every symbol (-log2 of
    its probability under the coder's weights, escapes included) is summed;
    more than MAX_BITS_PAST_END bits means the header promises more than the
    data holds. A real stream needs at most the coder's
    64-bit state plus the one or two closing words and the bytes the encoder
    trimmed (about 160 bits); the encoder decodes every file before it is
    written, so a file this rule refuses is never produced.
    """

    def __init__(self, payload: bytes):
        padded = payload + b"\0" * (-len(payload) % 4)
        self.dec = constriction.stream.queue.RangeDecoder(np.frombuffer(padded, dtype="<u4").astype(np.uint32))
        self.ran_out = False  # latched: the decoder has reported that it may have read all the data
        self.past_end_bits = 0.0

    def symbols(self, weights: np.ndarray) -> np.ndarray:
        before = None if self.ran_out else self.dec.clone()
        try:
            syms = self.dec.decode(_CATEGORICAL, weights)
        except Exception as exc:  # constriction raises several types on exhausted or invalid data
            raise CompressedFileError(f"corrupted or truncated data ({exc})") from None
        if self.ran_out:
            self._past_end(_bits(weights, syms).sum())
        elif self.dec.maybe_exhausted():
            # replay this call one symbol at a time to find the symbol after which the data ran out
            bits = _bits(weights, syms)
            i = len(syms) - 1
            for i in range(len(syms)):
                before.decode(_CATEGORICAL, weights[i : i + 1])
                if before.maybe_exhausted():
                    break
            self.ran_out = True
            self._past_end(bits[i + 1 :].sum())
        return syms

    def choice(self, weights: np.ndarray) -> int:
        try:
            sym = int(self.dec.decode(constriction.stream.model.Categorical(weights, perfect=False)))
        except Exception as exc:
            raise CompressedFileError(f"corrupted or truncated data ({exc})") from None
        self._single(float(np.log2(weights.sum() / weights[sym])))
        return sym

    def uniform(self, size: int) -> int:
        try:
            value = int(self.dec.decode(constriction.stream.model.Uniform(size)))
        except Exception as exc:
            raise CompressedFileError(f"corrupted or truncated data ({exc})") from None
        self._single(float(np.log2(size)))
        return value

    def _single(self, bits: float) -> None:
        if self.ran_out:
            self._past_end(bits)
        elif self.dec.maybe_exhausted():
            self.ran_out = True

    def _past_end(self, bits: float) -> None:
        self.past_end_bits += float(bits)
        if self.past_end_bits > MAX_BITS_PAST_END:
            raise CompressedFileError("corrupted file (the header promises more characters than the data holds)")


def _bits(weights: np.ndarray, syms: np.ndarray) -> np.ndarray:
    """Information of each decoded symbol under its row of coder weights, in bits."""
    return np.log2(weights.sum(axis=1) / weights[np.arange(len(syms)), syms])


def _replays(payload: bytes, transcript: list[tuple]) -> bool:
    try:
        dec = _Decoder(payload)
        for op, value, param in transcript:
            if op == "symbols":
                if not np.array_equal(dec.symbols(param), value):
                    return False
            elif op == "choice":
                if dec.choice(param) != value:
                    return False
            elif dec.uniform(param) != value:
                return False
    except CompressedFileError:
        return False
    return True


class _EscapeModel:
    """Code points of characters outside the vocabulary, after an <unk>.

    First "a code point seen before in this file (which one, by count)" or
    "new"; a new one is coded as its bit length (adaptive counts over 0..21)
    and then its lower bits, uniform, in chunks of at most 12 bits.
    """

    def __init__(self, vocab):
        self.vocab = vocab
        self.seen: list[int] = []
        self.counts: list[int] = []
        self.index: dict[int, int] = {}
        self.lengths = [1] * 22  # bit lengths 0..21 (U+10FFFF has 21 bits)

    def _seen_weights(self) -> np.ndarray:
        return np.asarray([1 + len(self.seen), *self.counts], dtype=np.float64)

    def encode(self, enc: _Encoder, cp: int) -> None:
        j = self.index.get(cp)
        if self.seen:
            enc.choice(0 if j is None else j + 1, self._seen_weights())
        if j is not None:
            self.counts[j] += 1
            return
        b = cp.bit_length()
        enc.choice(b, np.asarray(self.lengths, dtype=np.float64))
        for size, chunk in _low_bit_chunks(b, cp):
            enc.uniform(chunk, size)
        self._learn(cp, b)

    def decode(self, dec: _Decoder) -> int:
        if self.seen:
            j = dec.choice(self._seen_weights())
            if j > 0:
                self.counts[j - 1] += 1
                return self.seen[j - 1]
        b = dec.choice(np.asarray(self.lengths, dtype=np.float64))
        cp = (1 << (b - 1)) if b else 0
        shift = 0
        for size, _ in _low_bit_chunks(b, 0):
            cp |= dec.uniform(size) << shift
            shift += size.bit_length() - 1
        if cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF or cp in self.index or self.vocab.contains(chr(cp)):
            raise CompressedFileError("corrupted data (impossible escaped character)")
        self._learn(cp, b)
        return cp

    def _learn(self, cp: int, b: int) -> None:
        self.lengths[b] += 1
        if len(self.seen) < MAX_SEEN_ESCAPES:
            self.index[cp] = len(self.seen)
            self.seen.append(cp)
            self.counts.append(1)


def _low_bit_chunks(b: int, cp: int) -> Iterator[tuple[int, int]]:
    """(alphabet size, value) for the bits below the leading one, least significant first."""
    nbits = max(b - 1, 0)
    while nbits > 0:
        k = min(12, nbits)
        yield 1 << k, cp & ((1 << k) - 1)
        cp >>= k
        nbits -= k


# -- 4. windows ---------------------------------------------------------------------------
def _window_size(model: LoadedModel, window: int | None) -> int:
    D = model.config.block_size
    if window is None or window == 0:
        return D
    if not 1 <= window <= D:
        raise ValueError(f"window must be between 1 and the model's block size {D}, got {window}")
    return window


def _encode_text(model: LoadedModel, text: str, *, steps: int, seed: int, window: int,
                 batch_rows: int) -> Iterator[CodingProgress]:
    """Generator: yields progress, returns (payload, network calls)."""
    net = probability_net(model)
    ids = model.vocab.encode(text)
    n_windows = -(-len(text) // window)
    enc = _Encoder(record=len(text) <= TRIM_MAX_CHARS)
    esc = _EscapeModel(model.vocab)
    calls = done = 0
    for group in _groups(model, len(text), window, steps, seed):
        # 1. teacher forcing: every step's input is known, so all rows of the group are computed up front
        jobs: list[tuple[_Window, int, np.ndarray]] = []  # (window, step, input row)
        for win in group:
            seg = ids[win.start : win.start + win.n]
            for s in range(win.steps):
                row = np.full(window, net.mask_id, dtype=np.int64)
                row[: win.n] = np.where(win.step_of < s, seg, net.mask_id)  # filled before step s: shown
                jobs.append((win, s, row))
        weights: dict[tuple[int, int], np.ndarray] = {}
        for c in range(0, len(jobs), batch_rows):
            chunk = jobs[c : c + batch_rows]
            out = net.weights(np.stack([r for _, _, r in chunk]), np.asarray([w.n for w, _, _ in chunk], dtype=np.int64),
                              [w.targets(s) for w, s, _ in chunk])
            for (win, s, _), wt in zip(chunk, out):
                weights[win.index, s] = wt
            calls += len(chunk)
            yield CodingProgress("compress", done, n_windows, calls)
        # 2. code in the canonical order: step-major across the group, each unit's escapes after its symbols
        for s in range(max(w.steps for w in group)):
            for win in group:
                if s >= win.steps:
                    continue
                pos = win.targets(s)
                syms = ids[win.start + pos]
                enc.symbols(syms, weights.pop((win.index, s)))
                for p in pos[syms == 0]:
                    esc.encode(enc, ord(text[win.start + p]))
        done += len(group)
        yield CodingProgress("compress", done, n_windows, calls)
    return enc.payload(), calls


def _decode_text(model: LoadedModel, header: Header, payload: bytes, *, batch_windows: int,
                 phase: str = "decompress") -> Iterator[CodingProgress]:
    """Generator: yields progress, returns (text, network calls)."""
    window = header.window or model.config.block_size
    if window > model.config.block_size:
        raise CompressedFileError(f"corrupted header (window {window} exceeds the model's {model.config.block_size})")
    net = probability_net(model)
    vocab = model.vocab
    n_windows = -(-header.length // window)
    dec = _Decoder(payload)
    esc = _EscapeModel(vocab)
    parts: list[str] = []
    calls = done = 0
    for group in _groups(model, header.length, window, header.steps, header.seed):
        base = group[0].start
        chars = [""] * (group[-1].start + group[-1].n - base)
        state = np.full((len(group), window), net.mask_id, dtype=np.int64)  # (G, D) ids known so far
        lengths = np.asarray([w.n for w in group], dtype=np.int64)
        for s in range(max(w.steps for w in group)):
            active = [i for i, w in enumerate(group) if s < w.steps]
            weights: dict[int, np.ndarray] = {}
            for c in range(0, len(active), batch_windows):
                rows = active[c : c + batch_windows]
                out = net.weights(state[rows], lengths[rows], [group[i].targets(s) for i in rows])
                weights.update(zip(rows, out))
                calls += len(rows)
            for i in active:
                win = group[i]
                pos = win.targets(s)
                table = weights.pop(i)
                syms = dec.symbols(table).astype(np.int64)
                state[i, pos] = syms
                for p, sym in zip(pos, syms):
                    chars[win.start - base + p] = vocab.chars[sym] if sym else ""
                for p in pos[syms == 0]:
                    chars[win.start - base + p] = chr(esc.decode(dec))
            yield CodingProgress(phase, done, n_windows, calls)
        parts.append("".join(chars))
        done += len(group)
        yield CodingProgress(phase, done, n_windows, calls)
    return "".join(parts), calls


# -- 5. the public API -------------------------------------------------------------------
class CompressionCheckError(ValueError):
    """The encoder's own output did not decode back to the input; nothing should be written."""


def _plain_model(model: LoadedModel) -> None:
    if getattr(model, "is_upscale", False):
        raise ValueError(f"compression needs a plain model; {model.name!r} is a depth-upscaling model "
                         "(use the plain model it was grown from, e.g. the default model)")


def _inflate_brotli(payload: bytes, length: int) -> bytes:
    """Inflate a brotli block that the header says holds ``length`` bytes, never holding more than
    about ``length`` + BROTLI_CHUNK bytes: a block that inflates past the promise stops there."""
    d = brotli.Decompressor()
    out = bytearray()
    data = payload
    try:
        while True:
            piece = d.process(data, output_buffer_limit=min(BROTLI_CHUNK, max(length + 1 - len(out), 1)))
            data = b""
            out += piece
            if len(out) > length:
                raise CompressedFileError(f"corrupted file (the brotli block holds more than the {length} bytes "
                                          "the header promises)")
            if d.is_finished():
                break
            if not piece and d.can_accept_more_data():
                raise CompressedFileError("corrupted or truncated file (the brotli block ends early)")
    except brotli.error:
        raise CompressedFileError("corrupted or truncated file (the brotli block does not decode)") from None
    if len(out) != length:
        raise CompressedFileError(f"corrupted file ({len(out)} bytes decoded, the header says {length})")
    return bytes(out)


def compress(model: LoadedModel | None, data: bytes, *, steps: int | None = DEFAULT_STEPS, seed: int = 0,
             window: int | None = None, method: str = "auto", batch_rows: int = 16,
             verify: bool = True) -> Iterator[CodingProgress | CodingResult]:
    """Compress ``data``; yields CodingProgress, then one CodingResult.

    method: "auto" (the smallest of model, brotli and stored; model only when
    the data is UTF-8 and a model is given), or force "model", "brotli",
    "stored". steps: K, network calls per full window (1..window; None =
    auto_steps() from the model's L_t table). window:
    characters per window (default the model's block size). batch_rows only
    changes speed, never the output.

    verify: decode the chosen file with the decoder itself (network calls
    included) before returning it, so a file that would not decode is never
    returned. A model-coded file that fails raises CompressionCheckError when
    method is "model"; with "auto" it is dropped for the best classic block
    and the result's ``note`` says so. Off only for benchmarks that decode anyway.
    """
    if method not in CHOICES:
        raise ValueError(f"unknown method {method!r}; choose from {list(CHOICES)}")
    if not 0 <= seed < 1 << 32:
        raise ValueError(f"seed must be between 0 and 2**32 - 1, got {seed}")
    if batch_rows < 1:
        raise ValueError("batch_rows must be at least 1")
    t0 = time.perf_counter()
    data = bytes(data)
    check = crc32(data)
    candidates: list[tuple[bytes, str]] = []
    chars, calls, check_calls, note = None, 0, 0, ""
    try:
        text = data.decode("utf-8")
        chars = len(text)
    except UnicodeDecodeError:
        text = None
    if method == "model":
        if model is None:
            raise ValueError("method 'model' needs a model")
        if text is None:
            raise ValueError("the input is not UTF-8 text, which the model cannot code; use method 'auto'")
    if method in ("auto", "model") and model is not None and text is not None:
        _plain_model(model)
        win = _window_size(model, window)
        if steps is None:
            steps = auto_steps(model.loss_by_known, win)
        if not 1 <= steps <= win:
            raise ValueError(f"steps must be between 1 and the window size {win}, got {steps}")
        payload, calls = yield from _encode_text(model, text, steps=steps, seed=seed, window=win, batch_rows=batch_rows)
        header = Header("model", len(text), check, model_tag(model), seed, steps,
                        0 if win == model.config.block_size else win)
        blob = pack_header(header) + payload
        problem = ""
        if verify:
            try:
                back, check_calls = yield from _decode_text(model, header, payload, batch_windows=GROUP_WINDOWS,
                                                            phase="verify")
                if back != text:
                    problem = "it decodes to different text"
            except CompressedFileError as exc:
                problem = str(exc)
        if not problem:
            candidates.append((blob, "model"))
        elif method == "model":
            raise CompressionCheckError(f"the model-coded file failed its check before writing ({problem}); nothing "
                                        "was written; --method brotli still compresses this input")
        else:
            note = f"the model-coded file failed its check ({problem}); a classic block was used instead"
    if method in ("auto", "brotli"):
        packed = brotli.compress(data, quality=11)
        if verify and _inflate_brotli(packed, len(data)) != data:
            raise CompressionCheckError("the brotli block failed its check before writing; nothing was written")
        candidates.append((pack_header(Header("brotli", len(data), check)) + packed, "brotli"))
    if method in ("auto", "stored"):
        candidates.append((pack_header(Header("stored", len(data), check)) + data, "stored"))
    blob, chosen = min(candidates, key=lambda c: len(c[0]))  # ties keep the earlier: model, brotli, stored
    yield CodingResult(blob, chosen, len(data), len(blob), chars, calls, time.perf_counter() - t0, note, check_calls)


def decompress(model: LoadedModel | None, blob: bytes, *, batch_windows: int = 16) -> Iterator[CodingProgress | CodingResult]:
    """Decompress ``blob``; yields CodingProgress, then one CodingResult with the original bytes.

    Raises CompressedFileError (a ValueError) for a file that is not ours,
    damaged, truncated, or whose checksum does not match, and
    ModelMismatchError when it was made with another model. ``model`` may be
    None for files stored without the model. batch_windows only changes speed.
    Every length the header promises is a limit: decoding stops at the first
    byte or character past it.
    """
    if batch_windows < 1:
        raise ValueError("batch_windows must be at least 1")
    t0 = time.perf_counter()
    blob = bytes(blob)
    header, offset = read_header(blob)
    payload = blob[offset:]
    calls, chars = 0, None
    if header.method == "stored":
        data = payload
        if len(data) != header.length:
            raise CompressedFileError(f"truncated or corrupted file ({len(data)} stored bytes, the header says {header.length})")
    elif header.method == "brotli":
        data = _inflate_brotli(payload, header.length)
    else:
        if model is None:
            raise ValueError("this file was compressed with a model; give the model to decompress it")
        _plain_model(model)
        tag = model_tag(model, header.version)
        if tag != header.fingerprint:
            raise ModelMismatchError(
                f"this file was compressed with a different model (its model tag is {header.fingerprint.hex()}, "
                f"model {model.name!r} has {tag.hex()}: other weights, architecture, vocabulary or L_t table); "
                "use the same model to decompress" + shipped_model_hint(header.fingerprint, header.version))
        text, calls = yield from _decode_text(model, header, payload, batch_windows=batch_windows)
        data, chars = text.encode("utf-8", "surrogatepass"), len(text)
    if crc32(data) != header.crc32:
        raise CompressedFileError("checksum mismatch: the file is corrupted or truncated (nothing was written)")
    yield CodingResult(data, header.method, len(data), len(blob), chars, calls, time.perf_counter() - t0)


def _last(events: Iterator) -> CodingResult:
    result = None
    for ev in events:
        result = ev
    assert isinstance(result, CodingResult)
    return result


def compress_bytes(model: LoadedModel | None, data: bytes, *, steps: int | None = DEFAULT_STEPS, **options) -> bytes:
    """The compressed file for ``data`` (see compress() for options)."""
    return _last(compress(model, data, steps=steps, **options)).data


def decompress_bytes(model: LoadedModel | None, blob: bytes, **options) -> bytes:
    """The original bytes of a compressed file (see decompress())."""
    return _last(decompress(model, blob, **options)).data


__all__ = [
    "DEFAULT_STEPS", "CodingProgress", "CodingResult", "CompressedFileError", "ModelMismatchError", "CompressionCheckError",
    "compress", "decompress", "compress_bytes", "decompress_bytes", "quantised_weights", "window_order",
    "step_sizes", "auto_steps", "model_tag", "probability_net", "read_header",
]
