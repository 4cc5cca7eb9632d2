"""CSV cells a spreadsheet cannot execute (OWASP "CSV injection").

Whatever campus-kg writes as CSV may be opened in Excel or WPS by a steward: a text cell starting
with `=`, `+`, `-`, `@`, a tab or a carriage return would be run as a formula there
(`=HYPERLINK(...)`, `+cmd|' /C calc'!A0`). Such a cell is written with a leading `'`, which the
spreadsheet shows as text. Numbers, dates and empty cells are written unchanged.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def escape_row(row: Iterable[Any]) -> list[Any]:
    return [escape_cell(v) for v in row]


class SafeWriter:
    """`csv.writer` with every cell escaped: a drop-in for `writerow`/`writerows`."""

    def __init__(self, fh, **fmtparams: Any):
        self._writer = csv.writer(fh, **fmtparams)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow(escape_row(row))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)
