"""Reads about calls and campaigns that the admin, API and reports share."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from routing import hours as hours_rules
from tracking.models import Call, CallStatus, Campaign


def calls_per_day(*, queryset=None, days: int = 30, now: datetime | None = None) -> list[dict]:
    """Answered / missed / rejected call counts per day (in TIME_ZONE) over the last ``days`` days."""
    now = now or timezone.now()
    tz = ZoneInfo(settings.TIME_ZONE)
    start_day = (now.astimezone(tz) - timedelta(days=days - 1)).date()
    start = datetime.combine(start_day, datetime.min.time(), tzinfo=tz)
    qs = (queryset if queryset is not None else Call.objects.all()).filter(started_at__gte=start)
    rows = (
        qs.annotate(day=TruncDate("started_at", tzinfo=tz))
        .values("day")
        .annotate(
            total=Count("id"),
            answered=Count("id", filter=Q(answered_at__isnull=False)),
            rejected=Count("id", filter=Q(status=CallStatus.REJECTED)),
        )
        .order_by()
    )
    by_day = {row["day"]: row for row in rows}
    out = []
    for i in range(days):
        day = start_day + timedelta(days=i)
        row = by_day.get(day, {"total": 0, "answered": 0, "rejected": 0})
        out.append(
            {
                "day": day,
                "answered": row["answered"],
                "rejected": row["rejected"],
                "missed": row["total"] - row["answered"] - row["rejected"],
            }
        )
    return out


def campaign_coverage(*, campaign: Campaign, tz_name: str | None = None) -> dict:
    """How many of the campaign's enabled handlers are open each hour of a week, and which states they take."""
    tz = ZoneInfo(tz_name or settings.TIME_ZONE)
    links = list(campaign.campaign_handlers.filter(enabled=True, handler__enabled=True).select_related("handler"))
    handlers = [link.handler for link in links]
    today = timezone.now().astimezone(tz).date()
    monday = today - timedelta(days=today.weekday())
    grid = []
    for d in range(7):
        row = []
        for hour in range(24):
            at = datetime(monday.year, monday.month, monday.day, hour, 30, tzinfo=tz) + timedelta(days=d)
            row.append(sum(1 for h in handlers if hours_rules.is_open(h.business_hours, h.timezone, at, always_open=h.always_open)))
        grid.append(row)
    states: dict[str, list[str]] = {}
    for h in handlers:
        for rule in h.tag_criteria or []:
            if rule.get("key") == "caller_state" and rule.get("op") in ("equals", "one_of"):
                values = rule["value"] if isinstance(rule["value"], list) else [rule["value"]]
                states[h.name] = sorted(v.upper() for v in values)
        states.setdefault(h.name, ["all"])
    return {"grid": grid, "handlers": len(handlers), "states": states, "tz": str(tz)}
