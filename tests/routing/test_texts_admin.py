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
from lxml import html

from calltrack.numbers.models import LocalCarrierMessage
from calltrack.numbers.providers import CarrierError
from calltrack.numbers.services.texts import text_send
from tests.numbers.factories import TrackingNumberFactory
from tests.numbers.test_twilio_carrier import API, carrier
from tests.numbers.test_twilio_carrier import page as page_of
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


LOG = "admin:tracking_textmessage_changelist"
EXPORT = "admin:tracking_textmessage_export"


@pytest.mark.parametrize(("query", "words"), [
    # Values the log used to ignore (the whole log shown, or Django's "?e=1" redirect to it) or read as something else:
    ("status__exact=lost", "none of the status values"),
    ("status__exact=", "none of the status values"),
    ("direction__exact=sideways", "none of the direction values"),
    ("purpose=contact%E2%80%AE", "none of the purpose values"),  # a right-to-left override after the word
    ("status__in=sent,lost", "'lost' is none of the status values"),
    ("delivery=maybe", "none of sent, waiting, failed"),
    ("converted__exact=maybe", "must be either True or False"),
    ("source__id__exact=abc", "not a whole number"),
    ("source__id__exact=%D9%A1", "not a whole number"),  # ARABIC-INDIC DIGIT ONE: Python's int() reads 1
    ("campaign__id__exact=%EF%BC%91", "not a whole number"),  # FULLWIDTH DIGIT ONE
    ("tracking_number__id__exact=1.5", "not a whole number"),
    ("campaign__id__exact=99999999999999999999", "out of range"),
    ("created_at_from=%D9%A2%D9%A0%D9%A2%D9%A6-01-01", "digits 0-9"),
    ("created_at_from=2026-02-30", "not a date"),
    ("created_at_from=2026-02-01&created_at_to=2026-01-01", "ends (2026-01-01) before it starts"),
    ("created_at__gte=9999-12-31T23:59:59-15:00", "out of range"),
    ("created_at__gte=2026-01-01T00:00:00%2B16:00", "2026-01-01T00:00:00+16:00"),
    ("q=%00", "NUL"),
    ("utm_source=roof%00", "NUL"),
    ("o=abc", "not a column of the texts log"),
    ("o=99", "not a column of the texts log"),
    ("o=-3", "cannot be sorted"),  # the contact column
    ("p=abc", "not a page number"),
    ("p=0", "not a page number"),
    ("p=-1", "not a page number"),
    ("p=99999999999999999999", "not a page number"),
    ("nonsense=1", "does not filter with this parameter"),
    # Lookups Django would hand to the database on any of the text's own columns (a PostgreSQL error, or a crash
    # before the query), or read loosely:
    ("body__regex=(", "regular expressions"),
    ("contact_number__regex=(", "regular expressions"),
    ("contact_number__startswith=%2B1", "does not filter contact_number with 'startswith'"),
    ("body__icontains=roof", "does not filter with this parameter"),
    ("tags__plan=gold", "does not filter with this parameter"),
    ("body__iregex=%5B%5D", "regular expressions"),
    ("tags__plan__range=a", "range is not read"),
    ("marketing_data__utm_source__range=", "range is not read"),
    ("created_at__iso_week_day=1", "does not filter created_at with 'iso_week_day'"),
    ("created_at__year=99999", "out of range"),
    ("created_at__date__regex=2026-03-02", "regular expressions"),
    ("created_at__date__contains=2026-03-02", "does not filter created_at with 'date__contains'"),
    ("id__range=1,9", "does not filter id with 'range'"),
    ("source__id__in=1,x", "'x' is not a whole number"),
    ("revenue__gte=1e999", "not an amount"),
    ("payout__lt=NaN", "not an amount"),
    ("source__isnull=maybe", "not true or false"),
])
@pytest.mark.parametrize("view", [LOG, EXPORT])
def test_a_bad_value_on_the_texts_log_or_its_export_is_a_400_page_naming_it(world, staff_client, query, words, view):
    response = staff_client.get(reverse(view) + "?" + query)
    assert response.status_code == 400, (query, response.status_code)
    assert words in response.context["problem"], response.context["problem"]
    assert b"Do you fix flat roofs?" not in response.content
    assert "Choices are" not in response.context["problem"]  # no list of the model's fields


