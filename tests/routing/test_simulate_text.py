"""manage.py simulate_text plays Twilio's part in an inbound text through the real, signed messaging URL."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.numbers.factories import TrackingNumberFactory
from tests.tracking.factories import CampaignFactory, HandlerFactory, SourceFactory
from tracking.models import TextMessage, TextOptOut, TextPurpose, TextRoute, TextStatus

pytestmark = pytest.mark.django_db
SENDER = "+14155550100"


def run(*args: str) -> str:
    out = StringIO()
    call_command("simulate_text", *args, stdout=out)
    return out.getvalue()


def test_a_simulated_text_is_stored_credited_answered_and_forwarded_with_delivery_statuses():
    campaign = CampaignFactory(name="Roofing")
    handler = HandlerFactory(name="Dispatch")
    TextRoute.objects.create(campaign=campaign, auto_reply="Thanks, {campaign} will call you.", forward_handler=handler)
    number = TrackingNumberFactory(campaign=campaign, source=SourceFactory(name="Billboard"), marketing_data={"utm_source": "billboard"})
    out = run("--to", number.number, "--from", SENDER, "--body", "Need a roof quote", "--from-city", "Denver", "--from-state", "CO")
    text = TextMessage.objects.get(purpose=TextPurpose.CONTACT)
    assert (text.body, text.campaign, text.source.name, text.caller_city) == ("Need a roof quote", campaign, "Billboard", "Denver")
    assert text.marketing_data == {"utm_source": "billboard"}
    reply = TextMessage.objects.get(purpose=TextPurpose.AUTO_REPLY)
    forward = TextMessage.objects.get(purpose=TextPurpose.FORWARD)
    assert reply.status == forward.status == TextStatus.DELIVERED and reply.message_sid.startswith("SM")
    assert forward.to_number == handler.receiving_number.number
    assert "the sender gets: Thanks, Roofing will call you." in out and "campaign: Roofing" in out and "auto-reply" in out


def test_stop_through_simulate_text_records_the_opt_out():
    number = TrackingNumberFactory()
    run("--to", number.number, "--from", SENDER, "--body", "STOP")
    assert TextOptOut.objects.filter(contact_number=SENDER, our_number=number.number).exists()


@pytest.mark.parametrize("args, message", [
    (["--to", "nope", "--from", SENDER], "--to"),
    (["--to", "+14152000000", "--from", SENDER, "--body", "x\x00"], "--body"),
    (["--to", "+14152000000", "--from", SENDER, "--media", "http://insecure.example.com/a.jpg"], "--media"),
])
def test_bad_arguments_exit_with_a_one_line_reason(args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
