"""CSV for spreadsheets: cells neutralised against formula injection, and streamed exports in constant memory.

A cell a spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return)
gets a leading apostrophe, OWASP's advice, so a caller name or UTM value typed by anyone on the internet cannot
run as a formula in the operator's Excel. Plain numbers (``+14155550138``, ``-12.50``) are left as they are:
a spreadsheet reads them as numbers, not formulas, and the numbers export must stay importable.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from django.http import StreamingHttpResponse

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_TRIGGER_CHARS = frozenset(FORMULA_TRIGGERS)
# A streamed download is written this many characters at a time: one chunk per row would cost the response
# machinery more than the rows themselves.
STREAM_CHUNK_CHARS = 64 * 1024
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
    """Every cell of ``row`` through :func:`csv_safe`; the common cells (not text, or text starting with a safe
    character) are passed through without a call."""
    return [
        "" if v is None else (csv_safe(v) if isinstance(v, str) and v[:1] in _TRIGGER_CHARS else v)
        for v in row
    ]


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


def csv_chunks(header: Sequence[str], rows: Iterable[Iterable[Any]], *, size: int = STREAM_CHUNK_CHARS) -> Iterator[str]:
    """The same text as :func:`csv_lines`, in pieces of about ``size`` characters (whole lines each)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    write, tell, safe = writer.writerow, buffer.tell, csv_safe_row
    for row in rows:
        write(safe(row))
        if tell() >= size:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    if tell():
        yield buffer.getvalue()


def csv_streaming_response(*, filename: str, header: Sequence[str], rows: Iterable[Iterable[Any]]) -> StreamingHttpResponse:
    """A download of ``rows`` that never holds more than one row, the iterator's chunk and one ~64 KB piece of text
    in memory."""
    response = StreamingHttpResponse(csv_chunks(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
