"""Reads about calls and campaigns that the admin, API and reports share."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, DecimalField, Q, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from calltrack import hours as hours_rules
from calltrack import tags as tag_rules
from tracking.models import Call, CallStatus, Campaign, ConversionKind, ConversionRule, Handler


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
    """How many of the campaign's enabled handlers are open each hour of a week, which caller states each takes
    and its other tag conditions (ZIP codes, marketing data), every operator counted."""
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
    conditions: dict[str, list[str]] = {}
    for h in handlers:
        # Every operator of every rule: not_one_of narrows "all", present requires a known value, and the other
        # keys (ZIP codes, marketing data) are conditions of their own.
        states[h.name], others = tag_rules.coverage(h.tag_criteria or [])
        if others:
            conditions[h.name] = others
    return {"grid": grid, "handlers": len(handlers), "states": states, "conditions": conditions, "tz": str(tz)}


# --- Conversions: routing's attempt rule and conversion caps, report totals ---

TOTALS_BY = ("source", "handler", "campaign")


def campaign_dials_only_one(campaign: Campaign | int) -> bool:
    """Whether routing may dial only one handler per call of ``campaign``: an "attempt" conversion rule
    (campaign-wide or a handler's own) pays as soon as a handler is dialled, so trying a second one would
    sell the call twice. One query."""
    campaign_id = campaign if isinstance(campaign, int) else campaign.pk
    return ConversionRule.objects.filter(campaign_id=campaign_id, kind=ConversionKind.ATTEMPT).exists()


def handler_conversions_count(*, handler: Handler | int, since: datetime, until: datetime | None = None) -> int:
    """Converted calls of ``handler`` (its revenue side) with ``since <= converted_at < until``: what its
    hourly/daily/monthly/total caps count when ``cap_counts`` is "converted calls". One COUNT query on the
    (handler, revenue_converted, converted_at) index."""
    return Call.objects.handler_conversions(handler, since, until).count()


def conversion_totals(
    *, by: str, calls=None, start: datetime | None = None, end: datetime | None = None
) -> list[dict]:
    """Calls, conversions, revenue, payout and margin per source, handler or campaign (``by``).

    ``calls`` narrows the calls first (e.g. a collaborator's own calls); ``start``/``end`` bound
    ``started_at`` (end excluded). Rows: ``{"id", "name", "calls", "converted", "revenue", "payout", "margin"}``,
    largest revenue first; calls without that party are grouped under id None.
    """
    if by not in TOTALS_BY:
        raise ValueError(f"by must be one of {', '.join(TOTALS_BY)}, not {by!r}")
    qs = calls if calls is not None else Call.objects.all()
    if start is not None:
        qs = qs.filter(started_at__gte=start)
    if end is not None:
        qs = qs.filter(started_at__lt=end)
    money = DecimalField(max_digits=14, decimal_places=2)
    zero = Value(Decimal("0"), output_field=money)
    rows = (
        qs.order_by()
        .values(f"{by}_id", f"{by}__name")
        .annotate(
            calls=Count("id"),
            converted_calls=Count("id", filter=Q(converted=True)),
            revenue_total=Coalesce(Sum("revenue"), zero, output_field=money),
            payout_total=Coalesce(Sum("payout"), zero, output_field=money),
        )
        .order_by("-revenue_total", f"{by}__name")
    )
    return [
        {
            "id": row[f"{by}_id"],
            "name": row[f"{by}__name"] or "",
            "calls": row["calls"],
            "converted": row["converted_calls"],
            "revenue": Decimal(row["revenue_total"]).quantize(Decimal("0.01")),
            "payout": Decimal(row["payout_total"]).quantize(Decimal("0.01")),
            "margin": (Decimal(row["revenue_total"]) - Decimal(row["payout_total"])).quantize(Decimal("0.01")),
        }
        for row in rows
    ]
