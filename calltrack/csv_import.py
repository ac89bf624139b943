"""Reading an operator's CSV file: each record with the file line it starts on.

Counting records ("row 3 is line 4") is wrong as soon as the file has a blank line (``csv`` skips it) or a quoted
cell that spans lines; an import that names a bad line must name the line the operator's editor shows.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any


class _StartLines:
    """A ``csv.reader`` that skips blank lines and remembers where its last record began."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader
        self.start = 0

    @property
    def line_num(self) -> int:
        return int(self._reader.line_num)

    @property
    def dialect(self) -> Any:
        return self._reader.dialect

    def __iter__(self) -> _StartLines:
        return self

    def __next__(self) -> list[str]:
        while True:
            self.start = self._reader.line_num + 1  # a record starts on the line after the previous one ended
            row = next(self._reader)
            if row:
                return row


class LineDictReader(csv.DictReader):
    """``csv.DictReader`` whose :attr:`record_line` is the file line the record just read starts on.

    Blank lines and lines inside quoted multi-line cells are counted, as a text editor counts them.
    """

    def __init__(self, f: Iterable[str], *args: Any, **kwargs: Any) -> None:
        super().__init__(f, *args, **kwargs)
        self.reader = _StartLines(self.reader)  # type: ignore[assignment]

    @property
    def record_line(self) -> int:
        return self.reader.start  # type: ignore[attr-defined,no-any-return]

    def numbered(self) -> Iterator[tuple[int, dict[str | Any, str | Any]]]:
        """Each record with the line it starts on."""
        for record in self:
            yield self.record_line, record
