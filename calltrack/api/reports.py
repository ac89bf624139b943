"""API reports: the dashboard's figures for programs (summary, time series, breakdowns).

Read from ``calltrack.reports``, the selector the admin dashboard reads, for the requester's scope
(``calltrack.scoping``): a source collaborator gets its own calls and no revenue or margin (null), a handler
collaborator its own calls and no payout or margin, as in the calls API. The days are the account's (its time
zone, else TIME_ZONE) and the money is in the account's currency (``currency``, else the install's CURRENCY).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from calltrack import reports, text_figures
from calltrack.api.permissions import StaffPermissionsOrCollaborator
from calltrack.db_router import on_replica
from calltrack.scoping import report_dimensions, scope_for


class PeriodQuerySerializer(serializers.Serializer):
    range = serializers.ChoiceField(choices=list(reports.RANGES), default=reports.DEFAULT_RANGE, help_text="The period; 'custom' needs from and to.")
    # DateField rejects NUL bytes, surrogates and impossible dates with a 400; the selector bounds the years.
    start = serializers.DateField(required=False, help_text="First day of a custom range (YYYY-MM-DD, the account's time zone).")
    end = serializers.DateField(required=False, help_text="Last day of a custom range, included.")

    def period(self, *, tz: ZoneInfo | None = None) -> reports.Period:
        data = self.validated_data
        try:
            return reports.period_for(data["range"], tz=tz, first_day=data.get("start"), last_day=data.get("end"))
        except reports.ReportError as exc:
            raise ValidationError({"range": [str(exc)]}) from exc


class StrictPeriodQuerySerializer(PeriodQuerySerializer):
    """The period of a report that refuses what the others let pass silently: a parameter it does not know, a start
    or end without ``range=custom`` (the default range would be reported instead), a date written with other digits
    than 0-9 (Python's date parser reads Arabic-Indic or full-width digits)."""

    EXTRA = frozenset({"format"})

    def validate(self, attrs: dict) -> dict:
        params = self.initial_data
        errors: dict[str, list[str]] = {}
        for name in params:
            if name not in self.fields and name not in self.EXTRA:
                errors[name] = [f"Not a parameter of this report (it takes {', '.join(self.fields)})."]
        for name in ("start", "end"):
            raw = params.get(name)
            if raw is not None and not raw.isascii():
                errors[name] = [f"{raw!r} is not a date written YYYY-MM-DD with the digits 0-9."]
            elif raw is not None and attrs.get("range") != "custom":
                errors[name] = [f"{'A start' if name == 'start' else 'An end'} date needs range=custom (the range asked for is "
                                f"{attrs.get('range')!r})."]
        if errors:
            raise ValidationError(errors)
        return attrs


class BreakdownQuerySerializer(PeriodQuerySerializer):
    by = serializers.ChoiceField(choices=list(reports.DIMENSIONS), help_text="Group the calls by this.")


class PeriodSerializer(serializers.Serializer):
    start = serializers.DateTimeField(help_text="Calls started at or after this instant.")
    end = serializers.DateTimeField(help_text="... and before this one.")
    first_day = serializers.DateField(help_text="The first local day of the period.")
    last_day = serializers.DateField(help_text="The last local day of the period (included).")
    time_zone = serializers.CharField(source="tz.key", help_text="The time zone the days are read in (the account's, else the install's).")


def _money(help_text: str) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True, help_text=help_text)


class TotalsSerializer(serializers.Serializer):
    calls = serializers.IntegerField(help_text="Calls that started in the period.")
    answered = serializers.IntegerField(help_text=_("Picked up by a handler or a fallback."))
    answer_rate = serializers.FloatField(allow_null=True, help_text="Answered / (calls - blocked); null without calls.")
    missed = serializers.IntegerField(help_text="Ended without an answer (not blocked).")
    blocked = serializers.IntegerField(help_text="Rejected by a number filter or the blocked-callers list.")
    live = serializers.IntegerField(help_text="Still ringing or in progress.")
    converted = serializers.IntegerField(help_text="Converted on your side (staff: either side).")
    conversion_rate = serializers.FloatField(allow_null=True, help_text="Converted / calls.")
    revenue = _money(_("Null for source collaborators."))
    payout = _money(_("Null for handler collaborators."))
    margin = _money("Revenue minus payout; null for collaborators.")
    average_talk_time = serializers.FloatField(allow_null=True, help_text="Seconds connected per answered call.")
    failsafe = serializers.IntegerField(help_text="Calls sent to the fail-safe number (routing failures).")


