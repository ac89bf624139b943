"""The texts' figures (issue 29) for the dashboard and the API's reports: for a period and a scope, texts received and
sent, the contacts who texted, conversions with their money, texts over time, and texts by source and by campaign.

A reporting selector over ``calltrack.scoping.visible_texts`` like ``calltrack.reports`` over the calls: four
statements over the period's texts (the (created_at) index), whatever the history. Test texts are left out, as test
calls are. A collaborator gets its own texts and only its side of the money (``HIDDEN_TEXT_FIELDS``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate, TruncHour

from calltrack import reports
from calltrack.scoping import Scope, hidden_text_fields, visible_texts
from tracking.models import TextDirection, TextMessage
from tracking.models.texts import forward_waiting_q, outbound_failed_q, outbound_sent_q

INBOUND = Q(direction=TextDirection.INBOUND)
#: Sent: the carrier took it. A forward still waiting for its worker, and a text that failed, are counted apart.
SENT = outbound_sent_q()
WAITING = forward_waiting_q()
FAILED = outbound_failed_q()
TOP = 10


@dataclass
class TextRow:
    key: int | None
    label: str
    received: int
    converted: int
    revenue: Decimal | None
    payout: Decimal | None


@dataclass
class TextFigures:
    received: int = 0
    sent: int = 0
    #: forwards to handlers the carrier has not taken yet (queued for a worker, or held by one)
    waiting: int = 0
    #: our texts that did not go out (the carrier failed them, or we gave up)
    failed: int = 0
    contacts: int = 0
    converted: int = 0
    revenue: Decimal | None = None
    payout: Decimal | None = None
    #: (label, received, sent) per hour (a one-day period) or per day
    series: list[tuple[str, int, int]] = field(default_factory=list)
    by_source: list[TextRow] = field(default_factory=list)
    by_campaign: list[TextRow] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"received": self.received, "sent": self.sent, "waiting": self.waiting, "failed": self.failed, "contacts": self.contacts, "converted": self.converted,
                "revenue": self.revenue, "payout": self.payout}


def scoped_texts(scope: Scope, period: reports.Period) -> QuerySet:
    return visible_texts(TextMessage.objects.filter(created_at__gte=period.start, created_at__lt=period.end, is_test=False), scope)


def text_figures(*, scope: Scope, period: reports.Period) -> TextFigures:
    """The period's text figures for ``scope`` (money a collaborator may not see is None)."""
    hidden = hidden_text_fields(scope)
    texts = scoped_texts(scope, period).order_by()
    totals = texts.aggregate(
        received=Count("pk", filter=INBOUND), sent=Count("pk", filter=SENT), waiting=Count("pk", filter=WAITING),
        failed=Count("pk", filter=FAILED),
        contacts=Count("contact_number", filter=INBOUND, distinct=True), n_converted=Count("pk", filter=Q(converted=True)),
        sum_revenue=Sum("revenue", filter=Q(converted=True)), sum_payout=Sum("payout", filter=Q(converted=True)),
    )
    figures = TextFigures(
        received=totals["received"], sent=totals["sent"], waiting=totals["waiting"], failed=totals["failed"], contacts=totals["contacts"], converted=totals["n_converted"],
        revenue=None if "revenue" in hidden else (totals["sum_revenue"] or Decimal("0")),
        payout=None if "payout" in hidden else (totals["sum_payout"] or Decimal("0")),
    )
    figures.series = _series(texts, period)
    if "source" not in hidden:
        figures.by_source = _breakdown(texts, "source", hidden)
    if "campaign" not in hidden:
        figures.by_campaign = _breakdown(texts, "campaign", hidden)
    return figures


def _series(texts: QuerySet, period: reports.Period) -> list[tuple[str, int, int]]:
    """Texts received and sent (as ``sent`` counts them) per local hour (one day) or per local day of the period, every bucket listed."""
    tz = period.tz
    trunc = TruncHour("created_at", tzinfo=tz) if period.hourly else TruncDate("created_at", tzinfo=tz)
    rows = texts.annotate(bucket=trunc).values("bucket").annotate(received=Count("pk", filter=INBOUND), sent=Count("pk", filter=SENT))
    if period.hourly:
        found = {r["bucket"].astimezone(tz).hour: (r["received"], r["sent"]) for r in rows}
        return [(f"{hour:02d}:00", *found.get(hour, (0, 0))) for hour in range(24)]
    by_day = {r["bucket"]: (r["received"], r["sent"]) for r in rows}
    days = [period.first_day + timedelta(days=n) for n in range(period.days)]
    return [(day.strftime("%b %d"), *by_day.get(day, (0, 0))) for day in days]


def _breakdown(texts: QuerySet, by: str, hidden: frozenset[str]) -> list[TextRow]:
    """The period's received texts per source (or campaign), most first."""
    rows = (
        texts.filter(INBOUND).values(by, f"{by}__name")
        .annotate(received=Count("pk"), n_converted=Count("pk", filter=Q(converted=True)),
                  sum_revenue=Sum("revenue", filter=Q(converted=True)), sum_payout=Sum("payout", filter=Q(converted=True)))
        .order_by("-received", f"{by}__name")[:TOP]
    )
    return [
        TextRow(key=r[by], label=r[f"{by}__name"] or "(none)", received=r["received"], converted=r["n_converted"],
                revenue=None if "revenue" in hidden else (r["sum_revenue"] or Decimal("0")),
                payout=None if "payout" in hidden else (r["sum_payout"] or Decimal("0")))
        for r in rows
    ]
