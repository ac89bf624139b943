"""The reporting selector: the one place the dashboard and the API's reports read their figures from.

For a date range in the operator's time zone (and the period just before it, for comparison): headline
totals, a time series stacked by outcome, breakdowns by a party or a marketing value, and alerts. Every
figure is computed over ``calltrack.scoping.visible_calls`` for the requester's scope, and a collaborator
gets only its own side of the money (``calltrack.scoping.report_hidden``), exactly as the calls API shows
its calls. Plain ORM aggregates over the calls table, so the same code runs on SQLite and PostgreSQL; the
(started_at) index and the per-party (x, started_at) indexes keep it fast (bench/report.py).

Outcomes (each call is in exactly one): answered (a handler or a fallback picked up: ``answered_at`` set),
blocked (rejected by a number filter or the blocked-callers list), missed (ended without an answer), live
(still ringing or in progress).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Case, Count, Q, QuerySet, Sum, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from calltrack.nomenclature import HANDLER_TITLE, SOURCE_TITLE
from calltrack.scoping import (
    Scope,
    in_account,
    report_dimensions,
    report_hidden,
    scope_for,
    visible_calls,
    visible_pools,
    visible_tracking_numbers,
)
from tracking.report_figures import (
    ANSWERED,
    BLOCKED,
    CAPPED_DIM,
    CENTS,
    COUNTS,
    FALLBACK_KEY,
    LIVE,
    MEASURES,
    MISSED,
    PARTY_KEY,
    ROLLUP_DIMS,
    call_aggregates,
    capped_counts,
    converted_q,
    dimension_key,
    key_text,
)

RANGES = {
    "today": "Today",
    "yesterday": "Yesterday",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "this_month": "This month",
    "last_month": "Last month",
    "custom": "Custom",
}
DEFAULT_RANGE = "7d"
#: Longest custom range (days): a report over years is a data export, not a dashboard.
MAX_RANGE_DAYS = 366

#: Breakdown dimensions: key -> (label, the call log's filter lookup for a row, ORM expression of the key).
DIMENSIONS: dict[str, str] = {
    "source": SOURCE_TITLE,
    "campaign": "Campaign",
    "handler": HANDLER_TITLE,
    "tracking_number": "Tracking number",
    "pool": "Pool",
    "utm_source": "UTM source",
    "utm_medium": "UTM medium",
    "utm_campaign": "UTM campaign",
    "caller_state": "Caller state",
}
#: The call log's (admin changelist's) parameter that selects a breakdown row's calls. The parties' are the
#: related filters' own; the pool's and the marketing values' are the log's link filters
#: (tracking/admin_call_log.py; the marketing ones compare the value as text, as the row's key reads it).
_LOG_LOOKUP = {
    "source": "source__id__exact",
    "campaign": "campaign__id__exact",
    "handler": "handler__id__exact",
    "tracking_number": "tracking_number__id__exact",
    "pool": "pool",
    "utm_source": "utm_source",
    "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign",
    "caller_state": "caller_state__exact",
}
#: ... and the "(none)" row's. Not ``handler__isnull``: the theme's related filters take that parameter and
#: apply nothing (every call of the range was listed); ``handler__id__isnull`` is a plain lookup the log applies.
#: The marketing filters' ``__none`` takes a missing, null or blank value, all of which the row counts.
_LOG_NONE = {
    "source": {"source__id__isnull": "True"},
    "campaign": {"campaign__id__isnull": "True"},
    "handler": {"handler__id__isnull": "True"},
    "tracking_number": {"tracking_number__id__isnull": "True"},
    "pool": {"pool__none": "1"},
    "utm_source": {"utm_source__none": "1"},
    "utm_medium": {"utm_medium__none": "1"},
    "utm_campaign": {"utm_campaign__none": "1"},
    "caller_state": {"caller_state__exact": ""},
}


class ReportError(ValueError):
    """Bad report parameters (unknown range or dimension, dates out of order or too far apart)."""


# --- Periods ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """``start <= started_at < end`` (aware datetimes), the local dates it covers, and its time zone."""

    start: datetime
    end: datetime
    first_day: date
    last_day: date
    tz: ZoneInfo
    key: str = "custom"

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @property
    def hourly(self) -> bool:
        """One day is shown by hour, longer ranges by day."""
        return self.days == 1

    @property
    def label(self) -> str:
        if self.first_day == self.last_day:
            return self.first_day.strftime("%a %d %b %Y")
        return f"{self.first_day:%d %b %Y} – {self.last_day:%d %b %Y}"

    def previous(self) -> Period:
        """The same number of days just before this period."""
        last = self.first_day - timedelta(days=1)
        return period_between(last - timedelta(days=self.days - 1), last, tz=self.tz, key="previous")


def account_settings(account_id: int | None) -> tuple[ZoneInfo, str]:
    """An account's time zone and currency code (ISO 4217), each the install's when the account leaves it blank
    (``TIME_ZONE``, ``CURRENCY``); the install's for None (a task, a command: every account). One query."""
    zone, currency = "", ""
    if account_id is not None:
        from calltrack.models import Account

        zone, currency = Account.objects.filter(pk=account_id).values_list("time_zone", "currency").first() or ("", "")
    return _zone_and_currency(zone, currency)


