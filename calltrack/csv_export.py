"""CSV for spreadsheets: cells neutralised against formula injection, and streamed exports in constant memory.

A cell a spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return)
gets a leading apostrophe, OWASP's advice, so a caller name or UTM value typed by anyone on the internet cannot
run as a formula in the operator's Excel. Plain numbers (``+14155550138``, ``-12.50``) are left as they are:
a spreadsheet reads them as numbers, not formulas, and the numbers export must stay importable.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from django.http import StreamingHttpResponse

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?\Z")


def csv_safe(value: Any) -> Any:
    """``value`` as a spreadsheet shows it, never as a formula (None becomes an empty cell)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return value
    if value.startswith(FORMULA_TRIGGERS) and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def csv_safe_row(row: Iterable[Any]) -> list[Any]:
    return [csv_safe(v) for v in row]


class _Echo:
    """A file-like object whose write returns what it is given (Django's streaming CSV recipe)."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: Sequence[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """``header`` then each row, as CSV lines, every cell through :func:`csv_safe`; lazily, one row at a time."""
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow(csv_safe_row(row))


def csv_streaming_response(*, filename: str, header: Sequence[str], rows: Iterable[Iterable[Any]]) -> StreamingHttpResponse:
    """A download of ``rows`` that never holds more than one row (and the iterator's chunk) in memory."""
    response = StreamingHttpResponse(csv_lines(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
