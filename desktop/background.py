"""Work that must end on its own after its window has closed (the GUI thread never waits).

Closing the main window stops the in-app PACS listener (transfers in progress may take up
to core.pacs.listener.DRAIN_TIMEOUT_S to drain) and abandons queued Inbox jobs. None of
that is waited for on the GUI thread: the thread or pool is handed here, kept alive (a
running QThread must never be destroyed) and `finish_background()` waits for it once the
event loop has ended (desktop.app, after app.exec(); also at interpreter exit).
"""
from __future__ import annotations

import atexit
import time

from PySide6.QtCore import QThread, QThreadPool

FINISH_TIMEOUT_S = 90.0
_retired: list[tuple[object, tuple]] = []  # (QThread | QThreadPool, objects kept alive with it)
_atexit_registered = False


def _register() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(finish_background)
        _atexit_registered = True


def retire_thread(thread: QThread, *keep) -> None:
    """Keep `thread` (and e.g. its worker object) alive until it has finished by itself."""
    _register()
    _retired.append((thread, keep))


def retire_pool(pool: QThreadPool, keep_queued: bool = False) -> None:
    """Let a pool's running jobs finish without its owner (queued ones are dropped unless
    `keep_queued`: e.g. the listener's stop, queued behind its start)."""
    _register()
    if not keep_queued:
        pool.clear()
    pool.setParent(None)  # a pool's destructor waits for its jobs: it must not die with its widget
    _retired.append((pool, ()))


def _running(item) -> bool:
    if isinstance(item, QThread):
        return item.isRunning()
    return item.activeThreadCount() > 0 or not item.waitForDone(0)


def pending() -> int:
    """How many retired threads or pools are still working."""
    return sum(1 for item, _keep in _retired if _running(item))


def finish_background(timeout_s: float = FINISH_TIMEOUT_S) -> bool:
    """Wait for retired work; call only when no window is left to freeze. True when all ended."""
    deadline = time.monotonic() + timeout_s
    for item, _keep in list(_retired):
        left_ms = max(0, int((deadline - time.monotonic()) * 1000))
        if isinstance(item, QThread):
            item.wait(left_ms)
        else:
            item.waitForDone(left_ms)
    _retired[:] = [(item, keep) for item, keep in _retired if _running(item)]
    return not _retired