def _zone_and_currency(zone: str, currency: str) -> tuple[ZoneInfo, str]:
    try:
        tz = ZoneInfo(zone or settings.TIME_ZONE)
    except (ValueError, KeyError):  # a zone removed from the system's database since it was saved: the install's
        tz = ZoneInfo(settings.TIME_ZONE)
    return tz, currency or settings.CURRENCY


def _account_of(who: Any) -> int | None:
    if who is None:
        return None
    if isinstance(who, Scope):
        return who.account_id
    return scope_for(who).account_id


def operator_settings(who: Any) -> tuple[ZoneInfo, str]:
    """:func:`account_settings` of ``who``'s account; for a user, as read with its places (no statement)."""
    account_id = _account_of(who)
    if who is not None and not isinstance(who, Scope) and account_id is not None:
        from calltrack.accounts import shown

        info = shown(who, account_id)
        if info is not None:
            return _zone_and_currency(info.zone, info.currency)
    return account_settings(account_id)


def operator_tz(who: Any = None) -> ZoneInfo:
    """The time zone the console's days are read in for ``who`` (a user or a :class:`Scope`): its account's
    ``time_zone``, else the ``TIME_ZONE`` setting (also for nobody: the install's own work)."""
    return operator_settings(who)[0]


def operator_currency(who: Any = None) -> str:
    """The currency code money is shown in for ``who`` (a user or a :class:`Scope`): its account's, else the
    ``CURRENCY`` setting."""
    return operator_settings(who)[1]


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz)


def period_between(first_day: date, last_day: date, *, tz: ZoneInfo, key: str = "custom") -> Period:
    if last_day < first_day:
        raise ReportError("The end date is before the start date.")
    if (last_day - first_day).days + 1 > MAX_RANGE_DAYS:
        raise ReportError(f"A report covers at most {MAX_RANGE_DAYS} days.")
    if first_day.year < 2000 or last_day.year > 2999:
        raise ReportError("Dates must be between the years 2000 and 2999.")
    return Period(
        start=_midnight(first_day, tz), end=_midnight(last_day + timedelta(days=1), tz),
        first_day=first_day, last_day=last_day, tz=tz, key=key,
    )


def period_for(
    key: str, *, tz: ZoneInfo | None = None, now: datetime | None = None,
    first_day: date | None = None, last_day: date | None = None,
) -> Period:
    """The period a range picker choice means, today being ``now``'s date in ``tz``."""
    tz = tz or operator_tz()
    today = (now or timezone.now()).astimezone(tz).date()
    if key == "today":
        return period_between(today, today, tz=tz, key=key)
    if key == "yesterday":
        day = today - timedelta(days=1)
        return period_between(day, day, tz=tz, key=key)
    if key == "7d":
        return period_between(today - timedelta(days=6), today, tz=tz, key=key)
    if key == "30d":
        return period_between(today - timedelta(days=29), today, tz=tz, key=key)
    if key == "this_month":
        return period_between(today.replace(day=1), today, tz=tz, key=key)
    if key == "last_month":
        last = today.replace(day=1) - timedelta(days=1)
        return period_between(last.replace(day=1), last, tz=tz, key=key)
    if key == "custom":
        if first_day is None or last_day is None:
            raise ReportError("A custom range needs a start and an end date.")
        return period_between(first_day, last_day, tz=tz, key=key)
    raise ReportError(f"Unknown range {key!r}; one of: {', '.join(RANGES)}.")


