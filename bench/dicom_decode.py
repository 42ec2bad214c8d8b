"""Large-DICOM decode benchmark: prints ONE JSON object.

    python bench/dicom_decode.py [--runs 3] [--side 3000]

Builds a 12-bit windowed DICOM from a full-resolution chest X-ray of the
shared data (resized to SIDE x 0.83*SIDE), then times `load_image` at full
resolution and at `max_side=224` (screening size), and measures Python's
peak allocation (tracemalloc) of one load each. A reduced decode shrinks the
stored values before the LUT chain, so it should be faster and far smaller.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]


def make_dicom(folder: Path, side: int) -> Path:
    import cv2
    import numpy as np

    import conftest_loader_helpers as h

    grey = h.read_grey(h.large_source()).astype(np.uint16) * 16
    grey = cv2.resize(grey, (int(side * 0.83), side), interpolation=cv2.INTER_AREA)
    ds = h.with_pixels(grey, "MONOCHROME2", 12, WindowCenter=2048, WindowWidth=4096)
    return h.save(ds, folder / "large.dcm")


def measure(path: Path, max_side, runs: int) -> dict:
    from core.imaging.loader import load_image

    load_image(path, max_side=max_side)  # warm the file cache
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        load_image(path, max_side=max_side)
        times.append(time.perf_counter() - started)
    tracemalloc.start()
    load_image(path, max_side=max_side)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"seconds_median": round(statistics.median(times), 4), "peak_mb": round(peak / 1e6, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--side", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = make_dicom(Path(tmp), args.side)
        report = {"file_mb": round(path.stat().st_size / 1e6, 1),
                  "full": measure(path, None, args.runs),
                  "max_side_224": measure(path, 224, args.runs)}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
