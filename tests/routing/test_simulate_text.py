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


def test_a_test_text_is_marked_and_left_out_of_the_figures_conversions_and_webhooks():
    from calltrack import reports
    from calltrack.scoping import UNSCOPED
    from calltrack.text_figures import text_figures
    from tests.tracking.factories import WebhookFactory
    from tracking.models import WebhookDelivery

    campaign = CampaignFactory(name="Roofing")
    TextRoute.objects.create(campaign=campaign, auto_reply="Thanks!", convert_on="first_text")
    WebhookFactory(campaign=campaign, url="https://hooks.example.com/in", events=["message.received", "message.sent"])
    number = TrackingNumberFactory(campaign=campaign, source=SourceFactory(name="Billboard"))
    out = run("--to", number.number, "--from", SENDER, "--body", "Just testing", "--test")
    tested = TextMessage.objects.get(body="Just testing")
    reply = TextMessage.objects.get(purpose=TextPurpose.AUTO_REPLY)
    assert tested.is_test and reply.is_test and not tested.converted
    assert "test text: not in the text figures" in out
    assert not WebhookDelivery.objects.exists()
    run("--to", number.number, "--from", "+14155550101", "--body", "A real lead")
    figures = text_figures(scope=UNSCOPED, period=reports.period_for("today"))
    assert (figures.received, figures.sent, figures.converted) == (1, 1, 1)  # the real text and its answer alone
    assert WebhookDelivery.objects.filter(text__is_test=False).count() == 2


def test_a_test_marker_not_made_for_the_text_is_ignored(twilio):
    from routing.services.texts import TEST_TEXT_PARAM, text_test_marker
    from tests.routing.test_texts_incoming import text

    number = TrackingNumberFactory()
    for n, marker in enumerate([text_test_marker(message_sid="SM" + "9" * 32), "forged\x00", "x" * 5000]):
        sid = f"SM{n:032d}"
        assert text(twilio, number.number, sid=sid, **{TEST_TEXT_PARAM: marker}).status_code == 200
        assert TextMessage.objects.get(message_sid=sid).is_test is False
    sid = "SM" + "7" * 32
    text(twilio, number.number, sid=sid, **{TEST_TEXT_PARAM: text_test_marker(message_sid=sid)})
    assert TextMessage.objects.get(message_sid=sid).is_test is True