# --- Totals ----------------------------------------------------------------------------------------------

@dataclass
class Totals:
    calls: int = 0
    answered: int = 0
    missed: int = 0
    blocked: int = 0
    live: int = 0
    converted: int = 0
    failsafe: int = 0
    talk_time: int = 0
    revenue: Decimal | None = Decimal("0.00")
    payout: Decimal | None = Decimal("0.00")

    @property
    def answer_rate(self) -> float | None:
        """Answered / calls that could be answered (blocked calls never ring a handler)."""
        reachable = self.calls - self.blocked
        return self.answered / reachable if reachable else None

    @property
    def conversion_rate(self) -> float | None:
        return self.converted / self.calls if self.calls else None

    @property
    def margin(self) -> Decimal | None:
        if self.revenue is None or self.payout is None:
            return None
        return self.revenue - self.payout

    @property
    def average_talk_time(self) -> float | None:
        """Seconds connected per answered call."""
        return self.talk_time / self.answered if self.answered else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls, "answered": self.answered, "answer_rate": self.answer_rate, "missed": self.missed,
            "blocked": self.blocked, "live": self.live, "converted": self.converted, "conversion_rate": self.conversion_rate,
            "revenue": self.revenue, "payout": self.payout, "margin": self.margin,
            "average_talk_time": self.average_talk_time, "failsafe": self.failsafe,
        }


#: Headline figures, in the dashboard's order: key -> (label, kind). Kinds: count, rate, money, seconds.
FIGURES: dict[str, tuple[str, str]] = {
    "calls": ("Calls", "count"),
    "answered": ("Answered", "count"),
    "answer_rate": ("Answer rate", "rate"),
    "missed": ("Missed", "count"),
    "blocked": ("Blocked / rejected", "count"),
    "converted": ("Converted", "count"),
    "conversion_rate": ("Conversion rate", "rate"),
    "revenue": ("Revenue", "money"),
    "payout": ("Payout", "money"),
    "margin": ("Margin", "money"),
    "average_talk_time": ("Avg talk time", "seconds"),
    "failsafe": ("Fail-safe calls", "count"),
}
#: Figures where a rise is bad news (shown red).
RISE_IS_BAD = frozenset({"missed", "blocked", "failsafe", "payout"})


def _totals(row: dict[str, Any], scope: Scope, prefix: str = "") -> Totals:
    hidden = report_hidden(scope)
    values = {name: row[f"{prefix}{name}"] or 0 for name in COUNTS}
    money = {name: None if name in hidden else Decimal(row[f"{prefix}{name}"] or 0).quantize(CENTS) for name in ("revenue", "payout")}
    return Totals(**values, **money)




def _add(into: Totals, other: Totals) -> Totals:
    for name in COUNTS:
        setattr(into, name, getattr(into, name) + getattr(other, name))
    for name in ("revenue", "payout"):
        if getattr(into, name) is not None and getattr(other, name) is not None:
            setattr(into, name, getattr(into, name) + getattr(other, name))
    return into


def scoped_calls(scope: Scope) -> QuerySet:
    from tracking.models import Call

    # Test calls (the admin's "Test call") are in no figure: the rollups leave them out too (day_rollup).
    return visible_calls(Call.objects.filter(is_test=False), scope).order_by()


def _in(period: Period) -> Q:
    return Q(started_at__gte=period.start, started_at__lt=period.end)


# --- Rollups: days read from tracking.CallDayRollup when they are exact, from the calls otherwise ------------



def uses_rollups(scope: Scope) -> bool:
    """Rollups are kept (by a trigger) on PostgreSQL, per account: an account's staff read its rows, the install
    (no account) every account's. Collaborators' figures, a subset, are read from their calls through the
    (source|handler, started_at) indexes."""
    from django.db import connection

    return not scope.is_collaborator and connection.vendor == "postgresql"


def rollups(scope: Scope, tz: ZoneInfo) -> QuerySet:
    """The rollup rows ``scope`` reads in zone ``tz``: its account's, or every account's for the install."""
    from tracking.models import CallDayRollup

    rows = CallDayRollup.objects.filter(tz=tz.key)
    return rows if scope.account_id is None else rows.filter(account_id=scope.account_id)


def _days(period: Period) -> list[date]:
    return [period.first_day + timedelta(days=i) for i in range(period.days)]


