"""`pneumoscan-cli report STUDY --pdf FILE [--csv FILE]`: the study's reading report.

The same report as the window's export, built by the same core code
(core.reading.report, core.reading.report_pdf) from a ReadingSession over the
study: the results store's results (what is not screened yet is screened now,
through core.reading.study_screening.screen_study, and kept), the reader's decisions and the
study's sign-off and amendments. Every file of the study is accounted for.
"""
from __future__ import annotations

import sys
from pathlib import Path

from core.cli.exit_codes import EXIT_FAILURE, EXIT_OK, EXIT_USAGE


def register(sub) -> None:
    p = sub.add_parser(
        "report", help="write a study's reading report (PDF, and CSV)",
        description="Write the reading report of STUDY: every file of the folder, sorted into false negatives, "
                    "disagreements and changed calls, false positives, out of scope, errors, skipped files and "
                    "the rest, with the reader's decisions, the sign-off and amendments. Images not screened yet "
                    "with the model are screened first (and kept in the results store). "
                    "Research use only, not a medical device.")
    p.add_argument("study", metavar="STUDY", help="study folder (searched recursively)")
    p.add_argument("--model", metavar="NAME", help="model name ('name' or 'name vN', default: the default model)")
    p.add_argument("--pdf", metavar="FILE", required=True, help="write the PDF report here")
    p.add_argument("--csv", metavar="FILE", help="also write one CSV row per file")
    p.set_defaults(func=run)


def build_report(folder, entry, store, thumbnails: bool = True):
    """(rows, summary) of a study with one model; screens what the store lacks."""
    from core.models.registry import load_model
    from core.reading.report import report_rows, summary_of
    from core.reading.session import ReadingSession
    from core.reading.study_files import scan_study
    from core.reading.study_screening import THUMBNAIL, THUMBNAIL_SIDE, screen_study

    study = scan_study(folder)
    threshold = entry.card.threshold
    results, pictures = [], {}
    for item in screen_study(study.files, lambda: load_model(entry), store, gradcam=False, threshold=threshold,
                             study_folder=study.folder, model_hash=entry.card.sha256,
                             thumbnail_side=THUMBNAIL_SIDE if thumbnails else None):
        if item.kind != THUMBNAIL:
            results.append(item.result)
        if item.thumbnail is not None:
            pictures[str(Path(item.result.path).resolve())] = item.thumbnail
    session = ReadingSession(store=store, threshold=threshold)
    session.model_label = entry.card.label
    session.open_study(study.folder, study.files, study.truth, study.patients)
    session.add_results(results)
    session.set_decisions(store.image_decisions(study.files))
    session.set_overrides(store.image_overrides(study.files))
    _signoffs, amendments = store.study_record(study.folder)
    session.set_signed_off(store.study_sign_off(study.folder), amendments)
    rows = report_rows(session, study.skipped, thumbnails=pictures.get if thumbnails else None)
    return rows, summary_of(session, study.folder.name, entry.card.label)


def run(args) -> int:
    from core.models.registry import ModelError, find_model
    from core.reading.report import totals, write_csv
    from core.reading.report_pdf import write_pdf
    from core.reading.store import ResultStore, StoreError

    folder = Path(args.study)
    if not folder.is_dir():
        print(f"error: study folder not found: {folder}", file=sys.stderr)
        return EXIT_USAGE
    for target in filter(None, (args.pdf, args.csv)):
        if not Path(target).expanduser().resolve().parent.is_dir():
            print(f"error: the folder of {target} does not exist", file=sys.stderr)
            return EXIT_USAGE
    try:
        entry = find_model(args.model)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        with ResultStore() as store:
            rows, summary = build_report(folder, entry, store)
    except (StoreError, ModelError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    try:
        write_pdf(rows, summary, args.pdf)
        if args.csv:
            write_csv(rows, args.csv, summary)
    except OSError as exc:  # e.g. the file is open elsewhere or the disk is full
        print(f"error: cannot write the report: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    counts = totals(rows)
    print(f"{summary.study}: {counts['files']} files ({counts['images']} images, {counts['skipped']} skipped); "
          f"{counts['screened']} screened, {counts['out_of_scope']} out of scope, {counts['errors']} errors; "
          f"report {args.pdf}" + (f", CSV {args.csv}" if args.csv else ""))
    return EXIT_OK