def _currency() -> serializers.CharField:
    return serializers.CharField(help_text="The ISO 4217 code of the money figures: the account's currency, else the install's.")


class SummarySerializer(serializers.Serializer):
    period = PeriodSerializer(help_text="The period asked for.")
    currency = _currency()
    previous_period = PeriodSerializer(help_text="The same number of days just before.")
    current = TotalsSerializer(help_text="The period's figures.")
    previous = TotalsSerializer(help_text="The previous period's figures, for comparison.")


class BucketSerializer(serializers.Serializer):
    start = serializers.DateTimeField(help_text="The hour or local day this bucket begins.")
    end = serializers.DateTimeField(help_text="Where it ends (the next bucket's start); an hour is 30 or 90 minutes where the clock changes by 30 minutes.")
    label = serializers.CharField(
        help_text="The local hour (HH:MM) or the day (DD Mon); the hour the clock repeats on an autumn DST day appears twice, "
                  "each with its zone ('01:00 EDT', '01:00 EST').",
    )
    calls = serializers.IntegerField(help_text="Calls that started in the bucket.")
    answered = serializers.IntegerField(help_text="Of which answered.")
    missed = serializers.IntegerField(help_text="Of which missed.")
    blocked = serializers.IntegerField(help_text="Of which blocked or rejected.")
    live = serializers.IntegerField(help_text="Of which still ringing or in progress.")
    converted = serializers.IntegerField(help_text="Conversions on your side among them.")


class TimeseriesSerializer(serializers.Serializer):
    period = PeriodSerializer(help_text="The period asked for.")
    interval = serializers.ChoiceField(choices=["hour", "day"], help_text="Hourly buckets for one day, daily otherwise.")
    buckets = BucketSerializer(many=True, help_text="Every bucket of the period, empty ones included, in order.")


class BreakdownRowSerializer(serializers.Serializer):
    key = serializers.CharField(allow_null=True, help_text="The id (parties) or the value (UTM, state); null for calls without one.")
    label = serializers.CharField(help_text="The name (or the value); '(none)' for calls without one.")
    totals = TotalsSerializer(help_text="The row's figures.")


class BreakdownSerializer(serializers.Serializer):
    period = PeriodSerializer(help_text="The period asked for.")
    currency = _currency()
    by = serializers.CharField(help_text="What the rows group by.")
    rows = BreakdownRowSerializer(many=True, help_text="Most calls first.")


def _totals(totals: reports.Totals) -> dict:
    return totals.as_dict()


class ReportView(APIView):
    # Staff who may view calls, or any collaborator (over its own calls).
    permission_classes = [StaffPermissionsOrCollaborator]
    staff_permissions = {"GET": ["tracking.view_call"]}
    collaborator_kinds = ("source", "handler")
    query_serializer = PeriodQuerySerializer
    #: The requester's account's currency code (set by :meth:`query`, with the period).
    currency: str = ""

    def query(self, request: Request) -> tuple[reports.Period, dict]:
        query = self.query_serializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        tz, self.currency = reports.operator_settings(request.user)
        return query.period(tz=tz), query.validated_data


PERIOD_PARAMETERS = [
    OpenApiParameter("range", str, enum=list(reports.RANGES), description="The period (default 7d); days in the account's time zone."),
    OpenApiParameter("start", str, description="custom range: first day, YYYY-MM-DD"),
    OpenApiParameter("end", str, description="custom range: last day (included), YYYY-MM-DD"),
]


class ReportSummaryView(ReportView):
    """GET /api/v1/reports/summary: the dashboard's headline figures and the previous period's."""

    @extend_schema(summary="Headline figures of a period, with the previous period", parameters=PERIOD_PARAMETERS,
                   responses={200: SummarySerializer})
    @on_replica
    def get(self, request: Request) -> Response:
        period, _ = self.query(request)
        summary = reports.report_summary(scope=scope_for(request.user), period=period)
        return Response(SummarySerializer({
            "period": summary.period, "previous_period": summary.previous_period, "currency": self.currency,
            "current": _totals(summary.current), "previous": _totals(summary.previous),
        }).data)


class ReportTimeseriesView(ReportView):
    """GET /api/v1/reports/timeseries: calls per hour (one day) or per day, by outcome, with conversions."""

    @extend_schema(summary="Calls over time by outcome (hourly for one day, else daily)", parameters=PERIOD_PARAMETERS,
                   responses={200: TimeseriesSerializer})
    @on_replica
    def get(self, request: Request) -> Response:
        period, _ = self.query(request)
        buckets = reports.report_timeseries(scope=scope_for(request.user), period=period)
        return Response(TimeseriesSerializer({"period": period, "interval": "hour" if period.hourly else "day", "buckets": buckets}).data)