def split_days(scope: Scope, period: Period) -> tuple[list[date], list[date]]:
    """(days read from the rollups, days read from the calls): a day comes from the rollups when it was rolled
    up in this time zone (its totals row of the calls without an account, written for every rolled-up day) and no
    call of that day changed since (``CallRollupDirty``, this zone's markers: the account's own, or any for the
    install)."""
    days = _days(period)
    if not uses_rollups(scope):
        return [], days
    from tracking.models import CallDayRollup, CallRollupDirty

    rolled = set(
        CallDayRollup.objects.filter(
            tz=period.tz.key, dim="total", account__isnull=True, day__gte=period.first_day, day__lte=period.last_day,
        ).values_list("day", flat=True)
    )
    if rolled:
        marks = CallRollupDirty.objects.filter(tz=period.tz.key, at__gte=period.start, at__lt=period.end)
        if scope.account_id is not None:
            marks = marks.filter(account_id=scope.account_id)
        dirty = set(marks.annotate(d=TruncDate("at", tzinfo=period.tz)).values_list("d", flat=True).distinct())
        rolled -= dirty
    return [d for d in days if d in rolled], [d for d in days if d not in rolled]


def _days_q(days: list[date], tz: ZoneInfo) -> Q | None:
    """``started_at`` within these local days (contiguous days merged into one range); None for no day."""
    q = None
    i = 0
    while i < len(days):
        j = i
        while j + 1 < len(days) and days[j + 1] == days[j] + timedelta(days=1):
            j += 1
        part = Q(started_at__gte=_midnight(days[i], tz), started_at__lt=_midnight(days[j] + timedelta(days=1), tz))
        q = part if q is None else q | part
        i = j + 1
    return q


def _rollup_sums(where: Q, prefix: str = "") -> dict[str, Any]:
    return {f"{prefix}{name}": Sum(name, filter=where) for name in MEASURES}


@dataclass
class Summary:
    period: Period
    previous_period: Period
    current: Totals
    previous: Totals
    hidden: frozenset[str]

    def change(self, name: str) -> float | None:
        """Relative change against the previous period (0.25 = +25%); None when there is nothing to compare."""
        now, before = getattr(self.current, name), getattr(self.previous, name)
        if now is None or before is None or not before:
            return None
        return float((Decimal(str(now)) - Decimal(str(before))) / Decimal(str(before)))


def report_summary(*, scope: Scope, period: Period) -> Summary:
    """Headline totals of ``period`` and of the period before it: the rolled-up days' sums plus one scan of the
    other days' calls (both periods in one query each)."""
    previous = period.previous()
    totals = {}
    rolled_q: dict[str, Q | None] = {}
    raw_q: dict[str, Q | None] = {}
    for name, p in (("cur_", period), ("prev_", previous)):
        rolled, raw = split_days(scope, p)
        rolled_q[name], raw_q[name] = _days_q_dates(rolled), _days_q(raw, p.tz)
        totals[name] = _totals(dict.fromkeys((f"{name}{m}" for m in MEASURES), 0), scope, name)
    if any(rolled_q.values()):
        aggs = {}
        for name, q in rolled_q.items():
            if q is not None:
                aggs.update(_rollup_sums(q, name))
        row = rollups(scope, period.tz).filter(dim="total").aggregate(**aggs)
        for name, q in rolled_q.items():
            if q is not None:
                _add(totals[name], _totals(row, scope, name))
    if any(q is not None for q in raw_q.values()):
        aggs, where = {}, Q(pk__in=[])
        for name, q in raw_q.items():
            if q is not None:
                aggs.update(call_aggregates(scope, q, name))
                where |= q
        row = scoped_calls(scope).filter(where).aggregate(**aggs)
        for name, q in raw_q.items():
            if q is not None:
                _add(totals[name], _totals(row, scope, name))
    return Summary(period=period, previous_period=previous, current=totals["cur_"], previous=totals["prev_"], hidden=report_hidden(scope))


def _days_q_dates(days: list[date]) -> Q | None:
    return Q(day__in=days) if days else None


# --- Time series -----------------------------------------------------------------------------------------


@dataclass
class Bucket:
    start: datetime
    label: str
    answered: int = 0
    missed: int = 0
    blocked: int = 0
    live: int = 0
    converted: int = 0
    #: Where the bucket ends (the next bucket's start): an hour is not always 60 minutes of real time.
    end: datetime | None = None

    @property
    def calls(self) -> int:
        return self.answered + self.missed + self.blocked + self.live


