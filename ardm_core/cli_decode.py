"""``ardm infill``, ``ardm sample`` and ``ardm score``: the decoding engine on the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .paths import default_model_dir, model_dir, upscale_model_dir


def _sampling_arguments(p: argparse.ArgumentParser) -> None:
    from .cli import SEED
    from .orders import order_names

    p.add_argument("--order", default="confidence", help=f"generation order: {', '.join(order_names())} (default: confidence)")
    p.add_argument("--explicit", default=None, help="for --order explicit: comma-separated positions, every masked position once")
    p.add_argument("--steps", type=int, default=None, help="step budget K (default: one character per step)")
    p.add_argument("--planner", default="dp", choices=["dp", "naive"], help="how a budget is split: the paper's DP (default) or equal")
    p.add_argument("--temperature", type=float, default=1.0, help="divide log-probabilities by T (default 1)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass, 1 = off")
    p.add_argument("--top-k", type=int, default=0, help="keep the k likeliest characters, 0 = off")
    p.add_argument("--greedy", action="store_true", help="always take the likeliest character")
    p.add_argument("--seed", type=SEED, default=0, help="same seed, same output")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="auto (default): bf16 matrix products only where the CPU has bfloat16 units and they measured "
                        "faster here (probabilities move by ~0.1%%), else fp32; fp32 or bf16 force either")
    p.add_argument("--upscale", action="store_true",
                   help="coarse to fine: decide every masked character's class (space, vowel, consonant, punctuation, ...) "
                        "first, then the characters, with the shipped upscaling model (or --model if it is one)")
    p.add_argument("--json", action="store_true", help="print the result and every step as JSON")


def _text_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", default=None, help="the text")
    src.add_argument("--file", default=None, help="a UTF-8 text file")


MAX_SAMPLE_LENGTH = 1_000_000  # characters one `ardm sample` generates


def register(sub) -> None:
    from .cli import SEED, int_in, model_argument

    p = sub.add_parser("infill", help="fill the masked characters of a text",
                       description="Fill every MASK-CHAR in the text with the model; other characters are context.")
    model_argument(p)
    _text_arguments(p)
    p.add_argument("--mask-char", default="_", help="the character that marks positions to fill (default: _)")
    _sampling_arguments(p)
    from . import cli_fill

    cli_fill.add_arguments(p)
    p.set_defaults(func=cmd_infill)

    s = sub.add_parser("sample", help="generate text from nothing (every position masked)")
    model_argument(s)
    s.add_argument("--length", type=int_in(1, MAX_SAMPLE_LENGTH), required=True, help="characters to generate")
    _sampling_arguments(s)
    s.set_defaults(func=cmd_sample)

    c = sub.add_parser("score", help="bits of a text's masked characters under an order",
                       description="Exact log-likelihood (teacher forcing) of the characters at the masked positions, "
                                   "given the rest of the text. Without --spans or --masked-text every character is scored.")
    model_argument(c)
    _text_arguments(c)
    c.add_argument("--spans", default=None, help="positions to score as START:END ranges, comma-separated (END exclusive)")
    c.add_argument("--masked-text", default=None, help="the same text with MASK-CHAR at the positions to score")
    c.add_argument("--mask-char", default="_", help="mask character of --masked-text (default: _)")
    c.add_argument("--order", default="l2r", help="one order or several, comma-separated, to compare (default: l2r)")
    c.add_argument("--explicit", default=None, help="for --order explicit: comma-separated positions")
    c.add_argument("--steps", type=int, default=None, help="step budget K (default: one character per step)")
    c.add_argument("--planner", default="dp", choices=["dp", "naive"])
    c.add_argument("--seed", type=SEED, default=0, help="seed of the random order")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_score)


# -- helpers -----------------------------------------------------------------------------------
def _load(args):
    from .checkpoint import load_model
    from .cli import UserError
    from .device import resolve_device

    upscale = getattr(args, "upscale", False)
    path = model_dir(args.model) if args.model is not None else (upscale_model_dir() if upscale else default_model_dir())
    if not path.exists():
        if args.model:
            raise UserError(f"{path}: model folder not found")
        raise UserError(f"no model at {path}: the shipped model is not installed; pass --model FOLDER (train one with `ardm train`)")
    model = load_model(path, resolve_device(args.device))
    if upscale and not model.is_upscale:
        raise UserError(f"{path}: not an upscaling model, so --upscale cannot use it; drop --model to use the shipped one "
                        f"({upscale_model_dir()}) or train one with `ardm train --upscale default`")
    return model


def _read_text(args) -> str:
    from .fileio import read_utf8

    return args.text if args.text is not None else read_utf8(Path(args.file))


def _orders(spec: str) -> list[str]:
    """The comma-separated orders of --order; an empty list is a user error."""
    orders = [o.strip() for o in spec.split(",") if o.strip()]
    if not orders:
        raise ValueError(f"--order names no order (got {spec!r})")
    return orders


def _explicit(args):
    if args.explicit is None:
        return None
    if "explicit" not in _orders(args.order):
        raise ValueError("--explicit gives the positions of --order explicit; add --order explicit or drop --explicit")
    try:
        return [int(x) for x in args.explicit.replace(" ", "").split(",") if x]
    except ValueError:
        raise ValueError(f"--explicit must be comma-separated integers (got {args.explicit!r})") from None


def _sampling(args):
    from .sampling import SamplingOptions

    return SamplingOptions(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, greedy=args.greedy)


def _mask_char(c: str) -> str:
    if len(c) != 1:
        raise ValueError(f"--mask-char must be exactly one character (got {c!r})")
    return c


def _run(args, model, text: str, masked, empty_message: str | None = None, words=None) -> int:
    from .session import DecodeSession
    from .upscale_session import UpscaleSession

    cls = UpscaleSession if model.is_upscale else DecodeSession
    if words is not None and model.is_upscale:
        raise ValueError("--words works with a plain model, not coarse to fine (--upscale)")
    s = cls(model, text, masked, order=args.order, steps=args.steps, explicit=_explicit(args),
            sampling=_sampling(args), seed=args.seed, planner=args.planner, precision=args.precision,
            **({"words": words} if words is not None else {}))
    if s.message:
        print(empty_message or s.message, file=sys.stderr)
    for _ in s.run():
        pass
    result = s.result()
    if args.json:
        print(json.dumps({
            "result": result,
            "network_calls": s.network_calls,
            "bits": s.total_bits,
            "bits_per_char": s.total_bits / s.n_masked if s.n_masked else 0.0,
            "order": args.order,
            **({"constrained_bits": sum(sum(st.constrained_bits) for st in s.steps),
                "unconstrained_regions": [list(x) for x in s.unconstrained_regions]} if words is not None else {}),
            "steps": [{"positions": list(st.positions), "chars": st.chars, "probs": list(st.probs), "bits": st.step_bits,
                       "entropy": list(st.entropy), "ms": round(st.ms, 3), **({"stage": st.stage} if st.stage >= 0 else {})}
                      for st in s.steps],
        }, ensure_ascii=False))
    else:
        sys.stdout.write(result if result.endswith("\n") else result + "\n")
        if s.n_masked:
            print(f"{s.n_masked} characters in {len(s.steps)} steps ({s.network_calls} network calls), "
                  f"{s.total_bits:.1f} bits ({s.total_bits / s.n_masked:.3f} per character), order {args.order}", file=sys.stderr)
            if model.is_upscale:
                sketch = list(text)
                for st in s.steps:
                    if st.stage == 0:
                        for p, c in zip(st.positions, st.chars):
                            sketch[p] = c
                print("class sketch: " + "".join(sketch).replace("\n", "\n              "), file=sys.stderr)
                for k, name in enumerate(model.stages.stage_names):
                    st_k = [st for st in s.steps if st.stage == k]
                    print(f"  stage {k + 1} ({name}): {sum(st.step_bits for st in st_k):.1f} bits in {len(st_k)} steps",
                          file=sys.stderr)
    return 0


# -- commands ----------------------------------------------------------------------------------
def cmd_infill(args) -> int:
    text = _read_text(args)
    mc = _mask_char(args.mask_char)
    masked = [i for i, ch in enumerate(text) if ch == mc]
    from . import cli_fill

    fill = cli_fill.prepare(args)  # bad options fail before the model loads
    model = _load(args)
    if cli_fill.wanted(fill):
        return cli_fill.run(args, model, text, masked, fill, _sampling(args), _explicit(args))
    return _run(args, model, text, masked, f"nothing to fill: the text has no {mc!r}; printing it unchanged", words=fill["words"])


def cmd_sample(args) -> int:
    _explicit(args)  # option errors before the model loads
    model = _load(args)
    return _run(args, model, " " * args.length, range(args.length))


def _parse_spans(spec: str, n: int) -> list[int]:
    out: list[int] = []
    for part in spec.replace(" ", "").split(","):
        if not part:
            continue
        try:
            a, b = (int(x) for x in part.split(":"))
        except ValueError:
            raise ValueError(f"--spans: {part!r} is not START:END") from None
        if not 0 <= a < b <= n:
            raise ValueError(f"--spans: {part!r} is not a non-empty range within the text (0:{n})")
        out.extend(range(a, b))
    return sorted(set(out))


def cmd_score(args) -> int:
    text = _read_text(args)
    if args.spans and args.masked_text is not None:
        raise ValueError("give --spans or --masked-text, not both")
    if args.spans:
        masked = _parse_spans(args.spans, len(text))
    elif args.masked_text is not None:
        mc = _mask_char(args.mask_char)
        if len(args.masked_text) != len(text):
            raise ValueError(f"--masked-text has {len(args.masked_text)} characters but the text has {len(text)}")
        masked = [i for i, ch in enumerate(args.masked_text) if ch == mc]
    else:
        masked = list(range(len(text)))
    orders, explicit = _orders(args.order), _explicit(args)
    model = _load(args)
    if model.is_upscale:
        from .upscale_session import upscale_score as score
    else:
        from .session import score
    results = [score(model, text, masked, order=o, explicit=explicit, steps=args.steps, seed=args.seed,
                     planner=args.planner) for o in orders]
    if not masked:
        print("nothing to score: no positions are masked", file=sys.stderr)
    if args.json:
        print(json.dumps([{"order": r.order, "total_bits": r.total_bits, "bits_per_char": r.bits_per_char,
                           "masked": len(r.positions), "network_calls": r.network_calls, "unknown_chars": r.n_unknown,
                           "bits": [round(float(b), 5) for b in r.bits]} for r in results]))
    else:
        for r in results:
            print(f"{r.order:>16}: {r.total_bits:10.2f} bits, {r.bits_per_char:.4f} per character "
                  f"({len(r.positions)} characters, {r.network_calls} network calls)")
    return 0
