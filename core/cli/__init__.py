"""The command line (`pneumoscan-cli`): one module per sub-command, one dispatcher.

The top of the arrows: it may use every other core package; nothing in core imports it.
"""
from core.cli.dispatch import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, build_parser, main

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]
