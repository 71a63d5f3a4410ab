"""Train → "Train on my writing…": refuses an empty folder, trains in its own worker with progress,
pauses and resumes, shows before/after and lists the new model beside the shipped ones."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from ardm_core.finetune import user_models, user_models_dir  # noqa: E402
from tests.app.conftest import _no_blocking_dialogs, _no_leaked_threads, make_window, window  # noqa: E402,F401
from tests.conftest import SAMPLE_TEXT  # noqa: E402


@pytest.fixture
def writing(tmp_path):
    d = tmp_path / "writing"
    d.mkdir()
    (d / "story.txt").write_text(SAMPLE_TEXT * 8)
    (d / "scan.txt").write_bytes(b"\x00\xff" * 50)
    return d


def _scanned(dialog, qtbot, sources):
    dialog.set_sources([str(s) for s in sources])
    qtbot.waitUntil(lambda: dialog.scan is not None, timeout=30_000)


def test_an_empty_folder_is_refused_clearly(window, tmp_path):
    d = window.trainer.open_dialog()
    (tmp_path / "empty").mkdir()
    d.set_sources([str(tmp_path / "empty")])
    assert "no text files" in d.message and not d.start_btn.isEnabled()
    d.close()


def test_binary_only_folder_is_refused_after_the_scan(window, qtbot, tmp_path):
    d = window.trainer.open_dialog()
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.txt").write_bytes(b"\x00\x01" * 64)
    d.set_sources([str(junk)])
    qtbot.waitUntil(lambda: "no text to train on" in d.message, timeout=30_000)
    assert not d.start_btn.isEnabled()
    d.close()


def test_train_pause_resume_and_before_after(window, qtbot, writing):
    w = window
    d = w.trainer.open_dialog()
    _scanned(d, qtbot, [writing])
    assert "outside the" in d.found.text() and "scan.txt" in d.found.text() and "steps" in d.found.text()
    assert d.start_btn.isEnabled()
    d.steps_override = 40
    d.name.setText("mine")
    steps_seen = []
    w.trainer.client.event.connect(lambda ev: steps_seen.append(getattr(ev, "step", None)))
    d.start()
    assert d.training and d.pause_btn.isEnabled()
    qtbot.waitUntil(lambda: d.progress.value() >= 3, timeout=60_000)
    d.pause()
    qtbot.waitUntil(lambda: not d.training, timeout=60_000)
    assert d.result is not None and d.result.interrupted and d.result.step < 40
    assert "Resume continues" in d.message
    # the stopped run is offered for resuming (also after a restart: it is read from the folder)
    assert d.resume_box.count() == 1 and "mine" in d.resume_box.itemText(0)
    d.resume_selected()
    qtbot.waitUntil(lambda: not d.training and d.result is not None and not d.result.interrupted, timeout=120_000)
    r = d.result
    assert r.step == 40 and r.bpc_after < r.bpc_before
    assert d.before_bpc.text().startswith(f"{r.bpc_before:.3f}") and d.after_bpc.text().startswith(f"{r.bpc_after:.3f}")
    assert d.before_fill.text() and d.after_fill.text()
    assert d.resume_box.count() == 0
    # saved under the user's data folder, with its card, and listed in the model chooser
    assert user_models() == [user_models_dir() / "mine" / "model"]
    assert (user_models_dir() / "mine" / "model" / "MODEL_CARD.md").exists()
    labels = [label for label, _ in w.trainer.model_choices()]
    assert "mine (yours)" in labels
    # a shipped model's label carries its one-line summary, so the two sizes can be told apart
    assert "medium (shipped, 10.8M parameters: better text, about 2.5x slower)" in labels
    d.use_new_model()
    qtbot.waitUntil(lambda: w.model_info is not None and w.model_info.path.endswith("model")
                    and "mine" in w.model_info.path, timeout=30_000)
    d.close()


def test_quitting_mid_run_keeps_a_resumable_checkpoint(make_window, qtbot, writing):
    w = make_window()
    d = w.trainer.open_dialog()
    _scanned(d, qtbot, [writing])
    d.steps_override = 400
    d.name.setText("quit")
    d.start()
    qtbot.waitUntil(lambda: d.progress.value() >= 2, timeout=60_000)
    w.close()  # the window's close stops training at the end of the step, with a checkpoint
    from app.train_job import unfinished_runs

    runs = unfinished_runs()
    assert [r.name for r in runs] == ["quit"] and 2 <= runs[0].step < 400


def test_model_label_summary_survives_a_bad_config(tmp_path):
    """A summary is read from untrusted JSON: anything odd gives no summary, never an error."""
    from app.train_dialog import _summary

    cases = {'{"meta": {"summary": "small and quick"}}': ", small and quick", "[1, 2]": "", '{"meta": [1]}': "",
             '{"meta": {"summary": 5}}': "", "not json": "", '{"meta": {"summary": "' + "x" * 500 + '"}}': ", " + "x" * 80}
    for content, want in cases.items():
        (tmp_path / "config.json").write_text(content)
        assert _summary(tmp_path) == want, content
    (tmp_path / "config.json").unlink()
    assert _summary(tmp_path) == ""
