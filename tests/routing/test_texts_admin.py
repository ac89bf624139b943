"""The texts in the admin (issue 29): the texts log and its CSV export, the conversation page with the reply box (a
reply reaches the carrier, its delivery status comes back through the signed status callback), the call page's texts,
and the gate: a source collaborator sees only its texts."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.test import Client
from django.urls import reverse

from calltrack.numbers.models import LocalCarrierMessage
from calltrack.numbers.providers import CarrierError
from calltrack.numbers.services.texts import text_send
from tests.numbers.factories import TrackingNumberFactory
from tests.numbers.test_twilio_carrier import API, carrier
from tests.routing.test_texts_incoming import TEXTER, text
from tests.tracking.factories import CallFactory, CampaignFactory, SourceFactory, UserFactory
from tracking.models import Collaborator, Contact, TextMessage, TextPurpose, TextRoute, TextStatus

pytestmark = pytest.mark.django_db
OTHER = "+14155550177"


@pytest.fixture
def world(twilio):
    """Two sources' numbers, a text to each, and a call from the first texter."""
    google, bing = SourceFactory(name="Google"), SourceFactory(name="Bing")
    campaign = CampaignFactory(name="Roofing")
    TextRoute.objects.create(campaign=campaign, auto_reply="", help_reply="")
    ours = TrackingNumberFactory(campaign=campaign, source=google)
    theirs = TrackingNumberFactory(campaign=campaign, source=bing)
    text(twilio, ours.number, sid="SM" + "a" * 32, body="Do you fix flat roofs?")
    text(twilio, theirs.number, sid="SM" + "b" * 32, sender=OTHER, body="Price for shingles?")
    call = CallFactory(caller_number=TEXTER, called_number=ours.number, campaign=campaign, source=google)
    return type("World", (), {"google": google, "bing": bing, "ours": ours, "theirs": theirs, "call": call, "campaign": campaign})


