"""`pneumoscan-cli screen FOLDER`: screen every image below a folder, one CSV row each.

Rows are written (and flushed) in discovery order as results arrive, each only
after its result is committed to the results store, so a killed run loses
nothing it reported and a rerun reuses every stored result whose file and
model are unchanged. TensorFlow is imported only when the command runs.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from core.cli.command import UsageError, add_command
from core.cli.exit_codes import EXIT_FAILURE, EXIT_OK, EXIT_USAGE

# The CSV contract; rows are written through this list, so a column is added in one place.
CSV_COLUMNS = ("path", "probability", "prediction", "threshold", "model", "error", "scope")
HEATMAP_MAX_SIDE = 1024  # heatmap PNGs stay reviewable without full-resolution size
HEATMAP_ALPHA = 0.4


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "screen", run,
        "screen every image in a folder and write a CSV of results",
        "Screen every image below FOLDER with a registered model. Writes one CSV row per "
        "file (path,probability,prediction,threshold,model,error,scope; prediction is NORMAL, "
        "PNEUMONIA or OUT_OF_SCOPE, scope the reason an image is outside what the model "
        "knows) and keeps every result "
        "in the results store, so unchanged files are not screened again.")
    parser.add_argument("folder", metavar="FOLDER", help="study folder (searched recursively)")
    parser.add_argument("--model", metavar="NAME", default=None,
                        help="registered model name ('name' or 'name vN'), or a .keras file with its "
                             "card next to it (default: the default model)")
    parser.add_argument("--threshold", type=float, default=None, metavar="T",
                        help="decision threshold in [0, 1] (default: the model card's)")
    parser.add_argument("--out", metavar="CSV", default=None, help="write the CSV here (default: stdout)")
    parser.add_argument("--heatmaps", metavar="DIR", default=None,
                        help="also write a Grad-CAM overlay PNG per image, mirroring the folder tree")
    parser.add_argument("--batch-size", type=int, default=16, metavar="B", help="images per batch (default 16)")
    parser.add_argument("--rescreen", action="store_true",
                        help="screen every file again instead of reusing stored results")


def run(args: argparse.Namespace) -> int:
    try:
        folder, threshold = _check_arguments(args)
        from core.imaging.discovery import discover_study

        discovery = discover_study(folder)
        files = discovery.images
        if not files:
            raise UsageError(f"no image files found in {folder}{_skipped_note(discovery)}")
        loaded = _load_model(args.model)
        screener = _make_screener(args, loaded, threshold)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    from core.reading.store import ResultStore, StoreError

    try:
        store = ResultStore()
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    try:
        screened = _screen_folder(args, folder, files, screener, store)
    finally:
        store.close()
    report_skipped(discovery, sys.stderr)
    if screened == 0:
        print(f"error: none of the {len(files)} files could be screened (see the error column)", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


MAX_SKIPPED_LISTED = 20


def report_skipped(discovery, stream) -> None:
    """The files that were not screened and why (stderr: the CSV stays clean)."""
    from core.imaging.discovery import display_path

    for path, problem in discovery.index_errors:
        print(f"warning: {display_path(path)}: {problem}", file=stream)
    if not discovery.skipped:
        return
    print(f"skipped {len(discovery.skipped)} file(s) that are not images:", file=stream)
    for path, reason in discovery.skipped[:MAX_SKIPPED_LISTED]:
        print(f"  {display_path(path)}: {reason}", file=stream)
    if len(discovery.skipped) > MAX_SKIPPED_LISTED:
        print(f"  ... and {len(discovery.skipped) - MAX_SKIPPED_LISTED} more", file=stream)


def _skipped_note(discovery) -> str:
    if not discovery.skipped:
        return ""
    reasons = sorted({reason for _path, reason in discovery.skipped})
    return f" ({len(discovery.skipped)} file(s) skipped: {'; '.join(reasons[:3])})"


def _check_arguments(args) -> tuple[Path, float | None]:
    folder = Path(args.folder)
    if not folder.is_dir():
        raise UsageError(f"folder not found: {folder}")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise UsageError(f"--threshold must be within [0, 1], got {args.threshold}")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.out and not Path(args.out).resolve().parent.is_dir():
        raise UsageError(f"folder for --out does not exist: {Path(args.out).parent}")
    return folder, args.threshold


def _load_model(name: str | None):
    from core.models.registry import ModelError, find_model, load_model
    from core.screening.screener import configure_for_screening

    configure_for_screening()  # GPU memory growth and thread split must precede the first TF op
    try:
        return load_model(find_model(name))
    except ModelError as exc:
        raise UsageError(str(exc)) from None


def _make_screener(args, loaded, threshold: float | None):
    from core.screening.screener import Screener

    try:
        return Screener(loaded, threshold=threshold, batch_size=args.batch_size, gradcam=bool(args.heatmaps))
    except ValueError as exc:  # e.g. --heatmaps with a model that lacks its Grad-CAM layer
        raise UsageError(str(exc)) from None


def _screen_folder(args, folder: Path, files: list[Path], screener, store) -> int:
    """Write one row per file in order; returns how many files have a probability."""
    from core.reading.study_screening import screen_study
    from core.screening.results import earlier_preparation_note

    loaded, threshold = screener.loaded_model, screener.threshold
    label = loaded.card.label
    items = screen_study(files, loaded, store, gradcam=bool(args.heatmaps), rescreen=args.rescreen,
                         threshold=threshold, study_folder=folder, screener=screener)
    heatmaps = HeatmapWriter(Path(args.heatmaps), folder) if args.heatmaps else None
    progress = Progress(len(files), enabled=sys.stderr.isatty())
    out = open(args.out, "w", newline="", encoding="utf-8") if args.out else sys.stdout
    screened = earlier = 0
    try:
        writer = csv.writer(out, lineterminator="\n")
        _write_row(out, writer, CSV_COLUMNS)
        for path, item in zip(files, items):
            result = item.result
            _write_row(out, writer, _csv_row(path, result, label))
            if heatmaps and result.ok and result.cam is not None:
                heatmaps.submit(path, result.cam)
            screened += result.ok
            earlier += result.earlier_preparation
            progress.step()
    finally:
        items.close()
        progress.finish()
        if heatmaps:
            heatmaps.close()
        if out is not sys.stdout:
            out.close()
    if earlier:
        print(f"note: {earlier_preparation_note(earlier)}; --rescreen screens them again", file=sys.stderr)
    return screened


def csv_values(path, result, model_label: str) -> dict:
    """One result as the CSV's named values (probability empty for a failed file)."""
    ok = result.ok
    return {
        "path": str(path),
        "probability": f"{result.probability:.6f}" if ok else "",
        "prediction": result.prediction if ok else "",
        "threshold": f"{result.threshold:g}",
        "model": model_label,
        "error": "" if ok else result.error,
        "scope": result.scope,
    }


