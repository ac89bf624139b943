"""Filters shared by the apps' APIs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import django_filters
from django import forms

MAX_ID = 2**63 - 1


class IdField(forms.IntegerField):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class IdFilter(django_filters.Filter):
    """Rows pointing to the object with this id.

    Unlike ModelChoiceFilter, an id that does not exist filters to nothing instead of
    answering "not a valid choice": a collaborator cannot probe which ids exist.
    """

    field_class = IdField


# PostgreSQL stores UTC offsets up to 15:59 (ISO 8601 allows any two digits: '-16:53' parses, then fails in the query).
MAX_UTC_OFFSET = timedelta(hours=15, minutes=59)


class UtcDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 moment, handed to the query in UTC; an offset no database stores, or a moment that leaves the
    calendar once in UTC (year 1 with a positive offset), is a 400 naming the value instead of a database error."""

    def to_python(self, value: str | None) -> datetime | None:
        moment = super().to_python(value)
        if moment is None:
            return None
        offset = moment.utcoffset()
        if offset is not None and abs(offset) > MAX_UTC_OFFSET:
            raise forms.ValidationError(f"{value!r}: the UTC offset must be within ±15:59.", code="invalid")
        if offset is not None:
            try:
                moment = moment.astimezone(UTC)
            except OverflowError:
                raise forms.ValidationError(f"{value!r} is out of range.", code="invalid")
        return moment


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField
