"""URLs for bench/dni.py: the DNI endpoints, the floor (the cheapest JSON answer the same stack gives) and
the db-floor (the same answer after one INSERT committed: what any durable write costs)."""

from django.db import connection, transaction
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def floor(request: HttpRequest) -> JsonResponse:
    """Same middleware, same gunicorn, no work: the throughput ceiling /dni/v1/assign is compared with."""
    return JsonResponse({"ok": True})


@csrf_exempt
def db_floor(request: HttpRequest) -> JsonResponse:
    """The floor plus one INSERT committed in a transaction (bench/dni.py creates ``bench_floor_rows``)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_floor_rows (at) VALUES (now())")
    return JsonResponse({"ok": True})


urlpatterns = [
    path("bench/floor", floor),
    path("bench/db-floor", db_floor),
    path("", include("calltrack.numbers.urls")),
]
