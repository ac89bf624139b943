"""A campaign's routing for texts (issue 29), through the signed /sms/incoming: keywords and opt-outs, auto-replies in
and out of business hours, forwards to a handler's number and to an email address, conversions."""

from __future__ import annotations

from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ValidationError
from lxml import etree

from calltrack.numbers.models import LocalCarrierMessage
from calltrack.numbers.services.texts import TextRefused, Thread, text_send
from tests.numbers.factories import TrackingNumberFactory
from tests.routing.test_texts_incoming import TEXTER, text
from tests.tracking.factories import CallFactory, CampaignFactory, HandlerFactory
from tracking.models import TextMessage, TextOptOut, TextPurpose, TextRoute, TextStatus

pytestmark = pytest.mark.django_db
OPEN = "2026-05-04 14:00:00Z"  # a Monday, 10:00 in New York
CLOSED = "2026-05-05 02:00:00Z"  # Monday 22:00 in New York


@pytest.fixture
def number():
    return TrackingNumberFactory(campaign=CampaignFactory(name="Roofing"))


@pytest.fixture
def route(number):
    return TextRoute.objects.create(
        campaign=number.campaign, auto_reply="Thanks for texting {campaign}! We will call {contact} shortly.",
        auto_reply_closed="We are closed; {campaign} opens at 9am.", timezone="America/New_York",
        business_hours={d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}, help_reply="Roofing help: call us.",
    )


def messages(response) -> list[etree._Element]:
    assert response.status_code == 200, response.content
    return etree.fromstring(response.content).findall("Message")


def sid(n: int) -> str:
    return f"SM{n:032d}"


def test_the_auto_reply_differs_inside_and_outside_business_hours(twilio, number, route, assert_valid_messaging_twiml):
    with time_machine.travel(OPEN, tick=False):
        open_answer = text(twilio, number.number, sid=sid(1))
    with time_machine.travel(CLOSED, tick=False):
        closed_answer = text(twilio, number.number, sid=sid(2))
    assert_valid_messaging_twiml(open_answer.content)
    assert_valid_messaging_twiml(closed_answer.content)
    (said_open,) = messages(open_answer)
    (said_closed,) = messages(closed_answer)
    assert said_open.text == f"Thanks for texting Roofing! We will call {TEXTER} shortly."
    assert said_closed.text == "We are closed; Roofing opens at 9am."
    # Each answer is kept in the conversation, as a pending outbound text until its status callback names its sid.
    replies = TextMessage.objects.filter(purpose=TextPurpose.AUTO_REPLY).order_by("created_at")
    assert [r.body for r in replies] == [said_open.text, said_closed.text]
    assert all(r.contact_number == TEXTER and r.from_number == number.number and r.campaign == number.campaign for r in replies)


def test_the_auto_replys_status_callback_names_its_carrier_sid_and_moves_its_status_forward(twilio, number, route):
    with time_machine.travel(OPEN, tick=False):
        (said,) = messages(text(twilio, number.number, sid=sid(1)))
    callback = said.get("statusCallback")
    assert "/sms/status?text=" in callback
    real = "SM" + "f" * 32
    assert twilio.post(callback, {"MessageSid": real, "MessageStatus": "sent"}).status_code == 200
    assert twilio.post(callback, {"MessageSid": real, "MessageStatus": "delivered"}).status_code == 200
    late = twilio.post("/sms/status", {"MessageSid": real, "MessageStatus": "sending"})  # out of order: ignored
    assert late.status_code == 200
    reply = TextMessage.objects.get(purpose=TextPurpose.AUTO_REPLY)
    assert (reply.message_sid, reply.status) == (real, TextStatus.DELIVERED)


def test_stop_records_the_opt_out_and_then_nothing_is_sent_to_the_contact(twilio, number, route, assert_valid_messaging_twiml):
    stop = text(twilio, number.number, sid=sid(1), body="  stop ")
    assert_valid_messaging_twiml(stop.content)
    assert messages(stop) == []
    assert TextOptOut.objects.filter(contact_number=TEXTER, our_number=number.number).exists()
    # Another text from them: stored, but no auto-reply goes back.
    assert messages(text(twilio, number.number, sid=sid(2), body="one more question")) == []
    # An operator's reply attempt sends nothing.
    with pytest.raises(TextRefused, match="texted STOP"):
        text_send(to=TEXTER, from_number=number.number, body="Hello?", purpose=TextPurpose.REPLY)
    assert not LocalCarrierMessage.objects.exists()
    assert not TextMessage.objects.filter(direction="outbound").exists()
    assert TextMessage.objects.get(message_sid=sid(1)).tags["text_keyword"] == "stop"


def test_start_lifts_the_opt_out(twilio, number, route):
    text(twilio, number.number, sid=sid(1), body="STOP")
    text(twilio, number.number, sid=sid(2), body="Start")
    assert not TextOptOut.objects.exists()
    sent = text_send(to=TEXTER, from_number=number.number, body="Welcome back", purpose=TextPurpose.REPLY)
    assert LocalCarrierMessage.objects.get().sid == sent.message_sid


