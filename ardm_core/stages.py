"""Stage maps for depth upscaling (paper section 4, ARDM_NOTES "Depth upscaling").

A stage map sends every character to a coarse class at each stage; each stage
refines the one before it and the last stage is the identity (the character
itself). The default map has two stages: first a class (space, newline,
lower-case vowel or consonant, upper-case vowel or consonant, digit,
punctuation kinds, other), then the exact character.

A map is JSON (``stages.json`` style)::

    {"stages": [{"name": "class", "classes": [
        {"name": "space", "glyph": "·", "chars": " "},
        ...
        {"name": "other", "glyph": "¤", "rest": true}]}]}

Only the coarse stages are listed; the identity stage is implied. In each
stage every vocabulary character must land in exactly one class: list it in
``chars``, or leave it to the one class marked ``"rest": true`` (which also
holds ``<unk>``). Characters a map lists that the vocabulary lacks are
ignored, so one map serves several vocabularies.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .fileio import DataError, read_limited

LOWER_VOWELS = "aeiouàáâäèéêëìíîïòóôöùúûü"
UPPER_VOWELS = LOWER_VOWELS.upper()

# (name, glyph, colour, membership test); the last is the rest class
DEFAULT_CLASSES: list[tuple[str, str, str, str | None]] = [
    ("space", "·", "#9e9e9e", " "),  # one member: deciding the class decides the character
    ("newline", "¶", "#616161", "\n"),
    ("vowel", "ₒ", "#e53935", LOWER_VOWELS),
    ("consonant", "ₓ", "#1e88e5", None),  # lower-case letters that are not vowels
    ("Vowel", "O", "#b71c1c", UPPER_VOWELS),
    ("Consonant", "X", "#0d47a1", None),  # upper-case letters that are not vowels
    ("digit", "#", "#8e24aa", "0123456789"),
    ("stop", "◆", "#2e7d32", ".!?"),
    ("pause", "◇", "#66bb6a", ",;:"),
    ("quote", "❞", "#ef6c00", "'\"`‘’“”"),
    ("dash", "‒", "#6d4c41", "-–—()[]{}"),
    ("other", "¤", "#546e7a", None),  # rest: everything else, <unk> included
]


def default_map_spec(chars: list[str]) -> dict:
    """The default two-stage map for a vocabulary's characters (id order; id 0 is <unk>)."""
    classes = []
    listed: set[str] = set()
    for name, glyph, colour, members in DEFAULT_CLASSES:
        if name == "consonant":
            members = "".join(c for c in chars if c.isalpha() and c.islower() and c not in LOWER_VOWELS)
        elif name == "Consonant":
            members = "".join(c for c in chars if c.isalpha() and c.isupper() and c not in UPPER_VOWELS)
        entry: dict = {"name": name, "glyph": glyph, "colour": colour}
        if members is None:
            entry["rest"] = True
        else:
            entry["chars"] = "".join(c for c in members if c not in listed)
            listed.update(members)
        classes.append(entry)
    return {"stages": [{"name": "class", "classes": classes}]}


@dataclass(frozen=True)
class StageClass:
    name: str
    glyph: str
    colour: str


