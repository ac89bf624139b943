"""A text's forwards (issue 29) go out from django-q2 tasks after commit, not inside the messaging webhook's request:
the webhook answers without calling the carrier, the task sends once, a carrier failure is tried again with backoff,
the opt-out is checked when sending."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone
from django_q.models import Schedule

from calltrack.carriers import CarrierError
from calltrack.numbers.models import LocalCarrierMessage
from calltrack.numbers.providers import get_carrier
from calltrack.numbers.services import texts as outbound
from calltrack.numbers.tasks import text_email_forward_task, text_email_task, text_forward_task
from tests.numbers.factories import TrackingNumberFactory
from tests.routing.test_texts_incoming import TEXTER, text
from tests.tracking.factories import CampaignFactory, HandlerFactory
from tracking.models import TextEmailForward, TextMessage, TextOptOut, TextPurpose, TextRoute, TextStatus

pytestmark = pytest.mark.django_db
SID = "SM" + "f" * 32


class FailingCarrier:
    """The local carrier, failing its first ``failures`` texts with ``code`` (as Twilio down or rate limiting)."""

    def __init__(self, failures: int, code: str = "unavailable") -> None:
        self.failures, self.code, self.tries = failures, code, 0
        self.carrier = get_carrier()

    def text_send(self, **kwargs) -> str:
        self.tries += 1
        if self.tries <= self.failures:
            raise CarrierError("Twilio did not answer", code=self.code)
        return self.carrier.text_send(**kwargs)

    def text_sent_find(self, **kwargs) -> list[str]:
        return self.carrier.text_sent_find(**kwargs)


class DownBackend(BaseEmailBackend):
    """A mail server that refuses every connection."""

    def send_messages(self, email_messages):
        raise ConnectionRefusedError("connection refused")


@pytest.fixture
def handler():
    return HandlerFactory(name="Dispatch")


@pytest.fixture
def number(handler):
    number = TrackingNumberFactory(campaign=CampaignFactory(name="Roofing"))
    TextRoute.objects.create(campaign=number.campaign, forward_handler=handler, forward_email="leads@roof.example.com")
    return number


@pytest.fixture
def forward(twilio, number, django_capture_on_commit_callbacks, monkeypatch):
    """The webhook's forward, with the tasks it queued on commit (async_task recorded instead of sent to a broker)."""
    queued: list[tuple] = []
    monkeypatch.setattr(outbound, "async_task", lambda func, *args, **kwargs: queued.append((func, *args)))
    with django_capture_on_commit_callbacks(execute=True):
        response = text(twilio, number.number, sid=SID, body="Need a quote")
    assert response.status_code == 200
    forward = TextMessage.objects.get(purpose=TextPurpose.FORWARD)
    return forward, queued


def test_the_webhook_answers_without_calling_the_carrier_and_queues_the_forward_and_the_email(forward, handler):
    pending, queued = forward
    assert not LocalCarrierMessage.objects.exists() and mail.outbox == []
    assert pending.message_sid == f"pending:{SID}:forward" and pending.status == TextStatus.QUEUED
    assert (pending.to_number, pending.handler, pending.contact_number) == (handler.receiving_number.number, handler, TEXTER)
    email = TextEmailForward.objects.get()
    assert (email.text.message_sid, email.address, email.status, email.attempts) == (SID, "leads@roof.example.com", "queued", 0)
    assert queued == [(outbound.FORWARD_TASK, pending.pk, 1), (outbound.EMAIL_FORWARD_TASK, email.pk, 1)]


def test_the_task_sends_the_forward_once_even_when_run_twice(forward, handler):
    pending, _ = forward
    assert text_forward_task(pending.pk, 1) == f"forward {pending.pk}: sent (try 1)"
    assert text_forward_task(pending.pk, 1) == f"forward {pending.pk}: gone, sent already, or another worker's"
    sent = LocalCarrierMessage.objects.get()
    pending.refresh_from_db()
    assert pending.message_sid == sent.sid and sent.to_number == handler.receiving_number.number
    assert sent.body == f"Text from {TEXTER}: Need a quote"


