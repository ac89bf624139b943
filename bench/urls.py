"""The product's URLs plus /bench/floor: a trivial view answering fixed TwiML (the throughput floor)."""

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from calltrack.urls import urlpatterns as product_urls

FIXED = '<?xml version="1.0" encoding="UTF-8"?><Response><Dial><Number>+13035550100</Number></Dial></Response>'


@csrf_exempt
def floor(request):
    return HttpResponse(FIXED, content_type="text/xml")


urlpatterns = [path("bench/floor", floor), *product_urls]
