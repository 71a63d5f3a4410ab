"""What the editor's document operations cost on large texts (the figures the app tests do not assert).

Medians of ``--repeat`` runs, in milliseconds, as JSON:

- ``mask_random_2mb``: choosing 15% of a 2 MB text's characters (the positions alone);
- ``state_after_typing_2mb``: ``MaskedDocument.state()`` of 2 MB with ~2,000 masks after one keystroke
  (what the autosave and Run read);
- ``capture_2mb_300k``: the part of an autosave on the GUI thread (``capture``), 2 MB with 300,000 masks;
- ``build_state_2mb_300k`` and ``snapshot_write_2mb_300k``: the parts in the autosave thread;
- ``plan_windows_300k``: the window plan of a run over 300,000 masks (``run_cost`` before a long run);
- ``mask_100k_seconds`` and ``seek_one_step_100k``: masking 15% of 100,000 characters in batches
  in the real window, then one timeline step of a recorded 60-step run.

    QT_QPA_PLATFORM=offscreen python bench/large_document.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def median_ms(f, repeat: int, setup=None) -> float:
    out = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        t = time.perf_counter()
        f()
        out.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(out), 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME"):  # never touch the user's settings or autosave
        os.environ[var] = tempfile.mkdtemp()
    import numpy as np
    from PySide6.QtGui import QTextCursor, QTextDocument
    from PySide6.QtWidgets import QApplication

    from gui_latency import SAMPLE, tiny_model_dir

    app = QApplication.instance() or QApplication([])
    from app import autosave, masking
    from app.masked_document import MaskedDocument, build_state
    from app.window_files import snapshot_from
    from ardm_core.windows import plan_windows

    text = ((SAMPLE * (2_000_000 // len(SAMPLE) + 1))[:2_000_000])
    r = args.repeat
    from ardm_core.device import cpu_info

    out: dict = {"cpu": cpu_info().model, "cpu_count": os.cpu_count(),
                 "load_average_start": [round(x, 2) for x in os.getloadavg()], "repeat": r}
    out["mask_random_2mb"] = median_ms(lambda: masking.mask_random(text, 0.15, seed=4), r)

    md = MaskedDocument(QTextDocument())
    md.set_text(text)
    md.mask(masking.mask_random(text, 0.001, seed=1))
    md.state()
    cur = QTextCursor(md.doc)
    out["state_after_typing_2mb"] = median_ms(md.state, r, setup=lambda: cur.insertText("x"))

    md.set_text(text)
    md.mask(masking.mask_random(text, 0.15, seed=0), undoable=False)
    out["capture_2mb_300k"] = median_ms(md.capture, r)
    raw = md.capture()
    out["build_state_2mb_300k"] = median_ms(lambda: build_state(raw), r)
    st = build_state(raw)[0]
    path = Path(tempfile.mkdtemp()) / "autosave.json"
    out["snapshot_write_2mb_300k"] = median_ms(lambda: autosave.write_snapshot(snapshot_from(st, None, 0, ""), path), r)
    out["plan_windows_300k"] = median_ms(lambda: plan_windows(np.asarray(st.masked), len(text), 256), r)

    from app.main_window import MainWindow
    from app.settings import Settings
    from tests.app.test_long_document import synthetic_run  # one recorded run, shared with its test

    w = MainWindow(model_path=tiny_model_dir(), settings=Settings(), offer_recovery=False)
    small = text[:100_000]
    mask_s, seek_ms = [], []
    for _ in range(r):
        w.mdoc.set_text(small)
        t = time.perf_counter()
        w.apply_mask_tool("random", {"fraction": 0.15, "seed": 3})
        while w.masking is not None:
            app.processEvents()
        mask_s.append(time.perf_counter() - t)
        s = w.mdoc.state()
        w.runner.load(synthetic_run(s.original, s.masked, steps=60))
        t = time.perf_counter()
        w.runner.seek(1)
        seek_ms.append((time.perf_counter() - t) * 1000)
    out["mask_100k_seconds"] = round(statistics.median(mask_s), 3)
    out["seek_one_step_100k"] = round(statistics.median(seek_ms), 2)
    w.ask_unsaved = lambda doing: "discard"
    w.close()
    out["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
