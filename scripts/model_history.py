"""Write assets/models/HISTORY.json: the compressed-file tag of every model this repository has shipped.

    python scripts/model_history.py            # after shipping a model (commit it first)

A file made by ``ardm compress --method model`` can only be decoded by the exact
model that made it. When a release ships new weights, ``ardm decompress`` looks the
file's tag up in this table and says which commit shipped its model and how to
get that model folder back from the repository's history, instead of only "a
different model". The table is rebuilt from git: every commit that changed a
folder under assets/models/, its model loaded and tagged in each file format.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ardm_core.checkpoint import load_model  # noqa: E402
from ardm_core.codec_format import FORMAT_VERSION  # noqa: E402
from ardm_core.compress import model_tag  # noqa: E402
from ardm_core.fileio import atomic_write_json  # noqa: E402


def git(*args: str) -> bytes:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True).stdout


def main() -> int:
    rows, seen = [], set()
    # every folder that ever held a model, also one removed since
    names = sorted({p.split("/")[2] for p in git("log", "--name-only", "--format=", "--", "assets/models").decode().split()
                    if p.count("/") >= 3})
    for name in names:
        folder = f"assets/models/{name}"
        for line in git("log", "--format=%H %ad %s", "--date=short", "--", f"{folder}/model.safetensors",
                        f"{folder}/config.json", f"{folder}/vocab.model").decode().splitlines():
            commit, date, subject = line.split(" ", 2)
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    tarfile.open(fileobj=BytesIO(git("archive", commit, folder))).extractall(tmp, filter="data")
                    model = load_model(Path(tmp) / folder, "cpu")
                except Exception as exc:  # noqa: BLE001 - an old format this loader no longer reads: skip it
                    print(f"{commit[:7]} {folder}: skipped ({exc})", file=sys.stderr)
                    continue
                if model.is_upscale:
                    continue  # upscaling models are not used for compression
                for version in range(1, FORMAT_VERSION + 1):
                    tag = model_tag(model, version).hex()
                    if (tag, version) in seen:
                        continue  # only a config field outside the tag changed in this commit
                    seen.add((tag, version))
                    rows.append({"tag": tag, "format": version, "model": name, "commit": commit[:10], "date": date,
                                 "trained_steps": model.meta.get("trained_steps"), "subject": subject[:100]})
            print(f"{commit[:7]} {folder}: tagged", file=sys.stderr)
    atomic_write_json(ROOT / "assets" / "models" / "HISTORY.json",
                      {"about": "model tags of compressed files, by the commit that shipped the model "
                                "(scripts/model_history.py)", "models": rows})
    print(f"{len(rows)} tags written to assets/models/HISTORY.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
