"""Issue 19 item 5 / issue 18: one worker mechanism; no worker error is silent.

Every job's error reaches the log file (core.logs) and the window (a notice, or the
caller's own `on_error`); a decision the store cannot write is shown as not saved,
retried in order, and closing never drops it.
"""
from __future__ import annotations

import logging
import os
import threading

import pytest
from PySide6.QtCore import QThreadPool

from core import logs
from desktop import workers
from desktop.store_worker import StoreWorker


@pytest.fixture
def log_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PNEUMOSCAN_HOME", str(tmp_path / "home"))
    path = logs.setup_logging()
    yield path
    logs.shutdown_logging()


def log_text(path) -> str:
    for handler in logging.getLogger(logs.LOGGER).handlers:
        handler.flush()
    return path.read_text(encoding="utf-8") if path.exists() else ""


class Recorder:
    def __init__(self):
        self.items = []

    def __call__(self, *args):
        self.items.append(args)


def test_the_log_lives_in_the_user_data_folder_and_faulthandler_is_on(log_file, tmp_path):
    import faulthandler

    assert log_file == tmp_path / "home" / "logs" / "pneumoscan.log"
    assert faulthandler.is_enabled()
    logs.get_logger("desktop").warning("hello log")
    assert "hello log" in log_text(log_file)


def test_a_native_crash_left_by_the_previous_run_is_carried_into_the_log(tmp_path, monkeypatch):
    monkeypatch.setenv("PNEUMOSCAN_HOME", str(tmp_path / "home"))
    logs.crash_path().write_text("Fatal Python error: Segmentation fault\nThread 0x1 (most recent call first):\n")
    try:
        path = logs.setup_logging()
        assert "Segmentation fault" in log_text(path)
        assert logs.crash_report() == ""  # carried over once
    finally:
        logs.shutdown_logging()


def test_a_real_segfault_writes_every_threads_stack_to_the_crash_file(tmp_path):
    import subprocess
    import sys

    code = ("import ctypes, threading; from core import logs; logs.setup_logging(); "
            "threading.Thread(target=lambda: ctypes.string_at(0), name='pool-thread').start()")
    env = dict(os.environ, PNEUMOSCAN_HOME=str(tmp_path / "home"))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=120,
                          cwd=str(logs.paths.bundle_root()))
    assert done.returncode != 0
    crash = (tmp_path / "home" / "logs" / "crash.log").read_text()
    assert "Segmentation fault" in crash and "most recent call first" in crash


def test_an_unhandled_worker_error_reaches_the_window_and_the_log(qtbot, log_file):
    shown = Recorder()
    workers.worker_errors().failed.connect(shown)

    def broken():
        raise ValueError("the disk said no")

    try:
        worker = workers.run_in_pool(broken, context="Loading the image")
        qtbot.waitUntil(lambda: bool(shown.items), timeout=10_000)
    finally:
        workers.worker_errors().failed.disconnect(shown)
    assert shown.items == [("Loading the image", "ValueError: the disk said no")]
    text = log_text(log_file)
    assert "Loading the image: ValueError: the disk said no" in text and "Traceback" in text
    qtbot.waitUntil(lambda: workers.running_workers() == 0, timeout=10_000)
    del worker


def test_an_error_with_its_own_handler_goes_there_not_to_the_window(qtbot, log_file):
    shown, handled = Recorder(), Recorder()
    workers.worker_errors().failed.connect(shown)
    try:
        workers.run_in_pool(lambda: 1 / 0, on_error=handled, context="Exporting")
        qtbot.waitUntil(lambda: bool(handled.items), timeout=10_000)
    finally:
        workers.worker_errors().failed.disconnect(shown)
    assert handled.items == [("ZeroDivisionError: division by zero",)] and shown.items == []
    assert "Exporting: ZeroDivisionError" in log_text(log_file)


def test_a_runtime_error_in_a_generator_job_is_reported_not_swallowed(qtbot, log_file):
    # superqt hands a generator's RuntimeError back as a return value and only warns.
    handled = Recorder()

    def job():
        yield 1
        raise RuntimeError("lost the study folder")

    worker = workers.create_worker(job)
    workers.start_worker(worker, QThreadPool.globalInstance(), "Opening the study", handled)
    qtbot.waitUntil(lambda: bool(handled.items), timeout=10_000)
    assert handled.items == [("RuntimeError: lost the study folder",)]


def test_many_short_jobs_end_and_release_their_signals_on_the_gui_thread(qtbot):
    done = []
    for i in range(200):
        workers.run_in_pool(lambda i=i: i, on_done=done.append)
    qtbot.waitUntil(lambda: len(done) == 200 and workers.running_workers() == 0, timeout=30_000)
    assert sorted(done) == list(range(200))


class FlakyStore:
    """A store whose writes fail until `healthy` is set; records what was written, in order."""

    def __init__(self):
        self.healthy = threading.Event()
        self.written = []

    def write(self, what):
        def job(_store):
            if not self.healthy.is_set():
                raise OSError("disk full")
            self.written.append(what)
            return what
        return job


