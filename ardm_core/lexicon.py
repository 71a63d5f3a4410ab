"""Real words only: a lexicon with word frequencies, and the exact constraint it puts on a fill.

A *word* is a maximal run of letters (``str.isalpha``); apostrophes, hyphens
and digits separate words, so "don't" is the two words "don" and "t". The
lexicon holds lower-case words with their counts in the training corpus, plus
a small bigram table over token types (a word, or one non-letter character),
also counted in the corpus. A word may be written lower case, Title case or
UPPER case; other mixes are not words.

The constraint. The characters of a document split at known non-letters into
*regions*: maximal runs of positions that are masked or known letters. A
region that holds a masked position is constrained: once filled, every letter
run in it must be a lexicon word. (So a fill can neither put a non-word in a
gap nor split a known word into non-words, and a region may hold several words
with spaces and punctuation between them.) For the current partly filled text,
``RegionPrior`` computes exactly which characters each masked position may take
so that at least one completion of its region satisfies this: a forward and a
backward pass over the region whose states are the type of the last token, and
whose word steps are the lexicon words that match the known letters of a span.

The weighting. The same passes, run with probabilities instead of booleans,
give each masked position's marginal under a token prior: words drawn from
their corpus frequencies, token types from the bigram table (so a space is
usually followed by a word, rarely by another space). The decoder multiplies
the network's character probabilities by the prior marginal raised to
``prior_weight`` (a product of experts) and renormalises over the allowed
characters. Case is left to the network: a capital and a small letter get the
same prior mass.

Where a region's known letters leave no completion at all (they already spell
a non-word that no fill can repair), the region is reported and filled
unconstrained.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

FORMAT = "ardm-lexicon"
FORMAT_VERSION = 1
MAX_WORD_LEN = 24  # longer runs are not kept (and cannot be filled under the constraint)
MAX_WORDS = 500_000  # a lexicon file with more words is refused before allocating
MAX_FILE_BYTES = 20_000_000  # compressed size limit of a lexicon file
MAX_TEXT_BYTES = 80_000_000  # decompressed size limit
BOUNDARY = "\n"  # the token type before the first and after the last character of a document
WORD_RE = re.compile(r"[^\W\d_]+")  # a maximal run of letters


MAX_LEXICON_BYTES = 64 << 20  # the shipped lexicon is about 110 KB


class LexiconError(ValueError):
    """A lexicon file is missing, unreadable or damaged."""


def default_lexicon_path() -> Path:
    from .paths import ASSETS

    return ASSETS / "lexicon" / "words.tsv.gz"


def _lower(c: str) -> str:
    lo = c.lower()
    return lo if len(lo) == 1 else c


# -- building --------------------------------------------------------------------------------------
def count_tokens(text: str) -> tuple[Counter, Counter]:
    """(word counts, token-type bigram counts) of ``text``; words lower-cased, types "W" or the character."""
    words: Counter = Counter()
    bigrams: Counter = Counter()
    prev = BOUNDARY
    pos = 0
    for m in WORD_RE.finditer(text):
        for c in text[pos:m.start()]:
            bigrams[(prev, c)] += 1
            prev = c
        words[m.group().lower()] += 1
        bigrams[(prev, "W")] += 1
        prev = "W"
        pos = m.end()
    for c in text[pos:]:
        bigrams[(prev, c)] += 1
        prev = c
    bigrams[(prev, BOUNDARY)] += 1
    return words, bigrams


def build_lexicon_bytes(text: str, *, min_count: int = 2, source: str = "") -> bytes:
    """The gzip'd lexicon file for ``text``: reproducible (fixed gzip mtime, sorted lines)."""
    words, bigrams = count_tokens(text)
    kept = sorted(((w, c) for w, c in words.items() if c >= min_count and len(w) <= MAX_WORD_LEN),
                  key=lambda wc: (-wc[1], wc[0]))
    types = ["W"] + sorted({t for pair in bigrams for t in pair if t != "W"})
    index = {t: i for i, t in enumerate(types)}
    mat = [[0] * len(types) for _ in types]
    for (a, b), c in bigrams.items():
        mat[index[a]][index[b]] += c
    header = {"format": FORMAT, "version": FORMAT_VERSION, "source": source, "min_count": min_count,
              "max_word_len": MAX_WORD_LEN, "words": len(kept), "corpus_words": sum(words.values()),
              "types": types, "bigrams": mat}
    lines = [json.dumps(header, ensure_ascii=True)] + [f"{w}\t{c}" for w, c in kept]
    return gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), compresslevel=9, mtime=0)