_UTC = ZoneInfo("UTC")


def _offset(at: datetime, tz: ZoneInfo) -> timedelta:
    return at.astimezone(tz).utcoffset() or timedelta(0)


def _offset_change(after: datetime, before: datetime, tz: ZoneInfo) -> datetime | None:
    """The first instant in (after, before) where ``tz``'s UTC offset differs from its offset at ``after`` (to the
    second: the zone database changes offsets on whole seconds); None when it does not change in between."""
    offset = _offset(after, tz)
    if _offset(before - timedelta(seconds=1), tz) == offset:
        return None
    low, high = after, before - timedelta(seconds=1)  # offset(low) == offset, offset(high) != offset
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) // 2
        middle = middle.replace(microsecond=0)
        if _offset(middle, tz) == offset:
            low = middle
        else:
            high = middle
    return high


def local_hours(period: Period) -> list[tuple[datetime, datetime]]:
    """The period's hourly buckets as UTC ``[start, end)`` pairs: a bucket starts wherever the local clock reads
    HH:00 and wherever the UTC offset changes, so every bucket has one offset and the buckets cover the period
    exactly: 25 buckets on an autumn DST day (its repeated hour twice, once per offset), 23 in spring, and
    half-hour buckets where a zone moves by 30 minutes (Australia/Lord_Howe) or its hours start on the half hour
    of UTC (Asia/Kolkata)."""
    tz = period.tz
    at, end = period.start.astimezone(_UTC), period.end.astimezone(_UTC)
    cuts = [at]
    while at < end:
        offset = _offset(at, tz)
        wall = at.replace(tzinfo=None) + offset
        next_wall = wall.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        following = (next_wall - offset).replace(tzinfo=_UTC)
        following = min(_offset_change(at, following, tz) or following, end)
        cuts.append(following)
        at = following
    return list(zip(cuts, cuts[1:]))


def hour_labels(hours: list[tuple[datetime, datetime]], tz: ZoneInfo) -> list[str]:
    """"HH:MM" of each bucket's local start; where the clock went back and two buckets show the same local time,
    each says its zone ("01:00 EDT", "01:00 EST"; "01:00 UTC+11:00", "01:30 UTC+10:30" where the zone has no
    abbreviation)."""
    walls = []
    for start, end in hours:
        local = start.astimezone(tz)
        offset = local.utcoffset() or timedelta(0)
        walls.append((local, start.replace(tzinfo=None) + offset, end.replace(tzinfo=None) + offset))
    labels = []
    for i, (local, wall_start, wall_end) in enumerate(walls):
        label = f"{local:%H:%M}"
        repeated = any(j != i and wall_start < other_end and other_start < wall_end for j, (_, other_start, other_end) in enumerate(walls))
        if repeated:
            label += f" {_zone_name(local)}"
        labels.append(label)
    return labels


