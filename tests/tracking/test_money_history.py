"""The money audit trail: who changed a call's value or a handler's terms, when, from where, before and after."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.tracking.factories import CallFactory, CampaignFactory, ConversionRuleFactory, HandlerFactory, SourceFactory
from tracking.models import Call, CallStatus, MoneyChange
from tracking.services.conversions import call_conversion_evaluate, postback_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def call():
    campaign = CampaignFactory()
    handler = HandlerFactory()
    ConversionRuleFactory(campaign=campaign, kind="postback", revenue=Decimal("50"), payout=Decimal("20"), postback_window=60)
    started = timezone.now() - timedelta(minutes=10)
    c = CallFactory(
        campaign=campaign, handler=handler, source=SourceFactory(), status=CallStatus.COMPLETED, started_at=started,
        answered_at=started, ended_at=started + timedelta(minutes=3), talk_time=180, caller_number="+14155550177",
    )
    return call_conversion_evaluate(call=c)


def test_a_postback_records_its_origin_and_the_revenue_before_and_after(call, client):
    response = client.post(postback_url(handler_id=call.handler_id), {"call_id": call.pk})
    assert response.status_code == 200, response.content
    change = MoneyChange.objects.of("call", call.pk).first()
    assert change.origin == "postback"
    assert change.actor == f"handler #{call.handler_id}'s postback"
    columns = {column: (before, after) for column, before, after in change.changes()}
    assert float(columns["revenue"][0]) == 0 and float(columns["revenue"][1]) == 50


def test_a_queryset_update_of_revenue_is_recorded_too(call):
    Call.objects.filter(pk=call.pk).update(revenue=Decimal("12.34"))
    change = MoneyChange.objects.of("call", call.pk).first()
    assert change.origin == "" and change.op == "update"
    assert [(c, float(b), float(a)) for c, b, a in change.changes()] == [("revenue", 0.0, 12.34)]
