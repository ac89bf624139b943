"""URL map. Twilio-facing paths (/voice/...) are fixed: operators paste them into Twilio."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.settings import api_settings

from calltrack import accounts, admin_usage, metrics_view, views
from calltrack.api.throttling import SchemaRateThrottle
from tracking import views as tracking_views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    # Prometheus (README "Operations"): a bearer token (METRICS_TOKEN) or a staff session.
    path("metrics", metrics_view.metrics, name="metrics"),
    # The header's account switcher (issue 30): a signed link per user and account.
    path("admin/account/switch/", accounts.switch_view, name="account-switch"),
    # The admin's home: a billing user (issue 30) is sent to the usage page (calltrack/admin_usage.py), everyone else
    # gets the admin's own index and its dashboard.
    path("admin/", admin.site.admin_view(admin_usage.admin_index), name="admin-home"),
    path("admin/", admin.site.urls),
    # REST API (calltrack/api_urls.py); other apps' API urls go under the same api/v1/ prefix.
    path("api/v1/", include("calltrack.api_urls")),
    # Besides the API's own throttles, a rate of its own (CALLTRACK_API_THROTTLE_SCHEMA): each answer costs CPU.
    path("api/schema/", SpectacularAPIView.as_view(throttle_classes=[*api_settings.DEFAULT_THROTTLE_CLASSES, SchemaRateThrottle]), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("calltrack.numbers.urls")),
    # Conversions (issue 7): the conversion endpoint and totals, and handlers' signed CRM postbacks.
    path("api/v1/", include("tracking.api.urls")),
    path("postback/<int:handler_id>/<str:token>/", tracking_views.postback, name="postback"),
    path("postback/<int:handler_id>/", tracking_views.postback, name="postback-header-token"),
    path("", include("routing.urls")),
]
