"""``ardm infill`` options for fills a writer can choose from: alternatives, real words only, any length.

    ardm infill --text "a flask __ tea" --alternatives 8 --words --json
    ardm infill --text "a flask _ tea" --lengths 1:8 --alternatives 4

``--lengths MIN:MAX`` makes the text's one gap (a run of MASK-CHAR; its own
length is ignored) a gap of any length from MIN to MAX characters.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .alternatives import MAX_ALTERNATIVES

    g = p.add_argument_group("alternatives, real words, any length")
    g.add_argument("--alternatives", type=int, default=None, metavar="N",
                   help=f"sample N fills at once (one network call per step for all N), best first (1..{MAX_ALTERNATIVES})")
    g.add_argument("--words", action="store_true",
                   help="real words only: every letter run that touches a gap is a lexicon word once filled")
    g.add_argument("--lexicon", default=None, help="lexicon file for --words (default: the shipped one)")
    g.add_argument("--prior-weight", type=float, default=1.0,
                   help="--words: weight of the word-frequency prior (0 = the constraint alone; default 1)")
    g.add_argument("--lengths", default=None, metavar="MIN:MAX",
                   help="the one gap may have any length from MIN to MAX characters; the likeliest wins")


def prepare(args) -> dict:
    """Validate the options before the model loads; returns what ``run`` needs."""
    from .alternatives import validate_count
    from .lexicon import WordsOptions, load_lexicon

    out: dict = {"n": None, "words": None, "lengths": None}
    if args.alternatives is not None:
        out["n"] = validate_count(args.alternatives)
    if args.lengths is not None:
        try:
            lo, hi = (int(x) for x in args.lengths.split(":"))
        except ValueError:
            raise ValueError(f"--lengths must be MIN:MAX, two integers (got {args.lengths!r})") from None
        out["lengths"] = (lo, hi)
    if args.words or args.lexicon:
        out["words"] = WordsOptions(load_lexicon(args.lexicon), prior_weight=args.prior_weight)
    elif args.prior_weight != 1.0:
        raise ValueError("--prior-weight needs --words")
    return out


def wanted(prep: dict) -> bool:
    return prep["n"] is not None or prep["lengths"] is not None


def run(args, model, text: str, masked: list[int], prep: dict, sampling, explicit) -> int:
    from .alternatives import fill_alternatives

    if model.is_upscale:
        raise ValueError("--alternatives and --lengths work with a plain model, not coarse to fine (--upscale)")
    if not masked:
        raise ValueError(f"nothing to fill: the text has no {args.mask_char!r}")
    r = fill_alternatives(model, text, masked, n=prep["n"] or 1, order=args.order, steps=args.steps, explicit=explicit,
                          sampling=sampling, seed=args.seed, planner=args.planner, precision=args.precision,
                          words=prep["words"], lengths=prep["lengths"])
    alts = [{"text": a.text, "fill": a.fill, "spans": [list(s) for s in a.spans], "bits": a.bits,
             "bits_per_char": a.bits_per_char, "constrained_bits": a.constrained_bits, "score_bits": a.score_bits,
             "length": a.length, "seed": a.seed, "count": a.count, "unconstrained_regions": [list(x) for x in a.unconstrained]}
            for a in r.alternatives]
    if args.json:
        print(json.dumps({"alternatives": alts, "network_calls": r.network_calls, "samples": r.samples, "ms": round(r.ms, 1),
                          "order": args.order, "words": prep["words"] is not None, "lengths": r.lengths,
                          "chosen_length": r.chosen_length}, ensure_ascii=False))
        return 0
    best = r.alternatives[0].text
    sys.stdout.write(best if best.endswith("\n") else best + "\n")
    for k, a in enumerate(r.alternatives, 1):
        extra = f", {a.constrained_bits:.1f} constrained" if a.constrained_bits is not None else ""
        print(f"{k:>3}. {a.fill!r}: {a.bits:.1f} bits ({a.bits_per_char:.3f} per character{extra})"
              + (f" x{a.count}" if a.count > 1 else ""), file=sys.stderr)
    if r.lengths:
        print("lengths: " + ", ".join(f"{d['length']}: {d['score_bits']:.1f}" for d in r.lengths)
              + f" bits; chosen {r.chosen_length}", file=sys.stderr)
    free = {x for a in r.alternatives for x in a.unconstrained}
    if free:
        print("no lexicon word fits " + ", ".join(f"{text[a:b]!r}" for a, b in sorted(free))
              + ": filled unconstrained", file=sys.stderr)
    print(f"{r.samples} fills, {len(r.alternatives)} distinct, {r.network_calls} network calls, {r.ms / 1000:.1f} s",
          file=sys.stderr)
    return 0
