"""Usage for rebilling (issue 30): per account and calendar month, what its carrier bills it for and what it sent.

A month is read in the account's time zone (``Account.time_zone``; blank or unknown: the install's ``TIME_ZONE``):
November in New York runs from 1 November 00:00 to 1 December 00:00 New York time. Test calls and test texts
(``is_test``) are never counted. Each figure is one grouped query over every account asked for (the admin's usage
page, its CSV and ``GET /api/v1/usage/`` read this module), whatever the number of accounts or rows:

- ``numbers`` and ``number_days``: the tracking numbers held in the month, and the days each was held, summed. A
  number is held from its purchase (or the end of its port-in) to its release: its status is active, quarantined
  (a released number waits out its quarantine at the carrier, still billed) or porting out; it is not held while
  porting in (the other carrier still holds it) or once released. When it was in which status comes from its
  history (``numbers.NumberEvent``: every change of status, with its time); before its first event it was in
  that event's ``from_status`` since its row was created, and a number without any event (imported, or made by
  hand) has had its present status since its creation. A day counts when the number was held for any part of it
  (carriers bill a number for the day it was bought and the day it was released). The days of the current month
  count up to now. The days go to the account the number belongs to now: a number's history names no account.
- ``calls`` and ``minutes``: the inbound calls that started in the month, and their billable minutes, each call's
  ``duration`` (the carrier's CallDuration of the inbound leg, from its final status) rounded up to the minute
  as carriers bill it: ``ceil(duration / 60)``; a call that never connected (0 s) costs no minute. Every call is
  inbound: calltrack places none of its own (the legs it dials to handlers are the carrier's outbound minutes, in
  ``tracking.CallAttempt``, not counted here).
- ``texts_in`` and ``texts_out``: the texts received, and the texts sent (replies, auto-replies, keyword answers,
  forwards) that the carrier did not refuse (status ``failed``: carriers do not bill them), created in the month.
- ``recordings``: the call recordings made in the month (calls started in it whose recording completed: ready
  now, or deleted since by retention); ``recordings_stored``: the recordings kept at the month's end (of calls
  started before it, ready, or deleted by retention after it: the deletion's time is in the call's timeline,
  ``call.recording_deleted``). A voicemail is a recording too (the carrier keeps and bills it alike): counted made
  in the month of its call, and stored while its URL is kept (or deleted by retention after the month's end,
  ``call.voicemail_deleted``).
- ``ad_uploads``: the conversions sent to ad platforms (``tracking.ConversionUpload`` sent in the month, each
  counted once, in the month of its last sending: a restatement sends the same upload again).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import reduce
from operator import or_
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db.models import Case, Count, DateTimeField, Exists, F, IntegerField, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from calltrack.models import Account

#: The figures, in the order the page, the CSV and the API show them: key -> label.
FIGURES: dict[str, str] = {
    "numbers": "Numbers held",
    "number_days": "Number-days held",
    "calls": "Inbound calls",
    "minutes": "Inbound minutes",
    "texts_in": "Texts received",
    "texts_out": "Texts sent",
    "recordings": "Recordings made",
    "recordings_stored": "Recordings stored",
    "ad_uploads": "Ad-platform uploads",
}

#: A number's statuses in which its carrier bills it (``calltrack.numbers.models.NumberStatus`` values).
HELD_STATUSES = frozenset({"active", "quarantined", "porting_out"})

_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
FIRST_YEAR, LAST_YEAR = 2000, 2999


class UsageError(ValueError):
    """A month that cannot be read (the message says why, for a 400 or the page's notice)."""


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: Any) -> Month:
        """``YYYY-MM`` (2026-11) as a month; UsageError for anything else (other shapes, NUL bytes, month 13, year 0)."""
        if not isinstance(text, str):
            raise UsageError("The month must be written YYYY-MM, e.g. 2026-11.")
        found = _MONTH.fullmatch(text.strip()) if len(text) <= 16 else None
        if found is None:
            raise UsageError("The month must be written YYYY-MM, e.g. 2026-11.")
        year, month = int(found[1]), int(found[2])
        if not 1 <= month <= 12:
            raise UsageError(f"There is no month {month}: the month is 01 to 12.")
        if not FIRST_YEAR <= year <= LAST_YEAR:
            raise UsageError(f"The year must be between {FIRST_YEAR} and {LAST_YEAR}.")
        return cls(year, month)

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def label(self) -> str:
        return self.first_day.strftime("%B %Y")

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """The month's first instant and the next month's, in ``tz``."""
        return datetime.combine(self.first_day, time.min, tzinfo=tz), datetime.combine(self.next().first_day, time.min, tzinfo=tz)