def test_help_gets_the_campaigns_help_answer_and_without_one_nothing(twilio, number, route):
    (said,) = messages(text(twilio, number.number, sid=sid(1), body="HELP"))
    assert said.text == "Roofing help: call us."
    route.help_reply = ""
    route.save()
    assert messages(text(twilio, number.number, sid=sid(2), body="info")) == []


def test_a_repeated_delivery_sends_no_second_auto_reply(twilio, number, route):
    with time_machine.travel(OPEN, tick=False):
        assert len(messages(text(twilio, number.number, sid=sid(1)))) == 1
        assert messages(text(twilio, number.number, sid=sid(1))) == []
    assert TextMessage.objects.filter(purpose=TextPurpose.AUTO_REPLY).count() == 1


def test_a_text_is_forwarded_to_the_handlers_number_through_the_carrier_and_by_email(twilio, number, route, settings,
                                                                                     django_capture_on_commit_callbacks):
    from calltrack.numbers.tasks import text_email_forward_task, text_forward_task
    from tracking.models import TextEmailForward

    handler = HandlerFactory(name="Dispatch")
    route.forward_handler, route.forward_email, route.auto_reply, route.auto_reply_closed = handler, "leads@roof.example.com", "", ""
    route.save()
    with django_capture_on_commit_callbacks() as callbacks:
        response = text(twilio, number.number, sid=sid(1), body="Need a quote")
    assert messages(response) == [] and len(callbacks) == 2  # the forward's task and the email's, queued on commit
    forward = TextMessage.objects.get(purpose=TextPurpose.FORWARD)
    inbound = TextMessage.objects.get(message_sid=sid(1))
    text_forward_task(forward.pk)
    email = TextEmailForward.objects.get(text=inbound, address="leads@roof.example.com")
    text_email_forward_task(email.pk)
    sent = LocalCarrierMessage.objects.get()
    assert (sent.to_number, sent.from_number) == (handler.receiving_number.number, number.number)
    assert sent.body == f"Text from {TEXTER}: Need a quote" and sent.status_callback.endswith(f"/sms/status?text={forward.pk}")
    forward.refresh_from_db()
    assert (forward.message_sid, forward.handler, forward.contact_number, forward.status) == (sent.sid, handler, TEXTER, TextStatus.SENT)
    (email,) = mail.outbox
    assert email.to == ["leads@roof.example.com"] and "Need a quote" in email.body and TEXTER in email.subject


def test_the_first_text_from_a_new_contact_converts_with_revenue_and_payout(twilio, number, route):
    route.convert_on, route.revenue, route.payout = "first_text", Decimal("12.50"), Decimal("4.00")
    route.save()
    text(twilio, number.number, sid=sid(1))
    text(twilio, number.number, sid=sid(2))
    CallFactory(caller_number="+14155550111", campaign=number.campaign)
    text(twilio, number.number, sid=sid(3), sender="+14155550111")
    first, second, caller = (TextMessage.objects.get(message_sid=sid(n)) for n in (1, 2, 3))
    assert (first.converted, first.revenue, first.payout, first.margin) == (True, Decimal("12.50"), Decimal("4.00"), Decimal("8.50"))
    assert first.conversion_reason == "the first text from a new contact"
    assert not second.converted and not caller.converted  # not new: texted before / called before


def test_a_text_holding_the_keyword_converts(twilio, number, route):
    route.convert_on, route.convert_keyword, route.revenue = "keyword", "Quote", Decimal("20")
    route.save()
    text(twilio, number.number, sid=sid(1), body="Can I get a QUOTE today?")
    text(twilio, number.number, sid=sid(2), body="quoted already")
    assert [t.converted for t in TextMessage.objects.filter(direction="inbound").order_by("message_sid")] == [True, False]


def test_a_disabled_campaign_stores_texts_but_answers_nothing(twilio, number, route):
    number.campaign.enabled = False
    number.campaign.save()
    assert messages(text(twilio, number.number, sid=sid(1))) == []
    assert TextMessage.objects.count() == 1


def test_the_text_routes_hours_and_keyword_are_validated():
    route = TextRoute(campaign=CampaignFactory(), timezone="Mars/Olympus", business_hours={"mon": ["17:00-09:00"]}, convert_on="keyword")
    with pytest.raises(ValidationError) as caught:
        route.full_clean()
    assert set(caught.value.message_dict) == {"timezone", "business_hours", "convert_keyword"}