def test_a_carrier_failure_is_tried_again_with_backoff_then_sent(forward):
    pending, _ = forward
    carrier = FailingCarrier(failures=2)
    before = timezone.now()
    first = outbound.text_forward_send(forward_id=pending.pk, attempt=1, carrier=carrier)
    assert first.status == TextStatus.QUEUED and first.message_sid.startswith("pending:")
    second = outbound.text_forward_send(forward_id=pending.pk, attempt=2, carrier=carrier)
    assert second.status == TextStatus.QUEUED and not LocalCarrierMessage.objects.exists()
    schedules = list(Schedule.objects.filter(func=outbound.FORWARD_TASK).order_by("next_run"))
    assert [s.args for s in schedules] == [repr((pending.pk, 2)), repr((pending.pk, 3))]
    waits = [s.next_run - before for s in schedules]  # 30 s, then 60 s
    assert timedelta(seconds=30) <= waits[0] < timedelta(seconds=40) and timedelta(seconds=60) <= waits[1] < timedelta(seconds=70)
    sent = outbound.text_forward_send(forward_id=pending.pk, attempt=3, carrier=carrier)
    assert sent.message_sid == LocalCarrierMessage.objects.get().sid and carrier.tries == 3


def test_the_last_try_or_a_refusal_another_try_cannot_change_marks_the_forward_failed(forward):
    pending, _ = forward
    last = outbound.text_forward_send(forward_id=pending.pk, attempt=outbound.FORWARD_MAX_ATTEMPTS, carrier=FailingCarrier(failures=1))
    assert (last.status, last.error_code) == (TextStatus.FAILED, "down")
    assert not Schedule.objects.filter(func=outbound.FORWARD_TASK).exists()
    assert outbound.text_forward_send(forward_id=pending.pk, attempt=1) is None  # given up: nothing more is sent
    assert not LocalCarrierMessage.objects.exists()


def test_a_bad_number_is_not_tried_again(forward):
    pending, _ = forward
    refused = outbound.text_forward_send(forward_id=pending.pk, attempt=1, carrier=FailingCarrier(failures=1, code="invalid"))
    assert (refused.status, refused.error_code) == (TextStatus.FAILED, "invalid")
    assert not Schedule.objects.filter(func=outbound.FORWARD_TASK).exists()


def test_the_opt_out_is_checked_when_the_task_sends(forward, handler):
    pending, _ = forward
    TextOptOut.objects.create(contact_number=handler.receiving_number.number, our_number=pending.from_number, keyword="STOP")
    refused = outbound.text_forward_send(forward_id=pending.pk, attempt=1)
    assert (refused.status, refused.error_code) == (TextStatus.FAILED, "opt_out")
    assert not LocalCarrierMessage.objects.exists()


def test_the_forwards_status_callback_may_come_before_the_task_kept_its_sid(twilio, forward):
    pending, _ = forward
    outbound.text_forward_send(forward_id=pending.pk, attempt=1)
    sent = LocalCarrierMessage.objects.get()
    response = twilio.post(sent.status_callback, {"MessageSid": sent.sid, "MessageStatus": "delivered"})
    assert response.status_code == 200
    pending.refresh_from_db()
    assert (pending.message_sid, pending.status) == (sent.sid, TextStatus.DELIVERED)


def test_the_email_task_sends_the_text_once_and_a_mail_failure_is_tried_again(forward, settings):
    email = TextEmailForward.objects.get()
    settings.EMAIL_BACKEND = "tests.routing.test_texts_forward_task.DownBackend"
    assert text_email_forward_task(email.pk, 1) == f"text email {email.pk}: queued (try 1)"
    email.refresh_from_db()
    assert (email.status, email.attempts, email.last_error) == ("queued", 1, "ConnectionRefusedError: connection refused")
    (retry,) = Schedule.objects.filter(func=outbound.EMAIL_FORWARD_TASK)
    assert retry.args == repr((email.pk, 2)) and email.next_attempt_at == retry.next_run
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert text_email_forward_task(email.pk, 2) == f"text email {email.pk}: sent (try 2)"
    assert text_email_forward_task(email.pk, 2) == f"text email {email.pk}: gone, sent already, or another worker's"
    (sent,) = mail.outbox
    assert sent.to == ["leads@roof.example.com"] and "Need a quote" in sent.body
    assert sent.extra_headers["Message-ID"] == f"<calltrack-text-email-{email.pk}@localhost>"
    email.refresh_from_db()
    assert (email.status, email.attempts, email.last_error) == ("sent", 2, "") and email.sent_at is not None