class ReportBreakdownView(ReportView):
    """GET /api/v1/reports/breakdown?by=...: the period's figures per source, campaign, handler, number, pool,
    UTM value or caller state (collaborators: the breakdowns that name only what the calls API shows them)."""

    query_serializer = BreakdownQuerySerializer

    @extend_schema(
        summary=_("Figures per source, campaign, handler, tracking number, pool, UTM value or caller state"),
        parameters=[OpenApiParameter("by", str, enum=list(reports.DIMENSIONS), required=True, description="Group the calls by this."),
                    *PERIOD_PARAMETERS],
        responses={200: BreakdownSerializer},
    )
    @on_replica
    def get(self, request: Request) -> Response:
        period, data = self.query(request)
        scope = scope_for(request.user)
        if data["by"] not in report_dimensions(scope):
            raise ValidationError({"by": [f"The breakdown by {reports.DIMENSIONS[data['by']].lower()} is not available to you."]})
        rows = reports.report_breakdown(scope=scope, period=period, by=data["by"])
        return Response(BreakdownSerializer({
            "period": period, "by": data["by"], "currency": self.currency,
            "rows": [{"key": None if r.key is None else str(r.key), "label": r.label, "totals": _totals(r.totals)} for r in rows],
        }).data)


class TextTotalsSerializer(serializers.Serializer):
    received = serializers.IntegerField(help_text="Texts received in the period (test texts left out).")
    sent = serializers.IntegerField(help_text="Texts the carrier took (replies, auto-replies, keyword answers, forwards): "
                                              "not the forwards still waiting for a worker, nor the failed texts.")
    waiting = serializers.IntegerField(help_text="Forwards the carrier has not taken yet (queued, or held by a worker).")
    failed = serializers.IntegerField(help_text="Texts of ours that did not go out (the carrier failed them, or we gave up).")
    contacts = serializers.IntegerField(help_text="Different numbers that texted.")
    converted = serializers.IntegerField(help_text="Texts that converted.")
    revenue = _money("Revenue of the converted texts; null when hidden from you.")
    payout = _money("Payout of the converted texts; null when hidden from you.")


class TextSeriesSerializer(serializers.Serializer):
    label = serializers.CharField(help_text="The hour (HH:00) or the day.")
    received = serializers.IntegerField(help_text="Texts received in the bucket.")
    sent = serializers.IntegerField(help_text="Texts sent in the bucket (as the totals' sent).")


class TextRowSerializer(serializers.Serializer):
    key = serializers.CharField(allow_null=True, help_text="The row's id; null for texts without one.")
    label = serializers.CharField(help_text=_("The source's or campaign's name; '(none)' for texts without one."))
    received = serializers.IntegerField(help_text="Texts received.")
    converted = serializers.IntegerField(help_text="Of them, converted.")
    revenue = _money("null when hidden from you.")
    payout = _money("null when hidden from you.")


class TextReportSerializer(serializers.Serializer):
    period = PeriodSerializer(help_text="The period asked for.")
    currency = _currency()
    totals = TextTotalsSerializer(help_text="The period's text figures.")
    series = TextSeriesSerializer(many=True, help_text="Per hour for one day, else per day.")
    by_source = TextRowSerializer(many=True, help_text=_("Received texts per source (not for a handler)."))
    by_campaign = TextRowSerializer(many=True, help_text="Received texts per campaign (staff only).")


class ReportTextsView(ReportView):
    """GET /api/v1/reports/texts: the dashboard's text figures (``calltrack.text_figures``), scoped like the texts."""

    staff_permissions = {"GET": ["tracking.view_textmessage"]}
    query_serializer = StrictPeriodQuerySerializer

    @extend_schema(summary=_("Text figures of a period: totals, over time, by source and campaign"), parameters=PERIOD_PARAMETERS,
                   responses={200: TextReportSerializer})
    @on_replica
    def get(self, request: Request) -> Response:
        period, _ = self.query(request)
        figures = text_figures.text_figures(scope=scope_for(request.user), period=period)

        def rows(items: list[text_figures.TextRow]) -> list[dict]:
            return [{**vars(r), "key": None if r.key is None else str(r.key)} for r in items]

        return Response(TextReportSerializer({
            "period": period, "currency": self.currency, "totals": figures.as_dict(),
            "series": [{"label": label, "received": received, "sent": sent} for label, received, sent in figures.series],
            "by_source": rows(figures.by_source), "by_campaign": rows(figures.by_campaign),
        }).data)
