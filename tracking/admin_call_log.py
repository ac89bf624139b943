"""The call log's pieces for the admin: filters, the search an operator types, and the CSV export.

The dashboard links into the log with plain lookups (``?source__id__exact=3&started_at__gte=...&started_at__lt=...``);
the filters here keep those working: the related filters use Django's own ``<field>__id__exact`` parameters and
the date range its own ``started_at_from`` / ``started_at_to`` ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.apps import apps
from django.contrib.admin import SimpleListFilter
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Reverse
from django.db.models.lookups import StartsWith
from django.utils import timezone
from django.utils.dateparse import parse_date
from unfold.contrib.filters.admin import RangeDateFilter, TextFilter

from calltrack import csv_export, phone
from calltrack.scoping import UNSCOPED, Scope, call_search_parts, side_field

# A search term that is a phone number as people type it: digits with spaces, dots, dashes, parentheses, a leading +.
_PHONE_LIKE = re.compile(r"^\+?[\d\s().\-]{7,}$")


class LocalDateRangeFilter(RangeDateFilter):
    """Calls from the start of the "from" day to the end of the "to" day, days in the operator's time zone.

    Unfold's own filter compares a datetime column with a bare date (``<= 2026-11-30`` means "before midnight"),
    which would leave the last day out.
    """

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        tz = timezone.get_current_timezone()
        start = parse_date(self.used_parameters.get(f"{self.parameter_name}_from") or "")
        end = parse_date(self.used_parameters.get(f"{self.parameter_name}_to") or "")
        if start:
            queryset = queryset.filter(**{f"{self.parameter_name}__gte": datetime.combine(start, time.min, tzinfo=tz)})
        if end:
            queryset = queryset.filter(**{f"{self.parameter_name}__lt": datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz)})
        return queryset


class UTMSourceFilter(TextFilter):
    title = "UTM source"
    parameter_name = "utm_source"

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        value = (self.value() or "").strip()
        return queryset.filter(marketing_data__utm_source=value) if value else queryset


class TestCallFilter(SimpleListFilter):
    """Test calls (the admin's "Test call"): only them, or every call but them (what the reports count)."""

    title = "test calls"
    parameter_name = "test"

    def lookups(self, request, model_admin):
        return [("only", "Only test calls"), ("exclude", "Exclude test calls")]

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == "only":
            return queryset.filter(is_test=True)
        if value == "exclude":
            return queryset.filter(is_test=False)
        if value:
            raise IncorrectLookupParameters(f"test calls: 'only' or 'exclude', not {value[:40]!r}")
        return queryset


def call_search_q(term: str, *, scope: Scope = UNSCOPED) -> Q | None:
    """What the log's search box means by ``term``: a phone number however it is typed, a city, a UTM value,
    a CallSid or a visitor id; for a collaborator, only what it may see (``calltrack.scoping.call_search_parts``).
    None when the term is empty."""
    term = term.strip()
    if not term:
        return None
    parts = call_search_parts(scope)
    if _PHONE_LIKE.match(term):
        e164 = phone.to_e164_or_none(term)
        if e164:  # a whole number: the caller, or the tracking number dialled; both indexed (a bitmap OR)
            if "called" not in parts:
                return Q(caller_number=e164)
            numbers = list(apps.get_model("numbers", "TrackingNumber").objects.filter(number=e164).values_list("pk", flat=True))
            return Q(caller_number=e164) | Q(tracking_number_id__in=numbers) if numbers else Q(caller_number=e164)
        # Part of a number ("555-0138"), or a whole one that is not valid: its last digits. "Ends with" is asked as
        # "the reversed number starts with", which an index answers on PostgreSQL (migration 0012).
        backwards = re.sub(r"\D", "", term)[::-1]
        q = Q(StartsWith(Reverse("caller_number"), backwards))
        return q | Q(StartsWith(Reverse("called_number"), backwards)) if "called" in parts else q
    q = Q(call_sid=term) | Q(caller_city__iexact=term) | Q(caller_zip=term)
    if "visitor" in parts:
        q |= Q(visitor_id=term)
    if "utm" in parts:
        q |= (Q(marketing_data__utm_source__iexact=term) | Q(marketing_data__utm_medium__iexact=term)
              | Q(marketing_data__utm_campaign__iexact=term))
    return q


# The export's columns: (header, value lookup, the collaborator-hidden field this column reveals or "").
EXPORT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("call_id", "id", ""),
    ("call_sid", "call_sid", ""),
    ("started_at", "started_at", ""),
    ("caller", "caller_number", ""),
    ("caller_city", "caller_city", ""),
    ("caller_state", "caller_state", ""),
    ("tracking_number", "called_number", "called_number"),
    ("source", "source__name", "source"),
    ("campaign", "campaign__name", "campaign"),
    ("handler", "handler__name", "handler"),
    ("status", "status", ""),
    ("duration", "duration", ""),
    ("talk_time", "talk_time", ""),
    ("converted", "converted", ""),  # a collaborator's own side (calltrack.scoping.side_field)
    ("revenue", "revenue", "revenue"),
    ("payout", "payout", "payout"),
    ("utm_source", "marketing_data__utm_source", "marketing_data"),
    ("utm_medium", "marketing_data__utm_medium", "marketing_data"),
    ("utm_campaign", "marketing_data__utm_campaign", "marketing_data"),
    ("landing_page", "landing_page", "landing_page"),
    ("visitor_id", "visitor_id", "visitor_id"),
    ("test_call", "is_test", ""),
)
EXPORT_CHUNK = 10_000