def test_a_reply_needs_a_body_and_copies_its_conversations_credit(number):
    inbound = TextMessage.objects.create(message_sid=sid(9), from_number=TEXTER, to_number=number.number, contact_number=TEXTER,
                                         campaign=number.campaign, tracking_number=number, marketing_data={"utm_source": "x"})
    with pytest.raises(TextRefused, match="body"):
        text_send(to=TEXTER, from_number=number.number, body=" \x00 ", purpose=TextPurpose.REPLY)
    reply = text_send(to=TEXTER, from_number=number.number, body="Hi!", purpose=TextPurpose.REPLY, thread=Thread(inbound))
    assert (reply.campaign, reply.tracking_number, reply.marketing_data) == (number.campaign, number, {"utm_source": "x"})


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_message_sid_store_one_text_and_send_one_auto_reply():
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection
    from django.test import Client

    from tests.routing.conftest import Twilio

    number = TrackingNumberFactory(campaign=CampaignFactory(name="Race"))
    TextRoute.objects.create(campaign=number.campaign, auto_reply="Got it", help_reply="")
    barrier = threading.Barrier(8)

    def one(_: int) -> int:
        try:
            twilio = Twilio(Client())
            barrier.wait(timeout=30)
            response = text(twilio, number.number, sid=sid(77))
            assert response.status_code == 200
            return len(etree.fromstring(response.content).findall("Message"))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        answered = list(pool.map(one, range(8)))
    assert TextMessage.objects.filter(message_sid=sid(77)).count() == 1
    assert sum(answered) == 1 and TextMessage.objects.filter(purpose=TextPurpose.AUTO_REPLY).count() == 1


def test_message_received_and_message_sent_webhooks_are_queued_through_the_webhook_delivery(twilio, number, route, django_capture_on_commit_callbacks):
    from tests.tracking.factories import WebhookFactory
    from tracking.models import WebhookDelivery

    received = WebhookFactory(campaign=number.campaign, url="https://hooks.example.com/in?from=[caller_number]", method="POST_JSON",
                              events=["message.received"], body_template='{"sid": "[message_sid]", "body": "[message_body]", "utm": "[utm_source]"}')
    sent = WebhookFactory(campaign=number.campaign, url="https://hooks.example.com/out", method="POST_FORM", events=["message.sent"])
    WebhookFactory(campaign=number.campaign, url="https://hooks.example.com/calls", events=["call.completed"])
    with django_capture_on_commit_callbacks() as callbacks, time_machine.travel(OPEN, tick=False):
        text(twilio, number.number, sid=sid(1), body='Quote "please"')
    assert len(callbacks) == 2  # one delivery per matching webhook, queued on commit
    inbound = WebhookDelivery.objects.get(webhook=received)
    assert inbound.event == "message.received" and inbound.call is None and inbound.text.message_sid == sid(1)
    assert inbound.url == "https://hooks.example.com/in?from=%2B14155550100"
    assert inbound.body == '{"sid": "' + sid(1) + '", "body": "Quote \\"please\\"", "utm": ""}'
    reply = WebhookDelivery.objects.get(webhook=sent)
    assert reply.event == "message.sent" and reply.text.purpose == TextPurpose.AUTO_REPLY
    assert "message_direction=outbound" in reply.body and "caller_number=%2B14155550100" in reply.body
    assert WebhookDelivery.objects.count() == 2


def test_every_message_token_renders_a_value_for_a_text(number):
    from tracking import webhook_templates
    from tracking.services.webhooks import webhook_text_values

    inbound = TextMessage.objects.create(message_sid=sid(5), from_number=TEXTER, to_number=number.number, contact_number=TEXTER,
                                         body="hi", media_urls=["https://m.example.com/1.jpg"], campaign=number.campaign)
    values = webhook_text_values(text=inbound, event="message.received")
    assert {name: values[name] for name in webhook_templates.MESSAGE_TOKENS} == {
        "message_sid": sid(5), "message_body": "hi", "message_direction": "inbound", "message_media": "https://m.example.com/1.jpg"}
    assert (values["caller_number"], values["called_number"], values["campaign_name"]) == (TEXTER, number.number, "Roofing")


def test_the_handlers_postback_converts_a_text_forwarded_to_it_once(twilio, number, route, client):
    from django.urls import reverse

    from tracking.services.conversions import postback_token

    handler, other = HandlerFactory(name="Dispatch"), HandlerFactory(name="Other")
    route.forward_handler, route.revenue, route.payout = handler, Decimal("15"), Decimal("5")
    route.save()
    text(twilio, number.number, sid=sid(1), body="quote please")
    inbound = TextMessage.objects.get(message_sid=sid(1))
    assert inbound.handler == handler  # routed to it

    def postback(h, message_sid):
        return client.post(reverse("postback", args=[h.pk, postback_token(handler_id=h.pk)]), {"message_sid": message_sid})

    first = postback(handler, sid(1))
    assert first.status_code == 200 and first.json() == {"converted": True, "text_id": inbound.pk, "revenue": "15.00", "payout": "5.00"}
    assert postback(handler, sid(1)).status_code == 409
    assert postback(other, sid(1)).status_code == 404
    assert postback(handler, "SM\x00x").status_code == 400
    bad_token = client.post(reverse("postback", args=[handler.pk, "nope"]), {"message_sid": sid(1)})
    assert bad_token.status_code == 403
    inbound.refresh_from_db()
    assert inbound.converted and inbound.conversion_reason == "the handler's postback confirmed it" and inbound.revenue == Decimal("15")
