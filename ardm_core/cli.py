"""The ``ardm`` command line (also ``python -m ardm_core``).

Every user error is one line on stderr and a non-zero exit, never a traceback.
Subcommands live in small modules; each exposes ``register(subparsers)`` which
adds its parsers and sets ``func`` to a handler ``(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .paths import default_model_dir

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


def model_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help=f"model folder (default: the shipped model, {default_model_dir()})")
    p.add_argument("--device", default="auto", help="auto (CUDA, MPS, then CPU), cuda, mps or cpu")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ardm", description="Order-agnostic autoregressive diffusion models for text.")
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
    args = parser.parse_args(argv)
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
