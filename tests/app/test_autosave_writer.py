"""The background autosave writer: the newest snapshot wins, and nothing brings back a discarded one."""

from __future__ import annotations

import threading

from app import autosave
from app.autosave import AutosaveWriter, Snapshot


def test_a_background_write_lands_and_reports(tmp_path):
    reports = []
    w = AutosaveWriter(tmp_path / "a.json", done=lambda s, err: reports.append(err))
    w.submit(lambda: Snapshot(text="hello", masked=[1]))
    assert w.wait(10)
    snap = autosave.read_snapshot(tmp_path / "a.json")
    assert (snap.text, snap.masked) == ("hello", [1])
    assert reports == [None]
    assert threading.current_thread().name != "autosave"


def test_clear_drops_a_write_still_being_built(tmp_path):
    """Discard/quit while a slow snapshot is being built: the file must not come back afterwards."""
    path = tmp_path / "a.json"
    building, release = threading.Event(), threading.Event()

    def slow() -> Snapshot:
        building.set()
        release.wait(10)
        return Snapshot(text="old work", masked=[])

    w = AutosaveWriter(path)
    w.submit(slow)
    assert building.wait(10)
    w.clear()
    release.set()
    assert w.wait(10)
    assert not path.exists()


def test_a_write_now_is_never_overwritten_by_an_older_background_one(tmp_path):
    path = tmp_path / "a.json"
    building, release = threading.Event(), threading.Event()

    def slow() -> Snapshot:
        building.set()
        release.wait(10)
        return Snapshot(text="older", masked=[])

    w = AutosaveWriter(path)
    w.submit(slow)
    assert building.wait(10)
    w.write(Snapshot(text="newer", masked=[]))
    release.set()
    assert w.wait(10)
    assert autosave.read_snapshot(path).text == "newer"


def test_a_newer_submit_replaces_one_not_yet_written(tmp_path):
    path = tmp_path / "a.json"
    built = []
    started, gate = threading.Event(), threading.Event()

    def make(text):
        def f():
            started.set()
            gate.wait(10)
            built.append(text)
            return Snapshot(text=text, masked=[])
        return f

    w = AutosaveWriter(path)
    w.submit(make("first"))
    assert started.wait(10)  # the thread is building "first"
    w.submit(make("second"))
    w.submit(make("third"))  # replaces "second" before it starts
    gate.set()
    assert w.wait(10)
    assert autosave.read_snapshot(path).text == "third"
    assert built == ["first", "third"]  # "first" was built but not written over the newer request


def test_a_failed_write_is_reported_and_the_thread_goes_on(tmp_path):
    reports = []
    blocker = tmp_path / "file"
    blocker.write_text("x")
    w = AutosaveWriter(blocker / "a.json", done=lambda s, err: reports.append(err))  # a file as the folder
    w.submit(lambda: Snapshot(text="x", masked=[]))
    assert w.wait(10)
    assert isinstance(reports[-1], OSError)
    w.path = tmp_path / "b.json"
    w.submit(lambda: Snapshot(text="y", masked=[]))
    assert w.wait(10)
    assert reports[-1] is None and autosave.read_snapshot(tmp_path / "b.json").text == "y"


def test_json_pieces_join_to_exactly_what_json_dumps_writes():
    import json
    import random

    from app.autosave import JSON_OPTIONS, PIECE, json_pieces

    rng = random.Random(0)
    big = list(range(3 * PIECE + 7))
    nested = [[i, chr(0x41 + i % 50) + "é\"\\\n"] for i in range(2 * PIECE + 1)]
    cases = [
        {"format": "x", "text": "héllo \"world\"\n\u2028 \U0001f600", "masked": big, "filled": nested,
         "run": {"steps": [{"positions": big[:10], "chars": "ab"}] * (PIECE + 3), "done": True}, "view": 3,
         "saved_at": 1.5, "none": None},
        [], {}, [big], "plain", 7, [[big, big], {"a": big}],
        [rng.random() for _ in range(PIECE + 1)],
    ]
    for obj in cases:
        assert "".join(json_pieces(obj)) == json.dumps(obj, **JSON_OPTIONS)


def test_a_written_snapshot_reads_back_with_many_masks(tmp_path):
    masked = list(range(0, 200_000, 2))
    snap = Snapshot(text="ab" * 100_000, masked=masked, filled=[(1, "x"), (3, "y")])
    autosave.write_snapshot(snap, tmp_path / "a.json")
    back = autosave.read_snapshot(tmp_path / "a.json")
    assert back.masked == masked and back.filled == [(1, "x"), (3, "y")] and back.text == snap.text