def test_the_last_email_try_marks_the_email_forward_failed(forward, settings):
    email = TextEmailForward.objects.get()
    TextEmailForward.objects.filter(pk=email.pk).update(attempts=outbound.FORWARD_MAX_ATTEMPTS - 1)
    settings.EMAIL_BACKEND = "tests.routing.test_texts_forward_task.DownBackend"
    assert text_email_forward_task(email.pk, outbound.FORWARD_MAX_ATTEMPTS).startswith(f"text email {email.pk}: failed")
    assert not Schedule.objects.filter(func=outbound.EMAIL_FORWARD_TASK).exists()
    assert outbound.text_forwards_requeue(now=timezone.now() + timedelta(days=1)) == 1  # the SMS forward only, never the failed email


def test_an_email_task_queued_before_the_upgrade_is_sent_once_through_its_record(forward):
    inbound = TextMessage.objects.get(message_sid=SID)
    assert text_email_task(inbound.pk, "leads@roof.example.com", 1) == f"text {inbound.pk}: email sent (try 1)"
    assert text_email_task(inbound.pk, "leads@roof.example.com", 1) == f"text {inbound.pk}: gone, sent already, or another worker's"
    assert len(mail.outbox) == 1 and TextEmailForward.objects.get().status == "sent"


def test_a_repeated_queueing_of_the_same_email_keeps_one_record_and_queues_no_second_task(forward, django_capture_on_commit_callbacks):
    inbound = TextMessage.objects.get(message_sid=SID)
    with django_capture_on_commit_callbacks() as callbacks:
        again = outbound.text_forward_email_queue(text=inbound, address="leads@roof.example.com")
    assert again == TextEmailForward.objects.get() and callbacks == []


