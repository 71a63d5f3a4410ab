"""One short job in a plain Python thread, its result handed back to the GUI thread by a signal.

For work that holds no Qt object (numpy and Python only) and takes long
enough to stall the window: finding a mask tool's positions over 2 MB,
building a run's strings. The engine's model work has its own worker thread
(app.worker); the autosave has its writer (app.autosave).
"""

from __future__ import annotations

import threading
from collections.abc import Callable


def beside(name: str, fn: Callable[[], object], deliver, tag: object,
           catch: tuple[type[BaseException], ...] = (Exception,)) -> None:
    """Run ``fn()`` in a thread called ``name``; emit ``(tag, result)`` on ``deliver``, or ``(tag, exception)``
    when it raised one of ``catch``. ``deliver`` is a signal of a QObject living in the GUI thread, so its slot
    runs there, queued; if that object has gone meanwhile the result is dropped."""
    def work() -> None:
        try:
            out = (tag, fn())
        except catch as exc:
            out = (tag, exc)
        try:
            deliver.emit(out)
        except RuntimeError:  # the receiver has been deleted meanwhile
            pass

    threading.Thread(target=work, name=name, daemon=True).start()