def _zone_name(local: datetime) -> str:
    name = local.tzname() or ""
    if name and name[0] not in "+-":
        return name
    minutes = int((local.utcoffset() or timedelta(0)).total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def report_timeseries(*, scope: Scope, period: Period) -> list[Bucket]:
    """Calls per local hour (a one-day period, see :func:`local_hours`) or per local day, split by outcome, with
    the conversions. Every bucket of the period is present (zeros included), and the buckets add up to the
    period's calls."""
    tz = period.tz
    converted = converted_q(scope)
    counts = {
        "answered": Count("id", filter=ANSWERED), "missed": Count("id", filter=MISSED),
        "blocked": Count("id", filter=BLOCKED), "live": Count("id", filter=LIVE), "converted": Count("id", filter=converted),
    }
    if period.hourly:
        # Each call's bucket is the index of the first bucket end after it, computed in UTC by the database: grouping
        # by the local hour (TruncHour) would put both 01:00 hours of an autumn day in one group.
        hours = local_hours(period)
        index = Case(*(When(started_at__lt=end, then=Value(i)) for i, (_, end) in enumerate(hours)), default=Value(len(hours)))
        found: dict[Any, dict[str, Any]] = {
            row["bucket"]: row
            for row in scoped_calls(scope).filter(_in(period)).annotate(bucket=index).values("bucket").annotate(**counts)
        }
        return [
            _bucket(start.astimezone(tz), label, found.get(i), end=end.astimezone(tz))
            for i, ((start, end), label) in enumerate(zip(hours, hour_labels(hours, tz)))
        ]
    found = {}
    rolled, raw_days = split_days(scope, period)
    if rolled:
        rows = rollups(scope, tz).filter(dim="total", day__in=rolled).values("day").annotate(**{m: Sum(m) for m in MEASURES}).order_by()
        for row in rows:
            found[row["day"]] = row
    where = _days_q(raw_days, tz)
    if where is not None:
        rows = scoped_calls(scope).filter(where).annotate(bucket=TruncDate("started_at", tzinfo=tz)).values("bucket").annotate(**counts)
        for row in rows:
            found[row["bucket"]] = row
    return [
        _bucket(_midnight(day, tz), f"{day:%d %b}", found.get(day), end=_midnight(day + timedelta(days=1), tz))
        for day in _days(period)
    ]


def _bucket(start: datetime, label: str, row: dict[str, Any] | None, *, end: datetime) -> Bucket:
    bucket = Bucket(start=start, label=label, end=end)
    if row:
        for name in ("answered", "missed", "blocked", "live", "converted"):
            setattr(bucket, name, row[name])
    return bucket


# --- Breakdowns ------------------------------------------------------------------------------------------


@dataclass
class BreakdownRow:
    key: Any
    label: str
    totals: Totals
    #: The call log's query parameters selecting this row's calls (without the date range).
    log_filter: dict[str, str] = field(default_factory=dict)


def report_breakdown(*, scope: Scope, period: Period, by: str, limit: int | None = None) -> list[BreakdownRow]:
    """The period's totals per ``by`` (a key of ``DIMENSIONS`` the scope may see), most calls first; calls
    without that value (or with an empty one) form one row labelled "(none)"."""
    if by not in DIMENSIONS:
        raise ReportError(f"Unknown breakdown {by!r}; one of: {', '.join(DIMENSIONS)}.")
    if by not in report_dimensions(scope):
        raise ReportError(f"The breakdown by {DIMENSIONS[by].lower()} is not available to you.")
    merged: dict[str, Totals] = {}
    if by in ROLLUP_DIMS:
        rolled, raw_days = split_days(scope, period)
    else:
        rolled, raw_days = [], _days(period)
    if rolled:
        rows = (
            rollups(scope, period.tz).filter(dim=by, day__in=rolled).values("key")
            .annotate(**{m: Sum(m) for m in MEASURES}).order_by()
        )
        for row in rows:
            merged[row["key"]] = _add(merged.get(row["key"]) or Totals(), _totals(row, scope))
    where = _days_q(raw_days, period.tz)
    if where is not None:
        rows = scoped_calls(scope).filter(where).annotate(k=dimension_key(by)).values("k").annotate(**call_aggregates(scope, Q()))
        for row in rows:
            key = key_text(row["k"])
            merged[key] = _add(merged.get(key) or Totals(), _totals(row, scope))
    hidden = report_hidden(scope)
    for totals in merged.values():
        for name in ("revenue", "payout"):
            if name in hidden:
                setattr(totals, name, None)
    labels = _labels(by, [k for k in merged if k and not (by == "handler" and k == FALLBACK_KEY)], scope)
    if by == "handler":
        labels[FALLBACK_KEY] = "(fallback chain, no handler credited)"
    out = [
        BreakdownRow(key=key or None, label=labels.get(key, key) if key else "(none)", totals=totals, log_filter=_log_filter(by, key))
        for key, totals in merged.items()
    ]
    out.sort(key=lambda r: (-r.totals.calls, r.label.lower()))
    return out[:limit] if limit else out


def _labels(by: str, keys: list[str], scope: Scope) -> dict[str, str]:
    """Names for party ids (one query, in the scope's account: a row of another account gets no name); other keys
    are their own label."""
    if by not in PARTY_KEY or not keys:
        return {}
    from calltrack.numbers.models import NumberPool, TrackingNumber
    from tracking.models import Campaign, Handler, Source

    ids = [int(k) for k in keys]
    if by == "tracking_number":
        return {
            str(tn["id"]): f"{tn['number']} · {tn['label']}" if tn["label"] else str(tn["number"])
            for tn in in_account(TrackingNumber.objects.filter(id__in=ids), scope).values("id", "number", "label")
        }
    model = {"source": Source, "campaign": Campaign, "handler": Handler, "pool": NumberPool}[by]
    return {str(pk): name for pk, name in in_account(model.objects.filter(id__in=ids), scope).values_list("id", "name")}


def _log_filter(by: str, key: str) -> dict[str, str]:
    if by == "handler" and key == FALLBACK_KEY:
        return {"fallback_chain": "only"}
    if by == "handler" and not key:  # "(none)": without the fallback chain's answers, which have their own row
        return {**_LOG_NONE[by], "fallback_chain": "exclude"}
    return dict(_LOG_NONE[by]) if not key else {_LOG_LOOKUP[by]: key}


def call_log_params(period: Period) -> dict[str, str]:
    """The call log's query parameters for ``period`` (plain ``started_at`` lookups, in UTC), without the test calls
    the figures leave out."""
    utc = ZoneInfo("UTC")
    return {"started_at__gte": period.start.astimezone(utc).isoformat(), "started_at__lt": period.end.astimezone(utc).isoformat(),
            "test": "exclude"}


# --- Alerts ----------------------------------------------------------------------------------------------


@dataclass
class Alert:
    kind: str  # pool_overflow, handler_cap, webhook_failing, number_status, port_pending
    level: str  # warning, danger
    message: str
    count: int = 0
    url_name: str = ""
    url_args: tuple[Any, ...] = ()
    url_query: dict[str, str] = field(default_factory=dict)


def report_alerts(*, scope: Scope, period: Period) -> list[Alert]:
    """What an operator must not miss in ``period``: pools that ran out of numbers, handlers skipped at a cap,
    webhooks failing, numbers quarantined or porting. Collaborators see only their own pools and numbers."""
    alerts: list[Alert] = []
    alerts += _pool_overflows(scope, period)
    if not scope.is_collaborator:
        alerts += _capped_handlers(scope, period)
        alerts += _failing_webhooks(scope, period)
        alerts += _failing_uploads(scope, period)
    alerts += _numbers_not_active(scope)
    return alerts


@dataclass(frozen=True)
class UploadFigure:
    """One conversion destination's uploads in a period: how many were sent, refused, not eligible, pending."""

    destination_id: int
    name: str
    platform: str
    sent: int
    refused: int
    not_eligible: int
    pending: int


def report_ad_uploads(*, scope: Scope, period: Period) -> list[UploadFigure]:
    """"Sent to ad platforms": per destination, its uploads made in ``period`` by status (one grouped query on the
    uploads' (destination, status) index). The operator's business: nothing for a collaborator."""
    from tracking.models import ConversionUpload

    if scope.is_collaborator:
        return []
    rows = (
        in_account(ConversionUpload.objects.all(), scope).filter(created_at__gte=period.start, created_at__lt=period.end)
        .values("destination_id", "destination__name", "destination__kind")
        .annotate(**{status: Count("id", filter=Q(status=status)) for status in ("sent", "refused", "not_eligible", "pending")})
        .order_by("destination__name", "destination_id")
    )
    return [
        UploadFigure(r["destination_id"], r["destination__name"], r["destination__kind"], r["sent"], r["refused"], r["not_eligible"], r["pending"])
        for r in rows
    ]


def _failing_uploads(scope: Scope, period: Period) -> list[Alert]:
    """Destinations whose platform refused uploads in ``period`` (credentials, a conversion action, a click too old)."""
    return [
        Alert(
            kind="ad_uploads_failing", level="danger", count=f.refused,
            message=f"{f.refused} upload{'s' * (f.refused != 1)} to {f.name} refused by the platform",
            url_name="admin:tracking_conversionupload_changelist",
            url_query={"destination__id__exact": str(f.destination_id), "status__exact": "refused"},
        )
        for f in report_ad_uploads(scope=scope, period=period) if f.refused
    ]


def _pool_overflows(scope: Scope, period: Period) -> list[Alert]:
    from calltrack.numbers.models import NumberPool, NumberSession, NumberStatus

    pools = visible_pools(NumberPool.objects.all(), scope)
    rows = (
        NumberSession.objects.filter(pool__in=pools, is_overflow=True, started_at__gte=period.start, started_at__lt=period.end)
        .values("pool_id", "pool__name").annotate(n=Count("id")).order_by("-n")
    )
    rows = list(rows)
    sizes = dict(
        NumberPool.objects.filter(id__in=[r["pool_id"] for r in rows])
        .annotate(size=Count("numbers", filter=~Q(numbers__status=NumberStatus.RELEASED))).values_list("id", "size")
    )
    return [
        Alert(
            kind="pool_overflow", level="danger", count=r["n"],
            message=f"Pool {r['pool__name']} ran out of numbers {r['n']} time{'s' * (r['n'] != 1)} (size {sizes.get(r['pool_id'], 0)})",
            url_name="admin:numbers_numberpool_change", url_args=(r["pool_id"],),
        )
        for r in rows
    ]


def _capped_handlers(scope: Scope, period: Period) -> list[Alert]:
    """Handlers routing skipped because a cap was reached, with how many calls."""
    from tracking.models import Handler

    rolled, raw_days = split_days(scope, period)
    hits: dict[int, int] = {}
    if rolled:
        for key, n in rollups(scope, period.tz).filter(dim=CAPPED_DIM, day__in=rolled).values_list("key", "calls"):
            hits[int(key)] = hits.get(int(key), 0) + n
    where = _days_q(raw_days, period.tz)
    if where is not None:
        for hid, n in capped_counts(scoped_calls(scope).filter(where)).items():
            hits[hid] = hits.get(hid, 0) + n
    names = dict(in_account(Handler.objects.filter(id__in=hits), scope).values_list("id", "name"))
    return [
        Alert(
            kind="handler_cap", level="warning", count=n,
            message=f"{names.get(hid, f'{HANDLER_TITLE} {hid}')} was at a cap for {n} call{'s' * (n != 1)}",
            url_name="admin:tracking_handler_change", url_args=(hid,),
        )
        for hid, n in sorted(hits.items(), key=lambda kv: -kv[1])
    ]


def _failing_webhooks(scope: Scope, period: Period) -> list[Alert]:
    from tracking.models import WebhookDelivery

    rows = (
        in_account(WebhookDelivery.objects.all(), scope).filter(created_at__gte=period.start, created_at__lt=period.end, status__in=("failed", "retrying"))
        .values("webhook_id", "webhook__name", "webhook__url")
        .annotate(failed=Count("id", filter=Q(status="failed")), retrying=Count("id", filter=Q(status="retrying")))
        .order_by("-failed")
    )
    alerts = []
    for r in rows:
        name = r["webhook__name"] or r["webhook__url"]
        parts = [f"{r['failed']} failed"] if r["failed"] else []
        if r["retrying"]:
            parts.append(f"{r['retrying']} retrying")
        alerts.append(Alert(
            kind="webhook_failing", level="danger" if r["failed"] else "warning", count=r["failed"] + r["retrying"],
            message=f"Webhook {name}: {', '.join(parts)} deliveries",
            url_name="admin:tracking_webhook_change", url_args=(r["webhook_id"],),
        ))
    return alerts


def _numbers_not_active(scope: Scope) -> list[Alert]:
    from calltrack.numbers.models import NumberStatus, PortRequest, PortStatus, TrackingNumber

    counts = dict(
        visible_tracking_numbers(TrackingNumber.objects.all(), scope)
        .filter(status__in=(NumberStatus.QUARANTINED, NumberStatus.PORTING_IN, NumberStatus.PORTING_OUT))
        .values("status").annotate(n=Count("id")).values_list("status", "n")
    )
    alerts = [
        Alert(
            kind="number_status", level="warning", count=counts[status],
            message=f"{counts[status]} tracking number{'s' * (counts[status] != 1)} {NumberStatus(status).label.lower()}",
            url_name="admin:numbers_trackingnumber_changelist", url_query={"status__exact": status},
        )
        for status in (NumberStatus.QUARANTINED, NumberStatus.PORTING_IN, NumberStatus.PORTING_OUT) if counts.get(status)
    ]
    if not scope.is_collaborator:
        pending = in_account(PortRequest.objects.all(), scope).filter(status__in=(PortStatus.PENDING, PortStatus.SUBMITTED)).count()
        if pending:
            alerts.append(Alert(
                kind="port_pending", level="warning", count=pending,
                message=f"{pending} port request{'s' * (pending != 1)} pending", url_name="admin:numbers_portrequest_changelist",
            ))
    return alerts
