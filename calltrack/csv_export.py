"""CSV for spreadsheets: cells neutralised against formula injection, and streamed exports in constant memory.

A cell a spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return)
gets a leading apostrophe, OWASP's advice, so a caller name or UTM value typed by anyone on the internet cannot
run as a formula in the operator's Excel. Plain numbers (``+14155550138``, ``-12.50``) are left as they are:
a spreadsheet reads them as numbers, not formulas, and the numbers export must stay importable.

On PostgreSQL the same CSV can be written by the database itself (:func:`csv_copy_chunks`: ``COPY (SELECT ...)
TO STDOUT WITH (FORMAT csv)``, the rule above in SQL): no Python object per row or cell.
"""

from __future__ import annotations

import csv
import io
import re
import zoneinfo
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections, models, transaction
from django.db.models import QuerySet
from django.http import StreamingHttpResponse

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_TRIGGER_CHARS = frozenset(FORMULA_TRIGGERS)
# A streamed download is written this many characters at a time: one chunk per row would cost the response
# machinery more than the rows themselves.
STREAM_CHUNK_CHARS = 64 * 1024
# ASCII digits: a spreadsheet reads no other script's digits as a number (and PostgreSQL's twin of this rule,
# _SQL_TEXT below, could not tell them apart in every locale).
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?\Z")


def csv_safe(value: Any) -> Any:
    """``value`` as a spreadsheet shows it, never as a formula (None becomes an empty cell)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return value
    if value.startswith(FORMULA_TRIGGERS) and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def csv_unsafe(value: str) -> str:
    """Undo :func:`csv_safe` on a cell read back from an export (``"'=x"`` was written for ``"=x"``), so an export
    re-imports unchanged."""
    return value[1:] if value[:1] == "'" and value[1:2] in _TRIGGER_CHARS else value


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


def csv_streaming_response(
    *, filename: str, header: Sequence[str] = (), rows: Iterable[Iterable[Any]] = (), chunks: Iterable[str | bytes] | None = None,
) -> StreamingHttpResponse:
    """A download of ``rows`` that never holds more than one row, the iterator's chunk and one ~64 KB piece of text
    in memory; or of ``chunks``, CSV already written (:func:`csv_copy_chunks`)."""
    content = csv_chunks(header, rows) if chunks is None else chunks
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- The same CSV written by PostgreSQL (COPY) -----------------------------------------------------------------
#
# Each cell is made in SQL exactly as csv_chunks writes the Python value the ORM reads for it: text through the
# formula rule of csv_safe, booleans as True/False, numbers as str() prints them, times as
# ``isoformat(timespec="seconds")`` in a time zone, NULL and "" as an empty cell. PostgreSQL's CSV quoting is
# Python's QUOTE_MINIMAL (a cell holding a comma, a quote, CR or LF is quoted, its quotes doubled); its rows end in
# LF, Python's in CRLF, which csv_copy_chunks puts back (a row is one COPY data message, its last byte the LF).

# A text cell: "" -> NULL (COPY writes an empty string as ""), a formula -> '-prefixed, a plain number as it is. The
# first character is compared as a code point (ascii() of a text is its first character's, 0 for ""): one integer
# test per cell for the common cells, where a substring and six text comparisons cost twice as much; the pattern
# runs only for the cells that start with a trigger (phone numbers: "+1...").
_TRIGGER_CODES = ", ".join(str(ord(trigger)) for trigger in FORMULA_TRIGGERS)
_SQL_TEXT = (
    f"CASE WHEN ascii({{c}}) NOT IN ({_TRIGGER_CODES}) THEN NULLIF({{c}}, '') "
    r"WHEN {c} ~ '^[+-]?[0-9]+(\.[0-9]+)?$' THEN {c} ELSE '''' || {c} END"
)
_SQL_BOOLEAN = "CASE WHEN {c} THEN 'True' WHEN NOT {c} THEN 'False' END"
# A time as isoformat(timespec="seconds") in the session's time zone, which the COPY's transaction sets to the
# operator's (see _copy_pieces): one conversion per cell, where converting to the named zone and to UTC for each
# part of the offset cost 2.5 microseconds a row. TZH:TZM is the offset as Python prints it (+05:30, -00:44); its
# seconds, which Python adds when there are some (-00:44:30: local mean times, before about 1972), only then.
_SQL_TIME = (
    """to_char({c}, 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM') """
    """|| CASE WHEN mod(date_part('timezone', {c})::int, 60) <> 0 """
    """THEN ':' || lpad(mod(abs(date_part('timezone', {c})::int), 60)::text, 2, '0') ELSE '' END"""
)