def flaky_worker(tmp_path, monkeypatch):
    monkeypatch.setattr("desktop.store_worker.RETRY_DELAYS_MS", (20, 40))
    return StoreWorker(tmp_path / "store.sqlite3")


def test_a_failed_write_is_shown_unsaved_and_retried_in_order(qtbot, tmp_path, monkeypatch, log_file):
    store, flaky = flaky_worker(tmp_path, monkeypatch), FlakyStore()
    unsaved, saved = Recorder(), []
    store.unsaved_changed.connect(unsaved)
    store.session_submit(flaky.write("decision"), saved.append)
    store.session_submit(flaky.write("undo"), saved.append)  # must not overtake the decision
    qtbot.waitUntil(lambda: store.failing, timeout=10_000)
    assert store.unsaved == 2 and saved == []
    assert "Saving a decision (it is kept and retried): OSError: disk full" in log_text(log_file)
    flaky.healthy.set()
    qtbot.waitUntil(lambda: store.unsaved == 0, timeout=10_000)
    assert flaky.written == ["decision", "undo"] and saved == ["decision", "undo"]
    assert not store.failing and unsaved.items[-1] == (0,)
    store.close()


def test_closing_waits_for_queued_writes_and_says_when_it_could_not(qtbot, tmp_path, monkeypatch):
    store, flaky = flaky_worker(tmp_path, monkeypatch), FlakyStore()
    threading.Timer(0.3, flaky.healthy.set).start()  # the disk recovers while closing waits
    store.session_submit(flaky.write("decision"))
    assert store.close(timeout_ms=30_000)
    assert flaky.written == ["decision"]

    stuck, never = flaky_worker(tmp_path, monkeypatch), FlakyStore()
    stuck.session_submit(never.write("decision"))
    assert not stuck.close(timeout_ms=300)  # never healthy: reported, not silently dropped
    assert never.written == []


def test_the_window_shows_unsaved_decisions_and_closing_waits_for_them(qtbot, tmp_path, monkeypatch):
    from desktop.main_window import MainWindow
    from desktop.settings import AppSettings

    monkeypatch.setattr("desktop.store_worker.RETRY_DELAYS_MS", (20, 40))
    window = MainWindow(AppSettings(persist=False), store_path=tmp_path / "s.sqlite3", quiet=False)
    qtbot.addWidget(window)
    window.show()
    flaky = FlakyStore()
    window.store.session_submit(flaky.write("decision"))
    label = window.status.unsaved_label
    qtbot.waitUntil(label.isVisible, timeout=10_000)
    assert label.text() == "1 decision NOT SAVED yet: retrying"
    assert any("Saving a decision" in m and "disk full" in m for m in window.messages)  # the notice

    assert not window.close()  # refused: the decision is not written yet
    assert window.isVisible() and window._closing_dialog is not None
    flaky.healthy.set()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)  # closes once it is saved
    assert flaky.written == ["decision"] and not label.isVisible()


def test_a_warning_after_overlapping_jobs_is_logged_not_raised(qtbot, log_file):
    """superqt points the global warnings.showwarning at the running worker; two overlapping
    workers can leave a finished one's hook installed. A warning raised later (Keras saving a
    checkpoint in a training run) hit the deleted signals object and failed the training."""
    import warnings

    first_in, second_in, release_first, release_second = (threading.Event() for _ in range(4))

    def first():
        first_in.set()
        release_first.wait(10)

    def second():
        second_in.set()
        release_second.wait(10)

    done = []
    workers.run_in_pool(first, on_done=done.append)
    assert first_in.wait(10)
    workers.run_in_pool(second, on_done=done.append)  # enters after the first: saves its hook
    assert second_in.wait(10)
    release_first.set()
    qtbot.waitUntil(lambda: len(done) == 1, timeout=10_000)
    release_second.set()  # leaves the first's hook behind
    qtbot.waitUntil(lambda: len(done) == 2 and workers.running_workers() == 0, timeout=10_000)
    qtbot.wait(50)  # the signals objects' deferred deletes run

    caught = []
    worker = threading.Thread(target=lambda: _warn_safely("a checkpoint warning after the jobs", caught))
    worker.start()
    worker.join(10)
    assert caught == []  # no "Signal source has been deleted"
    warnings.showwarning = warnings._showwarning_orig  # leave the process as a fresh one


def _warn_safely(text, caught):
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn(text, UserWarning, stacklevel=1)
    except Exception as exc:  # noqa: BLE001 (what the training saw)
        caught.append(exc)


def test_the_gui_start_opens_the_log_and_logs_uncaught_exceptions(tmp_path, monkeypatch):
    import sys

    from desktop import app

    monkeypatch.setenv("PNEUMOSCAN_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    monkeypatch.setattr(sys, "__excepthook__", lambda *exc_info: None)  # keep stderr quiet
    try:
        path = app.start_logging()
        try:
            raise KeyError("a slot's bug")
        except KeyError as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
        text = log_text(path)
    finally:
        logs.shutdown_logging()
    assert "PneumoScan starting" in text and "uncaught exception" in text and "a slot's bug" in text