def account_tz(time_zone: str) -> ZoneInfo:
    """An account's zone (``Account.time_zone``); the install's ``TIME_ZONE`` when blank or not a zone."""
    if time_zone:
        try:
            return ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo(settings.TIME_ZONE)


def zone_of(account_id: int | None) -> ZoneInfo:
    """The time zone of account ``account_id`` (the install's for None or an account that is gone)."""
    zone = Account.objects.filter(pk=account_id).values_list("time_zone", flat=True).first() if account_id is not None else None
    return account_tz(zone or "")


def current_month(tz: ZoneInfo, *, now: datetime | None = None) -> Month:
    return Month.of((now or timezone.now()).astimezone(tz).date())


def recent_months(tz: ZoneInfo, *, count: int = 12, now: datetime | None = None) -> list[Month]:
    """The current month and the ``count`` before it, newest first (the page's month picker)."""
    months = [current_month(tz, now=now)]
    for _ in range(count):
        months.append(months[-1].previous())
    return months


@dataclass
class Usage:
    """One account's figures for one month (see the module's docstring for what each counts)."""

    account_id: int
    account_name: str
    account_slug: str
    time_zone: str
    month: Month
    start: datetime
    end: datetime
    numbers: int = 0
    number_days: int = 0
    calls: int = 0
    minutes: int = 0
    texts_in: int = 0
    texts_out: int = 0
    recordings: int = 0
    recordings_stored: int = 0
    ad_uploads: int = 0

    def figures(self) -> dict[str, int]:
        return {key: getattr(self, key) for key in FIGURES}


def account_usage(account_id: int, month: Month, *, now: datetime | None = None) -> Usage:
    """The usage of one account in ``month`` (its own time zone)."""
    found = accounts_usage(month, account_ids=[account_id], now=now)
    if not found:
        raise Account.DoesNotExist(f"no account {account_id}")
    return found[0]


def accounts_usage(month: Month, *, account_ids: Iterable[int] | None = None, now: datetime | None = None) -> list[Usage]:
    """The usage in ``month`` of the accounts ``account_ids`` (None: every account, a superuser's rebilling of each
    client), ordered by account; each account's month in its own time zone. Seven statements whatever the number
    of accounts: the accounts, the numbers and their status at each month's start, the numbers' changes in the
    month, then one grouped query per kind of record."""
    now = now or timezone.now()
    accounts = Account.objects.order_by("pk")
    if account_ids is not None:
        accounts = accounts.filter(pk__in=list(account_ids))
    usages: dict[int, Usage] = {}
    for pk, name, slug, zone in accounts.values_list("pk", "name", "slug", "time_zone"):
        tz = account_tz(zone)
        start, end = month.bounds(tz)
        usages[pk] = Usage(pk, name, slug, tz.key, month, start, end)
    if not usages:
        return []
    # Accounts sharing a time zone share the month's bounds: each query filters on (accounts, bounds) pairs.
    windows: dict[tuple[datetime, datetime], list[int]] = defaultdict(list)
    for usage in usages.values():
        windows[(usage.start, usage.end)].append(usage.account_id)
    _numbers_held(usages, windows, now)
    _calls(usages, windows)
    _recordings_stored(usages, windows)
    _texts(usages, windows)
    _ad_uploads(usages, windows)
    return list(usages.values())


