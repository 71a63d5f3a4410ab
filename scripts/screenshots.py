"""Write PNG screenshots of ARDM Studio to docs/ (run under Xvfb on a headless machine).

    xvfb-run -a -s "-screen 0 1366x768x24" python scripts/screenshots.py [--model DIR] [--temperature T]

Uses the shipped model when it is there, else a random tiny model (the
screenshot then shows the interface, not good fills). A temperature below 1
shows the fills a partly trained model finds likely rather than its noisier samples. Settings and autosave
go to a temp folder, never the user's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

TEXT = (
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want "
    "of a wife.\n\nHowever little known the feelings or views of such a man may be on his first entering a "
    "neighbourhood, this truth is so well fixed in the minds of the surrounding families, that he is considered "
    "the rightful property of some one or other of their daughters.\n\n\"My dear Mr. Bennet,\" said his lady to "
    "him one day, \"have you heard that Netherfield Park is let at last?\"\n\nMr. Bennet replied that he had not."
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model folder (default: the shipped model, else a random tiny one)")
    ap.add_argument("--out", default=str(ROOT / "docs"))
    ap.add_argument("--fraction", type=float, default=0.2, help="fraction of whole words to mask")
    ap.add_argument("--steps", type=int, default=40, help="step budget K (0: one character per step)")
    ap.add_argument("--temperature", type=float, default=0.3,
                    help="sampling temperature (below 1 shows a partly trained model's likely fills)")
    ap.add_argument("--seed", type=int, default=4, help="seed of the word mask")
    args = ap.parse_args()
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        os.environ[var] = tempfile.mkdtemp()
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from ardm_core.paths import default_model_dir
    from app.main_window import MainWindow
    from app.settings import Settings

    model = args.model or str(default_model_dir())
    if not args.model and not (Path(model) / "config.json").is_file():
        from gui_latency import tiny_model_dir

        model = tiny_model_dir()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    w = MainWindow(model_path=model, settings=Settings(speed=200, font_size=13), offer_recovery=False)
    w.resize(1366, 768)  # a small laptop screen: every panel must fit
    w.show()

    def pump(seconds: float = 0.2, until=None, limit: float = 120.0) -> None:
        t = time.perf_counter()
        while time.perf_counter() - t < (limit if until else seconds):
            app.processEvents()
            if until is not None and until():
                break
            time.sleep(0.01)

    pump(until=lambda: w.model_info is not None or bool(w.model_error))
    shots = []

    def shot(name: str, screen: bool = False) -> None:
        """The window (or the whole screen, to include the dialogs in front of it)."""
        pump(0.3)
        path = out / name
        (app.primaryScreen().grabWindow(0) if screen else w.grab()).save(str(path))
        shots.append(str(path))

    pump(0.5)  # the first-run guide opens over the empty editor (with its hint)
    shot("screenshot_first_run.png", screen=True)
    if w.guide is not None:
        w.guide.accept()
    w.mdoc.set_text(TEXT)
    w.apply_mask_tool("words", {"fraction": args.fraction, "seed": args.seed, "unit": "words"})
    w.order_panel.set_order("confidence")
    w.order_panel.k_slider.setValue(args.steps)
    w.order_panel.temperature.setValue(args.temperature)
    pump(1.0)
    shot("screenshot_masked.png")
    w.compare_orders(["l2r", "r2l", "random", "confidence", "outside-in"])  # all the masks, before the fill
    pump(until=lambda: not w.client.busy)
    w.run_fill()
    pump(until=lambda: w.runner.run is not None and w.runner.run.done and not w.runner.running, limit=900)
    w.runner.seek(max(1, w.runner.recorded * 2 // 3))
    w.set_colour_mode("order")
    shot("screenshot.png")
    from app.frames import render_frames  # one frame of the GIF export, as the exported file draws it

    frames = Path(tempfile.mkdtemp())
    run = w.runner.run
    list(render_frames(run, len(run.steps), frames, "png"))
    pngs = sorted(frames.glob("frame_*.png"))
    shutil.copyfile(pngs[len(pngs) * 2 // 3], out / "screenshot_gif_frame.png")
    shots.append(str(out / "screenshot_gif_frame.png"))
    w.set_colour_mode("probability")
    shot("screenshot_probability.png")
    w.set_colour_mode("bits")
    w.actions_["presentation"].setChecked(True)
    pump(0.5)
    shot("screenshot_presentation.png", screen=True)
    w.actions_["presentation"].setChecked(False)
    pump(0.5)
    if w.order_panel.upscale_check.isEnabled():  # coarse to fine: half the letters over the class sketch
        w.runner.detach()
        w.mdoc.set_text(TEXT)
        w.apply_mask_tool("words", {"fraction": args.fraction, "seed": args.seed, "unit": "words"})
        w.order_panel.upscale_check.setChecked(True)
        w.run_fill()
        pump(until=lambda: w.runner.run is not None and w.runner.run.done and not w.runner.running, limit=900)
        run = w.runner.run
        boundary = next(i for i, st in enumerate(run.steps) if st.stage == run.n_stages - 1)
        w.runner.seek(boundary + (len(run.steps) - boundary) // 3)
        w.set_colour_mode("order")
        shot("screenshot_coarse_to_fine.png")
    # the dark theme before a run: disabled buttons, the empty plot's message
    from app.window_view import apply_theme

    w.runner.detach()
    w.mdoc.set_text(TEXT)
    w.apply_mask_tool("words", {"fraction": args.fraction, "seed": args.seed, "unit": "words"})
    w.order_panel.k_slider.setValue(w.order_panel.k_slider.maximum())  # no budget: the plot shows its message
    apply_theme(app, "dark")
    w.show_help()
    w.help_dialog.move(w.width() - w.help_dialog.width() - 20, 60)
    shot("screenshot_dark.png", screen=True)
    w.help_dialog.close()
    apply_theme(app, "light")
    w.ask_unsaved = lambda _doing: "discard"  # the demo text is not the user's: no Save question
    w.close()
    print("\n".join(shots))


if __name__ == "__main__":
    main()
