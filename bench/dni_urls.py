"""URLs for bench/dni.py: the DNI endpoints and the floor, the cheapest JSON answer the same stack gives."""

from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def floor(request: HttpRequest) -> JsonResponse:
    """Same middleware, same gunicorn, no work: the throughput ceiling /dni/v1/assign is compared with."""
    return JsonResponse({"ok": True})


urlpatterns = [
    path("bench/floor", floor),
    path("", include("numbers.urls")),
]