def _within(windows: dict[tuple[datetime, datetime], list[int]], account: str, moment: str) -> Q:
    """Rows of each account (``account``: the lookup of its account id) with ``moment`` in that account's month."""
    return reduce(or_, (Q(**{f"{account}__in": ids, f"{moment}__gte": start, f"{moment}__lt": end})
                        for (start, end), ids in windows.items()))


def _per_account(windows: dict[tuple[datetime, datetime], list[int]], account: str, value: str) -> Case:
    """The month's start (``value`` "start") or end of each row's account, as an SQL expression."""
    index = 0 if value == "start" else 1
    return Case(*[When(**{f"{account}__in": ids}, then=Value(bounds[index])) for bounds, ids in windows.items()],
                output_field=DateTimeField())


def _numbers_held(usages: dict[int, Usage], windows: dict[tuple[datetime, datetime], list[int]], now: datetime) -> None:
    from calltrack.numbers.models import NumberEvent, TrackingNumber

    # Each number created before its account's month ended (or now), with its status at the month's start: the last
    # change before it, else the first change's from_status, else (no change ever) its present status.
    created = reduce(or_, (Q(account_id__in=ids, created_at__lt=min(end, now)) for (_, end), ids in windows.items()))
    events = NumberEvent.objects.filter(tracking_number=OuterRef("pk"))
    numbers = (
        TrackingNumber.objects.filter(created)
        .annotate(month_start=_per_account(windows, "account_id", "start"), month_end=_per_account(windows, "account_id", "end"))
        .annotate(
            before=Subquery(events.filter(at__lt=OuterRef("month_start")).order_by("-at", "-id").values("to_status")[:1]),
            after=Subquery(events.filter(at__gte=OuterRef("month_start")).order_by("at", "id").values("from_status")[:1]),
            changed=Exists(events.filter(at__gte=OuterRef("month_start"), at__lt=OuterRef("month_end"))),
        )
        # Numbers released (or porting in) before the month and unchanged in it: not held, not read.
        .filter(Q(changed=True) | Q(before__isnull=True) | Q(before__in=HELD_STATUSES))
        .values_list("pk", "account_id", "created_at", "status", "before", "after")
    )
    states = {
        pk: (account_id, created_at, before if before is not None else after if after is not None else status)
        for pk, account_id, created_at, status, before, after in numbers
    }
    changes: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    if states:
        moved = (
            NumberEvent.objects.filter(_within({(s, min(e, now)): ids for (s, e), ids in windows.items()}, "tracking_number__account_id", "at"))
            .order_by("tracking_number_id", "at", "id").values_list("tracking_number_id", "at", "to_status")
        )
        for pk, at, to_status in moved:
            changes[pk].append((at, to_status))
    for pk, (account_id, created_at, status) in states.items():
        usage = usages[account_id]
        tz = ZoneInfo(usage.time_zone)
        stop = min(usage.end, now)
        since = max(usage.start, created_at)
        days: set[date] = set()
        for at, to_status in changes.get(pk, ()):
            if at < since:  # a change recorded before the row's creation time (the same purchase): from its time on
                status = to_status
                continue
            if status in HELD_STATUSES:
                _add_days(days, since, at, tz)
            since, status = at, to_status
        if status in HELD_STATUSES:
            _add_days(days, since, stop, tz)
        if days:
            usage.numbers += 1
            usage.number_days += len(days)


def _add_days(days: set[date], start: datetime, end: datetime, tz: ZoneInfo) -> None:
    """The local days that [start, end) touches (any part of a day counts the day)."""
    if end <= start:
        return
    day, last = start.astimezone(tz).date(), (end - timedelta(microseconds=1)).astimezone(tz).date()
    while day <= last:
        days.add(day)
        day += timedelta(days=1)


