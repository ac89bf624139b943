"""The call log's pieces for the admin: filters, the search an operator types, the check of its query
parameters, and the CSV export.

The dashboard links into the log with plain lookups (``?source__id__exact=3&started_at__gte=...&started_at__lt=...``);
the filters here keep those working: the related filters use Django's own ``<field>__id__exact`` parameters and
the date range its own ``started_at_from`` / ``started_at_to`` ones. Dates and numbers no database can use
(an offset of -16:53, 9999-12-31 plus a day, 30 February) are refused with a message by
:func:`call_log_query_problem` before any query runs (the reports API refuses the same with a 400).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.apps import apps
from django.contrib.admin import SimpleListFilter
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import connection, models
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Reverse
from django.db.models.lookups import StartsWith
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from unfold.contrib.filters.admin import RangeDateFilter, TextFilter

from calltrack import csv_export, phone
from calltrack.api.filters import MAX_ID, MAX_UTC_OFFSET
from calltrack.scoping import UNSCOPED, Scope, call_search_parts, side_field
from tracking import report_figures

# A search term that is a phone number as people type it: digits with spaces, dots, dashes, parentheses, a leading +.
_PHONE_LIKE = re.compile(r"^\+?[\d\s().\-]{7,}$")


class LocalDateRangeFilter(RangeDateFilter):
    """Calls from the start of the "from" day to the end of the "to" day, days in the operator's time zone.

    Unfold's own filter compares a datetime column with a bare date (``<= 2026-11-30`` means "before midnight"),
    which would leave the last day out.
    """

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        tz = timezone.get_current_timezone()
        try:
            start = local_day_start(self.used_parameters.get(f"{self.parameter_name}_from") or "", tz)
            end = local_day_start(self.used_parameters.get(f"{self.parameter_name}_to") or "", tz, next_day=True)
        except ValidationError as exc:
            raise IncorrectLookupParameters(exc) from exc
        if start:
            queryset = queryset.filter(**{f"{self.parameter_name}__gte": start})
        if end:
            queryset = queryset.filter(**{f"{self.parameter_name}__lt": end})
        return queryset


def local_day_start(text: str, tz: Any, *, next_day: bool = False) -> datetime | None:
    """The start of the day ``text`` names (or of the day after it) in ``tz``, in UTC; None for no text. A date
    that is not one (2026-02-30, "abc") or whose bounds leave the calendar (9999-12-31) is a ValidationError."""
    if not text:
        return None
    try:
        day = forms.DateField().to_python(text)
    except ValidationError:
        raise ValidationError(f"{text!r} is not a date (YYYY-MM-DD).") from None
    try:
        if next_day:
            day += timedelta(days=1)
        return datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)
    except OverflowError:
        raise ValidationError(f"{text!r} is out of range.") from None


class MarketingValueFilter(TextFilter):
    """Calls whose marketing value ``key`` reads exactly the text given (a number as its digits), or, with
    ``<key>__none=1``, calls without one: the key missing, null or blank, which the reports count in one
    "(none)" row. The dashboard's UTM rows link here (``calltrack.reports``), so each finds the calls it counts."""

    key = ""  # also what calltrack.admin_scoping reads as the filter's parameter, before one is built

    def __init__(self, request, params, model, model_admin) -> None:
        self.parameter_name = self.key
        self.none_parameter = f"{self.key}__none"
        super().__init__(request, params, model, model_admin)
        if self.none_parameter in params:
            value = params.pop(self.none_parameter)
            self.used_parameters[self.none_parameter] = value[-1] if isinstance(value, list) else value

    def expected_parameters(self) -> list[str | None]:
        return [self.parameter_name, self.none_parameter]

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        text = report_figures.marketing_text(self.key)
        if self.used_parameters.get(self.none_parameter) not in (None, "", "0", "False", "false"):
            return queryset.alias(_marketing_text=text).filter(Q(_marketing_text__isnull=True) | Q(_marketing_text=""))
        value = self.value()
        return queryset.alias(_marketing_text=text).filter(_marketing_text=value) if value else queryset


class UTMSourceFilter(MarketingValueFilter):
    title = "UTM source"
    key = "utm_source"


class UTMMediumFilter(MarketingValueFilter):
    title = "UTM medium"
    key = "utm_medium"


class UTMCampaignFilter(MarketingValueFilter):
    title = "UTM campaign"
    key = "utm_campaign"


#: The log's marketing filters, for operators and source collaborators (a handler does not see marketing data).
MARKETING_FILTERS = (UTMSourceFilter, UTMMediumFilter, UTMCampaignFilter)


