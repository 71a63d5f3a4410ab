"""The ``ardm`` command line (also ``python -m ardm_core``).

Every user error is one line on stderr and a non-zero exit, never a traceback.
Subcommands live in small modules; each exposes ``register(subparsers)`` which
adds its parsers and sets ``func`` to a handler ``(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .paths import default_model_dir, shipped_models

# each module adds its own subcommands
COMMAND_MODULES = [
    "ardm_core.cli_train",  # corpus build, train, eval
    "ardm_core.cli_decode",  # infill, sample, score
    "ardm_core.cli_compress",  # compress, decompress
    "ardm_core.cli_explain",  # explain
    "ardm_core.cli_finetune",  # finetune
]


class UserError(Exception):
    """An error in what the user asked for; printed as one line."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``ardm train: error: argument --steps: ... (see ardm train --help)``."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def int_in(lo: int, hi: int | None = None):
    """An argparse type: an integer in [lo, hi] (hi None: no upper end)."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer (got {text!r})") from None
        if v < lo or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"must be an integer, at least {lo:,}" + (f" and at most {hi:,}" if hi is not None else "")
                                             + f" (got {v:,})")
        return v

    parse.__name__ = "integer"
    return parse


SEED = int_in(0, 2**63 - 1)  # any seed a generator takes; same seed, same output


def model_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help=f"model folder, or a shipped model's name ({', '.join(n for n in shipped_models() if n != 'upscale')}); "
                   f"default: the shipped default model, {default_model_dir()}")
    p.add_argument("--device", default="auto", help="auto (CUDA, MPS, then CPU), cuda, mps or cpu")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="ardm", description="Order-agnostic autoregressive diffusion models for text.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def user_errors() -> tuple[type[BaseException], ...]:
    from .checkpoint import ModelFileError
    from .fileio import DataError
    from .vocab import VocabError

    errs: list[type[BaseException]] = [UserError, ModelFileError, DataError, VocabError, ValueError, FileNotFoundError, PermissionError]
    try:
        from .corpus import CorpusError

        errs.append(CorpusError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errs)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a malformed command line (one line on stderr)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except user_errors() as exc:
        print(f"ardm {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `ardm infill ... | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