def _calls(usages: dict[int, Usage], windows: dict[tuple[datetime, datetime], list[int]]) -> None:
    from tracking.models import Call, CallEvent, RecordingStatus

    made = Q(recording_status__in=[RecordingStatus.COMPLETED, RecordingStatus.DELETED])
    voicemail = ~Q(voicemail_url="") | Exists(CallEvent.objects.filter(call=OuterRef("pk"), kind="call.voicemail_deleted"))
    rows = (
        Call.objects.filter(_within(windows, "account_id", "started_at"), is_test=False)
        .values("account_id").order_by("account_id")
        .annotate(
            n=Count("id"),
            # ceil(duration / 60) in integers, the same on PostgreSQL and SQLite (both divide integers exactly).
            minutes=Coalesce(Sum((F("duration") + 59) / 60, output_field=IntegerField()), 0),
            recordings=Count("id", filter=made),
            voicemails=Count("id", filter=voicemail),
        )
    )
    for row in rows:
        usage = usages[row["account_id"]]
        usage.calls, usage.minutes, usage.recordings = row["n"], row["minutes"], row["recordings"] + row["voicemails"]


def _recordings_stored(usages: dict[int, Usage], windows: dict[tuple[datetime, datetime], list[int]]) -> None:
    from tracking.models import Call, CallEvent, RecordingStatus

    def deleted_after(kind: str, end: datetime) -> Exists:
        return Exists(CallEvent.objects.filter(call=OuterRef("pk"), kind=kind, at__gte=end))

    def recording_kept_at(end: datetime) -> Q:
        return Q(recording_status=RecordingStatus.COMPLETED) | (Q(recording_status=RecordingStatus.DELETED) & Q(deleted_after("call.recording_deleted", end)))

    def voicemail_kept_at(end: datetime) -> Q:
        return ~Q(voicemail_url="") | Q(deleted_after("call.voicemail_deleted", end))

    def kept(kept_at: Callable[[datetime], Q]) -> Q:
        return reduce(or_, (Q(account_id__in=ids, started_at__lt=end) & kept_at(end) for (_, end), ids in windows.items()))

    recordings, voicemails = kept(recording_kept_at), kept(voicemail_kept_at)
    rows = (
        Call.objects.filter(recordings | voicemails, is_test=False).values("account_id").order_by("account_id")
        .annotate(recordings=Count("id", filter=recordings), voicemails=Count("id", filter=voicemails))
    )
    for row in rows:
        usages[row["account_id"]].recordings_stored = row["recordings"] + row["voicemails"]


def _texts(usages: dict[int, Usage], windows: dict[tuple[datetime, datetime], list[int]]) -> None:
    from tracking.models import TextDirection, TextMessage, TextStatus

    rows = (
        TextMessage.objects.filter(_within(windows, "account_id", "created_at"), is_test=False)
        .values("account_id").order_by("account_id")
        .annotate(
            received=Count("id", filter=Q(direction=TextDirection.INBOUND)),
            sent=Count("id", filter=Q(direction=TextDirection.OUTBOUND) & ~Q(status=TextStatus.FAILED)),
        )
    )
    for row in rows:
        usage = usages[row["account_id"]]
        usage.texts_in, usage.texts_out = row["received"], row["sent"]


def _ad_uploads(usages: dict[int, Usage], windows: dict[tuple[datetime, datetime], list[int]]) -> None:
    from tracking.models import ConversionUpload
    from tracking.models.ad_platforms import UploadStatus

    rows = (
        ConversionUpload.objects.filter(_within(windows, "call__account_id", "sent_at"), status=UploadStatus.SENT, call__is_test=False)
        .values("call__account_id").order_by("call__account_id").annotate(n=Count("id"))
    )
    for row in rows:
        usages[row["call__account_id"]].ad_uploads = row["n"]


# --- The CSV (the admin's export; the same rows as its page) ---------------------------------------------------

CSV_HEADER: tuple[str, ...] = ("Account", "Slug", "Month", "Time zone", "From", "To", *FIGURES.values())


def csv_rows(usages: Sequence[Usage]) -> list[list[Any]]:
    """One row per account: who, which month (its bounds in its zone), then the figures in ``FIGURES``' order."""
    return [
        [u.account_name, u.account_slug, str(u.month), u.time_zone, u.start.isoformat(), u.end.isoformat(), *u.figures().values()]
        for u in usages
    ]
