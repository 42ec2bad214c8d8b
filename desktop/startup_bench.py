"""Start-up timing of the desktop app, for the benchmark script.

`measure_startup()` runs `pneumoscan --smoke-test` in fresh processes (a cold
Python each time, like a user's launch) and reports how long the window took
to appear (timed inside the app from its first statement) and how long the
whole smoke run took. Usage: `python -m desktop.startup_bench [FOLDER] [--repeats N]`.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _one_run(folder, env) -> dict:
    command = [sys.executable, "-m", "desktop.app", "--smoke-test"] + ([str(folder)] if folder else [])
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env,
                          cwd=Path(__file__).resolve().parents[1])
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"smoke test failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    report["process_wall_s"] = round(wall, 3)
    return report


def measure_startup(folder=None, repeats: int = 3) -> dict:
    """Median window_shown_s and whole-run wall time over `repeats` cold starts."""
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env.setdefault("PNEUMOSCAN_NO_FIRST_RUN", "1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    runs = [_one_run(folder, env) for _ in range(max(1, repeats))]
    return {
        "window_shown_s": statistics.median(r["window_shown_s"] for r in runs),
        "smoke_run_wall_s": statistics.median(r["process_wall_s"] for r in runs),
        "screened": runs[-1]["screened"],
        "errors": runs[-1]["errors"],
        "device": runs[-1]["device"],
        "repeats": len(runs),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", help="study to screen (default: the sample study)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(json.dumps(measure_startup(args.folder, args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
