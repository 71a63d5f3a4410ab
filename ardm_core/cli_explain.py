"""``ardm explain``: what the model looked at when it filled one character."""

from __future__ import annotations

import argparse
import json


def register(sub) -> None:
    from .cli import model_argument
    from .cli_decode import _text_arguments

    p = sub.add_parser(
        "explain", help="why this character? attention and occlusion for one filled position",
        description="Fill the MASK-CHAR positions of the text (same options as `ardm infill`) up to the step that "
                    "fills POSITION, then show which context characters the model attended to at that step "
                    "(attention rollout over layers; --layer/--head for one layer or head) and how much masking "
                    "each one changes the prediction (occlusion, in bits).")
    model_argument(p)
    _text_arguments(p)
    p.add_argument("--position", type=int, required=True, help="0-based position of a masked character to explain")
    p.add_argument("--step", type=int, default=None,
                   help="explain the prediction at this step (default: the step that fills POSITION)")
    p.add_argument("--mask-char", default="_", help="the character that marks positions to fill (default: _)")
    p.add_argument("--order", default="confidence", help="generation order (default: confidence)")
    p.add_argument("--explicit", default=None, help="for --order explicit: comma-separated positions")
    p.add_argument("--steps", type=int, default=None, help="step budget K (default: one character per step)")
    p.add_argument("--planner", default="dp", choices=["dp", "naive"])
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--greedy", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layer", type=int, default=None, help="weights of one layer (head average) instead of the rollout")
    p.add_argument("--head", type=int, default=None, help="with --layer: one head")
    p.add_argument("--top", type=int, default=10, help="context characters to list (default 10)")
    p.add_argument("--no-occlusion", action="store_true", help="skip the occlusion saliency (one batched forward)")
    p.add_argument("--json", action="store_true", help="the full weight vector over the window, with positions")
    p.set_defaults(func=cmd_explain, precision="fp32", upscale=False)


def cmd_explain(args: argparse.Namespace) -> int:
    from .cli import UserError
    from .cli_decode import _explicit, _load, _mask_char, _read_text, _sampling
    from .explain import explain_session, fill_step, to_json
    from .session import DecodeSession

    text = _read_text(args)
    mc = _mask_char(args.mask_char)
    masked = [i for i, ch in enumerate(text) if ch == mc]
    if not 0 <= args.position < len(text):
        raise UserError(f"--position must be between 0 and {len(text) - 1} (got {args.position})")
    if args.position not in masked:
        raise UserError(f"position {args.position} ({text[args.position]!r}) is context, not filled by the model; "
                        f"mark it with {mc!r} ({len(masked)} positions are marked)")
    if args.head is not None and args.layer is None:
        raise UserError("--head needs --layer")
    if args.top < 1:
        raise UserError(f"--top must be at least 1 (got {args.top})")
    model = _load(args)
    if model.is_upscale:
        raise UserError(f"{model.name} is an upscaling (coarse-to-fine) model; explain reads a plain model's attention "
                        "(drop --model to use the shipped one)")
    s = DecodeSession(model, text, masked, order=args.order, steps=args.steps, explicit=_explicit(args),
                      sampling=_sampling(args), seed=args.seed, planner=args.planner)
    # step until the position is filled (and, with --step, until that step is taken)
    while not s.done and (fill_step(s.steps, args.position) is None or (args.step is not None and len(s.steps) <= args.step)):
        s.step()
    if args.step is not None and not 0 <= args.step < len(s.steps):
        raise UserError(f"--step must be between 0 and {len(s.steps) - 1} (the fill takes {len(s.steps)} steps)")
    ex = explain_session(s, args.position, args.step, occlusion=not args.no_occlusion)
    filled_at = fill_step(s.steps, args.position)
    weights = ex.weights(args.layer, args.head)
    if args.json:
        out = to_json(ex, layer=args.layer, head=args.head)
        out["filled_at_step"] = filled_at
        out["filled_char"] = s.steps[filled_at].chars[s.steps[filled_at].positions.index(args.position)] if filled_at is not None else None
        print(json.dumps(out, ensure_ascii=False))
        return 0
    what = "rollout over all layers" if args.layer is None else (
        f"layer {args.layer}" + (" (head average)" if args.head is None else f", head {args.head}"))
    if filled_at is not None:
        ch = s.steps[filled_at].chars[s.steps[filled_at].positions.index(args.position)]
        print(f"position {args.position}: {ch!r} filled at step {filled_at}; explaining step {ex.step}")
    else:
        print(f"position {args.position}: explaining its prediction at step {ex.step}")
    print("predicted: " + ", ".join(f"{c!r} {p:.3f}" for c, p in ex.top_predictions(5)))
    print(f"attention ({what}); occlusion = bits the prediction moves when that character is masked")
    for pos, c, w in ex.top(args.top, weights):
        occ = "" if args.no_occlusion else f"   occlusion {ex.occlusion[pos - ex.window_start]:.4f} bits"
        print(f"  {pos:>6}  {c!r:>6}  {w:.4f}{occ}")
    own = float(weights[ex.column])
    unknown = float(weights[~ex.known].sum()) - own
    print(f"  (on itself {own:.4f}, on other unknown positions {unknown:.4f}, on known context {1 - own - unknown:.4f})")
    return 0