class PoolLinkFilter(TextFilter):
    """``?pool=<id>`` (or ``?pool__none=1``): the calls to a number of that pool (or to no pool's), which the
    dashboard's pool rows link to. Shown only while used (a box with the id: no list of pools, since a source
    collaborator must not see the others'); a plain parameter rather than ``tracking_number__pool__id__exact``,
    which Django allows only with the pool filter in the list, so a source collaborator's pool rows open too."""

    title = "pool id"
    parameter_name = "pool"

    def __init__(self, request, params, model, model_admin) -> None:
        super().__init__(request, params, model, model_admin)
        if "pool__none" in params:
            value = params.pop("pool__none")
            self.used_parameters["pool__none"] = value[-1] if isinstance(value, list) else value

    def has_output(self) -> bool:
        return bool(self.used_parameters)  # Django applies only the filters it shows

    def expected_parameters(self) -> list[str | None]:
        return ["pool", "pool__none"]

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        if self.used_parameters.get("pool__none") not in (None, "", "0", "False", "false"):
            return queryset.filter(tracking_number__pool_id__isnull=True)
        value = self.value()
        if not value:
            return queryset
        if not value.isascii() or not value.isdigit() or int(value) > MAX_ID:
            raise IncorrectLookupParameters(f"pool: {value!r} is not a pool id.")
        return queryset.filter(tracking_number__pool_id=int(value))


# --- Query parameters no database can use ---------------------------------------------------------------------

#: Transforms of a date or time column whose value is a whole number (``started_at__year=2026``).
_NUMBER_TRANSFORMS = {"year", "iso_year", "month", "day", "week", "week_day", "iso_week_day", "quarter", "hour", "minute", "second"}
_TIME_TRANSFORMS = {"date", "time", *_NUMBER_TRANSFORMS}
_LIST_LOOKUPS = {"in", "range"}
_INTEGER_FIELDS = (models.IntegerField, models.AutoField)


def call_log_query_problem(*, model: type[models.Model], params: Any, date_ranges: tuple[str, ...] = ("started_at",)) -> str | None:
    """Why the log of ``model`` cannot use the query parameters ``params`` (a QueryDict), in words for the
    operator; None when it can. Checked before any query runs, for the values Django would hand to the database
    unchecked: a moment with an offset PostgreSQL does not store or that leaves the calendar in UTC, a day that
    does not exist, a year outside 2-9998, an integer beyond 64 bits, a NUL character. Unknown fields and other
    malformed lookups are left to the changelist (its own "incorrect lookup" handling)."""
    for key, values in params.lists():
        for value in values:
            if "\x00" in key or "\x00" in value:
                return "A query parameter contains a NUL character."
            problem = _database_lookup_problem(key) or _day_range_problem(key, value, date_ranges) or _lookup_problem(model, key, value)
            if problem:
                return problem
    return None


def _database_lookup_problem(key: str) -> str | None:
    """Lookups Django hands to the database unread, which fail there rather than in Django: a regular expression
    (PostgreSQL's syntax is not Python's: ``(`` or ``[]`` is an error in the query), a range on a JSON key (the
    changelist does not split the value: a crash before the query)."""
    parts = key.split("__")
    if parts[-1] in ("regex", "iregex"):
        return f"{key}: the log does not filter with regular expressions (use __contains or __startswith)."
    if parts[-1] == "range" and len(parts) > 2:
        return f"{key}: a range is not read on a JSON key or through a relation here; use __gte and __lt."
    return None


def _day_range_problem(key: str, value: str, date_ranges: tuple[str, ...]) -> str | None:
    if not any(key in (f"{name}_from", f"{name}_to") for name in date_ranges):
        return None
    try:
        local_day_start(value, timezone.get_current_timezone(), next_day=key.endswith("_to"))
    except ValidationError as exc:
        return f"{key}: {exc.messages[0]}"
    return None


def _lookup_field(model: type[models.Model], key: str) -> tuple[models.Field | None, list[str]]:
    """The concrete field a lookup ``key`` ends on (following relations) and the transforms/lookups after it."""
    parts = key.split("__")
    field = None
    for i, part in enumerate(parts):
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            return (field if i else None), parts[i:]
        if field.is_relation and field.related_model is not None and i + 1 < len(parts):
            model = field.related_model
            continue
        return field, parts[i + 1:]
    return field, []


def _lookup_problem(model: type[models.Model], key: str, value: str) -> str | None:
    field, rest = _lookup_field(model, key)
    if field is None or not hasattr(field, "get_internal_type"):
        return None
    if (isinstance(field, models.JSONField) and rest and rest[-1] in ("contains", "contained_by")
            and not connection.features.supports_json_field_contains):
        # SQLite has no JSON containment: Django refuses it when it writes the SQL (a crash, not a filter).
        return (f"{key}: this database cannot test what a JSON value contains; name the key and a value instead "
                f"({field.name}__<key>=<value>, or {field.name}__<key>__icontains=<text>).")
    transform = rest[0] if rest and rest[0] in _TIME_TRANSFORMS and isinstance(field, models.DateField) else None
    lookups = rest[1:] if transform else rest
    lookup = lookups[0] if lookups else "exact"
    if lookup == "isnull" or len(lookups) > 1:
        return None
    values = value.split(",") if lookup in _LIST_LOOKUPS else [value]
    if lookup == "range" and len(values) != 2:  # Django unpacks two values when it writes the SQL
        return f"{key}: a range is two values separated by a comma."
    for text in values:
        problem = _value_problem(field, transform, text)
        if problem:
            return f"{key}: {problem}"
    return None


