"""Actions, menus and the toolbar of the main window, built in small separate steps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from PySide6.QtGui import QAction, QActionGroup, QKeySequence

if TYPE_CHECKING:
    from .main_window import MainWindow


def _action(w: "MainWindow", text: str, slot: Callable | None = None, shortcut=None, tip: str = "",
            checkable: bool = False) -> QAction:
    a = QAction(text, w)
    if shortcut is not None:
        a.setShortcut(QKeySequence(shortcut))
    if tip:
        a.setStatusTip(tip)
        a.setToolTip(tip)
    a.setCheckable(checkable)
    if slot is not None:
        (a.toggled if checkable else a.triggered).connect(slot)
    return a


def build_actions(w: "MainWindow") -> dict[str, QAction]:
    A = {}
    A["open"] = _action(w, "&Open...", w.open_dialog, QKeySequence.Open, "Open a UTF-8 text file")
    A["save"] = _action(w, "&Save", w.save, QKeySequence.Save, "Save the text (masks as their original characters)")
    A["save_as"] = _action(w, "Save &as...", w.save_as_dialog, QKeySequence.SaveAs)
    A["open_run"] = _action(w, "Open &run...", w.open_run_dialog, "Ctrl+Shift+O", "Open a run exported as JSON and replay it")
    A["export_run"] = _action(w, "&Export run...", w.export_run_dialog, "Ctrl+E", "Save the run (text, masks, order, every step) as JSON")
    A["export_gif"] = _action(w, "Export animated &GIF...", lambda: w.export_frames_dialog("gif"))
    A["export_png"] = _action(w, "Export &PNG frames...", lambda: w.export_frames_dialog("png"))
    A["open_model"] = _action(w, "Open &model...", w.open_model_dialog, "Ctrl+Shift+L", "Load another model folder")
    A["settings"] = _action(w, "Se&ttings...", w.settings_dialog, QKeySequence.Preferences)
    A["quit"] = _action(w, "&Quit", w.close, QKeySequence.Quit)
    A["undo"] = w.undo_stack.createUndoAction(w, "&Undo")
    A["undo"].setShortcut(QKeySequence.Undo)
    A["redo"] = w.undo_stack.createRedoAction(w, "&Redo")
    A["redo"].setShortcut(QKeySequence.Redo)
    for k, word in (("undo", "Undo"), ("redo", "Redo")):  # the menu and tooltip name the edit; the toolbar
        A[k].setIconText(word)  # button keeps one short word, so the buttons beside it never shift
    A["mask"] = _action(w, "&Mask selection", w.mask_selection, "Ctrl+M", "Hide the selected characters")
    A["unmask"] = _action(w, "&Unmask selection", w.unmask_selection, "Ctrl+Shift+M", "Show the originals again")
    A["copy_result"] = _action(w, "Copy &result", w.copy_result, "Ctrl+Shift+C", "Copy the filled text")
    A["show_original"] = _action(w, "Show &original", w.show_original, "Ctrl+Shift+G",
                                 "Show the original characters behind masks and fills (red: the fill differs)",
                                 checkable=True)
    A["presentation"] = _action(w, "&Presentation mode", w.set_presentation, "F11",
                                "Large font, slower playback, a caption that says what each step did", checkable=True)
    A["run"] = _action(w, "&Run", w.run_fill, "F5")
    A["pause"] = _action(w, "&Pause", w.pause_fill, "F6")
    A["step"] = _action(w, "&Step", w.step_fill, "F7")
    A["back"] = _action(w, "Step &back", w.step_back, "Shift+F7")
    A["reset"] = _action(w, "R&eset", w.reset_fill, "Ctrl+R")
    A["resample"] = _action(w, "Resample from &here", w.resample)
    A["compare"] = _action(w, "&Compare orders", w.compare_orders, "Ctrl+K")
    A["help"] = _action(w, "&What am I seeing?", w.show_help, QKeySequence.HelpContents,
                        "Orders, bits, the step budget K and the colours, explained")
    A["guide"] = _action(w, "&First steps", w.show_guide, tip="The short guide shown on the first start")
    group = QActionGroup(w)
    for mode, title in (("order", "Colour by step &order"), ("probability", "Colour by &probability"),
                        ("bits", "Colour by &bits")):
        a = _action(w, title, checkable=True)
        a.setData(mode)
        group.addAction(a)
        a.triggered.connect(lambda _c=False, m=mode: w.set_colour_mode(m))
        A[f"colour_{mode}"] = a
    return A


def build_menus(w: "MainWindow", A: dict[str, QAction]) -> None:
    mb = w.menuBar()
    f = mb.addMenu("&File")
    for k in ("open", "save", "save_as"):
        f.addAction(A[k])
    w.recent_menu = f.addMenu("Open r&ecent")
    f.addSeparator()
    for k in ("open_run", "export_run", "export_gif", "export_png"):
        f.addAction(A[k])
    f.addSeparator()
    f.addAction(A["open_model"])
    f.addAction(A["settings"])
    f.addSeparator()
    f.addAction(A["quit"])
    e = mb.addMenu("&Edit")
    for k in ("undo", "redo"):
        e.addAction(A[k])
    e.addSeparator()
    for k in ("mask", "unmask", "copy_result"):
        e.addAction(A[k])
    r = mb.addMenu("&Run")
    for k in ("run", "pause", "step", "back", "reset", "resample"):
        r.addAction(A[k])
    r.addSeparator()
    r.addAction(A["compare"])
    v = mb.addMenu("&View")
    for k in ("colour_order", "colour_probability", "colour_bits"):
        v.addAction(A[k])
    v.addSeparator()
    v.addAction(A["show_original"])
    v.addAction(A["presentation"])
    w.view_menu = v
    h = w.help_menu = mb.addMenu("&Help")
    h.addAction(A["help"])
    h.addAction(A["guide"])
    for k in ("presentation", "run", "pause", "step", "back", "help"):  # their keys still work while the menus are hidden
        w.addAction(A[k])


def build_toolbar(w: "MainWindow", A: dict[str, QAction]) -> None:
    tb = w.addToolBar("Edit")
    tb.setObjectName("edit_toolbar")
    for k in ("open", "save"):
        tb.addAction(A[k])
    tb.addSeparator()
    for k in ("undo", "redo", "mask", "unmask"):
        tb.addAction(A[k])
    tb.addSeparator()
    tb.addAction(A["compare"])
    tb.addAction(A["show_original"])
