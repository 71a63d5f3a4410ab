"""Every `ardm` command line in README.md parses, and runs: on a tiny corpus and tiny models
where the README trains, on the shipped models where it uses them.

Paths are substituted (data/corpus, runs/..., FILE, doc.txt) and long jobs get flags
appended that make them short (fewer steps, fewer characters); the README's own flags
stay, so an option the README documents but the parser rejects fails here.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from ardm_core.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

# a command that needs the network and system packages is only parsed
PARSE_ONLY = {("corpus", "build"): "downloads a PyPI sdist and reads Debian packages"}

# appended to keep each run to a second or so (later flags win in argparse)
SHORT = {
    "train": ["--preset", "tiny", "--steps", "2", "--batch-size", "2", "--block-size", "32", "--eval-every", "1", "--eval-batches", "1",
              "--save-every", "1", "--threads", "1"],
    "eval": ["--max-chars", "48", "--passes", "1"],
    "calibrate": ["--rounds", "1"],
}


def readme_commands() -> list[str]:
    """`ardm ...` lines of the README's code blocks, and `ardm ...` spans in its prose."""
    text = README.read_text(encoding="utf-8")
    out: list[str] = []
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            if line.startswith("ardm "):
                out.append(line)
        else:
            out.extend(m for m in re.findall(r"`(ardm [^`]+)`", line))
    return out


def argv_of(line: str) -> list[str]:
    words = shlex.split(line, comments=True)
    assert words[0] == "ardm"
    return [w for w in words[1:] if w != "..."]  # "..." stands for the options shown above it


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, sample_text):
    """A tiny corpus at data/corpus, text files for FILE and doc.txt, and a tiny model to fine-tune."""
    from ardm_core.checkpoint import save_model
    from tests.conftest import make_tiny_model

    w = tmp_path_factory.mktemp("readme")
    corpus = w / "data" / "corpus"
    corpus.mkdir(parents=True)
    for name, reps in (("train.txt", 4), ("valid.txt", 2), ("test.txt", 2)):
        (corpus / name).write_text(sample_text * reps, encoding="utf-8")
    (w / "my-writing").mkdir()
    (w / "my-writing" / "notes.txt").write_text(sample_text * 3, encoding="utf-8")
    (w / "FILE").write_text(sample_text[:40], encoding="utf-8")
    (w / "doc.txt").write_text(sample_text[:120], encoding="utf-8")
    m = make_tiny_model()
    save_model(w / "tiny-default", m.net, m.vocab, loss_by_known=m.loss_by_known, meta={"name": "tiny"})
    return w


def substitute(argv: list[str], w: Path) -> list[str]:
    """README paths to the workspace; a fine-tune starts from the tiny model instead of the shipped one."""
    out = []
    for i, a in enumerate(argv):
        if argv[0] == "train" and i and argv[i - 1] == "--init" and a == "assets/models/default":
            a = str(w / "tiny-default")
        elif a.startswith(("data/", "runs/", "my-writing")) or a in ("FILE", "doc.txt", "FILE.ardm"):
            a = str(w / a)
        elif a.startswith("assets/"):  # the shipped models and corpus copy
            a = str(ROOT / a)
        out.append(a)
    return out


def test_the_readme_has_commands():
    cmds = readme_commands()
    assert len(cmds) >= 10
    for sub in ("train", "eval", "calibrate", "infill", "sample", "score", "compress", "decompress"):
        assert any(argv_of(c)[0] == sub for c in cmds), sub
    assert any("--upscale default" in c for c in cmds)


@pytest.mark.parametrize("line", readme_commands(), ids=lambda c: " ".join(argv_of(c)[:2]))
def test_every_readme_command_parses(line):
    """The parser accepts each line as written (it rejected `--upscale default` once)."""
    try:
        build_parser().parse_args(argv_of(line))
    except SystemExit as exc:
        pytest.fail(f"README command rejected by the parser (exit {exc.code}): {line}")


@pytest.mark.slow
def test_every_readme_command_runs(workspace, capsys, monkeypatch):
    """In README order (calibrate uses the model the train line above it wrote), each exits 0 with no traceback."""
    monkeypatch.chdir(workspace)
    ran = []
    for line in readme_commands():
        argv = argv_of(line)
        if tuple(argv[:2]) in PARSE_ONLY:
            continue
        argv = substitute(argv, workspace) + SHORT.get(argv[0], [])
        if argv[0] == "decompress":  # the README's FILE is still there: write beside it
            argv += ["-o", str(workspace / "FILE.out")]
        code = main(argv)  # an unexpected exception fails the test with its traceback
        err = capsys.readouterr().err
        assert code == 0, f"{line}\n-> {' '.join(argv)}\n{err}"
        assert "Traceback" not in err
        ran.append(argv[0])
    assert {"train", "eval", "calibrate", "infill", "sample", "score", "compress", "decompress"} <= set(ran)
    if (workspace / "FILE.out").exists():
        assert (workspace / "FILE.out").read_bytes() == (workspace / "FILE").read_bytes()
