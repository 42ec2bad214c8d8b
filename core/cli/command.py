"""What every `pneumoscan-cli` command shares: how its parser is made and the error that means
"bad arguments or input" (the message on stderr, exit status EXIT_USAGE)."""
from __future__ import annotations

RESEARCH_USE = "Research use only, not a medical device."


class UsageError(Exception):
    """Bad arguments or input: reported on stderr, exit status 2."""


def add_command(subparsers, name: str, run, summary: str, details: str = ""):
    """The parser of one sub-command: `summary` in the command list, `details` (or the summary)
    and the research-use line in its --help; `run(args) -> exit status` does the work."""
    description = details or summary[:1].upper() + summary[1:] + "."
    parser = subparsers.add_parser(name, help=summary, description=f"{description} {RESEARCH_USE}")
    parser.set_defaults(func=run)
    return parser
