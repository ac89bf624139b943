"""Filters shared by the apps' APIs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import django_filters
from django import forms

MAX_ID = 2**63 - 1


class IdField(forms.IntegerField):
    """An id: the digits 0-9 only. Django's IntegerField also reads '1.0', '١' (Arabic-Indic) and '１' (full-width)
    as 1, which no client means: those are a 400 too."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)

    def to_python(self, value: object) -> int | None:
        if isinstance(value, str) and value.strip() and not (value.strip().isascii() and value.strip().lstrip("+-").isdigit()):
            raise forms.ValidationError(f"{value!r} is not an id (the digits 0-9).", code="invalid")
        return super().to_python(value)


class StrictBooleanField(forms.Field):
    """true or false (also 1 or 0, any case); anything else is a 400, not the filter dropped as django-filter's
    BooleanFilter does with a value it cannot read."""

    TRUE, FALSE = frozenset({"true", "1"}), frozenset({"false", "0"})

    def to_python(self, value: object) -> bool | None:
        if value in (None, ""):
            return None
        word = str(value).strip().lower()
        if word in self.TRUE:
            return True
        if word in self.FALSE:
            return False
        raise forms.ValidationError(f"{value!r} is not true or false.", code="invalid")


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


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
        if isinstance(value, str) and not value.isascii():  # '٢٠٢٦-03-02': Python's parser reads other digits too
            raise forms.ValidationError(f"{value!r} is not an ISO 8601 moment (the digits 0-9).", code="invalid")
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
