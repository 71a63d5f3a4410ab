"""A fill run as plain data: its input, its options and every step (no Qt).

``StepRecord`` mirrors the engine's ``DecodeStep`` field for field, so a live
run and a run read back from JSON look the same to the widgets. A run file
holds the text with the originals behind the masks, the masked positions, the
order and sampling options and every step, so it can be opened again and
replayed without the model (and resampled with it).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ardm_core.fileio import atomic_write_json

RUN_FORMAT = "ardm-studio-run"
RUN_FORMAT_VERSION = 1
MAX_RUN_FILE_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class StepRecord:
    index: int  # 0-based step number
    positions: tuple[int, ...]  # document positions (Python string indices) filled in this step
    chars: str  # characters written, same order as positions
    probs: tuple[float, ...]  # model probability of each chosen character
    entropy: tuple[float, ...]  # bits, entropy of each position's distribution
    topk: tuple[tuple[tuple[str, float], ...], ...]  # per position: top-5 (char, prob)
    bits: tuple[float, ...]  # -log2 p(chosen) per position
    step_bits: float
    cumulative_bits: float
    network_calls: int
    ms: float
    stage: int = -1  # coarse-to-fine runs: the stage this step decided (0 = classes); -1 for a plain run

    @classmethod
    def from_step(cls, step: Any) -> "StepRecord":
        """Copy an engine ``DecodeStep`` (or anything with the same fields) into plain Python types."""
        return cls(
            index=int(step.index),
            positions=tuple(int(p) for p in step.positions),
            chars=str(step.chars),
            probs=tuple(float(p) for p in step.probs),
            entropy=tuple(float(e) for e in getattr(step, "entropy", ()) or ()),
            topk=tuple(tuple((str(c), float(p)) for c, p in cands) for cands in (getattr(step, "topk", ()) or ())),
            bits=tuple(float(b) for b in step.bits),
            step_bits=float(step.step_bits),
            cumulative_bits=float(step.cumulative_bits),
            network_calls=int(step.network_calls),
            ms=float(step.ms),
            stage=int(getattr(step, "stage", -1)),
        )

    def to_json(self) -> dict:
        d = asdict(self)  # full float precision: a re-opened run is the same run
        d["topk"] = [[[c, p] for c, p in cands] for cands in self.topk]
        return d

    @classmethod
    def from_json(cls, d: dict) -> "StepRecord":
        names = {f.name for f in fields(cls)}
        missing = names - set(d)
        if missing - {"entropy", "topk", "stage"}:
            raise ValueError(f"step is missing {sorted(missing)}")
        return cls(
            index=int(d["index"]),
            positions=tuple(int(p) for p in d["positions"]),
            chars=str(d["chars"]),
            probs=tuple(float(p) for p in d["probs"]),
            entropy=tuple(float(e) for e in d.get("entropy", ())),
            topk=tuple(tuple((str(c), float(p)) for c, p in cands) for cands in d.get("topk", ())),
            bits=tuple(float(b) for b in d["bits"]),
            step_bits=float(d["step_bits"]),
            cumulative_bits=float(d["cumulative_bits"]),
            network_calls=int(d["network_calls"]),
            ms=float(d["ms"]),
            stage=int(d.get("stage", -1)),
        )


@dataclass
class RunOptions:
    order: str = "confidence"
    steps: int | None = None  # budget K; None = one position per step
    explicit: tuple[int, ...] = ()  # hand-picked positions, in pick order
    rest_order: str = "l2r"  # order for the positions not picked by hand
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    upscale: bool = False  # coarse to fine: every masked character's class first (an upscaling model)

    def order_name(self) -> str:
        """The order as people read it ("hand-picked, then l2r", "confidence (coarse to fine)")."""
        name = "hand-picked, then " + self.rest_order if self.order == "explicit" else self.order
        return name + (" (coarse to fine)" if self.upscale else "")


@dataclass
class RunRecord:
    text: str  # the text with the originals at the masked positions
    masked: tuple[int, ...]  # positions to fill, sorted
    options: RunOptions = field(default_factory=RunOptions)
    steps: list[StepRecord] = field(default_factory=list)
    model_name: str = ""
    model_fingerprint: str = ""
    schedule: tuple[int, ...] = ()  # planned characters per step, when a budget was set
    n_stages: int = 1  # coarse-to-fine runs decide every position once per stage

    @property
    def n_masked(self) -> int:
        return len(self.masked)

    def is_final(self, s: StepRecord) -> bool:
        """The step wrote characters (not class glyphs of an earlier stage)."""
        return s.stage < 0 or s.stage >= self.n_stages - 1

    @property
    def filled(self) -> int:
        """Masked positions holding their final character."""
        return sum(len(s.positions) for s in self.steps if self.is_final(s))

    @property
    def done(self) -> bool:
        return self.filled >= self.n_masked

    def truncate(self, n_steps: int) -> None:
        del self.steps[n_steps:]

    def chars_at(self, n_steps: int) -> dict[int, str]:
        """Position -> character after the first ``n_steps`` steps."""
        out: dict[int, str] = {}
        for s in self.steps[:n_steps]:
            out.update(zip(s.positions, s.chars))
        return out

    def result(self) -> str:
        chars = list(self.text)
        for p, c in self.chars_at(len(self.steps)).items():
            chars[p] = c
        return "".join(chars)

    def accuracy(self, n_steps: int | None = None) -> float | None:
        """Fraction of filled characters (final stage) equal to the original behind the mask."""
        n = len(self.steps) if n_steps is None else n_steps
        filled: dict[int, str] = {}
        for s in self.steps[:n]:
            if self.is_final(s):
                filled.update(zip(s.positions, s.chars))
        if not filled:
            return None
        return sum(self.text[p] == c for p, c in filled.items()) / len(filled)

    # -- JSON -------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "format": RUN_FORMAT,
            "format_version": RUN_FORMAT_VERSION,
            "text": self.text,
            "masked": list(self.masked),
            "options": {**asdict(self.options), "explicit": list(self.options.explicit)},
            "model": {"name": self.model_name, "fingerprint": self.model_fingerprint},
            "schedule": list(self.schedule),
            "n_stages": self.n_stages,
            "result": self.result() if self.steps else None,
            "steps": [s.to_json() for s in self.steps],
        }

    @classmethod
    def from_json(cls, d: dict) -> "RunRecord":
        if not isinstance(d, dict) or d.get("format") != RUN_FORMAT:
            raise ValueError(f"not an ARDM Studio run (format must be {RUN_FORMAT!r})")
        if int(d.get("format_version", 0)) > RUN_FORMAT_VERSION:
            raise ValueError("the run was written by a newer ARDM Studio; update the app")
        text = d["text"]
        if not isinstance(text, str) or not isinstance(d["masked"], list):
            raise ValueError("'text' must be a string and 'masked' a list")
        if any(type(p) is not int for p in d["masked"]):
            raise ValueError("masked positions must be integers")
        masked = tuple(sorted(set(d["masked"])))
        if masked and (masked[0] < 0 or masked[-1] >= len(text)):
            raise ValueError("masked positions lie outside the text")
        opt_raw = d.get("options", {})
        known = {f.name for f in fields(RunOptions)}
        opts = RunOptions(**{k: v for k, v in opt_raw.items() if k in known})
        opts.explicit = tuple(int(p) for p in opts.explicit)
        _check_options(opts)
        steps = [StepRecord.from_json(s) for s in d.get("steps", [])]
        mset = set(masked)
        for i, s in enumerate(steps):
            if s.index != i:
                raise ValueError(f"step {i} has index {s.index}; steps must be in order")
            if not set(s.positions) <= mset or len(s.positions) != len(s.chars):
                raise ValueError(f"step {i} fills positions that are not masked")
        model = d.get("model", {}) or {}
        return cls(text=text, masked=masked, options=opts, steps=steps, model_name=str(model.get("name", "")),
                   model_fingerprint=str(model.get("fingerprint", "")),
                   schedule=tuple(int(x) for x in d.get("schedule", ())), n_stages=int(d.get("n_stages", 1)))


def _check_options(o: RunOptions) -> None:
    """Types and ranges of options read from a file (the worker trusts them)."""
    if not isinstance(o.order, str) or not isinstance(o.rest_order, str):
        raise ValueError("the order must be a name")
    if o.steps is not None and (type(o.steps) is not int or o.steps < 1):
        raise ValueError("options.steps must be a positive integer or null")
    for name in ("temperature", "top_p"):
        v = getattr(o, name)
        if type(v) not in (int, float) or not 0 < v <= 100:
            raise ValueError(f"options.{name} must be a positive number")
    if type(o.seed) is not int or not 0 <= o.seed < 2**63 or not isinstance(o.upscale, bool):
        raise ValueError("options.seed must be a non-negative integer and options.upscale true or false")


def save_run(run: RunRecord, path: str | Path) -> None:
    atomic_write_json(Path(path), run.to_json())


def load_run(path: str | Path) -> RunRecord:
    """Read a run file; errors name the file and say what is wrong."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_RUN_FILE_BYTES:
            raise ValueError(f"{path}: larger than {MAX_RUN_FILE_BYTES:,} bytes; not a run this app wrote")
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    try:
        return RunRecord.from_json(raw)
    except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as exc:
        raise ValueError(f"{path}: {exc}") from None
