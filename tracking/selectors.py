"""Reads of tracking that other apps (routing, reports, the API) share."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db.models import Count, DecimalField, Q, Sum, Value
from django.db.models.functions import Coalesce

from tracking.models import Call, Campaign, ConversionKind, ConversionRule, Handler

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
