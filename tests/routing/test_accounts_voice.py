"""Accounts (issue 30) on the voice path: a call belongs to its tracking number's account."""

from __future__ import annotations

import pytest

from calltrack.models import Account
from tests.numbers.factories import TrackingNumberFactory
from tests.tracking.factories import CampaignFactory
from tracking.models import Call

pytestmark = pytest.mark.django_db


@pytest.fixture
def two():
    a = Account.objects.get_or_create(slug="default", defaults={"name": "Default"})[0]
    b = Account.objects.create(name="Bravo Roofing", slug="bravo")
    TrackingNumberFactory(number="+14155550001", campaign=CampaignFactory(account=a), account=a)
    TrackingNumberFactory(number="+14155550002", campaign=CampaignFactory(account=b), account=b)
    return {"a": a, "b": b}


def test_a_call_to_bs_number_belongs_to_b(two, twilio):
    response = twilio.post("/voice/incoming", {"CallSid": "CAacc1", "From": "+13035550111", "To": "+14155550002", "CallStatus": "ringing"})
    assert response.status_code == 200
    assert Call.objects.get(call_sid="CAacc1").account_id == two["b"].pk


def test_a_call_to_an_unknown_number_belongs_to_no_account(two, twilio):
    twilio.post("/voice/incoming", {"CallSid": "CAacc2", "From": "+13035550111", "To": "+14155559999", "CallStatus": "ringing"})
    assert Call.objects.get(call_sid="CAacc2").account_id is None


def test_a_block_everywhere_and_account_wide_tagging_hours_stay_in_their_account(two, twilio):
    from calltrack.numbers.models import BlockedCaller
    from tracking.models import TaggingHours

    BlockedCaller.objects.create(number="+13035550111", account=two["b"], reason="B's block")
    # No hours, "outside": every call of the account is tagged.
    TaggingHours.objects.create(name="B's hours", account=two["b"], tag_key="hours", tag_value="b_hours", match="outside")
    twilio.post("/voice/incoming", {"CallSid": "CAacc3", "From": "+13035550111", "To": "+14155550001", "CallStatus": "ringing"})
    twilio.post("/voice/incoming", {"CallSid": "CAacc4", "From": "+13035550111", "To": "+14155550002", "CallStatus": "ringing"})
    in_a, in_b = Call.objects.get(call_sid="CAacc3"), Call.objects.get(call_sid="CAacc4")
    assert "blocked" not in (in_a.reject_reason or "") and in_a.tags.get("hours") != "b_hours"
    assert "blocked" in (in_b.reject_reason or "") and in_b.tags.get("hours") == "b_hours"
