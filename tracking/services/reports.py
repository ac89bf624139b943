"""Report rollups (tracking.models.reports): recompute the days whose calls changed.

The figures never depend on this running: the reporting selector reads from the calls any day that is not
rolled up or changed since (see ``calltrack.reports.split_days``). Running it makes those days fast again.
Rollups are kept per account (each day's rows group the calls by their account) and per time zone: the install's
TIME_ZONE and every account's own zone (``Account.time_zone``), each zone holding every account's rows (an account
that moves to a zone finds its days there). Change markers are kept per zone, so a refresh in one zone leaves the
other zones' markers where they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Min, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from calltrack.scoping import UNSCOPED
from tracking import report_figures as figures
from tracking.models import Call, CallDayRollup, CallRollupDirty, CallRollupZone, rollup_key_hash

_DELETE_CHUNK = 10_000
#: A zone no refresh has run in for this long is retired (its rollups and markers deleted; its days are read from
#: the calls): otherwise every call change would go on marking days for a zone nobody reads any more.
ZONE_IDLE = timedelta(days=7)


def rollup_zones() -> list[str]:
    """The zones the console reads days in: TIME_ZONE (the install's figures, and every account without a zone of
    its own) and each account's ``time_zone``."""
    from calltrack.models import Account

    zones = {settings.TIME_ZONE}
    zones.update(Account.objects.exclude(time_zone="").values_list("time_zone", flat=True).distinct())
    return sorted(zones)


def report_rollups_refresh(*, all_days: bool = False) -> int:
    """Recompute, in every zone of :func:`rollup_zones`, the rollups of every day with a changed call
    (``CallRollupDirty``), or of every day that has calls (``all_days``; also a zone with no rollups at all: one
    just registered, or emptied by a migration). PostgreSQL only (elsewhere nothing is rolled up and the selector
    reads the calls). Safe to run twice or concurrently with call writes: only the change markers it read are
    deleted, after their days were recomputed, so a call written meanwhile keeps its day marked. Returns the number
    of days recomputed (over all zones)."""
    if connection.vendor != "postgresql":
        return 0
    zones = rollup_zones()
    done = sum(_zone_refresh(tz=ZoneInfo(name), all_days=all_days) for name in zones)
    zones_retire(keep=zones)
    return done


def _zone_refresh(*, tz: ZoneInfo, all_days: bool) -> int:
    zone_register(tz_name=tz.key)
    marks = list(CallRollupDirty.objects.filter(tz=tz.key).annotate(d=TruncDate("at", tzinfo=tz)).values_list("id", "d"))
    days = {d for _, d in marks}
    if all_days or not CallDayRollup.objects.filter(tz=tz.key).exists():
        bounds = Call.objects.aggregate(first=Min("started_at"), last=Max("started_at"))
        if bounds["first"] is not None:
            day, last = bounds["first"].astimezone(tz).date(), bounds["last"].astimezone(tz).date()
            while day <= last:
                days.add(day)
                day += timedelta(days=1)
    for day in sorted(days):
        day_rollup(day=day, tz_name=tz.key)
    ids = [i for i, _ in marks]
    for start in range(0, len(ids), _DELETE_CHUNK):
        CallRollupDirty.objects.filter(id__in=ids[start:start + _DELETE_CHUNK]).delete()
    CallRollupZone.objects.filter(tz=tz.key).update(refreshed_at=timezone.now())
    return len(days)


def zone_register(*, tz_name: str) -> None:
    """Keep rollups for ``tz_name`` from now on: every later call change marks its day for this zone too.
    The registration waits for the call writes under way (they marked no day for it; they are committed, so in
    the calls its rollups will read) and holds new ones back until it commits (a SHARE lock on the calls
    table, once per zone)."""
    if CallRollupZone.objects.filter(tz=tz_name).exists():
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("LOCK TABLE tracking_call IN SHARE MODE")
        CallRollupZone.objects.get_or_create(tz=tz_name, defaults={"refreshed_at": timezone.now()})


def zones_retire(*, keep: list[str]) -> int:
    """Retire the zones no refresh has run in for ``ZONE_IDLE``: their rollups, markers and registration go in
    one transaction (their days are read from the calls then). Returns how many."""
    retired = 0
    for tz_name in CallRollupZone.objects.filter(refreshed_at__lt=timezone.now() - ZONE_IDLE).exclude(tz__in=keep).values_list("tz", flat=True):
        with transaction.atomic():
            # The zone's row first: a day_rollup under way in it holds this row locked (see there) and is waited for.
            CallRollupZone.objects.filter(tz=tz_name).delete()
            CallDayRollup.objects.filter(tz=tz_name).delete()
            CallRollupDirty.objects.filter(tz=tz_name).delete()
        retired += 1
    return retired


@transaction.atomic
def day_rollup(*, day: date, tz_name: str) -> None:
    """Replace one local day's rollups (its totals and each breakdown, per account) with sums over its calls. The
    calls no account holds have their totals row even when there are none (zeros): the day's mark of being rolled up
    in this zone. The zone's registration is locked meanwhile (so a retirement waits, and two refreshes of a zone
    take turns); a zone not registered (retired meanwhile) gets no rollups."""
    if CallRollupZone.objects.select_for_update().filter(tz=tz_name).first() is None:
        return
    tz = ZoneInfo(tz_name)
    start = datetime.combine(day, time.min, tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
    calls = Call.objects.filter(started_at__gte=start, started_at__lt=end, is_test=False).order_by()  # no test call (as scoped_calls)
    aggregates = figures.call_aggregates(UNSCOPED, Q())
    rows: list[CallDayRollup] = [_row(day, tz_name, None, "total", "", dict.fromkeys(figures.MEASURES, 0))]
    for values in calls.values("account_id").annotate(**aggregates):
        rows.append(_row(day, tz_name, values["account_id"], "total", "", values))
    for dim in figures.ROLLUP_DIMS:
        for values in calls.annotate(k=figures.dimension_key(dim)).values("account_id", "k").annotate(**aggregates):
            rows.append(_row(day, tz_name, values["account_id"], dim, figures.key_text(values["k"]), values))
    for (account_id, handler_id), count in figures.capped_counts_by_account(calls).items():
        rows.append(_row(day, tz_name, account_id, figures.CAPPED_DIM, str(handler_id), {"calls": count}))
    CallDayRollup.objects.filter(tz=tz_name, day=day).delete()
    CallDayRollup.objects.bulk_create(_merged(rows))


def _row(day: date, tz_name: str, account_id: int | None, dim: str, key: str, values: Mapping[str, Any]) -> CallDayRollup:
    return CallDayRollup(
        day=day, tz=tz_name, account_id=account_id, dim=dim, key=key, key_hash=rollup_key_hash(key),
        **{m: values.get(m) or 0 for m in figures.MEASURES},
    )


def _merged(rows: list[CallDayRollup]) -> list[CallDayRollup]:
    """A missing UTM key and an empty one are both key '' (one row per account), and the zero totals row of the
    calls without an account merges with theirs."""
    out: dict[tuple[int | None, str, str], CallDayRollup] = {}
    for row in rows:
        seen = out.get((row.account_id, row.dim, row.key))
        if seen is None:
            out[(row.account_id, row.dim, row.key)] = row
        else:
            for m in figures.MEASURES:
                setattr(seen, m, getattr(seen, m) + getattr(row, m))
    return list(out.values())