def csv_copy_supported(queryset: QuerySet, tz: zoneinfo.ZoneInfo) -> bool:
    """Whether :func:`csv_copy_chunks` can stream ``queryset`` with times in ``tz``: on PostgreSQL, and a zone
    with a name PostgreSQL knows (an IANA zone read from a file has none)."""
    return connections[queryset.db].vendor == "postgresql" and bool(tz.key)


def csv_copy_select(queryset: QuerySet) -> tuple[str, list[Any]]:
    """The SELECT (and its parameters) of the cells of ``queryset``, a ``values_list()`` queryset, its times in the
    session's time zone: its own query (filters, joins, order) as a subquery, each of its columns made into its
    cell's text. Raises TypeError for a column whose Python text has no SQL twin here (floats, dates, JSON)."""
    compiler = queryset.query.get_compiler(using=queryset.db)
    inner, inner_params = compiler.as_sql()
    names = [f"c{i}" for i in range(len(compiler.select))]
    cells: list[str] = []
    for name, (expression, _, alias) in zip(names, compiler.select):
        field, c = expression.output_field, f"t.{name}"
        if isinstance(field, (models.CharField, models.TextField)):
            cells.append(_SQL_TEXT.format(c=c))
        elif isinstance(field, models.BooleanField):
            cells.append(_SQL_BOOLEAN.format(c=c))
        elif isinstance(field, models.DateTimeField):
            cells.append(_SQL_TIME.format(c=c))
        elif isinstance(field, models.IntegerField) or (isinstance(field, models.DecimalField) and (field.decimal_places or 0) <= 6):
            cells.append(c)  # COPY's text of an integer or a numeric is what str() prints of the int or Decimal read
        else:  # str(Decimal) turns to exponents past 6 places; floats, dates and JSON print differently in SQL
            raise TypeError(f"no SQL text for the export column {alias or name} ({type(field).__name__})")
    # The inner query keeps its ORDER BY: a subquery with one is planned on its own, its rows come out in order.
    return f"SELECT {', '.join(cells)} FROM ({inner}) AS t({', '.join(names)})", list(inner_params)


def csv_copy_chunks(
    *, header: Sequence[str], queryset: QuerySet, tz: zoneinfo.ZoneInfo, size: int = STREAM_CHUNK_CHARS,
) -> Iterator[bytes]:
    """The CSV of ``queryset`` (a ``values_list()``), ``header`` first, written by PostgreSQL (COPY ... TO STDOUT)
    and passed on in pieces of about ``size`` bytes: the bytes of ``csv_chunks(header, rows)`` in UTF-8 for the rows
    the ORM reads (times in ``tz``), in constant memory.

    The COPY runs in a transaction (a savepoint inside one) opened at the first piece and closed after the last.
    Closed early (the client went away: the response closes this generator), the COPY is cancelled, its transaction
    rolled back, and the connection left idle and usable."""
    first = io.StringIO()
    csv.writer(first).writerow(header)
    try:
        select, params = csv_copy_select(queryset)  # now: a column without SQL text fails here, not mid-download
    except EmptyResultSet:  # a filter no row can match (``pk__in=[]``): Django sends no query, the file is its header
        return iter([first.getvalue().encode()])
    return _copy_pieces(db=queryset.db, select=select, params=params, zone=tz.key, first=first.getvalue().encode(), size=size)


def _copy_pieces(*, db: str, select: str, params: list[Any], zone: str, first: bytes, size: int) -> Iterator[bytes]:
    buffer = bytearray(first)
    connection = connections[db]
    with transaction.atomic(using=db), connection.cursor() as cursor, connection.wrap_database_errors:
        # The times' zone, for the COPY alone: set in its transaction (SET LOCAL: a savepoint's rollback undoes it),
        # and the caller's set back after it (a released savepoint's would last to the end of the caller's
        # transaction). Parallel workers start with the session's settings.
        cursor.execute("SELECT current_setting('TimeZone')")
        (caller_zone,) = cursor.fetchone()
        cursor.execute("SELECT set_config('TimeZone', %s, true)", [zone])
        # COPY takes no bound parameters: psycopg merges them into the statement on the client (as it sends
        # Django's own queries).
        statement = connection.ops.compose_sql(f"COPY ({select}) TO STDOUT WITH (FORMAT csv)", params)
        with cursor.cursor.copy(statement) as copy:
            for row in copy:  # one row per COPY data message, its last byte the row's LF
                buffer += row[:-1]
                buffer += b"\r\n"
                if len(buffer) >= size:
                    yield bytes(buffer)
                    buffer.clear()
        cursor.execute("SELECT set_config('TimeZone', %s, true)", [caller_zone])
    if buffer:
        yield bytes(buffer)
