"""Bad model folders, autosave and recovery, run export and re-open, frames, compare, settings."""

from __future__ import annotations

import json

from PIL import Image

from app import autosave
from app.frames import render_frames
from app.run_record import load_run
from app.settings import Settings, load_settings, save_settings, settings_path

TEXT = "It is a truth universally acknowledged, that a single man in possession of a good fortune."


def fill(w, qtbot, positions):
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(positions)
    w.run_fill()
    qtbot.waitUntil(lambda: w.runner.run is not None and w.runner.run.done and not w.runner.running
                    and not w.client.busy, timeout=20_000)


def test_bad_model_folder_gives_a_message_and_editing_works(make_window, qtbot, tmp_path, tiny_model_dir):
    bad = tmp_path / "broken"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    w = make_window(model_path=str(bad))
    assert w.model_info is None
    assert "not valid JSON" in w.model_error
    assert any("Could not load the model" in m for m in w.messages)
    assert w.model_label.text() == "model: none"
    w.mdoc.set_text(TEXT)  # the editor still works
    assert w.mdoc.mask(range(3)) == 3
    w.run_fill()  # no model: a status message, no crash
    assert any("No model is loaded" in m for m in w.messages)
    w.load_model(tiny_model_dir)  # and another model can be opened
    qtbot.waitUntil(lambda: w.model_info is not None, timeout=20_000)
    assert "tiny" in w.model_label.text()
    assert w.device_label.text().startswith("device: CPU")


def test_missing_default_model_is_a_message(make_window, tmp_path):
    w = make_window(model_path=str(tmp_path / "nowhere"))
    assert "model folder not found" in w.model_error


def test_autosave_and_recovery(make_window, qtbot):
    assert autosave.read_snapshot() is None
    w = make_window(wait_model=False)
    w.mdoc.set_text(TEXT)
    w.mdoc.mask(range(5, 9))
    assert w.autosave_now()
    assert not w.autosave_now()  # unchanged: no new write
    snap = autosave.read_snapshot()
    assert snap.text == TEXT and snap.masked == [5, 6, 7, 8]
    # a crash: the window never closes; the next start offers the snapshot back
    w2 = make_window(wait_model=False, offer_recovery=True)
    assert w2.recovery is not None
    w2.show()
    qtbot.waitUntil(lambda: getattr(w2, "recovery_box", None) is not None, timeout=5000)
    assert w2.recovery_box.isVisible() and not w2.recovery_box.isModal()
    assert w2.recover()
    st = w2.mdoc.state()
    assert st.original == TEXT and st.masked == (5, 6, 7, 8)
    w2.close()  # a clean exit removes the snapshot once the user discarded (or saved) the work
    assert w2.asked == ["closing"]
    assert autosave.read_snapshot() is None


def test_autosave_timer_writes_by_itself(make_window, qtbot):
    w = make_window(wait_model=False, settings=Settings(autosave_seconds=1))
    w.mdoc.set_text(TEXT)
    w.mdoc.mask([1])
    qtbot.waitUntil(lambda: autosave.read_snapshot() is not None, timeout=5000)


def test_export_then_reopen_and_replay(window, make_window, qtbot, tmp_path):
    fill(window, qtbot, range(10, 25))
    run = window.runner.run
    path = tmp_path / "run.json"
    assert window.export_run(path)
    raw = json.loads(path.read_text())
    assert raw["format"] == "ardm-studio-run" and len(raw["steps"]) == len(run.steps)
    assert raw["result"] == run.result()
    again = load_run(path)
    assert again.steps == run.steps and again.masked == run.masked and again.text == run.text
    w2 = make_window(wait_model=False)
    assert w2.open_file(path)  # a .json file opens as a run
    assert w2.mdoc.state().masked == tuple(range(10, 25))
    assert w2.runner.recorded == len(run.steps) and w2.runner.view == 0
    w2.run_fill()  # replays the recorded steps, no model needed
    qtbot.waitUntil(lambda: w2.runner.view == w2.runner.recorded and not w2.runner.running, timeout=10_000)
    assert w2.mdoc.state().display == run.result()
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    assert not w2.open_file(bad)
    assert any("Could not open the run" in m for m in w2.messages)


def test_open_and_save_text(make_window, tmp_path):
    w = make_window(wait_model=False)
    src = tmp_path / "in.txt"
    src.write_bytes(("\ufeff" + TEXT + "\r\n").encode())
    assert w.open_file(src)
    assert w.mdoc.state().display == TEXT + "\n"
    w.mdoc.mask(range(3))
    out = tmp_path / "out.txt"
    assert w.save_to(out)
    assert out.read_text(encoding="utf-8") == TEXT + "\n"  # masks are saved as their originals
    assert str(out.resolve()) == w.settings.recent_files[0]
    nope = tmp_path / "latin1.txt"
    nope.write_bytes(b"caf\xe9")
    assert not w.open_file(nope)
    assert any("not UTF-8" in m for m in w.messages)


