"""Qt fixtures for the app tests: offscreen, tiny model, no dialogs that block, no leaked threads."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtWidgets import QDialog, QFileDialog, QMessageBox

from app.settings import Settings
from app.worker import running_worker_threads


@pytest.fixture(autouse=True)
def _no_leaked_threads():
    """Fail any test that leaves a worker QThread running (and stop it so the next test is clean)."""
    yield
    alive = running_worker_threads()
    for t in alive:
        t.quit()
        t.wait(5000)
    assert not alive, f"{len(alive)} worker thread(s) still running after the test"


@pytest.fixture(autouse=True)
def _no_blocking_dialogs(monkeypatch):
    """A modal exec() would hang the suite: make every blocking dialog path an error."""

    def refuse(*_a, **_k):
        raise AssertionError("a blocking dialog was opened")

    monkeypatch.setattr(QMessageBox, "exec", refuse)
    monkeypatch.setattr(QDialog, "exec", refuse)
    for name in ("getOpenFileName", "getSaveFileName", "getExistingDirectory"):
        monkeypatch.setattr(QFileDialog, name, refuse)


@pytest.fixture
def make_window(qtbot, tiny_model_dir):
    """Build a MainWindow on the tiny model (waits for it to load); closed and its thread stopped after."""
    from app.main_window import MainWindow

    made = []

    def make(model_path: str | None = None, wait_model: bool = True, **kw) -> MainWindow:
        kw.setdefault("offer_recovery", False)
        kw.setdefault("settings", Settings(speed=200))
        w = MainWindow(model_path=model_path or tiny_model_dir, **kw)
        # Save / Discard / Cancel is a modal question: tests answer it here (Discard unless they say otherwise)
        w.asked, w.answer = [], "discard"
        w.ask_unsaved = lambda doing, w=w: (w.asked.append(doing), w.answer)[1]
        qtbot.addWidget(w)
        made.append(w)
        if wait_model:
            qtbot.waitUntil(lambda: w.model_info is not None or bool(w.model_error), timeout=20_000)
        return w

    yield make
    for w in made:
        w.close()
        w.client.shutdown()


@pytest.fixture
def window(make_window):
    w = make_window()
    assert w.model_info is not None, w.model_error
    return w
