"""tracking's API routes, included under /api/v1/ by calltrack/urls.py."""

from django.urls import path

from tracking.api.conversions import CallConversionView, ConversionTotalsView

urlpatterns = [
    path("calls/<int:pk>/conversion", CallConversionView.as_view(), name="api-call-conversion"),
    path("conversions/totals", ConversionTotalsView.as_view(), name="api-conversion-totals"),
]
