"""`pneumoscan-cli listen`: a DICOM node that screens chest X-rays on arrival.

Runs in the foreground until SIGINT or SIGTERM, then stops accepting,
finishes transfers, screening and one delivery pass, and exits. What could not
be sent stays in the outbox (INBOX/.pneumoscan/) for the next start.
"""
from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import sys
import threading

from core.cli.command import add_command
from core.cli.exit_codes import EXIT_FAILURE, EXIT_OK, EXIT_USAGE


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "listen", run,
        "receive images over DICOM (C-STORE), screen them, send results back",
        "Run a DICOM C-STORE/C-ECHO service: every chest radiograph received (CR, DX, "
        "secondary capture; compressed or not) is written to INBOX/<StudyInstanceUID>/"
        "<SOPInstanceUID>.dcm, screened, stored in the results store and, with "
        "--send-results-to, answered with a Structured Report and a secondary capture. "
        "Stops on Ctrl+C / SIGTERM after finishing what is in flight.")
    parser.add_argument("--port", type=int, required=True, metavar="PORT", help="TCP port to listen on")
    parser.add_argument("--ae-title", required=True, metavar="AET",
                        help="this node's AE title (also the calling AE title when it sends results)")
    parser.add_argument("--inbox", required=True, metavar="DIR", help="folder for received studies")
    parser.add_argument("--model", metavar="NAME", default=None,
                        help="registered model ('name' or 'name vN') or a .keras file (default: the default model)")
    parser.add_argument("--send-results-to", metavar="AET@HOST:PORT", default=None,
                        help="send an SR and a secondary capture per image to this node (e.g. ORTHANC@127.0.0.1:4242)")
    parser.add_argument("--bind", metavar="ADDRESS", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it "
                             "to the network)")
    parser.add_argument("--allow-calling", metavar="AET", nargs="+", action="extend", default=[],
                        help="accept associations only from these calling AE titles")
    parser.add_argument("--max-file-mb", type=float, default=512.0, metavar="MB",
                        help="refuse files larger than this (default 512)")
    parser.add_argument("--min-free-mb", type=float, default=1024.0, metavar="MB",
                        help="refuse files when the inbox disk would have less free space than this (default 1024)")


def run(args: argparse.Namespace) -> int:
    from core.pacs.listener import ListenerConfig
    from core.pacs.nodes import InvalidIdentifier, parse_node
    from core.pacs.service import ServiceConfig

    _configure_logging()
    try:
        if not 1 <= args.port <= 65535:
            raise InvalidIdentifier(f"--port must be from 1 to 65535, got {args.port}")
        if args.max_file_mb <= 0 or args.min_free_mb < 0:
            raise InvalidIdentifier("--max-file-mb must be above 0 and --min-free-mb at least 0")
        config = ServiceConfig(
            listener=ListenerConfig(args.port, args.ae_title, args.bind, list(args.allow_calling)),
            inbox=args.inbox, model=args.model,
            send_results_to=parse_node(args.send_results_to) if args.send_results_to else None,
            max_file_bytes=int(args.max_file_mb * 1024 ** 2), min_free_bytes=int(args.min_free_mb * 1024 ** 2))
    except InvalidIdentifier as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _warn_if_open(args)
    return serve(config)


def serve(config) -> int:
    from core.pacs.service import PacsService
    from core.models.registry import ModelError
    from core.screening.screener import configure_for_screening
    from core.reading.store import StoreError

    try:
        service = PacsService(config)
    except OSError as exc:
        print(f"error: cannot use {config.inbox} as the inbox: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_for_screening()
    try:
        service.start()
    except (ModelError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # port in use, no permission for a port below 1024, bad bind address
        print(f"error: cannot listen on {config.listener.bind}:{config.listener.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return EXIT_FAILURE
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _serve_until(stop, service, config)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return EXIT_OK


def _serve_until(stop: threading.Event, service, config) -> None:
    print(f"PneumoScan listening as {config.listener.ae_title} on {config.listener.bind}:{service.port}, "
          f"inbox {service.inbox.root}"
          + (f", results to {config.send_results_to}" if config.send_results_to else "")
          + " (Ctrl+C to stop)", file=sys.stderr, flush=True)
    while not stop.wait(0.5):  # a short wait keeps signals responsive
        pass
    logging.getLogger("pneumoscan.pacs").info("stopping: finishing transfers, screening and delivery")
    service.stop()


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is now (so in-process callers that swap it, e.g. tests, get the lines)."""

    stream = property(lambda self: sys.stderr, lambda self, value: None)


def _configure_logging() -> None:
    log = logging.getLogger("pneumoscan.pacs")
    log.setLevel(logging.INFO)
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
    # pynetdicom and highdicom log per PDU and per module at INFO: warnings only.
    for chatty in ("pynetdicom", "highdicom"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


def _warn_if_open(args) -> None:
    try:
        loopback = ipaddress.ip_address(args.bind).is_loopback
    except ValueError:
        loopback = args.bind == "localhost"
    if not loopback:
        who = "calling AE titles " + ", ".join(args.allow_calling) if args.allow_calling else "ANY calling AE title"
        print(f"warning: listening on {args.bind} opens this node to the network; accepting {who}",
              file=sys.stderr)
