"""Report rollups (tracking.models.reports): recompute the days whose calls changed.

The figures never depend on this running: the reporting selector reads from the calls any day that is not
rolled up or changed since (see ``calltrack.reports.split_days``). Running it makes those days fast again.
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

from calltrack.scoping import UNSCOPED
from tracking import report_figures as figures
from tracking.models import Call, CallDayRollup, CallRollupDirty

_DELETE_CHUNK = 10_000


def report_rollups_refresh(*, all_days: bool = False) -> int:
    """Recompute the rollups of every day with a changed call (``CallRollupDirty``), or of every day that has
    calls (``all_days``, after installing or changing ``TIME_ZONE``). PostgreSQL only (elsewhere nothing is
    rolled up and the selector reads the calls). Safe to run twice or concurrently with call writes: only the
    change markers it read are deleted, after their days were recomputed, so a call written meanwhile keeps its
    day marked. Returns the number of days recomputed."""
    if connection.vendor != "postgresql":
        return 0
    tz = ZoneInfo(settings.TIME_ZONE)  # the operator's time zone (calltrack.reports.operator_tz)
    marks = list(CallRollupDirty.objects.annotate(d=TruncDate("at", tzinfo=tz)).values_list("id", "d"))
    days = {d for _, d in marks}
    if all_days:
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
    return len(days)


@transaction.atomic
def day_rollup(*, day: date, tz_name: str) -> None:
    """Replace one local day's rollups (its totals and each breakdown) with sums over its calls."""
    tz = ZoneInfo(tz_name)
    start = datetime.combine(day, time.min, tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
    calls = Call.objects.filter(started_at__gte=start, started_at__lt=end, is_test=False).order_by()  # no test call (as scoped_calls)
    aggregates = figures.call_aggregates(UNSCOPED, Q())
    rows: list[CallDayRollup] = [_row(day, tz_name, "total", "", calls.aggregate(**aggregates))]
    for dim in figures.ROLLUP_DIMS:
        for values in calls.annotate(k=figures.dimension_key(dim)).values("k").annotate(**aggregates):
            rows.append(_row(day, tz_name, dim, figures.key_text(values["k"]), values))
    for handler_id, count in figures.capped_counts(calls).items():
        rows.append(CallDayRollup(day=day, tz=tz_name, dim=figures.CAPPED_DIM, key=str(handler_id), calls=count))
    CallDayRollup.objects.filter(tz=tz_name, day=day).delete()
    CallDayRollup.objects.bulk_create(_merged(rows))


def _row(day: date, tz_name: str, dim: str, key: str, values: Mapping[str, Any]) -> CallDayRollup:
    return CallDayRollup(day=day, tz=tz_name, dim=dim, key=key[:200], **{m: values[m] or 0 for m in figures.MEASURES})


def _merged(rows: list[CallDayRollup]) -> list[CallDayRollup]:
    """A missing UTM key and an empty one are both key '': one row."""
    out: dict[tuple[str, str], CallDayRollup] = {}
    for row in rows:
        seen = out.get((row.dim, row.key))
        if seen is None:
            out[(row.dim, row.key)] = row
        else:
            for m in figures.MEASURES:
                setattr(seen, m, getattr(seen, m) + getattr(row, m))
    return list(out.values())
