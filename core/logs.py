"""The application log: one rotating file in the user data folder.

`setup_logging()` (called once by the desktop app at start-up) sends the
`pneumoscan` loggers (worker errors, store failures, PACS service messages) to
`<user data>/logs/pneumoscan.log` (rotated at LOG_BYTES, LOG_BACKUPS old files kept), and
points `faulthandler` at a second file beside it, `crash.log`, so a native crash
(a segfault in a worker thread) leaves every thread's Python stack behind.
faulthandler needs a file descriptor that stays open and is never rotated, hence the
separate file; the next start copies what a crash left there into the log.

Qt-free: the CLI may call it too. Safe to call twice (the handlers are set once).
"""
from __future__ import annotations

import faulthandler
import logging
import logging.handlers
import sys
from pathlib import Path

from core import paths

LOGGER = "pneumoscan"
LOG_NAME = "pneumoscan.log"
CRASH_NAME = "crash.log"
LOG_BYTES = 2_000_000
LOG_BACKUPS = 3
_FORMAT = "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"
_state: dict = {}


def logs_dir() -> Path:
    path = paths.user_data_dir() / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_path() -> Path:
    return logs_dir() / LOG_NAME


def crash_path() -> Path:
    return logs_dir() / CRASH_NAME


def get_logger(name: str = "") -> logging.Logger:
    return logging.getLogger(f"{LOGGER}.{name}" if name else LOGGER)


def setup_logging(level: int = logging.INFO) -> Path:
    """Log to the rotating file (and faulthandler to crash.log); returns the log file's path.

    A folder that cannot be written is not fatal: the log then goes to stderr only.
    """
    target = log_path()
    if _state.get("path") == target:
        return target
    shutdown_logging()
    root = logging.getLogger(LOGGER)
    root.setLevel(level)
    try:
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            target, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8", delay=True)
    except OSError as exc:
        handler = logging.StreamHandler(sys.stderr)
        print(f"pneumoscan: cannot write the log file {target}: {exc}", file=sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT))
    root.addHandler(handler)
    _carry_over_crash(root)
    _state.update(path=target, handler=handler, crash_file=_enable_faulthandler())
    return target


def _carry_over_crash(root: logging.Logger) -> None:
    """A previous run's native crash (faulthandler's stacks) goes into the log, once."""
    report = crash_report()
    if report:
        root.error("the previous run ended in a native crash; faulthandler wrote:\n%s", report)
        try:
            crash_path().write_text("", encoding="utf-8")
        except OSError:
            pass


def _enable_faulthandler():
    """All threads' stacks to crash.log on SIGSEGV/SIGABRT/... (appended; the file stays open)."""
    try:
        crash_file = open(crash_path(), "a", encoding="utf-8")  # noqa: SIM115 (must stay open)
    except OSError:
        return None
    faulthandler.enable(file=crash_file, all_threads=True)
    return crash_file


def shutdown_logging() -> None:
    """Detach what setup_logging attached (tests; a second setup with another user folder)."""
    handler = _state.pop("handler", None)
    if handler is not None:
        logging.getLogger(LOGGER).removeHandler(handler)
        handler.close()
    crash_file = _state.pop("crash_file", None)
    if crash_file is not None:
        if faulthandler.is_enabled():
            faulthandler.disable()
        crash_file.close()
    _state.pop("path", None)


def crash_report() -> str:
    """What faulthandler wrote to crash.log (a previous run's native crash), or ''."""
    try:
        return crash_path().read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def log_exception(exc: BaseException, context: str, logger: str = "desktop") -> None:
    """One error with its traceback in the log (the window shows the readable line)."""
    get_logger(logger).error("%s: %s", context, exc, exc_info=(type(exc), exc, exc.__traceback__))
