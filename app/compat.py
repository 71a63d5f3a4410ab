"""Work around PySide6 6.12.0 on Python 3.11: its void methods drop a reference to None.

PySide6 6.12.0 returns ``None`` from every void method without taking a
reference (harmless from Python 3.12 on, where None is immortal, PEP 683). On
3.11 each call lowers None's reference count by one, and after some thousands
of calls (masking a long text, a fill) Python aborts with "none_dealloc:
deallocating None". 6.11.x does not have the bug; the real fix is a version
pin (``PySide6-Essentials<6.12`` or Python >= 3.12).

``guard_none_refcount`` probes for the bug once and, only when it is present,
gives None a reference count no run of the app can exhaust, which is what
Python 3.12 does for every build.
"""

from __future__ import annotations

import ctypes
import sys

GUARD = 1 << 40  # a trillion leaked references before None could reach zero
applied = False


def leaks_none(calls: int = 512) -> bool:
    """True if a void PySide6 call lowers None's reference count (the 6.12.0 bug)."""
    if sys.version_info >= (3, 12):
        return False  # None is immortal: the bug cannot hurt
    from PySide6.QtGui import QColor, QTextCharFormat

    fmt, colour = QTextCharFormat(), QColor(0, 0, 0)
    for _ in range(32):  # the first calls fill PySide's signature caches (which hold None)
        fmt.setBackground(colour)
    before = sys.getrefcount(None)
    for _ in range(calls):
        fmt.setBackground(colour)
    return sys.getrefcount(None) < before - calls // 2


def guard_none_refcount() -> bool:
    """Apply the guard if this PySide6 needs it; returns whether it is applied."""
    global applied
    if not applied and leaks_none():
        ctypes.c_ssize_t.from_address(id(None)).value += GUARD  # ob_refcnt is PyObject's first field
        applied = True
    return applied
