"""Public URLs of the numbers app: the DNI tag's JSON endpoints and its demo landing page."""

from django.urls import path

from calltrack.numbers.dni import views as dni_views

app_name = "numbers"

urlpatterns = [
    path("dni/v1/assign", dni_views.assign, name="dni-assign"),
    path("dni/v1/heartbeat", dni_views.heartbeat, name="dni-heartbeat"),
    path("dni/demo/", dni_views.demo, name="dni-demo"),
]