@pytest.fixture
def staff_client():
    client = Client()
    client.force_login(UserFactory(username="op", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def google_client(world):
    user = UserFactory(username="google-collab", is_staff=True)
    Collaborator.objects.create(user=user, source=world.google)
    client = Client()
    client.force_login(user)
    return client


def conversation_url(number: str) -> str:
    return reverse("admin:tracking_textmessage_conversation", args=[number])


def test_an_admin_reply_reaches_the_local_carrier_and_its_delivery_status_comes_back(twilio, world, staff_client):
    page = staff_client.get(conversation_url(TEXTER))
    assert page.status_code == 200
    assert b"Do you fix flat roofs?" in page.content and b'id="reply-box"' in page.content
    sent = staff_client.post(conversation_url(TEXTER), {"body": "Yes we do! When can we come by?"})
    assert sent.status_code == 302
    message = LocalCarrierMessage.objects.get()
    assert (message.to_number, message.from_number, message.body) == (TEXTER, world.ours.number, "Yes we do! When can we come by?")
    reply = TextMessage.objects.get(purpose=TextPurpose.REPLY)
    assert (reply.message_sid, reply.status, reply.source, reply.sent_by.username) == (message.sid, TextStatus.QUEUED, world.google, "op")
    # The carrier reports the delivery to the status callback it was given, signed as Twilio signs.
    assert twilio.post(message.status_callback, {"MessageSid": message.sid, "MessageStatus": "sent"}).status_code == 200
    assert twilio.post(message.status_callback, {"MessageSid": message.sid, "MessageStatus": "delivered"}).status_code == 200
    reply.refresh_from_db()
    assert reply.status == TextStatus.DELIVERED and reply.status_at is not None
    page = staff_client.get(conversation_url(TEXTER))
    assert b"Yes we do!" in page.content and b"delivered" in page.content


def test_an_unsigned_status_callback_changes_nothing(twilio, world):
    sent = text_send(to=TEXTER, from_number=world.ours.number, body="Hi", purpose=TextPurpose.REPLY)
    assert twilio.post("/sms/status", {"MessageSid": sent.message_sid, "MessageStatus": "failed"}, signature="").status_code == 403
    bad = twilio.post("/sms/status", {"MessageSid": sent.message_sid, "MessageStatus": "exploded\x00"})
    assert bad.status_code == 200 and bad.content.endswith(b"<Response />")
    sent.refresh_from_db()
    assert sent.status == TextStatus.QUEUED


def test_a_reply_to_a_contact_who_texted_stop_is_refused_in_the_admin(twilio, world, staff_client):
    text(twilio, world.ours.number, sid="SM" + "c" * 32, body="STOP")
    page = staff_client.get(conversation_url(TEXTER))
    assert b'id="conversation-opted-out"' in page.content
    response = staff_client.post(conversation_url(TEXTER), {"body": "Are you sure?"}, follow=True)
    assert b"Not sent" in response.content
    assert not LocalCarrierMessage.objects.exists()


def test_the_conversation_shows_texts_and_calls_in_one_timeline(world, staff_client):
    page = staff_client.get(conversation_url(TEXTER))
    body = page.content.decode()
    assert 'data-kind="text"' in body and 'data-kind="call"' in body
    assert reverse("admin:tracking_call_change", args=[world.call.pk]) in body


def test_a_known_contact_links_to_its_conversation_and_back_for_who_may_see_contacts(world, staff_client, google_client):
    contact = Contact.objects.create(phone_number=TEXTER, name="Dana Roof")
    page = staff_client.get(reverse("admin:tracking_contact_change", args=[contact.pk]))
    assert page.status_code == 200
    assert f'href="{conversation_url(TEXTER)}"'.encode() in page.content and b"The conversation: 1 texts, 1 calls" in page.content
    conversation = staff_client.get(conversation_url(TEXTER)).content.decode()
    assert 'id="conversation-contact"' in conversation and "Dana Roof" in conversation
    assert reverse("admin:tracking_contact_change", args=[contact.pk]) in conversation
    # A source collaborator sees its texts, not the install's contact records.
    assert b"Dana Roof" not in google_client.get(conversation_url(TEXTER)).content
    nobody = Contact.objects.create(phone_number="+13035550111")
    assert b"No texts or calls from this number yet." in staff_client.get(reverse("admin:tracking_contact_change", args=[nobody.pk])).content


def test_the_call_page_shows_the_callers_texts(world, staff_client):
    page = staff_client.get(reverse("admin:tracking_call_change", args=[world.call.pk]))
    assert page.status_code == 200
    assert b'id="call-texts"' in page.content and b"Do you fix flat roofs?" in page.content


def test_the_texts_log_lists_every_text_and_exports_the_filtered_ones_as_csv(world, staff_client):
    log = staff_client.get(reverse("admin:tracking_textmessage_changelist"))
    assert log.status_code == 200
    assert b"Do you fix flat roofs?" in log.content and b"Price for shingles?" in log.content
    export = staff_client.get(reverse("admin:tracking_textmessage_export") + f"?source__id__exact={world.bing.pk}")
    assert export.status_code == 200 and export["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert [(r["contact"], r["body"], r["source"], r["campaign"]) for r in rows] == [(OTHER, "Price for shingles?", "Bing", "Roofing")]


def test_a_filter_the_texts_log_cannot_read_is_a_400_not_a_500(world, staff_client):
    response = staff_client.get(reverse("admin:tracking_textmessage_changelist") + "?created_at__gte=2026-02-31")
    assert response.status_code == 400


def test_a_source_collaborator_sees_only_its_texts(world, google_client):
    log = google_client.get(reverse("admin:tracking_textmessage_changelist"))
    assert log.status_code == 200
    assert b"Do you fix flat roofs?" in log.content and b"Price for shingles?" not in log.content
    assert google_client.get(conversation_url(OTHER)).status_code == 404
    page = google_client.get(conversation_url(TEXTER))
    assert page.status_code == 200 and b'id="reply-box"' not in page.content
    assert google_client.post(conversation_url(TEXTER), {"body": "hi"}).status_code == 403
    export = google_client.get(reverse("admin:tracking_textmessage_export"))
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert [r["body"] for r in rows] == ["Do you fix flat roofs?"]
    assert "revenue" not in rows[0] and "campaign" not in rows[0] and "payout" in rows[0]
    # Filtering on what it may not see is refused, never applied.
    assert google_client.get(reverse("admin:tracking_textmessage_changelist") + f"?campaign__id__exact={world.campaign.pk}").status_code == 400
    assert not LocalCarrierMessage.objects.exists()


def test_twilio_sends_a_text_through_the_messages_api_with_its_status_callback(settings):
    settings.CALLTRACK_PUBLIC_BASE_URL = "https://calls.example.com"
    twilio, fake = carrier((201, {"sid": "SM" + "9" * 32, "status": "queued", "account_sid": "AC1"}))
    number = TrackingNumberFactory()
    sent = text_send(to=TEXTER, from_number=number.number, body="Hello from Twilio", purpose=TextPurpose.REPLY, carrier=twilio,
                     media_urls=["https://example.com/a.jpg"])
    request = fake.requests[0]
    assert (request["method"], request["uri"]) == ("POST", f"{API}/Messages.json")
    assert request["data"]["To"] == TEXTER and request["data"]["From"] == number.number and request["data"]["Body"] == "Hello from Twilio"
    assert request["data"]["StatusCallback"] == "https://calls.example.com/sms/status"
    assert request["data"]["MediaUrl"] == ["https://example.com/a.jpg"]
    assert sent.message_sid == "SM" + "9" * 32


def test_a_carriers_refusal_keeps_no_text(settings):
    twilio, _ = carrier((400, json.dumps({"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400})))
    number = TrackingNumberFactory()
    with pytest.raises(CarrierError):
        text_send(to=TEXTER, from_number=number.number, body="x", purpose=TextPurpose.REPLY, carrier=twilio)
    assert not TextMessage.objects.exists()


def test_a_handler_collaborator_sees_only_the_texts_forwarded_to_it_without_the_source(twilio, world):
    from tests.tracking.factories import HandlerFactory

    handler = HandlerFactory(name="Dispatch")
    TextRoute.objects.filter(campaign=world.campaign).update(forward_handler=handler)
    text(twilio, world.ours.number, sid="SM" + "d" * 32, body="Forward me")
    user = UserFactory(username="dispatch-collab", is_staff=True)
    Collaborator.objects.create(user=user, handler=handler)
    client = Client()
    client.force_login(user)
    log = client.get(reverse("admin:tracking_textmessage_changelist"))
    assert log.status_code == 200
    bodies = {t.body for t in log.context["cl"].result_list}
    assert "Forward me" in bodies and "Do you fix flat roofs?" not in bodies and "Price for shingles?" not in bodies
    assert b"Google" not in log.content
    export = client.get(reverse("admin:tracking_textmessage_export"))
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert rows and "source" not in rows[0] and "campaign" not in rows[0] and "utm_source" not in rows[0]


@pytest.mark.parametrize("url", [
    "/admin/tracking/textmessage/?q=%00bad%ED%A0%80",
    "/admin/tracking/textmessage/?contact_number=%00",
    "/admin/tracking/textmessage/?created_at__gte=99999-01-01",
    "/admin/tracking/textmessage/?source__id__exact=99999999999999999999999",
    "/admin/tracking/textmessage/export.csv?q=%00",
    "/admin/tracking/textmessage/conversation/%00%2B1415/",
    "/admin/tracking/textmessage/conversation/%ED%A0%80/",
    "/admin/tracking/textmessage/99999999999999999999999/change/",
])
def test_odd_input_on_the_texts_pages_is_never_a_500(world, staff_client, url):
    assert staff_client.get(url).status_code in (200, 302, 400, 404)


def test_staff_convert_selected_texts_once_and_a_collaborator_may_not(world, staff_client, google_client):
    inbound = TextMessage.objects.get(message_sid="SM" + "a" * 32)
    url = reverse("admin:tracking_textmessage_changelist")
    data = {"action": "convert_texts", "_selected_action": [inbound.pk]}
    staff_client.post(url, data)
    inbound.refresh_from_db()
    assert inbound.converted and inbound.conversion_reason == "op (admin) confirmed it"
    again = staff_client.post(url, data, follow=True)
    assert b"converted already" in again.content
    assert google_client.post(url, data).status_code == 403