def test_gif_and_png_frames(window, qtbot, tmp_path):
    fill(window, qtbot, range(0, 8))
    run = window.runner.run
    gif = tmp_path / "fill.gif"
    assert list(render_frames(run, len(run.steps), gif, "gif"))[-1] == len(run.steps) + 1
    with Image.open(gif) as im:
        assert im.n_frames == len(run.steps) + 1
    window.client.export_frames(run, len(run.steps), str(tmp_path / "frames"), "png")
    qtbot.waitUntil(lambda: not window.client.busy, timeout=20_000)
    assert len(list((tmp_path / "frames").glob("frame_*.png"))) == len(run.steps) + 1


def test_compare_orders_table(window, qtbot):
    window.mdoc.set_text(TEXT)
    window.mdoc.mask(range(0, 20))
    window.compare_orders(["l2r", "r2l"])
    qtbot.waitUntil(lambda: len(window.compare_panel.rows) == 2 and not window.client.busy, timeout=20_000)
    rows = window.compare_panel.rows
    assert [r.order for r in rows] == ["l2r", "r2l"]
    assert all(len(r.bits) == 20 and r.total_bits > 0 for r in rows)
    assert window.compare_panel.table.rowCount() == 2


def test_settings_round_trip_and_bad_values(tmp_path):
    s = Settings(font_size=15, theme="dark", last_order="l2r", budget_k=12, temperature=0.9, colour_mode="bits")
    s.add_recent(tmp_path / "a.txt")
    save_settings(s)
    back = load_settings()
    assert back == s
    settings_path().write_text(json.dumps({"font_size": 999, "theme": "neon", "temperature": "hot"}))
    odd = load_settings()
    assert odd.font_size == 72 and odd.theme == "light" and odd.temperature == Settings().temperature
    settings_path().write_text("garbage")
    assert load_settings() == Settings()


def test_closing_saves_settings(make_window):
    w = make_window(wait_model=False)
    w.order_panel.set_order("l2r")
    w.order_panel.temperature.setValue(0.5)
    w.close()
    s = load_settings()
    assert s.last_order == "l2r" and s.temperature == 0.5


def test_a_bad_model_folder_keeps_the_loaded_model_and_is_not_remembered(window, qtbot, tmp_path, monkeypatch,
                                                                          tiny_model_dir):
    from PySide6.QtWidgets import QFileDialog

    w = window
    good = w.model_info
    bad = tmp_path / "broken"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    chosen = [str(bad)]
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: chosen[0])
    w.open_model_dialog()
    qtbot.waitUntil(lambda: "not valid JSON" in w.model_error, timeout=20_000)
    assert w.model_info == good  # the worker still holds it, so the window still uses it
    assert w.model_label.text().startswith(f"model: {good.name} (")
    assert any(f"Still using the model {good.name}" in m for m in w.messages)
    assert w.settings.model_path == ""  # the next start must not open the broken folder
    fill(w, qtbot, range(3, 9))  # fills still work
    assert w.mdoc.state().masked == ()
    chosen[0] = tiny_model_dir
    w.open_model_dialog()
    qtbot.waitUntil(lambda: not w.model_error and not w.client.busy, timeout=20_000)
    assert w.settings.model_path == tiny_model_dir


def test_a_reopened_run_can_be_resampled_and_run_again(window, make_window, qtbot, tmp_path):
    fill(window, qtbot, range(10, 16))
    assert window.playback.resample_btn.isEnabled() and window.actions_["resample"].isEnabled()
    path = tmp_path / "run.json"
    assert window.export_run(path)
    recorded = list(window.runner.run.steps)
    w2 = make_window()
    assert w2.open_file(path)
    assert w2.runner.run.options == window.runner.run.options  # the panel shows the run's options
    assert w2.panel_matches(w2.runner.run)
    w2.runner.seek(3)
    assert w2.playback.back_btn.isEnabled()
    assert w2.playback.resample_btn.isEnabled() and w2.actions_["resample"].isEnabled()
    seed = w2.order_panel.seed.value()
    w2.resample()  # the worker rebuilds a session from the 3 recorded steps and samples the rest
    qtbot.waitUntil(lambda: w2.runner.run.done and not w2.runner.running and not w2.client.busy, timeout=20_000)
    run = w2.runner.run
    assert run.steps[:3] == recorded[:3]
    assert [s.index for s in run.steps] == list(range(len(run.steps)))
    assert sorted(p for s in run.steps for p in s.positions) == list(range(10, 16))
    assert run.steps[3].cumulative_bits == recorded[2].cumulative_bits + run.steps[3].step_bits
    assert run.steps[3].network_calls == recorded[2].network_calls + 1
    assert run.options.seed == seed + 1 == w2.order_panel.seed.value()
    assert w2.mdoc.state().display == run.result() and w2.mdoc.state().masked == ()
    # Run at the end of a complete run plays it again (never "Nothing to fill")
    w2.run_fill()
    qtbot.waitUntil(lambda: w2.runner.view == len(run.steps) and not w2.runner.running, timeout=10_000)
    assert not any("Nothing to fill" in m for m in w2.messages)
    assert w2.runner.run is run and w2.mdoc.state().display == run.result()
    # and it can be resampled again from an earlier step, before the rebuilt session's start
    w2.runner.seek(1)
    w2.resample()
    qtbot.waitUntil(lambda: w2.runner.run.done and not w2.runner.running and not w2.client.busy, timeout=20_000)
    assert w2.runner.run.steps[:1] == recorded[:1] and w2.last_error is None
