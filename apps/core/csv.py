"""The one CSV writer of the product: a cell a spreadsheet would run as a formula is written
inert, whatever file it goes to (exports, reports, the audit log, files sent to vendors)."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

# OWASP's list for CSV injection: a formula can start with any of these, and a tab or a
# carriage return first lets one hide behind what looks like an empty cell.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: Any) -> Any:
    """A text cell starting with =, +, -, @, a tab or a CR gets a leading apostrophe, which
    spreadsheets show as text. Numbers stay numbers: a negative one runs nothing."""
    if isinstance(cell, str) and cell.startswith(FORMULA_START):
        return "'" + cell
    return cell


class NeutralisingWriter:
    """`csv.writer`'s `writerow`/`writerows`, every cell neutralised on the way."""

    def __init__(self, file, **fmtparams: Any) -> None:
        self._writer = csv.writer(file, **fmtparams)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([neutralise(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(file, **fmtparams: Any) -> NeutralisingWriter:
    """A CSV writer on `file` (anything with `write`) that neutralises every cell."""
    return NeutralisingWriter(file, **fmtparams)