def test_the_texts_logs_good_values_still_filter(world, staff_client):
    def listed(query: str) -> list[str]:
        response = staff_client.get(reverse(LOG) + "?" + query)
        assert response.status_code == 200, (query, response.context.get("problem"))
        return sorted(t.body for t in response.context["cl"].result_list)

    both = ["Do you fix flat roofs?", "Price for shingles?"]
    assert listed("status__exact=received&direction=inbound&converted__exact=0") == both
    assert listed(f"source__id__exact={world.google.pk}&o=-8.1&p=1") == ["Do you fix flat roofs?"]
    assert listed("created_at_from=2000-01-01&created_at_to=2999-12-31&delivery=sent") == []
    assert listed("status__in=received,sent") == both
    assert listed("created_at__year__gte=2000&created_at__date__lt=2999-01-01") == both
    assert listed("source__isnull=false&revenue__gte=0&payout__lt=99.50") == both


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


def test_the_conversation_shows_each_forward_and_its_email_with_how_far_they_got(twilio, staff_client, google_client, world, settings):
    """A text forwarded to a handler's number and by email: the conversation page shows both forwards, each with its
    status (queued, then sent; the email's tries and last error); a collaborator sees neither."""
    from calltrack.numbers.services import texts as outbound
    from calltrack.numbers.tasks import text_email_forward_task
    from tests.tracking.factories import HandlerFactory
    from tracking.models import TextEmailForward

    route = TextRoute.objects.get(campaign=world.campaign)
    route.forward_handler, route.forward_email = HandlerFactory(name="Dispatch"), "leads@roof.example.com"
    route.save()
    text(twilio, world.ours.number, sid="SM" + "c" * 32, body="Leak over the kitchen")

    def forwards() -> list[tuple[str, str, str]]:
        page = staff_client.get(conversation_url(TEXTER))
        assert page.status_code == 200
        rows = [e for e in page.context["entries"] if e["kind"] == "forward"]
        shown = html.fromstring(page.content).xpath('//*[@data-kind="forward"]')
        assert sorted((r.get("data-channel"), r.get("data-status")) for r in shown) == sorted((e["channel"], e["status"]) for e in rows)
        return sorted((e["channel"], e["status"], e["detail"]) for e in rows)

    assert forwards() == [("email", "queued", "0 tries"), ("sms", "queued", "")]
    email = TextEmailForward.objects.get()
    settings.EMAIL_BACKEND = "tests.routing.test_texts_forward_task.DownBackend"
    text_email_forward_task(email.pk)
    (email_row, sms_row) = forwards()
    assert email_row[:2] == ("email", "queued") and "1 try, next at" in email_row[2] and "connection refused" in email_row[2]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    text_email_forward_task(email.pk)
    outbound.text_forward_send(forward_id=TextMessage.objects.get(purpose=TextPurpose.FORWARD).pk)
    (email_row, sms_row) = forwards()
    assert email_row[:2] == ("email", "sent") and email_row[2].startswith("2 tries, sent ") and sms_row == ("sms", "sent", "")
    page = google_client.get(conversation_url(TEXTER))
    assert page.status_code == 200 and not [e for e in page.context["entries"] if e["kind"] == "forward"]
    assert b"leads@roof.example.com" not in page.content


def test_twilio_is_asked_for_a_dead_workers_forward_by_line_date_and_body(settings):
    from datetime import UTC, datetime

    message = {"sid": "SM" + "8" * 32, "body": "Text from +14155550100: hi", "direction": "outbound-api", "status": "sent",
               "to": "+14155550199", "from": "+14155550110"}
    other = {**message, "sid": "SM" + "7" * 32, "body": "another text"}
    twilio, fake = carrier((200, page_of("messages", [message, other])))
    since = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    found = twilio.text_sent_find(to="+14155550199", from_number="+14155550110", body="Text from +14155550100: hi",
                                  status_url="https://calls.example.com/sms/status?text=7", since=since)
    assert found == ["SM" + "8" * 32]
    request = fake.requests[0]
    assert (request["method"], request["uri"]) == ("GET", f"{API}/Messages.json")
    assert request["params"]["To"] == "+14155550199" and request["params"]["From"] == "+14155550110"
    assert request["params"]["DateSent>"] == "2026-03-02T15:00:00Z"