class StageMap:
    """Validated map from character ids to classes at every stage.

    Stages are numbered 0..S-1; stage S-1 is the identity. ``assign[s]`` is
    (V,) class index per character id, ``parent[s]`` is (K_s,) the stage s-1
    class of each stage-s symbol (all 0 at stage 0), ``predictable[s]`` marks
    symbols with at least one character other than <unk> below them.
    """

    def __init__(self, spec: dict, chars: list[str]):
        if not isinstance(spec, dict) or not isinstance(spec.get("stages"), list) or not spec["stages"]:
            raise DataError('a stage map needs {"stages": [{"name": ..., "classes": [...]}, ...]} with at least one coarse stage')
        self.spec = spec
        self.chars = list(chars)
        V = len(chars)
        index = {c: i for i, c in enumerate(chars) if i}
        self.stage_names: list[str] = []
        self.classes: list[list[StageClass]] = []
        self.assign: list[np.ndarray] = []
        for si, stage in enumerate(spec["stages"]):
            sname = stage.get("name", f"stage {si + 1}") if isinstance(stage, dict) else None
            if sname is not None and not isinstance(sname, str):
                raise DataError(f"stage map: stage {si + 1}: \"name\" must be a string")
            classes = stage.get("classes") if isinstance(stage, dict) else None
            if not isinstance(classes, list) or not classes:
                raise DataError(f"stage map: stage {si + 1} needs a non-empty list of classes")
            where = np.full(V, -1, dtype=np.int64)
            rest = [j for j, c in enumerate(classes) if isinstance(c, dict) and c.get("rest")]
            if len(rest) != 1:
                raise DataError(f"stage map: stage {si + 1} ({sname}) needs exactly one class with \"rest\": true (it holds <unk> and unlisted characters), found {len(rest)}")
            out_classes = []
            for j, c in enumerate(classes):
                if not isinstance(c, dict) or not isinstance(c.get("name"), str):
                    raise DataError(f"stage map: stage {si + 1}, class {j + 1} needs a \"name\"")
                for key in ("chars", "glyph", "colour"):
                    if key in c and not isinstance(c[key], str):
                        raise DataError(f"stage map: stage {si + 1}, class {c['name']!r}: \"{key}\" must be a string")
                for ch in c.get("chars", ""):
                    i = index.get(ch)
                    if i is None:
                        continue  # not in this vocabulary
                    if where[i] >= 0 and where[i] != j:
                        raise DataError(f"stage map: stage {si + 1}: {ch!r} is in both {classes[where[i]]['name']!r} and {c['name']!r}; every character belongs to exactly one class")
                    where[i] = j
                glyph = c.get("glyph") or c["name"][:1]
                out_classes.append(StageClass(c["name"], glyph, c.get("colour", "#757575")))
            where[where < 0] = rest[0]  # <unk> (id 0) and everything unlisted
            self.stage_names.append(sname)
            self.classes.append(out_classes)
            self.assign.append(where)
        self.stage_names.append("character")
        self.classes.append([StageClass(c or "<unk>", c or "?", "#000000") for c in chars])
        self.assign.append(np.arange(V, dtype=np.int64))
        self.S = len(self.assign)
        self.sizes = [len(c) for c in self.classes]
        # nesting: each symbol of stage s lies inside one class of stage s-1
        self.parent: list[np.ndarray] = [np.zeros(self.sizes[0], dtype=np.int64)]
        for s in range(1, self.S):
            par = np.full(self.sizes[s], -1, dtype=np.int64)
            for i in range(V):
                a, b = self.assign[s][i], self.assign[s - 1][i]
                if par[a] >= 0 and par[a] != b:
                    raise DataError(
                        f"stage map: stage {s + 1} class {self.classes[s][a].name!r} spans two classes of stage {s} "
                        f"({self.classes[s - 1][par[a]].name!r} and {self.classes[s - 1][b].name!r}); each stage must refine the one before")
                par[a] = b
            self.parent.append(par)
        pred = np.ones(V, dtype=bool)
        pred[0] = False  # <unk> is never generated
        self.predictable: list[np.ndarray] = []
        for s in range(self.S):
            p = np.zeros(self.sizes[s], dtype=bool)
            p[self.assign[s][pred]] = True
            self.predictable.append(p)

    # -- tokens: characters 0..V-1, [MASK] = V, then the coarse stages' symbols -----------------
    @property
    def V(self) -> int:
        return len(self.chars)

    @property
    def n_class_tokens(self) -> int:
        return sum(self.sizes[:-1])

    def token_offset(self, s: int) -> int:
        """Input token of stage-s symbol j is ``token_offset(s) + j``."""
        if s == self.S - 1:
            return 0
        return self.V + 1 + sum(self.sizes[:s])

    def output_slice(self, s: int) -> slice:
        """Where stage s's scores sit in the network's output (characters first, then classes)."""
        if s == self.S - 1:
            return slice(0, self.V)
        start = self.V + sum(self.sizes[:s])
        return slice(start, start + self.sizes[s])

    def symbols(self, ids: np.ndarray, s: int) -> np.ndarray:
        """Stage-s symbol index of each character id."""
        return self.assign[s][ids]

    def tokens(self, ids: np.ndarray, s: int) -> np.ndarray:
        """Input tokens showing characters ``ids`` at stage s (s = -1: [MASK])."""
        if s < 0:
            return np.full_like(ids, self.V)
        return self.assign[s][ids] + self.token_offset(s)

    def allowed_table(self, s: int) -> np.ndarray:
        """(n_tokens, K_s) bool: stage-s symbols a position may take given its input token.

        An undecided position shows [MASK] (stage 0) or its stage s-1 class; it may
        become any predictable child of that class. Other tokens are not
        predicted; they get every predictable symbol so rows stay finite.
        """
        n_tok = self.V + 1 + self.n_class_tokens
        table = np.tile(self.predictable[s], (n_tok, 1))
        if s > 0:
            off = self.token_offset(s - 1)
            for j in range(self.sizes[s - 1]):
                table[off + j] = (self.parent[s] == j) & self.predictable[s]
        return table

    def to_json(self) -> dict:
        return self.spec


def load_stage_map(spec_or_path: str | os.PathLike | dict | None, chars: list[str]) -> StageMap:
    """``None`` or ``"default"``: the default map; a dict; or a JSON file's path."""
    if spec_or_path is None or spec_or_path == "default":
        return StageMap(default_map_spec(chars), chars)
    if isinstance(spec_or_path, dict):
        return StageMap(spec_or_path, chars)
    from .config_check import MAX_CONFIG_BYTES, parse_json

    path = Path(spec_or_path)
    try:
        spec = parse_json(read_limited(path, MAX_CONFIG_BYTES, "stage map"))
    except DataError:
        raise
    except ValueError as exc:  # not JSON, not UTF-8, nested too deep
        raise DataError(f"{path}: {exc}") from None
    return StageMap(spec, chars)


__all__ = ["StageMap", "StageClass", "default_map_spec", "load_stage_map", "DEFAULT_CLASSES"]