# -- the lexicon -----------------------------------------------------------------------------------
@dataclass(eq=False)
class Lexicon:
    """Lower-case words with counts, and the token-type bigram counts.

    ``counts`` maps word -> count; ``types`` lists the token types ("W" first,
    then non-letter characters); ``bigrams[i][j]`` counts type i followed by j.
    """

    counts: dict[str, int]
    types: list[str]
    bigrams: np.ndarray  # (K, K) counts
    source: str = ""
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        letters = sorted({c for w in self.counts for c in w})
        self.alphabet = "".join(letters)
        self._letter = {c: i for i, c in enumerate(letters)}
        total = float(sum(self.counts.values())) or 1.0
        by_len: dict[int, list[tuple[str, int]]] = {}
        for w, c in self.counts.items():
            by_len.setdefault(len(w), []).append((w, c))
        self.max_len = max(by_len, default=0)
        self._words: dict[int, np.ndarray] = {}  # L -> (n_L, L) letter indices
        self._logf: dict[int, np.ndarray] = {}  # L -> (n_L,) log frequency
        for L, items in by_len.items():
            self._words[L] = np.array([[self._letter[ch] for ch in w] for w, _ in items], dtype=np.int16).reshape(len(items), L)
            self._logf[L] = np.log(np.array([c for _, c in items], dtype=np.float64) / total)
        # type bigrams with add-one smoothing (every transition possible except word -> word)
        b = np.asarray(self.bigrams, dtype=np.float64) + 1.0
        b[0, 0] = 0.0
        with np.errstate(divide="ignore"):
            self.log_trans = np.log(b / b.sum(axis=1, keepdims=True))  # (K, K)
        self._type = {t: i for i, t in enumerate(self.types)}
        self._other = self._type.get("\ufffd", None)

    def __len__(self) -> int:
        return len(self.counts)

    def __contains__(self, word: str) -> bool:
        return self.is_word(word)

    def type_of(self, c: str) -> int:
        """Token type index of a non-letter character (a rare one shares the type of the least common)."""
        t = self._type.get(c)
        if t is not None:
            return t
        return self._rare_type

    @property
    def _rare_type(self) -> int:
        r = getattr(self, "_rare", None)
        if r is None:
            col = np.asarray(self.bigrams, dtype=np.float64).sum(axis=0)
            col[0] = np.inf
            r = self._rare = int(np.argmin(col))
        return r

    def is_word(self, run: str) -> bool:
        """True when ``run`` (letters) is a lexicon word written lower, Title or UPPER case."""
        if not run or run.lower() not in self.counts:
            return False
        return run.islower() or run.isupper() or (run[0].isupper() and (len(run) == 1 or run[1:].islower())) \
            or not any(c.isupper() or c.islower() for c in run)

    def with_words(self, words: Iterable[str], weight: int = 1) -> "Lexicon":
        """A lexicon that also holds ``words`` (each occurrence adds ``weight`` to its count)."""
        extra = Counter(w.lower() for w in words if 0 < len(w) <= MAX_WORD_LEN)
        if not extra:
            return self
        key = ("with", weight, tuple(sorted(extra.items())))
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        counts = dict(self.counts)
        for w, c in extra.items():
            counts[w] = counts.get(w, 0) + weight * c
        out = self._cache[key] = Lexicon(counts, self.types, self.bigrams, self.source)
        return out

    # -- spans ----------------------------------------------------------------------------------
    def span(self, pattern: tuple[int, ...]) -> tuple[float, np.ndarray] | None:
        """Words matching ``pattern`` (letter index per offset, -1 = free): (log total frequency, (L, A) log mass
        per offset and letter), or None when none matches."""
        hit = self._cache.get(pattern)
        if hit is not None or pattern in self._cache:
            return hit
        L = len(pattern)
        words = self._words.get(L)
        out = None
        if words is not None:
            sel = np.ones(len(words), dtype=bool)
            for k, a in enumerate(pattern):
                if a >= 0:
                    sel &= words[:, k] == a
            idx = np.flatnonzero(sel)
            if len(idx):
                lf = self._logf[L][idx]
                mx = lf.max()
                w = np.exp(lf - mx)
                A = len(self.alphabet)
                mass = np.empty((L, A))
                ws = words[idx]
                for k in range(L):
                    mass[k] = np.bincount(ws[:, k], weights=w, minlength=A)
                with np.errstate(divide="ignore"):
                    out = (float(mx + math.log(w.sum())), np.log(mass) + mx)
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[pattern] = out
        return out

    def letter_index(self, c: str) -> int:
        """Index of the lower case of letter ``c`` in the alphabet; -1 if no lexicon word uses it."""
        return self._letter.get(_lower(c), -1)


