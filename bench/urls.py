"""The product's URLs plus /bench/floor: a trivial view answering fixed TwiML (the throughput floor), and
/bench/db-floor: the same answer after one INSERT committed in a transaction (what any durable write costs)."""

from django.db import connection, transaction
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from calltrack.urls import urlpatterns as product_urls

FIXED = '<?xml version="1.0" encoding="UTF-8"?><Response><Dial><Number>+13035550100</Number></Dial></Response>'


@csrf_exempt
def floor(request):
    return HttpResponse(FIXED, content_type="text/xml")


@csrf_exempt
def db_floor(request):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_floor_rows (at) VALUES (now())")
    return HttpResponse(FIXED, content_type="text/xml")


urlpatterns = [path("bench/floor", floor), path("bench/db-floor", db_floor), *product_urls]