def _value_problem(field: models.Field, transform: str | None, text: str) -> str | None:
    if transform in _NUMBER_TRANSFORMS:
        return _number_problem(text, low=2 if transform in ("year", "iso_year") else -MAX_ID,
                               high=9998 if transform in ("year", "iso_year") else MAX_ID)
    if transform == "date" or (transform is None and type(field) is models.DateField):
        try:
            return None if parse_date(text) else f"{text!r} is not a date (YYYY-MM-DD)."
        except ValueError:
            return f"{text!r} is not a date (YYYY-MM-DD)."
    if transform is None and isinstance(field, models.DateTimeField):
        return _moment_problem(text)
    if transform is None and isinstance(field.target_field if field.is_relation else field, _INTEGER_FIELDS):
        return _number_problem(text, low=-MAX_ID, high=MAX_ID) if text.strip().lstrip("+-").isdigit() else None
    return None


def _number_problem(text: str, *, low: int, high: int) -> str | None:
    try:
        number = int(text)
    except ValueError:
        return f"{text!r} is not a whole number."
    return None if low <= number <= high else f"{text} is out of range ({low} to {high})."


def _moment_problem(text: str) -> str | None:
    """A moment the log can compare with: ISO 8601 with its UTC offset, within ±15:59 (all PostgreSQL stores),
    and inside the calendar once in UTC (SQLite compares in UTC)."""
    try:
        moment = parse_datetime(text)
    except ValueError:
        return f"{text!r} is not a date and time."
    if moment is None:
        return f"{text!r} is not a date and time with its UTC offset (2026-11-01T00:00:00-04:00)."
    offset = moment.utcoffset()
    if offset is None:
        return f"{text!r} has no UTC offset (write it as {text}+00:00, or with the offset meant)."
    if abs(offset) > MAX_UTC_OFFSET:
        return f"{text!r}: the UTC offset must be within ±15:59."
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return f"{text!r} is out of range."
    return None


class FallbackChainFilter(SimpleListFilter):
    """Calls answered through the fallback chain with no handler credited (the dashboard's handler breakdown shows
    them as their own row): only them, or every call but them (what its "(none)" row counts)."""

    title = "answered by the fallback chain"
    parameter_name = "fallback_chain"

    def lookups(self, request, model_admin):
        return [("only", "Only those"), ("exclude", "Exclude those")]

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == "only":
            return queryset.filter(report_figures.FALLBACK_ANSWERED)
        if value == "exclude":
            return queryset.exclude(report_figures.FALLBACK_ANSWERED)
        if value:
            raise IncorrectLookupParameters(f"fallback chain: 'only' or 'exclude', not {value[:40]!r}")
        return queryset


class SpamFilter(SimpleListFilter):
    """Calls scored as spam (at or above their campaign's threshold): all of them, by what was done about them, or by
    one reason (``reason:<code>``): the dashboard's spam panel links here. Staff only: it reads the routing decision,
    which collaborators do not see (their list of filters leaves it out, so the parameter is refused for them)."""

    title = "spam"
    parameter_name = "spam"

    def lookups(self, request, model_admin):
        from calltrack.spam_figures import ACTIONS, REASON_LABELS

        return [("yes", "Scored as spam"), *((key, label) for key, label, _ in ACTIONS),
                *((f"reason:{code}", f"Reason: {label}") for code, label in REASON_LABELS.items())]

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        from calltrack.spam_figures import ACTIONS, REASON_LABELS, reason_q

        value = self.value()
        if not value:
            return queryset
        spam = queryset.filter(tags__spam="yes")
        if value == "yes":
            return spam
        actions = {key: q for key, _, q in ACTIONS}
        if value in actions:
            return spam.filter(actions[value])
        code = value.removeprefix("reason:")
        if value.startswith("reason:") and code in REASON_LABELS:
            return spam.filter(reason_q(code))
        raise IncorrectLookupParameters(f"spam: 'yes', an action or reason:<code>, not {value[:40]!r}")


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


class AdUploadFilter(SimpleListFilter):
    """Calls by what became of their uploads to the ad platforms: an upload with that status (any destination), or
    calls with no upload at all. An EXISTS on the uploads' index (destination, status) per call shown."""

    title = "sent to ad platforms"
    parameter_name = "ad_upload"

    def lookups(self, request, model_admin):
        from tracking.models import UploadStatus

        return [*UploadStatus.choices, ("none", "No upload")]

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        from tracking.models import ConversionUpload, UploadStatus

        value = self.value()
        if not value:
            return queryset
        uploads = ConversionUpload.objects.filter(call_id=models.OuterRef("pk"))
        if value == "none":
            return queryset.filter(~models.Exists(uploads))
        if value not in UploadStatus.values:
            raise IncorrectLookupParameters(f"sent to ad platforms: one of {', '.join(UploadStatus.values)} or none, not {value[:40]!r}")
        return queryset.filter(models.Exists(uploads.filter(status=value)))


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
    ("attestation", "attestation", ""),
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
