"""CSV cells that a spreadsheet will not run as formulas.

File names and DICOM text (PatientID, ...) come from outside. A cell starting
with `=`, `+`, `-`, `@`, tab or carriage return is read as a formula by Excel,
LibreOffice and Google Sheets (CSV/formula injection). Such text cells get a
leading apostrophe, the spreadsheet convention for "this is text"; plain
numbers (`-0.5`, `1e-3`) are left as they are.
"""
from __future__ import annotations

import re

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def neutralise(value):
    """A cell value safe to write; non-text values pass through unchanged."""
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    if _PLAIN_NUMBER.match(value):
        return value
    return "'" + value


def neutral_row(row):
    """`neutralise` on every cell of a sequence (list/tuple) or dict row."""
    if isinstance(row, dict):
        return {key: neutralise(value) for key, value in row.items()}
    return [neutralise(value) for value in row]
