"""`pneumoscan-cli export-dicom STUDY`: the study's results as DICOM SR + secondary captures.

Writes them to a folder (--out) and/or sends them to a node (--send-to), the
same objects `listen` sends. Stored results are reused; unscreened images are
screened first.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cli.command import add_command
from core.cli.exit_codes import EXIT_FAILURE, EXIT_OK, EXIT_USAGE


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "export-dicom", run,
        "write or send a study's results as DICOM (SR + secondary capture)",
        "For every DICOM image below STUDY, build a Structured Report and a secondary capture "
        "with the heatmap burned in (same study, new series) and write them to --out "
        "(OUT/<StudyInstanceUID>/SR_<uid>.dcm, SC_<uid>.dcm) and/or send them to --send-to.")
    parser.add_argument("study", metavar="STUDY", help="study folder (e.g. an inbox study folder)")
    parser.add_argument("--out", metavar="DIR", default=None, help="write the objects under this folder")
    parser.add_argument("--send-to", metavar="AET@HOST:PORT", default=None, help="send the objects to this node")
    parser.add_argument("--ae-title", metavar="AET", default="PNEUMOSCAN",
                        help="calling AE title when sending (default PNEUMOSCAN)")
    parser.add_argument("--model", metavar="NAME", default=None, help="model (default: the default model)")


def run(args: argparse.Namespace) -> int:
    from core.pacs.nodes import InvalidIdentifier, check_ae_title, parse_node

    study = Path(args.study)
    try:
        if not study.is_dir():
            raise InvalidIdentifier(f"study folder not found: {study}")
        if not args.out and not args.send_to:
            raise InvalidIdentifier("give --out DIR, --send-to AET@HOST:PORT, or both")
        node = parse_node(args.send_to) if args.send_to else None
        calling = check_ae_title(args.ae_title)
    except InvalidIdentifier as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    from core.pacs.export import build_study_results, write_objects
    from core.pacs.screening_adapter import ScreeningAdapter
    from core.models.registry import ModelError
    from core.screening.screener import configure_for_screening
    from core.reading.store import ResultStore

    configure_for_screening()
    try:
        adapter = ScreeningAdapter(args.model)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with ResultStore() as store:
        export = build_study_results(study, adapter, store)
    for path, why in export.skipped:
        print(f"skipped {path}: {why}", file=sys.stderr)
    if not export.objects:
        print(f"error: no DICOM images in {study}", file=sys.stderr)
        return EXIT_USAGE
    status = EXIT_OK
    if args.out:
        for target in write_objects(export, args.out):
            print(target)
    if node is not None:
        status = _send(export, node, calling)
    return status


def _send(export, node, calling: str) -> int:
    from core.pacs.export import send_study_results
    from core.pacs.sender import SendError

    try:
        sent, failed = send_study_results(export, node, calling)
    except SendError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"sent {sent} of {sent + len(failed)} object(s) to {node}", file=sys.stderr)
    for error in sorted(set(failed)):
        print(f"error: {error}", file=sys.stderr)
    return EXIT_FAILURE if failed else EXIT_OK
