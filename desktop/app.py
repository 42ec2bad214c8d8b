"""`pneumoscan [FOLDER]`: the desktop application entry point.

`pneumoscan --smoke-test [FOLDER]` opens the window off-screen, screens the
folder (default: the sample study) and prints one JSON line for CI and the
start-up benchmark.
"""
import time

PROCESS_T0 = time.perf_counter()  # first: window_shown_s counts from here

import argparse  # noqa: E402  (imports after the clock on purpose)
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

SMOKE_TIMEOUT_S = 600


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="pneumoscan",
        description="PneumoScan: chest X-ray pneumonia screening with Grad-CAM review "
                    "(research use only, not for diagnosis).")
    parser.add_argument("folder", nargs="?", help="study folder to open (default: the last one)")
    parser.add_argument("--smoke-test", action="store_true",
                        help="open the window, screen FOLDER (default: the sample study), print JSON and exit")
    return parser.parse_args(argv)


def _make_application():
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("PneumoScan")
    app.setApplicationName("PneumoScan")
    from core.paths import resources_dir

    style = resources_dir() / "styles" / "pneumoscan.qss"
    if style.is_file():
        app.setStyleSheet(style.read_text(encoding="utf-8"))
    icon = resources_dir() / "icons" / "pneumoscan.png"
    if icon.is_file():
        from PySide6.QtGui import QIcon
        app.setWindowIcon(QIcon(str(icon)))
    app.setDesktopFileName("pneumoscan")  # matches pneumoscan.desktop (taskbar icon on Wayland)
    return app


def start_folder(cli_folder, settings):
    """CLI folder, else the last study, else the sample study (first launch), else none."""
    from core.paths import sample_study_dir

    if cli_folder:
        return Path(cli_folder)
    last = settings.last_study
    if last and Path(last).is_dir():
        return Path(last)
    sample = sample_study_dir()
    return sample if sample.is_dir() else None


def _log_uncaught(exc_type, exc, tb) -> None:
    """An exception no slot caught (Qt would print it and go on): into the log, then stderr."""
    from core.logs import get_logger

    get_logger("desktop").error("uncaught exception", exc_info=(exc_type, exc, tb))
    sys.__excepthook__(exc_type, exc, tb)


def start_logging() -> Path:
    """The rotating log file and faulthandler (core.logs); uncaught exceptions go there too."""
    from core.logs import get_logger, setup_logging

    path = setup_logging()
    sys.excepthook = _log_uncaught
    get_logger("desktop").info("PneumoScan starting (log: %s)", path)
    return path


def run_gui(folder) -> int:
    start_logging()
    app = _make_application()
    from desktop.main_window import MainWindow
    from desktop.settings import AppSettings

    settings = AppSettings()
    window = MainWindow(settings)
    window.show()
    target = start_folder(folder, settings)
    window.start(target)
    if target is None:
        window.statusBar().showMessage("Open a study folder to begin (File > Open folder…)")
    window.show_first_run_notice()
    code = app.exec()
    from desktop.background import finish_background

    finish_background()  # e.g. the listener draining its transfers, now that no window is left to freeze
    return code


def run_smoke_test(folder) -> int:
    """Screen a folder through the real window; JSON on stdout, exit 1 if nothing screened."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from core.paths import sample_study_dir

    folder = Path(folder) if folder else sample_study_dir()
    if not folder.is_dir():
        print(f"pneumoscan --smoke-test: study folder not found: {folder}", file=sys.stderr)
        return 2
    app = _make_application()
    from PySide6.QtCore import QTimer

    from desktop.main_window import MainWindow
    from desktop.settings import AppSettings

    with tempfile.TemporaryDirectory(prefix="pneumoscan-smoke-") as scratch:
        # A throwaway store: every file is really screened, the user's store is untouched.
        window = MainWindow(AppSettings(persist=False), store_path=Path(scratch) / "smoke.sqlite3", quiet=True)
        window.show()
        app.processEvents()
        shown_s = time.perf_counter() - PROCESS_T0
        outcome: dict = {}

        def finish(**values):
            outcome.update(values)
            app.quit()

        window.screening_finished.connect(lambda summary: finish(summary=summary))
        window.screening_failed.connect(lambda message: finish(failure=message))
        QTimer.singleShot(SMOKE_TIMEOUT_S * 1000, lambda: finish(failure="timed out"))
        window.start(folder)
        app.exec()
        rows = window.results_model.rows()
        window.close()

    screened = sum(1 for row in rows if row.probability is not None)
    errors = sum(1 for row in rows if row.error)
    report = {"window_shown_s": round(shown_s, 3), "screened": screened, "errors": errors,
              "device": window.device or (outcome.get("summary") or {}).get("device", "")}
    print(json.dumps(report), flush=True)
    if "failure" in outcome:
        print(f"pneumoscan --smoke-test: {outcome['failure']}", file=sys.stderr)
        return 1
    if screened == 0:
        print(f"pneumoscan --smoke-test: nothing could be screened in {folder}", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.smoke_test:
        return run_smoke_test(args.folder)
    return run_gui(args.folder)


if __name__ == "__main__":
    sys.exit(main())