def call_export_columns(*, hidden: set[str], scope: Scope = UNSCOPED) -> list[tuple[str, str]]:
    """The export's (header, lookup) columns for a user: what ``hidden`` names left out, and a collaborator's
    shared flags read from its own side ("converted" = its side's conversion)."""
    return [
        (header, side_field(scope, lookup)) for header, lookup, reveals in EXPORT_COLUMNS if not reveals or reveals not in hidden
    ]


def call_export_values(*, queryset: QuerySet, columns: list[tuple[str, str]]) -> QuerySet:
    """``queryset`` as the export reads it: the columns' values, newest call first. Both ways of writing the CSV
    (:func:`call_export_rows` and PostgreSQL's COPY, :func:`call_export_chunks`) read this one query."""
    lookups = [lookup for _, lookup in columns]
    # No ordering by a joined column, and no select_related: one plain indexed scan, streamed.
    # A marketing value read as text (->>): the same cell for the strings UTM values are, without decoding JSON per cell.
    texts = {lookup: KeyTextTransform(lookup.split("__", 1)[1], "marketing_data") for lookup in lookups if lookup.startswith("marketing_data__")}
    if texts:
        aliases = {lookup: f"_text_{i}" for i, lookup in enumerate(texts)}
        queryset = queryset.annotate(**{aliases[lookup]: expression for lookup, expression in texts.items()})
        lookups = [aliases.get(lookup, lookup) for lookup in lookups]
    return queryset.order_by("-started_at", "-id").values_list(*lookups)


def call_export_rows(*, queryset: QuerySet, columns: list[tuple[str, str]]) -> Iterator[list[Any]]:
    """The rows of ``queryset`` for the export, read ``EXPORT_CHUNK`` at a time (a server-side cursor on
    PostgreSQL), never all at once; times in the operator's time zone."""
    lookups = [lookup for _, lookup in columns]
    at = lookups.index("started_at") if "started_at" in lookups else -1
    rows = call_export_values(queryset=queryset, columns=columns).iterator(chunk_size=EXPORT_CHUNK)
    if at < 0:
        yield from rows
        return
    # timezone.localtime() is astimezone() after checks that cost a third of the conversion: the values are aware.
    tz = timezone.get_current_timezone()
    for row in rows:
        row = list(row)
        if row[at] is not None:
            row[at] = row[at].astimezone(tz).isoformat(timespec="seconds")
        yield row


def call_export_chunks(*, queryset: QuerySet, columns: list[tuple[str, str]], copy: bool = True) -> Iterator[str] | Iterator[bytes]:
    """The export's CSV text, header first, in ~64 KB pieces. On PostgreSQL written by the database (COPY), several
    times faster than reading the rows into Python and the same bytes; elsewhere (or ``copy=False``) by
    :func:`call_export_rows` and Python's csv module."""
    header = [h for h, _ in columns]
    tz = timezone.get_current_timezone()
    if copy and isinstance(tz, ZoneInfo) and csv_export.csv_copy_supported(queryset, tz):
        return csv_export.csv_copy_chunks(header=header, queryset=call_export_values(queryset=queryset, columns=columns), tz=tz)
    return csv_export.csv_chunks(header, call_export_rows(queryset=queryset, columns=columns))


#: The call log counts the calls its filters select up to this many ("more than 10,000" past it): a bounded
#: ``COUNT`` over ``LIMIT``, never a count of the whole table.
LOG_COUNT_CAP = 10_000
_DATE_PARAMS = ("started_at_from", "started_at_to", "started_at__gte", "started_at__lt", "started_at__lte", "started_at__gt", "p")


def date_presets(request: Any) -> list[dict[str, Any]]:
    """The dashboard's ranges (today, yesterday, last 7 / 30 days, this / last month) as links that set the log's
    date range in the operator's time zone and keep its other filters."""
    from calltrack import reports  # the reports layer reads the calls; imported when the page is built

    tz = reports.operator_tz(request.user)
    kept = request.GET.copy()
    for name in _DATE_PARAMS:
        kept.pop(name, None)
    current = (request.GET.get("started_at_from"), request.GET.get("started_at_to"))
    out = []
    for key, label in reports.RANGES.items():
        if key == "custom":
            continue
        period = reports.period_for(key, tz=tz)
        params = kept.copy()
        params["started_at_from"], params["started_at_to"] = period.first_day.isoformat(), period.last_day.isoformat()
        out.append({"label": label, "url": "?" + params.urlencode(),
                    "active": current == (period.first_day.isoformat(), period.last_day.isoformat())})
    return out