def _csv_row(path: Path, result, model_label: str) -> tuple:
    values = csv_values(path, result, model_label)
    return tuple(values[column] for column in CSV_COLUMNS)


def _write_row(out, writer, row) -> None:
    from core.csvsafe import neutral_row

    writer.writerow(neutral_row(row))  # file names come from outside: no formulas
    out.flush()  # a reader (or a kill) sees every finished row


class HeatmapWriter:
    """Writes Grad-CAM overlay PNGs in one background thread, a bounded few at a time."""

    def __init__(self, directory: Path, study: Path, max_pending: int = 8):
        self.directory = directory
        self.study = study
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="pneumoscan-heatmaps")
        self._pending: deque[Future] = deque()
        self._max_pending = max_pending

    def target(self, path: Path) -> Path:
        """DIR/<relative path>.png: mirrors the tree, so names never collide."""
        relative = path.relative_to(self.study)
        return self.directory / relative.parent / f"{relative.name}.png"

    def submit(self, path: Path, cam) -> None:
        while len(self._pending) >= self._max_pending:
            self._report(self._pending.popleft())
        self._pending.append(self._pool.submit(self._write, path, cam))

    def _write(self, path: Path, cam) -> None:
        import cv2

        from core.models.gradcam import overlay
        from core.imaging.loader import load_image

        pixels = load_image(path, max_side=HEATMAP_MAX_SIDE).pixels
        rgb = overlay(pixels, cam, HEATMAP_ALPHA)
        target = self.target(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if not ok:
            raise OSError("PNG encoding failed")
        target.write_bytes(encoded.tobytes())  # bytes, so non-ASCII paths work everywhere

    @staticmethod
    def _report(future: Future) -> None:
        try:
            future.result()
        except Exception as exc:  # a heatmap is an extra: warn, keep screening
            print(f"warning: heatmap not written: {exc}", file=sys.stderr)

    def close(self) -> None:
        while self._pending:
            self._report(self._pending.popleft())
        self._pool.shutdown()


class Progress:
    """A one-line `\\r` progress bar on stderr: count, images/s, ETA."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled = total, enabled
        self.done = 0
        self.started = time.monotonic()
        self._last_draw = 0.0

    def step(self) -> None:
        self.done += 1
        now = time.monotonic()
        if self.enabled and (now - self._last_draw >= 0.1 or self.done == self.total):
            self._last_draw = now
            rate = self.done / max(now - self.started, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            sys.stderr.write(f"\r{self.done}/{self.total} images  {rate:.1f} images/s  ETA {eta:.0f} s ")
            sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled and self.done:
            sys.stderr.write("\n")
            sys.stderr.flush()
