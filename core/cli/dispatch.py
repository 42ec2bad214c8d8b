"""`pneumoscan-cli`: one dispatcher; each sub-command is a module of `core.cli`.

Sub-command modules expose `register(subparsers)` and must not import
TensorFlow at module level, so `pneumoscan-cli info` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from core.cli.exit_codes import EXIT_FAILURE, EXIT_OK, EXIT_USAGE

# Order is the order shown in --help.
COMMAND_MODULES = ("info", "models", "train", "evaluate", "calibrate", "screen", "fit_scope", "listen",
                   "export_dicom", "data", "report")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pneumoscan-cli",
        description="PneumoScan command line (research use only, not a medical device).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        # No try/except: a bundle missing a hidden import must fail loudly, not lose a command.
        importlib.import_module(f"core.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # TensorFlow's C++ start-up chatter (CUDA probing...) is noise on a terminal.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`... | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
