"""``ardm compress`` and ``ardm decompress``: lossless compression with the model.

Outputs are written through a temp file and an atomic replace, and an
existing file is never overwritten without ``--force``. ``-`` reads stdin or
writes stdout.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .paths import default_model_dir, model_dir

SUFFIX = ".ardm"


def register(sub) -> None:
    from .compress import CHOICES, DEFAULT_STEPS

    c = sub.add_parser("compress", help="compress a file losslessly with the model",
                       description="Code a text with the model's probabilities (paper section 5); input that is not "
                                   "UTF-8, or that brotli stores smaller, goes into a brotli or stored block.")
    _model_arg(c)
    c.add_argument("input", metavar="IN", help="file to compress ('-' = stdin)")
    c.add_argument("-o", "--output", metavar="OUT", default=None, help=f"output file (default: IN{SUFFIX}; '-' = stdout)")
    c.add_argument("--steps", "-K", type=int, default=DEFAULT_STEPS,
                   help="network calls per window, at most the window size; more is smaller and slower (default: "
                        "the fewest whose planned size is within 1%% of one character per call, from the model's L_t table)")
    c.add_argument("--method", choices=CHOICES, default="auto",
                   help="auto: the smallest of model, brotli and stored (default); or force one")
    c.add_argument("--force", "-f", action="store_true", help="overwrite OUT if it exists")
    c.add_argument("--quiet", "-q", action="store_true", help="no summary on stderr")
    c.set_defaults(func=cmd_compress)

    d = sub.add_parser("decompress", help="restore a file made by 'ardm compress'")
    _model_arg(d)
    d.add_argument("input", metavar="IN", help="compressed file ('-' = stdin)")
    d.add_argument("-o", "--output", metavar="OUT", default=None, help=f"output file (default: IN without {SUFFIX}; '-' = stdout)")
    d.add_argument("--force", "-f", action="store_true", help="overwrite OUT if it exists")
    d.add_argument("--quiet", "-q", action="store_true", help="no summary on stderr")
    d.set_defaults(func=cmd_decompress)


def _model_arg(p) -> None:
    # compression always runs on the CPU in float64 (determinism), so there is no --device
    p.add_argument("--model", default=None, help=f"model folder, or a shipped model's name such as medium "
                   f"(default: the shipped model, {default_model_dir()})")


def _read_input(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    from .fileio import read_file_bytes

    path = Path(name)
    if path.exists() and not path.is_file() and not path.is_dir():  # /dev/zero would never end
        raise ValueError(f"{path}: is not a regular file (a device, pipe or special file); use '-' to read stdin")
    return read_file_bytes(path)


def _output_path(args, default: Path | None) -> Path | None:
    """None means stdout. Refuses to clobber an existing file (or the input) unless --force."""
    if args.output == "-" or (args.output is None and args.input == "-"):
        return None
    out = Path(args.output) if args.output is not None else default
    if out is None:
        raise ValueError(f"cannot derive an output name from {args.input!r} (it does not end in {SUFFIX}); give -o OUT")
    if args.input != "-" and out.exists() and out.resolve() == Path(args.input).resolve():
        raise ValueError(f"{out}: output would replace the input; choose another -o")
    if out.is_dir():
        raise ValueError(f"{out}: is a folder")
    if out.exists() and not args.force:
        raise ValueError(f"{out}: already exists; use --force to overwrite")
    if out.exists() and not out.is_file():
        raise ValueError(f"{out}: is not a regular file (a device, pipe or special file); choose another -o, or '-' for stdout")
    if not out.parent.is_dir():
        raise ValueError(f"{out}: the folder {out.parent} does not exist")
    return out


def _write_output(out: Path | None, data: bytes) -> None:
    from .fileio import atomic_write_bytes

    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        atomic_write_bytes(out, data)
    except OSError as exc:
        if not out.parent.is_dir():
            raise ValueError(f"{out}: the folder {out.parent} does not exist") from None
        # the file is written beside its target and then renamed over it, so the folder must take new files
        raise ValueError(f"{out}: cannot write a new file in {out.parent} ({exc.strerror or exc})") from None


def _check_model_arg(model_arg: str | None) -> None:
    if model_arg is not None and not model_arg.strip():
        raise ValueError("--model is empty; give a model folder, or leave --model out for the shipped model")


def _load(model_arg: str | None):
    from .checkpoint import load_model

    _check_model_arg(model_arg)
    return load_model(model_dir(model_arg), "cpu")


def _progress(ev, quiet: bool) -> None:
    if not quiet and sys.stderr.isatty() and ev.windows:
        print(f"\r{ev.phase}: window {ev.windows_done}/{ev.windows}, {ev.network_calls} network calls", end="", file=sys.stderr)


def cmd_compress(args) -> int:
    from .compress import CodingResult, compress

    _check_model_arg(args.model)
    data = _read_input(args.input)
    out = _output_path(args, None if args.input == "-" else Path(args.input + SUFFIX))
    model = _load(args.model) if args.method in ("auto", "model") else None
    result = None
    for ev in compress(model, data, steps=args.steps, method=args.method):
        if isinstance(ev, CodingResult):
            result = ev
        else:
            _progress(ev, args.quiet)
    if result.note and not args.quiet:
        print(f"{args.input}: warning: {result.note}", file=sys.stderr)
    unit = "char" if result.chars is not None else "byte"
    return _finish(args, out, result.data,
                   f"{result.original_bytes} -> {result.compressed_bytes} bytes ({result.bits_per_char:.3f} bits/{unit}, "
                   f"{result.method}, {result.network_calls} network calls + {result.check_calls} to check it, "
                   f"{result.seconds:.1f} s)")


def cmd_decompress(args) -> int:
    from .codec_format import read_header
    from .compress import CodingResult, decompress

    _check_model_arg(args.model)
    blob = _read_input(args.input)
    default = None
    if args.input != "-" and args.input.endswith(SUFFIX) and len(args.input) > len(SUFFIX):
        default = Path(args.input[: -len(SUFFIX)])
    out = _output_path(args, default)
    header, _ = read_header(blob)  # a foreign or damaged file fails before the model loads
    model = _load(args.model) if header.method == "model" else None
    result = None
    for ev in decompress(model, blob):  # raises before yielding a result unless the checksum matches
        if isinstance(ev, CodingResult):
            result = ev
        else:
            _progress(ev, args.quiet)
    return _finish(args, out, result.data,
                   f"{result.compressed_bytes} -> {result.original_bytes} bytes ({result.method}, checksum ok, {result.seconds:.1f} s)")


def _finish(args, out: Path | None, data: bytes, summary: str) -> int:
    """Write the output (atomically, or to stdout) and report one summary line."""
    _write_output(out, data)
    if not args.quiet:
        if sys.stderr.isatty():
            print("\r", end="", file=sys.stderr)  # clear the progress line
        print(f"{args.input}: {summary} -> {out or 'stdout'}", file=sys.stderr)
    return 0
