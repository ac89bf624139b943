"""Calls to tracking numbers leaving us: quarantined numbers go to the fail-safe, released ones are unknown."""

from __future__ import annotations

import pytest
from lxml import etree

from calltrack.numbers.models import NumberStatus
from calltrack.numbers.services.lifecycle import numbers_release
from tests.numbers.factories import NumberPoolFactory, TrackingNumberFactory
from tests.tracking.factories import CampaignFactory, CampaignHandlerFactory
from tracking.models import AttemptKind, Call

pytestmark = pytest.mark.django_db
CALLER = "+14155550100"


def dialled(response) -> str | None:
    assert response.status_code == 200, response.content
    number = etree.fromstring(response.content).find("Dial/Number")
    return number.text if number is not None else None


@pytest.fixture
def campaign():
    campaign = CampaignFactory(failsafe_number="+13035550177")
    CampaignHandlerFactory(campaign=campaign)
    return campaign


def quarantine(tn):
    numbers_release(numbers=[tn.number], reason="test")
    tn.refresh_from_db()
    assert tn.status == NumberStatus.QUARANTINED
    return tn


@pytest.mark.parametrize(("own", "campaigns", "setting", "expected"), [
    ("+13035550166", "+13035550177", "+13035550100", "+13035550166"),  # the number's own fail-safe first
    ("", "+13035550177", "+13035550100", "+13035550177"),  # then the campaign's
    ("", "", "+13035550100", "+13035550100"),  # then CALLTRACK_FAILSAFE_NUMBER
])
def test_a_quarantined_number_sends_its_calls_to_the_failsafe_with_a_reason(twilio, settings, campaign, own, campaigns, setting, expected):
    settings.CALLTRACK_FAILSAFE_NUMBER = setting
    campaign.failsafe_number = campaigns
    campaign.save()
    tn = quarantine(TrackingNumberFactory(campaign=campaign, failsafe_number=own))
    response = twilio.post("/voice/incoming", {"CallSid": "CAq1", "From": CALLER, "To": tn.number})
    assert dialled(response) == expected
    call = Call.objects.get(call_sid="CAq1")
    assert call.used_failsafe and call.tracking_number == tn and call.campaign == campaign
    assert call.failsafe_reason == f"tracking number {tn.number} is quarantined"
    assert [a.kind for a in call.attempts.all()] == [AttemptKind.FAILSAFE]  # no handler was dialled
    assert {"call.number_quarantined", "call.failsafe"} <= set(call.events.values_list("kind", flat=True))
    again = twilio.post("/voice/incoming", {"CallSid": "CAq1", "From": CALLER, "To": tn.number})
    assert again.content == response.content and Call.objects.count() == 1


def test_a_quarantined_pool_number_uses_its_pools_campaign(twilio, campaign):
    pool = NumberPoolFactory(campaign=campaign)
    tn = quarantine(TrackingNumberFactory(campaign=None, pool=pool, kind="pool"))
    assert dialled(twilio.post("/voice/incoming", {"CallSid": "CAq2", "From": CALLER, "To": tn.number})) == "+13035550177"
    assert Call.objects.get(call_sid="CAq2").campaign == campaign


def test_a_released_number_takes_the_unknown_number_path(twilio, settings, campaign):
    settings.CALLTRACK_FAILSAFE_NUMBER = "+13035550100"
    tn = TrackingNumberFactory(campaign=campaign, failsafe_number="+13035550166", status=NumberStatus.RELEASED)
    response = twilio.post("/voice/incoming", {"CallSid": "CAr1", "From": CALLER, "To": tn.number})
    assert dialled(response) == "+13035550100"  # neither the number's nor its old campaign's fail-safe
    call = Call.objects.get(call_sid="CAr1")
    assert call.tracking_number is None and call.campaign is None and call.used_failsafe
    assert call.failsafe_reason.startswith("routing failed: no routable tracking number")
    unknown = twilio.post("/voice/incoming", {"CallSid": "CAr2", "From": CALLER, "To": "+14155559999"})
    assert dialled(unknown) == "+13035550100"
