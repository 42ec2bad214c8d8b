"""Reading-window responsiveness benchmark: prints ONE JSON object.

    QT_QPA_PLATFORM=offscreen python bench/reading.py [--images 600]

A synthetic study (no model, no files) of --images rows is fed into the real
MainWindow the way screening feeds it, then timed:

- refresh_ms: one full redraw from the session (table, counts, filters, details);
- threshold_ms: moving the threshold (re-labels every row, rebuilds the queue);
- stream_s: adding every result one by one with the window's coalesced redraws;
- session_counts_ms: ReadingSession.counts() alone (no Qt).

The GUI thread must stay well under 100 ms per step for a 600-image study.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=600)
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["PNEUMOSCAN_HOME"] = tempfile.mkdtemp(prefix="pneumoscan-bench-reading-")
    import numpy as np
    from PySide6.QtWidgets import QApplication

    from core.screening.results import NEGATIVE, POSITIVE, ScreenResult
    from core.reading.cells import NEEDS_REVIEW
    from desktop.main_window import MainWindow
    from desktop.settings import AppSettings

    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow(AppSettings(persist=False), store_path=Path(os.environ["PNEUMOSCAN_HOME"]) / "s.sqlite3",
                        quiet=True)
    window.resize(1280, 800)
    window.show()
    app.processEvents()
    folder = "/bench/study"
    keys = [f"{folder}/person{i}_bacteria_{i * 3}.jpeg" for i in range(args.images)]
    window.session.open_study(folder, keys, {k: POSITIVE if i % 2 else NEGATIVE for i, k in enumerate(keys)})
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for key in keys:
        result = ScreenResult(path=key, probability=float(rng.random()), threshold=0.5, model="bench",
                              model_version="1", model_hash="bench")
        window.on_job_event("result", (result, None))
        app.processEvents()
    window.refresh()
    stream_s = time.perf_counter() - started

    def timed(step, rounds: int = 10) -> float:
        begin = time.perf_counter()
        for _ in range(rounds):
            step()
            app.processEvents()
        return 1000 * (time.perf_counter() - begin) / rounds

    refresh_ms = timed(window.refresh)
    threshold_ms = timed(lambda: window.set_threshold(float(rng.uniform(0.05, 0.95))))
    window.open_queue(NEEDS_REVIEW)
    queue_threshold_ms = timed(lambda: window.set_threshold(float(rng.uniform(0.05, 0.95))))
    counts_ms = timed(window.session.counts, rounds=20)
    window.close()
    print(json.dumps({
        "images": args.images,
        "refresh_ms": round(refresh_ms, 1),
        "threshold_ms": round(threshold_ms, 1),
        "threshold_with_queue_open_ms": round(queue_threshold_ms, 1),
        "stream_s": round(stream_s, 2),
        "session_counts_ms": round(counts_ms, 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
