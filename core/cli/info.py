"""`pneumoscan-cli info PATH`: what the loader sees in one file, as JSON."""
from __future__ import annotations

import argparse
import json
import sys

from core.cli.command import add_command
from core.cli.exit_codes import EXIT_OK, EXIT_USAGE


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "info", run,
        "show how PneumoScan reads one image file (kind, size, metadata)",
        "Print the loader's view of one image file as a JSON object.")
    parser.add_argument("path", metavar="PATH", help="JPEG, PNG, BMP, TIFF or DICOM file")
    parser.add_argument("--frame", type=int, default=None, metavar="N",
                        help="frame of a multi-frame DICOM, counted from 1 (default: the one screened)")


def run(args: argparse.Namespace) -> int:
    from core.imaging.loader import ImageLoadError, load_image  # import cost only when used

    if args.frame is not None and args.frame < 1:
        print(f"error: --frame counts from 1, got {args.frame}", file=sys.stderr)
        return EXIT_USAGE
    try:
        image = load_image(args.path, frame=None if args.frame is None else args.frame - 1)
    except ImageLoadError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    rows, cols = image.pixels.shape
    print(json.dumps({"path": image.path, "kind": image.kind,
                      "shape": [int(rows), int(cols)], "meta": image.meta}))
    return EXIT_OK
