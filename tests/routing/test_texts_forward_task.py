"""A text's forwards (issue 29) go out from django-q2 tasks after commit, not inside the messaging webhook's request:
the webhook answers without calling the carrier, the task sends once, a carrier failure is tried again with backoff,
the opt-out is checked when sending."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from django_q.models import Schedule

from calltrack.carriers import CarrierError
from calltrack.numbers.models import LocalCarrierMessage
from calltrack.numbers.providers import get_carrier
from calltrack.numbers.services import texts as outbound
from calltrack.numbers.tasks import text_email_task, text_forward_task
from tests.numbers.factories import TrackingNumberFactory
from tests.routing.test_texts_incoming import TEXTER, text
from tests.tracking.factories import CampaignFactory, HandlerFactory
from tracking.models import TextMessage, TextOptOut, TextPurpose, TextRoute, TextStatus

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
    inbound = TextMessage.objects.get(message_sid=SID)
    assert queued == [(outbound.FORWARD_TASK, pending.pk, 1), (outbound.EMAIL_TASK, inbound.pk, "leads@roof.example.com", 1)]


def test_the_task_sends_the_forward_once_even_when_run_twice(forward, handler):
    pending, _ = forward
    assert text_forward_task(pending.pk, 1).endswith("queued (try 1)")
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


def test_the_email_task_sends_the_text_and_a_mail_failure_is_tried_again(forward, monkeypatch):
    inbound = TextMessage.objects.get(message_sid=SID)

    def down(*args, **kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr(outbound, "send_mail", down)
    assert text_email_task(inbound.pk, "leads@roof.example.com", 1) == f"text {inbound.pk}: not emailed (try 1)"
    (retry,) = Schedule.objects.filter(func=outbound.EMAIL_TASK)
    assert retry.args == repr((inbound.pk, "leads@roof.example.com", 2))
    monkeypatch.undo()
    assert text_email_task(inbound.pk, "leads@roof.example.com", 2) == f"text {inbound.pk}: emailed (try 2)"
    (email,) = mail.outbox
    assert email.to == ["leads@roof.example.com"] and "Need a quote" in email.body


def test_a_forward_whose_task_was_lost_is_queued_again_by_the_every_minute_sweep(forward, monkeypatch):
    pending, queued = forward
    queued.clear()
    now = timezone.now()
    assert outbound.text_forwards_requeue(now=now) == 0  # its task is still to come
    assert outbound.text_forwards_requeue(now=now + timedelta(minutes=3)) == 1
    assert queued == [(outbound.FORWARD_TASK, pending.pk, 1)]
    assert text_forward_task(pending.pk, 1).endswith("queued (try 1)") and LocalCarrierMessage.objects.count() == 1
    assert outbound.text_forwards_requeue(now=now + timedelta(minutes=10)) == 0  # sent: nothing more


def test_a_retry_waiting_for_its_time_is_not_queued_again_early(forward):
    pending, queued = forward
    queued.clear()
    outbound.text_forward_send(forward_id=pending.pk, attempt=4, carrier=FailingCarrier(failures=1))  # next try in 240 s
    now = timezone.now()
    assert outbound.text_forwards_requeue(now=now + timedelta(minutes=5)) == 0
    assert outbound.text_forwards_requeue(now=now + timedelta(minutes=7)) == 1


def test_a_forward_held_by_a_worker_that_died_is_taken_again_after_its_lease(forward, monkeypatch):
    pending, queued = forward
    queued.clear()
    TextMessage.objects.filter(pk=pending.pk).update(status=TextStatus.SENDING, status_at=timezone.now())  # a worker's claim
    assert outbound.text_forward_send(forward_id=pending.pk) is None  # its lease holds: nobody else sends it
    later = timezone.now() + outbound.forward_lease() + outbound.FORWARD_REQUEUE_AFTER + timedelta(seconds=5)
    assert outbound.text_forwards_requeue(now=later) == 1
    TextMessage.objects.filter(pk=pending.pk).update(status_at=timezone.now() - outbound.forward_lease() - timedelta(seconds=1))
    assert outbound.text_forward_send(forward_id=pending.pk).message_sid == LocalCarrierMessage.objects.get().sid
