"""The API's router, mounted at /api/v1/."""

from __future__ import annotations

from django.urls import path, re_path
from rest_framework.routers import DefaultRouter

from calltrack.api import reports
from calltrack.api.usage import UsageView
from calltrack.api.views import ID_REGEX
from calltrack.numbers.api.recordings import CallRecordingView
from calltrack.numbers.api.views import NumberPoolViewSet, NumberSessionViewSet, ReceivingNumberViewSet, TrackingNumberViewSet
from tracking.api.alerts import AlertRecipientViewSet, AlertViewSet, FraudMonitorViewSet
from tracking.api.texts import TextMessageViewSet
from tracking.api.views import (
    CallViewSet,
    CampaignViewSet,
    ConversionDestinationViewSet,
    ConversionRuleViewSet,
    HandlerViewSet,
    RoutingTableViewSet,
    SourceViewSet,
    TaggingHoursViewSet,
)

router = DefaultRouter()
router.register("sources", SourceViewSet, basename="source")
router.register("handlers", HandlerViewSet, basename="handler")
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("calls", CallViewSet, basename="call")
router.register("texts", TextMessageViewSet, basename="text")
router.register("receiving-numbers", ReceivingNumberViewSet, basename="receivingnumber")
router.register("tracking-numbers", TrackingNumberViewSet, basename="trackingnumber")
router.register("pools", NumberPoolViewSet, basename="pool")
router.register("sessions", NumberSessionViewSet, basename="session")
router.register("tagging-hours", TaggingHoursViewSet, basename="tagginghours")
router.register("routing-tables", RoutingTableViewSet, basename="routingtable")
router.register("conversion-rules", ConversionRuleViewSet, basename="conversionrule")
router.register("alerts", AlertViewSet, basename="alert")
router.register("fraud-monitors", FraudMonitorViewSet, basename="fraudmonitor")
router.register("alert-recipients", AlertRecipientViewSet, basename="alertrecipient")
router.register("conversion-destinations", ConversionDestinationViewSet, basename="conversiondestination")

app_name = "api"
# Other apps' endpoints (e.g. tracking/api/urls.py: POST calls/{id}/conversion) are appended to this list
# in calltrack/urls.py under the same prefix.
urlpatterns = [
    *router.urls,
    # A call's recording (the numbers layer: playing needs the carrier), beside the calls' own URLs.
    re_path(rf"^calls/(?P<pk>{ID_REGEX})/recording/$", CallRecordingView.as_view(), name="call-recording"),
    # The dashboard's figures (calltrack/reports.py), scoped like the calls.
    path("reports/summary", reports.ReportSummaryView.as_view(), name="report-summary"),
    path("reports/timeseries", reports.ReportTimeseriesView.as_view(), name="report-timeseries"),
    path("reports/breakdown", reports.ReportBreakdownView.as_view(), name="report-breakdown"),
    path("reports/texts", reports.ReportTextsView.as_view(), name="report-texts"),
    # The account's usage for rebilling (calltrack/usage.py): every member, billing users included.
    path("usage/", UsageView.as_view(), name="usage"),
]