def test_a_lost_email_task_is_queued_again_by_the_sweep_and_a_dead_workers_email_after_its_lease(forward):
    _, queued = forward
    queued.clear()
    email = TextEmailForward.objects.get()
    now = timezone.now()
    assert outbound.text_forwards_requeue(now=now) == 0  # its task is still to come
    assert outbound.text_forwards_requeue(now=now + timedelta(minutes=3)) == 2  # the SMS forward's and the email's
    assert (outbound.EMAIL_FORWARD_TASK, email.pk, 1) in queued
    # A worker claims the email and dies before the mail backend answers: it stays "sending" under its lease...
    TextEmailForward.objects.filter(pk=email.pk).update(status="sending", attempts=1, next_attempt_at=now + outbound.forward_lease())
    assert text_email_forward_task(email.pk, 1) == f"text email {email.pk}: gone, sent already, or another worker's"
    queued.clear()
    assert outbound.text_forwards_requeue(now=now + outbound.forward_lease() + timedelta(minutes=1)) == 1  # the SMS forward only
    # ...then, its lease over (and the sweep's grace), the sweep queues it again and the next task sends it.
    assert outbound.text_forwards_requeue(now=now + outbound.forward_lease() + timedelta(minutes=3)) == 2
    assert (outbound.EMAIL_FORWARD_TASK, email.pk, 2) in queued
    TextEmailForward.objects.filter(pk=email.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert text_email_forward_task(email.pk, 2) == f"text email {email.pk}: sent (try 2)"
    assert len(mail.outbox) == 1


def test_a_forward_whose_task_was_lost_is_queued_again_by_the_every_minute_sweep(forward, monkeypatch):
    pending, queued = forward
    text_email_forward_task(TextEmailForward.objects.get().pk)  # the email went: only the SMS forward is left
    queued.clear()
    now = timezone.now()
    assert outbound.text_forwards_requeue(now=now) == 0  # its task is still to come
    assert outbound.text_forwards_requeue(now=now + timedelta(minutes=3)) == 1
    assert queued == [(outbound.FORWARD_TASK, pending.pk, 1)]
    assert text_forward_task(pending.pk, 1).endswith("sent (try 1)") and LocalCarrierMessage.objects.count() == 1
    assert outbound.text_forwards_requeue(now=now + timedelta(minutes=10)) == 0  # sent: nothing more


def test_a_retry_waiting_for_its_time_is_not_queued_again_early(forward):
    pending, queued = forward
    text_email_forward_task(TextEmailForward.objects.get().pk)
    queued.clear()
    outbound.text_forward_send(forward_id=pending.pk, attempt=4, carrier=FailingCarrier(failures=1))  # next try in 240 s
    now = timezone.now()
    assert outbound.text_forwards_requeue(now=now + timedelta(minutes=5)) == 0
    assert outbound.text_forwards_requeue(now=now + timedelta(minutes=7)) == 1


def test_a_forward_held_by_a_worker_that_died_is_taken_again_after_its_lease(forward, monkeypatch):
    pending, queued = forward
    text_email_forward_task(TextEmailForward.objects.get().pk)
    queued.clear()
    TextMessage.objects.filter(pk=pending.pk).update(status=TextStatus.SENDING, status_at=timezone.now())  # a worker's claim
    assert outbound.text_forward_send(forward_id=pending.pk) is None  # its lease holds: nobody else sends it
    later = timezone.now() + outbound.forward_lease() + outbound.FORWARD_REQUEUE_AFTER + timedelta(seconds=5)
    assert outbound.text_forwards_requeue(now=later) == 1
    TextMessage.objects.filter(pk=pending.pk).update(status_at=timezone.now() - outbound.forward_lease() - timedelta(seconds=1))
    taken = outbound.text_forward_send(forward_id=pending.pk)
    assert (taken.message_sid, taken.status) == (LocalCarrierMessage.objects.get().sid, TextStatus.SENT)


def test_a_forward_whose_worker_died_after_the_carrier_took_it_is_not_sent_again(forward):
    """The worker claimed the forward and the carrier took the text, then the worker died before marking it (and no
    status callback came): the forward is still "sending" with its pending sid. After the lease the next try asks
    the carrier first, finds the text, and marks the forward sent with the carrier's sid, without a second text."""
    pending, _ = forward
    claimed_at = timezone.now() - outbound.forward_lease() - timedelta(seconds=1)
    TextMessage.objects.filter(pk=pending.pk).update(status=TextStatus.SENDING, status_at=claimed_at)
    carrier_sid = get_carrier().text_send(to=pending.to_number, from_number=pending.from_number, body=pending.body, media_urls=[],
                                          status_url=outbound._forward_status_url(pending))  # what the dead worker did
    carrier = FailingCarrier(failures=0)
    taken = outbound.text_forward_send(forward_id=pending.pk, carrier=carrier)
    assert (taken.message_sid, taken.status) == (carrier_sid, TextStatus.SENT)
    assert carrier.tries == 0 and LocalCarrierMessage.objects.count() == 1
    assert outbound.text_forward_send(forward_id=pending.pk) is None


def test_a_carrier_text_another_forward_holds_is_not_taken_for_this_one(forward):
    """Two forwards of the same words on the same line: the carrier's text the first holds already is not the
    second's, which is sent."""
    pending, _ = forward
    TextMessage.objects.filter(pk=pending.pk).update(status=TextStatus.SENDING, status_at=timezone.now() - timedelta(minutes=10))
    twin = TextMessage.objects.create(message_sid="SM" + "e" * 32, direction="outbound", purpose="forward", status="delivered",
                                      from_number=pending.from_number, to_number=pending.to_number, contact_number=pending.contact_number,
                                      body=pending.body)

    class OneMatch(FailingCarrier):
        def text_sent_find(self, **kwargs) -> list[str]:  # Twilio answers by line and body: the twin's text matches
            return [twin.message_sid]

    carrier = OneMatch(failures=0)
    taken = outbound.text_forward_send(forward_id=pending.pk, carrier=carrier)
    assert carrier.tries == 1 and taken.message_sid == LocalCarrierMessage.objects.get().sid and taken.status == TextStatus.SENT


def test_a_carrier_that_cannot_be_asked_about_a_dead_workers_forward_is_tried_again_later(forward):
    pending, _ = forward
    TextMessage.objects.filter(pk=pending.pk).update(status=TextStatus.SENDING, status_at=timezone.now() - timedelta(minutes=10))

    class Down(FailingCarrier):
        def text_sent_find(self, **kwargs) -> list[str]:
            raise CarrierError("Twilio did not answer", code="unavailable")

    carrier = Down(failures=0)
    again = outbound.text_forward_send(forward_id=pending.pk, carrier=carrier)
    assert again.status == TextStatus.QUEUED and carrier.tries == 0 and not LocalCarrierMessage.objects.exists()
    assert Schedule.objects.filter(func=outbound.FORWARD_TASK).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_workers_racing_for_one_forward_and_one_email_send_each_once(twilio, number, django_capture_on_commit_callbacks, monkeypatch):
    """Six workers run the forward's task and six the email's at once (a task queued twice, the sweep's requeue, two
    clusters): the conditional UPDATEs let one of each through."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    monkeypatch.setattr(outbound, "async_task", lambda *args, **kwargs: None)
    with django_capture_on_commit_callbacks(execute=True):
        assert text(twilio, number.number, sid=SID, body="Need a quote").status_code == 200
    forward = TextMessage.objects.get(purpose=TextPurpose.FORWARD)
    email = TextEmailForward.objects.get()
    barrier = threading.Barrier(12)

    def one(n: int) -> str:
        try:
            barrier.wait(timeout=30)
            return text_forward_task(forward.pk, 1) if n % 2 else text_email_forward_task(email.pk, 1)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(one, range(12)))
    assert sorted(r.rsplit(": ", 1)[-1] for r in results if "another worker's" not in r) == ["sent (try 1)", "sent (try 1)"]
    assert LocalCarrierMessage.objects.count() == 1 and len(mail.outbox) == 1
    email.refresh_from_db()
    assert (email.status, email.attempts) == ("sent", 1)


def test_a_carrier_sid_another_forward_took_meanwhile_leaves_this_forward_sent_without_it(forward):
    """A dead worker's retry took this forward's text at the carrier for its twin's (same line, same words) before the
    twin's worker kept its sid: the twin is still marked sent, once, without a sid clash."""
    pending, _ = forward
    TextMessage.objects.filter(pk=pending.pk).update(status=TextStatus.SENDING, status_at=timezone.now())
    clash = "SM" + "d" * 32
    TextMessage.objects.create(message_sid=clash, direction="outbound", purpose="forward", status="sent", from_number=pending.from_number,
                               to_number=pending.to_number, contact_number=pending.contact_number, body=pending.body)
    kept = outbound._forward_accepted(pending, clash)
    assert (kept.message_sid, kept.status) == (pending.message_sid, TextStatus.SENT)
    assert outbound.text_forward_send(forward_id=pending.pk) is None
    assert outbound.text_forwards_requeue(now=timezone.now() + timedelta(hours=1)) == 1  # the email only


def test_an_email_of_a_text_from_an_odd_sender_goes_out_with_a_one_line_subject(number):
    """A sender that is no phone number is kept as sent (cleaned of what no database stores): a line break in it must
    not make the mail backend refuse the email on every try."""
    text = TextMessage.objects.create(message_sid="SM" + "1" * 32, from_number="ACME\nBcc: x@example.com", to_number=number.number,
                                      contact_number="ACME\nBcc: x@example.com", body="hi", campaign=number.campaign)
    email = outbound.text_forward_email_queue(text=text, address="leads@roof.example.com")
    assert outbound.text_email_forward_send(forward_id=email.pk).status == "sent"
    (sent,) = mail.outbox
    assert sent.subject == f"Text from ACME Bcc: x@example.com to {number.number}" and sent.to == ["leads@roof.example.com"]