def parse_lexicon(data: bytes, name: str = "lexicon") -> Lexicon:
    """Validate and read a lexicon file's bytes (gzip'd); LexiconError names the problem."""
    if len(data) > MAX_FILE_BYTES:
        raise LexiconError(f"{name}: lexicon file is too large ({len(data)} bytes; limit {MAX_FILE_BYTES})")
    try:
        with gzip.GzipFile(fileobj=__import__("io").BytesIO(data)) as f:
            raw = f.read(MAX_TEXT_BYTES + 1)
    except (OSError, EOFError, ValueError) as exc:
        raise LexiconError(f"{name}: not a gzip'd lexicon file ({exc})") from None
    if len(raw) > MAX_TEXT_BYTES:
        raise LexiconError(f"{name}: lexicon text is too large (over {MAX_TEXT_BYTES} bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise LexiconError(f"{name}: lexicon is not UTF-8 text") from None
    lines = text.split("\n")
    try:
        header = json.loads(lines[0])
    except json.JSONDecodeError:
        raise LexiconError(f"{name}: the first line is not a JSON header") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("version") != FORMAT_VERSION:
        raise LexiconError(f"{name}: not an {FORMAT} version {FORMAT_VERSION} file")
    types, mat = header.get("types"), header.get("bigrams")
    if (not isinstance(types, list) or not 2 <= len(types) <= 4096 or types[0] != "W"
            or not all(isinstance(t, str) and len(t) == 1 and not t.isalpha() for t in types[1:])
            or len(set(types)) != len(types) or BOUNDARY not in types):
        raise LexiconError(f"{name}: header 'types' must be 'W' then distinct non-letter characters, including a newline")
    K = len(types)
    if (not isinstance(mat, list) or len(mat) != K
            or not all(isinstance(r, list) and len(r) == K and all(isinstance(v, int) and 0 <= v < 2**62 for v in r) for r in mat)):
        raise LexiconError(f"{name}: header 'bigrams' must be a {K}x{K} table of non-negative integers")
    body = [ln for ln in lines[1:] if ln]
    if not body:
        raise LexiconError(f"{name}: the lexicon holds no words")
    if len(body) > MAX_WORDS:
        raise LexiconError(f"{name}: too many words ({len(body)}; limit {MAX_WORDS})")
    counts: dict[str, int] = {}
    for n, ln in enumerate(body, start=2):
        word, sep, cnt = ln.partition("\t")
        if (not sep or not word or len(word) > MAX_WORD_LEN or not word.isalpha() or word != word.lower()
                or not cnt.isdigit() or not 0 < int(cnt) < 2**62 or word in counts):
            raise LexiconError(f"{name}: line {n} is not 'word<TAB>count' (a new lower-case word of letters, a positive count)")
        counts[word] = int(cnt)
    src = header.get("source", "")
    return Lexicon(counts, types, np.asarray(mat, dtype=np.int64), src if isinstance(src, str) else "")


def load_lexicon(path: str | Path | None = None) -> Lexicon:
    """Read a lexicon file (default: the shipped one); LexiconError if it is missing or damaged."""
    from .fileio import DataError, read_limited

    path = Path(path) if path is not None else default_lexicon_path()
    try:
        data = read_limited(path, MAX_LEXICON_BYTES, "lexicon")  # a regular file of bounded size (not /dev/zero)
    except DataError as exc:
        if not path.exists():
            raise LexiconError(f"{path}: lexicon file is missing (build it with scripts/build_lexicon.py)") from None
        raise LexiconError(str(exc)) from None
    return parse_lexicon(data, str(path))


_SHIPPED: Lexicon | None = None


def shipped_lexicon() -> Lexicon:
    """The shipped lexicon, read once per process."""
    global _SHIPPED
    if _SHIPPED is None:
        _SHIPPED = load_lexicon()
    return _SHIPPED


def document_words(text: str, masked: Sequence[int] | np.ndarray = ()) -> list[str]:
    """Letter runs of ``text`` that touch no masked position (the words a writer already wrote)."""
    hole = np.zeros(len(text) + 1, dtype=bool)
    if len(masked):
        hole[np.asarray(masked, dtype=np.int64)] = True
    cum = np.concatenate([[0], np.cumsum(hole)])
    out = []
    for m in WORD_RE.finditer(text):
        a, b = m.start(), m.end()
        if cum[b] == cum[a] and not (a > 0 and hole[a - 1]) and not hole[b]:
            out.append(m.group())
    return out


# -- the constraint --------------------------------------------------------------------------------
_ALL_CASES = {L: np.ones((L, 2), dtype=bool) for L in range(1, MAX_WORD_LEN + 1)}


def _lse(x: np.ndarray, axis=None) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out.squeeze(axis) if axis is not None else out.reshape(())


@dataclass
class RegionResult:
    start: int  # document position of the region's first character
    end: int  # one past its last
    log_z: float  # log prior mass of all completions; -inf: no lexicon completion (unsatisfiable)
    logq: dict[int, np.ndarray]  # masked position -> (V,) log prior marginal per vocabulary id, -inf = not allowed


class RegionPrior:
    """Allowed characters and prior marginals for the masked positions of a partly filled document.

    ``chars``: one entry per document character, None where still masked.
    ``vocab_chars``: the model's characters by id (id 0, ``<unk>``, is never allowed).
    Call ``fill(position, char)`` as positions are written; results are
    recomputed only for the region that changed.
    """

    def __init__(self, lexicon: Lexicon, vocab_chars: Sequence[str], chars: Sequence[str | None]):
        self.lex = lexicon
        self.chars: list[str | None] = list(chars)
        V = len(vocab_chars)
        self.V = V
        # per vocabulary id: letter index (-1: not a lexicon letter), case (0 lower, 1 upper, 2 caseless), type
        self._vletter = np.full(V, -1, dtype=np.int64)
        self._vcase = np.full(V, 2, dtype=np.int64)
        self._vtype = np.full(V, -1, dtype=np.int64)  # token type of a non-letter id; -1 for letters and <unk>
        for i, c in enumerate(vocab_chars):
            if i == 0 or not c:
                continue
            if c.isalpha():
                self._vletter[i] = lexicon.letter_index(c)
                self._vcase[i] = 1 if c.isupper() else 0 if c.islower() else 2
            else:
                self._vtype[i] = lexicon.type_of(c)
        self._nonletter_types = np.unique(self._vtype[self._vtype >= 0])
        self._cache: dict[tuple, RegionResult] = {}

    # -- regions ---------------------------------------------------------------------------------
    def _is_part(self, p: int) -> bool:
        c = self.chars[p]
        return c is None or c.isalpha()

    def region_of(self, p: int) -> tuple[int, int]:
        a = p
        while a > 0 and self._is_part(a - 1):
            a -= 1
        b = p + 1
        n = len(self.chars)
        while b < n and self._is_part(b):
            b += 1
        return a, b

    def fill(self, p: int, c: str) -> None:
        self.chars[p] = c

    def result(self, p: int) -> RegionResult:
        """The region holding masked position ``p``, with every masked position's allowed set and marginal."""
        a, b = self.region_of(p)
        key = (a, b, tuple(self.chars[a:b]))
        hit = self._cache.get(key)
        if hit is None:
            if len(self._cache) > 256:
                self._cache.clear()
            hit = self._cache[key] = self._solve(a, b)
        return hit

    def unsatisfiable_regions(self) -> list[tuple[int, int]]:
        """(start, end) of every region with a masked position that no lexicon fill can satisfy."""
        out, seen = [], set()
        for p, c in enumerate(self.chars):
            if c is None:
                a, b = self.region_of(p)
                if (a, b) not in seen:
                    seen.add((a, b))
                    if not np.isfinite(self.result(p).log_z):
                        out.append((a, b))
        return out

    # -- the forward and backward passes ---------------------------------------------------------
    def _edge_type(self, p: int) -> int:
        if p < 0 or p >= len(self.chars):
            return self.lex.type_of(BOUNDARY)
        return self.lex.type_of(self.chars[p])  # a known non-letter (regions end at one)

    def _solve(self, a: int, b: int) -> RegionResult:
        lex, T = self.lex, self.lex.log_trans
        K = T.shape[0]
        seg = self.chars[a:b]
        m = len(seg)
        masked = np.array([c is None for c in seg])
        letter = np.array([-1 if c is None else lex.letter_index(c) for c in seg], dtype=np.int64)
        case = np.array([2 if c is None else (1 if c.isupper() else 0 if c.islower() else 2) for c in seg], dtype=np.int64)
        prev, nxt = self._edge_type(a - 1), self._edge_type(b)
        nl = self._nonletter_types  # non-letter types a masked position may take
        Lmax = min(lex.max_len, m)
        # spans [i, i+L): (log W, (L, A) letter mass, (L, 2) allowed cases) or None
        spans: dict[tuple[int, int], tuple] = {}
        for i in range(m):
            for L in range(1, min(Lmax, m - i) + 1):
                k = i + L
                if (letter[i:k][~masked[i:k]] < 0).any():  # a known letter no lexicon word uses
                    break
                sp = lex.span(tuple(int(x) for x in letter[i:k]))
                if sp is None:
                    continue
                cs = case[i:k]
                if (cs == 2).all():
                    spans[(i, k)] = (sp[0], sp[1], _ALL_CASES[L])
                    continue
                known = cs[cs < 2]
                offs = np.flatnonzero(cs < 2)
                low_ok = not (known == 1).any()
                up_ok = not (known == 0).any()
                title_ok = all((c == 1) == (o == 0) for c, o in zip(known.tolist(), offs.tolist()))
                if not (low_ok or up_ok or title_ok):
                    continue
                cases = np.zeros((L, 2), dtype=bool)
                cases[:, 0] = low_ok
                cases[:, 1] = up_ok
                if title_ok:
                    cases[0, 1] = True
                    cases[1:, 0] = True
                spans[(i, k)] = (sp[0], sp[1], cases)
        ninf = -np.inf
        alpha = np.full((m + 1, K), ninf)
        alpha[0, prev] = 0.0
        to_word = np.full(m + 1, ninf)  # log mass of prefixes [0, i) followed by a word starting at i
        ends: dict[int, list[tuple[int, float]]] = {}
        for (i, k), sp in spans.items():
            ends.setdefault(k, []).append((i, sp[0]))
        for j in range(m + 1):
            arr = ends.get(j)
            if arr:
                alpha[j, 0] = _lse(np.array([to_word[i] + lw for i, lw in arr]))
            to_word[j] = _lse(alpha[j] + T[:, 0])
            if j < m and masked[j]:
                alpha[j + 1, nl] = _lse(alpha[j][:, None] + T[:, nl], axis=0)
        log_z = float(_lse(alpha[m] + T[:, nxt]))
        logq: dict[int, np.ndarray] = {}
        if not np.isfinite(log_z):
            return RegionResult(a, b, log_z, logq)
        beta = np.full((m + 1, K), ninf)
        beta[m] = T[:, nxt]
        starts: dict[int, list[tuple[int, float]]] = {}
        for (i, k), sp in spans.items():
            starts.setdefault(i, []).append((k, sp[0]))
        from_word = np.full(m + 1, ninf)  # log mass of suffixes whose first word is [j, k), word included
        for j in range(m - 1, -1, -1):
            if masked[j]:
                beta[j] = _lse(T[:, nl] + beta[j + 1, nl][None, :], axis=1)
            arr = starts.get(j)
            if arr:
                from_word[j] = _lse(np.array([lw + beta[k, 0] for k, lw in arr]))
                beta[j] = np.logaddexp(beta[j], T[:, 0] + from_word[j])
        # marginals per masked position: letters through every span that covers it, non-letters directly.
        # Probabilities are summed in the linear domain (each term is at most 1); whether a letter is
        # allowed at all is tracked separately, so a completion too unlikely to show in a float still counts.
        A = len(lex.alphabet)
        prob = np.zeros((2, m, A))  # [lower, upper]
        rare = np.zeros((2, m, A), dtype=bool)  # allowed, though too unlikely to show in a float
        for (i, k), (lw, mass, cases) in spans.items():
            base = to_word[i] + beta[k, 0] - log_z
            if not np.isfinite(base):
                continue
            pr = np.exp(mass + base)  # (L, A); a word's log frequency is above -30, so this underflows only if base < -700
            for c in (0, 1):
                cc = cases[:, c]
                if cc.all():
                    prob[c, i:k] += pr
                    if base < -600:
                        rare[c, i:k] |= np.isfinite(mass)
                elif cc.any():
                    prob[c, i:k] += pr * cc[:, None]
                    if base < -600:
                        rare[c, i:k] |= np.isfinite(mass) & cc[:, None]
        ok = (prob > 0) | rare
        with np.errstate(divide="ignore"):
            let_all = np.where(ok, np.log(np.maximum(prob, 1e-300)), ninf).transpose(1, 2, 0)  # (m, A, 2)
        let = {p: let_all[p] for p in np.flatnonzero(masked).tolist()}
        vl, vc, vt = self._vletter, self._vcase, self._vtype
        is_letter = vl >= 0
        for p, lm in let.items():
            q = np.full(self.V, ninf)
            # a letter id: its lower-case letter's mass under its own case (caseless letters: either case)
            lm2 = np.logaddexp(lm[:, 0], lm[:, 1])
            idx = np.flatnonzero(is_letter)
            q[idx] = np.where(vc[idx] == 2, lm2[vl[idx]], lm[vl[idx], np.minimum(vc[idx], 1)])
            nonl = np.flatnonzero(vt >= 0)
            if len(nonl):
                t = vt[nonl]
                q[nonl] = _lse(alpha[p][:, None] + T[:, t], axis=0) + beta[p + 1, t] - log_z
            logq[a + p] = q
        return RegionResult(a, b, log_z, logq)


@dataclass
class WordsReport:
    """What the constraint did in one fill."""

    unconstrained: list[tuple[int, int]] = field(default_factory=list)  # regions no lexicon fill could satisfy


class WordConstraint:
    """The decoder's hook: adjust one position's log-probabilities, then record the character written.

    ``prior_weight`` is the exponent of the word prior in the product of
    experts (0: the hard constraint alone). Regions that no lexicon fill can
    satisfy are left unconstrained and listed in ``report``.
    """

    def __init__(self, lexicon: Lexicon, vocab_chars: Sequence[str], chars: Sequence[str | None], *, prior_weight: float = 1.0):
        if not (isinstance(prior_weight, (int, float)) and 0.0 <= prior_weight <= 10.0):
            raise ValueError(f"prior_weight must be a number in [0, 10] (got {prior_weight!r})")
        self.prior = RegionPrior(lexicon, vocab_chars, chars)
        self.prior_weight = float(prior_weight)
        self.report = WordsReport()
        self._free: set[tuple[int, int]] = set()
        for reg in self.prior.unsatisfiable_regions():
            self._free.add(reg)
            self.report.unconstrained.append(reg)

    def adjust(self, p: int, logp: np.ndarray) -> tuple[np.ndarray, bool]:
        """Log-probabilities (V,) to sample position ``p`` from, and whether the constraint applied."""
        reg = self.prior.region_of(p)
        if any(a <= reg[0] and reg[1] <= b for a, b in self._free):
            return logp, False
        res = self.prior.result(p)
        q = res.logq.get(p)
        if q is None or not np.isfinite(res.log_z):  # cannot happen after a consistent fill; stay safe
            self._free.add(reg)
            self.report.unconstrained.append(reg)
            return logp, False
        allowed = np.isfinite(q)
        out = np.where(allowed, logp + self.prior_weight * np.where(allowed, q, 0.0), -np.inf)
        out = out - _lse(out)
        return out, True

    def fill(self, p: int, c: str) -> None:
        self.prior.fill(p, c)


@dataclass(frozen=True, eq=False)
class WordsOptions:
    """Real words only, as an option of a decoding session."""

    lexicon: Lexicon
    prior_weight: float = 1.0  # exponent of the word prior in the product of experts; 0 = the hard constraint alone
    document_words: bool = True  # also allow the words of the document being edited (runs that touch no mask)

    def __post_init__(self) -> None:
        if not isinstance(self.lexicon, Lexicon):
            raise ValueError("words.lexicon must be a Lexicon (ardm_core.lexicon.load_lexicon)")
        if not (isinstance(self.prior_weight, (int, float)) and 0.0 <= self.prior_weight <= 10.0):
            raise ValueError(f"prior_weight must be a number in [0, 10] (got {self.prior_weight!r})")

    def lexicon_for(self, text: str, masked) -> Lexicon:
        return self.lexicon.with_words(document_words(text, masked)) if self.document_words else self.lexicon

    def constraint(self, vocab_chars: Sequence[str], text: str, masked) -> "WordConstraint":
        """A fresh constraint for ``text`` with ``masked`` positions still open."""
        chars: list[str | None] = list(text)
        for p in np.asarray(masked, dtype=np.int64).tolist():
            chars[p] = None
        return WordConstraint(self.lexicon_for(text, masked), vocab_chars, chars, prior_weight=self.prior_weight)


def nonwords(text: str, lexicon: Lexicon, positions: Iterable[int]) -> list[str]:
    """Letter runs of ``text`` that touch (contain or border) one of ``positions`` and are not lexicon words."""
    pos = sorted(set(int(p) for p in positions))
    out = []
    for m in WORD_RE.finditer(text):
        a, b = m.start(), m.end()
        i = np.searchsorted(pos, a - 1)
        if i < len(pos) and pos[i] <= b and not lexicon.is_word(m.group()):
            out.append(m.group())
    return out


__all__ = ["Lexicon", "LexiconError", "RegionPrior", "RegionResult", "WordConstraint", "WordsOptions", "WordsReport", "build_lexicon_bytes",
           "count_tokens", "default_lexicon_path", "document_words", "load_lexicon", "nonwords", "parse_lexicon",
           "shipped_lexicon", "WORD_RE"]
