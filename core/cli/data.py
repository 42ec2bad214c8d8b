"""`pneumoscan-cli data fetch [--dest DIR] [--from ARCHIVE]`: the training data, made as shipped.

Gets the Kermany et al. (2018) chest X-ray set (Mendeley Data,
doi:10.17632/rscbjbr9sj.2) or takes the archive given, checks it, and writes
DEST/chest_xray/{train,test,...}/{NORMAL,PNEUMONIA} resized as the project's
data was made. DEST defaults to ../shared/data beside the repository, where
the model cards' training commands look. Prints one JSON object (the report)
on success; a refusal says on stderr what is wrong.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from core.cli.exit_codes import EXIT_FAILURE, EXIT_OK, EXIT_USAGE

PROGRESS_EVERY = 500


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data", help="get the training data (the Kermany et al. 2018 chest X-ray set)",
        description="Training data commands.")
    verbs = parser.add_subparsers(dest="data_command", metavar="VERB")
    verbs.required = True
    fetch = verbs.add_parser(
        "fetch", help="download (or take from --from) the chest X-ray set and store it resized",
        description="Download the Kermany et al. (2018) chest X-ray set from Mendeley Data "
                    "(doi:10.17632/rscbjbr9sj.2), or take the archive given with --from (zip or tar, "
                    "chest_xray/{train,test}/{NORMAL,PNEUMONIA}, possibly inside an outer folder or "
                    "archive); check its file counts and images; write DEST/chest_xray/... with every "
                    "film resized to 224 x 224 as the shipped data was made. Prints a JSON report.")
    fetch.add_argument("--dest", metavar="DIR", default=None,
                       help="where chest_xray/ goes (default: $PNEUMOSCAN_DATA, else ../shared/data "
                            "beside the repository, as in the model cards' commands)")
    fetch.add_argument("--from", dest="archive", metavar="ARCHIVE", default=None,
                       help="an archive already on disk instead of the download")
    fetch.add_argument("--allow-counts-mismatch", action="store_true",
                       help="process an archive whose file counts are not the published ones "
                            "(a partial or test archive); unreadable films are still refused")
    fetch.set_defaults(func=run_fetch)


def run_fetch(args) -> int:
    from core.training.data_fetch import DownloadError, FetchError, default_data_dir, fetch

    dest = Path(args.dest) if args.dest else default_data_dir()
    print(f"writing {dest / 'chest_xray'} from {args.archive or 'the Mendeley Data download'}", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if done % PROGRESS_EVERY == 0 or done == total:
            print(f"{done:,} / {total:,} films", file=sys.stderr)

    try:
        report = fetch(dest, Path(args.archive) if args.archive else None, args.allow_counts_mismatch, progress)
    except DownloadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except FetchError as exc:  # the archive or DEST: the message says what is wrong
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(report.as_dict()))
    return EXIT_OK
