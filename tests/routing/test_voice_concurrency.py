"""Caps hold when calls arrive at the same moment (PostgreSQL row locks, real threads and connections)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client
from lxml import etree

from tests.numbers.factories import TrackingNumberFactory
from tests.routing.conftest import Twilio
from tests.tracking.factories import CampaignFactory, CampaignHandlerFactory, HandlerFactory
from tracking.models import Call, CallAttempt

CALLS = 24


def fire(tn, prefix: str, n: int = CALLS) -> list[str]:
    barrier = threading.Barrier(n)

    def one(i: int) -> str:
        try:
            twilio = Twilio(Client())
            barrier.wait(timeout=30)
            response = twilio.post("/voice/incoming", {"CallSid": f"{prefix}{i:04d}", "From": f"+1415555{i:04d}", "To": tn.number})
            assert response.status_code == 200
            return etree.fromstring(response.content).find("Dial/Number").text
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_calls_never_exceed_the_concurrency_cap():
    campaign = CampaignFactory(company_phone="+13035550190")
    handler = HandlerFactory(concurrency_cap=3)
    CampaignHandlerFactory(campaign=campaign, handler=handler)
    tn = TrackingNumberFactory(campaign=campaign)
    dialled = fire(tn, "CAcc")
    assert dialled.count(handler.receiving_number.number) == 3
    assert dialled.count("+13035550190") == CALLS - 3
    assert Call.objects.count() == CALLS
    assert CallAttempt.objects.filter(handler=handler, holds_slot=True).count() == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_calls_never_exceed_the_hourly_cap():
    campaign = CampaignFactory(company_phone="+13035550190")
    handler = HandlerFactory(hourly_cap=5)
    CampaignHandlerFactory(campaign=campaign, handler=handler)
    tn = TrackingNumberFactory(campaign=campaign)
    dialled = fire(tn, "CAhc")
    assert dialled.count(handler.receiving_number.number) == 5
    assert CallAttempt.objects.filter(handler=handler, counted=True).count() == 5


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_one_callsid_make_one_call():
    campaign = CampaignFactory()
    handler = HandlerFactory()
    CampaignHandlerFactory(campaign=campaign, handler=handler)
    tn = TrackingNumberFactory(campaign=campaign)
    barrier = threading.Barrier(6)

    def one(_: int) -> bytes:
        try:
            twilio = Twilio(Client())
            barrier.wait(timeout=30)
            return twilio.post("/voice/incoming", {"CallSid": "CAsame", "From": "+14155550100", "To": tn.number}).content
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = set(pool.map(one, range(6)))
    assert len(answers) == 1
    assert Call.objects.count() == 1 and CallAttempt.objects.count() == 1
