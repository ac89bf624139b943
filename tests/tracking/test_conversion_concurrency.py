"""Races on PostgreSQL with real threads: a postback converts once; a repeat caller is paid once."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from tests.tracking.factories import CallFactory, CampaignFactory, ConversionRuleFactory, HandlerFactory
from tracking.models import Call, CallEvent, CallStatus
from tracking.services.conversions import AlreadyConverted, call_conversion_evaluate, call_convert

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def race(n, target):
    barrier = threading.Barrier(n)
    results: list = []

    def run(i):
        try:
            barrier.wait()
            results.append(target(i))
        except Exception as exc:  # collected and asserted on below
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def test_simultaneous_postbacks_convert_a_call_once():
    campaign = CampaignFactory()
    ConversionRuleFactory(campaign=campaign, kind="postback", revenue=Decimal("50"), payout=Decimal("20"))
    now = timezone.now()
    call = CallFactory(campaign=campaign, handler=HandlerFactory(), status=CallStatus.COMPLETED, started_at=now - timedelta(minutes=5), ended_at=now)
    results = race(6, lambda i: call_convert(call=call, source=f"postback-{i}"))
    converted = [r for r in results if not isinstance(r, Exception)]
    assert len(converted) == 1
    assert all(isinstance(r, AlreadyConverted) for r in results if isinstance(r, Exception))
    assert CallEvent.objects.filter(call=call, kind="call.converted").count() == 1


def test_a_caller_completing_two_calls_at_once_is_paid_once():
    campaign = CampaignFactory()
    handler = HandlerFactory()
    ConversionRuleFactory(campaign=campaign, min_duration=30, revenue=Decimal("10"), payout=Decimal("5"), dedupe_window=24)
    now = timezone.now()
    calls = [
        CallFactory(
            campaign=campaign, handler=handler, caller_number="+14155550166", status=CallStatus.COMPLETED,
            started_at=now - timedelta(minutes=10 - i), answered_at=now - timedelta(minutes=9), ended_at=now, talk_time=120,
        )
        for i in range(4)
    ]
    results = race(4, lambda i: call_conversion_evaluate(call=calls[i]))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert Call.objects.filter(caller_number="+14155550166", converted=True).count() == 1
    assert Call.objects.filter(caller_number="+14155550166", conversion_reason__startswith="repeat caller").count() == 3
