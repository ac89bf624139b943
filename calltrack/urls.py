"""URL map. Twilio-facing paths (/voice/...) are fixed: operators paste them into Twilio."""

from django.contrib import admin
from django.urls import include, path

from calltrack import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("", include("numbers.urls")),
]
