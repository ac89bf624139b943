"""Outgoing webhooks, delivered to a real HTTP server on 127.0.0.1 (no mock of the HTTP client)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta
from decimal import Decimal
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_q.models import OrmQ, Schedule

from tests.tracking.factories import (
    CallFactory,
    CampaignFactory,
    ConversionRuleFactory,
    HandlerFactory,
    SourceFactory,
    WebhookFactory,
)
from tests.tracking.helpers import call_complete
from tests.tracking.receiver import dead_port, receiver, run_due_schedules, run_queued_tasks
from tracking.models import CallStatus, DeliveryStatus, WebhookDelivery
from tracking.services.call_events import call_lifecycle_notify
from tracking.services.webhooks import (
    REQUEUE_AFTER,
    DeliveryNotResendable,
    retry_delay,
    webhook_deliveries_queue,
    webhook_deliveries_requeue,
    webhook_delivery_attempt,
    webhook_delivery_resend,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_webhooks(settings):
    settings.CALLTRACK_WEBHOOK_TIMEOUT = 0.5
    settings.CALLTRACK_WEBHOOK_MAX_ATTEMPTS = 3
    settings.CALLTRACK_WEBHOOK_RETRY_BASE = 30


def make_call(**kw):
    campaign = kw.pop("campaign", None) or CampaignFactory(campaign_id="summer-sale")
    started = timezone.now() - timedelta(minutes=5)
    fields = dict(
        campaign=campaign, handler=HandlerFactory(name="Acme Insurance"), source=SourceFactory(source_id="adwords"),
        caller_number="+14155550123", status=CallStatus.COMPLETED, started_at=started, answered_at=started + timedelta(seconds=3),
        ended_at=started + timedelta(seconds=100), talk_time=95, duration=100, tags={"state": "CA", "language": "es"},
        marketing_data={"utm_source": "google", "keyword": "car insurance & more"},
    )
    fields.update(kw)
    return CallFactory(**fields)


@pytest.fixture
def queue(django_capture_on_commit_callbacks):
    """webhook_deliveries_queue, with the after-commit queueing run (tests run inside a transaction)."""

    def run(call, event):
        with django_capture_on_commit_callbacks(execute=True):
            return webhook_deliveries_queue(call=call, event=event)

    return run


def verify(secret: str, payload: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


def test_a_completed_call_arrives_signed_with_tokens_filled_in(django_capture_on_commit_callbacks):
    with receiver((200, 0)) as rx:
        call = make_call()
        ConversionRuleFactory(campaign=call.campaign, min_duration=60, revenue=Decimal("20"), payout=Decimal("8"))
        hook = WebhookFactory(
            campaign=call.campaign, url=rx.url("/crm?c=[call_id]"), events=["call.completed"],
            body_template='{"caller": "[caller_number]", "source": "[source_id]", "state": "[tag:state]", '
            '"utm": "[utm_source]", "kw": "[data:keyword]", "revenue": "[revenue]", "converted": "[converted]"}',
        )
        with django_capture_on_commit_callbacks(execute=True):
            with transaction.atomic():
                call_complete(call)
        assert rx.requests == []  # queued, not sent
        assert OrmQ.objects.count() == 1
        run_queued_tasks()
    (req,) = rx.requests
    assert req.method == "POST" and req.path == f"/crm?c={call.pk}"
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["X-Calltrack-Event"] == "call.completed"
    assert verify(hook.secret, req.body, req.headers["X-Calltrack-Signature"])
    assert json.loads(req.body) == {
        "caller": "+14155550123", "source": "adwords", "state": "CA", "utm": "google", "kw": "car insurance & more",
        "revenue": "20.00", "converted": "true",
    }
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 1 and delivery.last_status_code == 200
    (attempt,) = delivery.attempt_log.all()
    assert (attempt.number, attempt.status_code, attempt.outcome) == (1, 200, DeliveryStatus.DELIVERED)
    assert attempt.response_excerpt == "answer 1: 200"


def test_a_blank_template_sends_every_call_field_and_a_form_body_is_url_encoded(django_capture_on_commit_callbacks):
    with receiver((200, 0)) as rx:
        call = make_call()
        WebhookFactory(campaign=call.campaign, url=rx.url("/all"), events=["call.answered"])
        WebhookFactory(
            campaign=call.campaign, url=rx.url("/form"), events=["call.answered"], method="POST_FORM",
            body_template="caller=[caller_number]&kw=[data:keyword]&handler=[handler_id]",
        )
        WebhookFactory(campaign=call.campaign, url=rx.url("/get?from=[caller_number]&state=[tag:state]"), events=["call.answered"], method="GET")
        with django_capture_on_commit_callbacks(execute=True):
            call_lifecycle_notify(call=call, event="call.answered")
        run_queued_tasks()
    by_path = {urlsplit(r.path).path: r for r in rx.requests}
    everything = json.loads(by_path["/all"].body)
    assert everything["call_id"] == str(call.pk) and everything["event"] == "call.answered"
    assert everything["tags"] == {"state": "CA", "language": "es"} and everything["handler_name"] == "Acme Insurance"
    form = parse_qs(by_path["/form"].body.decode())
    assert form == {"caller": ["+14155550123"], "kw": ["car insurance & more"], "handler": [str(call.handler_id)]}
    get = by_path["/get"]
    assert get.method == "GET" and parse_qs(urlsplit(get.path).query) == {"from": ["+14155550123"], "state": ["CA"]}
    hook_secret = WebhookDelivery.objects.get(url__contains="/get").webhook.secret
    assert verify(hook_secret, WebhookDelivery.objects.get(url__contains="/get").url.encode(), get.headers["X-Calltrack-Signature"])


def test_only_enabled_webhooks_listening_to_the_event_are_sent():
    call = make_call()
    WebhookFactory(campaign=call.campaign, events=["call.completed"])
    WebhookFactory(campaign=call.campaign, events=["call.answered"], enabled=False)
    WebhookFactory(events=["call.answered"])  # another campaign
    assert webhook_deliveries_queue(call=call, event="call.answered") == []
    assert len(webhook_deliveries_queue(call=call, event="call.completed")) == 1


def test_a_receiver_answering_500_then_200_is_retried_with_backoff(queue):
    with receiver((500, 0), (200, 0)) as rx:
        call = make_call()
        WebhookFactory(campaign=call.campaign, url=rx.url(), events=["call.completed"])
        (delivery,) = queue(call, "call.completed")
        before = timezone.now()
        run_queued_tasks()
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.RETRYING and delivery.last_status_code == 500
        assert delivery.response_excerpt == ""  # an error answer is not kept (only 2xx answers are)
        schedule = Schedule.objects.get(func="tracking.tasks.webhook_deliver")
        assert schedule.schedule_type == Schedule.ONCE and schedule.func == "tracking.tasks.webhook_deliver"
        assert before + timedelta(seconds=29) < schedule.next_run < timezone.now() + timedelta(seconds=31)
        assert delivery.next_attempt_at == schedule.next_run
        run_due_schedules()  # django-q2's scheduler queues the retry
        assert not Schedule.objects.filter(func="tracking.tasks.webhook_deliver").exists()
        run_queued_tasks()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 2
    assert [(a.number, a.status_code, a.outcome) for a in delivery.attempt_log.all()] == [
        (1, 500, DeliveryStatus.RETRYING), (2, 200, DeliveryStatus.DELIVERED),
    ]
    assert len(rx.requests) == 2
    assert rx.requests[0].body == rx.requests[1].body


def test_a_slow_receiver_times_out_and_is_retried(queue):
    with receiver((200, 2.0)) as rx:
        call = make_call()
        WebhookFactory(campaign=call.campaign, url=rx.url(), events=["call.completed"])
        (delivery,) = queue(call, "call.completed")
        started = time.monotonic()
        webhook_delivery_attempt(delivery_id=delivery.pk)
        assert time.monotonic() - started < 1.5
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.RETRYING
    assert delivery.last_error == "timed out after 0.5 s" and delivery.last_status_code is None


def test_a_dead_receiver_is_marked_failed_after_the_limit(queue):
    call = make_call()
    WebhookFactory(campaign=call.campaign, url=f"http://127.0.0.1:{dead_port()}/hook", events=["call.completed"])
    (delivery,) = queue(call, "call.completed")
    run_queued_tasks()
    for _ in range(2):
        run_due_schedules()
        run_queued_tasks()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 3
    assert delivery.last_error.startswith("could not connect")
    assert [a.outcome for a in delivery.attempt_log.all()] == [DeliveryStatus.RETRYING, DeliveryStatus.RETRYING, DeliveryStatus.FAILED]
    assert not Schedule.objects.filter(func="tracking.tasks.webhook_deliver").exists()


def test_a_client_error_fails_at_once(queue):
    with receiver((404, 0)) as rx:
        call = make_call()
        WebhookFactory(campaign=call.campaign, url=rx.url(), events=["call.completed"])
        (delivery,) = queue(call, "call.completed")
        run_queued_tasks()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.last_error == "HTTP 404"
    assert not Schedule.objects.filter(func="tracking.tasks.webhook_deliver").exists()


def test_backoff_doubles_up_to_an_hour(settings):
    settings.CALLTRACK_WEBHOOK_RETRY_BASE = 30
    assert [retry_delay(attempt=n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert retry_delay(attempt=20) == timedelta(hours=1)


def test_a_failed_delivery_can_be_resent_and_a_delivered_one_is_not_sent_twice(queue, django_capture_on_commit_callbacks):
    with receiver((404, 0), (200, 0)) as rx:
        call = make_call()
        WebhookFactory(campaign=call.campaign, url=rx.url(), events=["call.completed"])
        (delivery,) = queue(call, "call.completed")
        run_queued_tasks()
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.FAILED
        with django_capture_on_commit_callbacks(execute=True):
            webhook_delivery_resend(delivery=delivery)
        run_queued_tasks()
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.DELIVERED
        webhook_delivery_attempt(delivery_id=delivery.pk)  # a duplicate task run
    assert len(rx.requests) == 2
    assert [a.number for a in delivery.attempt_log.all()] == [1, 2]


def test_a_delivery_still_being_tried_cannot_be_resent(queue):
    call = make_call()
    WebhookFactory(campaign=call.campaign, events=["call.completed"])
    (delivery,) = queue(call, "call.completed")
    with pytest.raises(DeliveryNotResendable, match="still being tried"):
        webhook_delivery_resend(delivery=delivery)


def test_a_delivery_whose_task_was_lost_with_its_cluster_is_queued_again_and_sent_once(queue):
    """With the Redis broker a task a cluster took is gone from Redis: a cluster killed hard (SIGKILL, out of memory,
    a machine lost) takes its tasks with it. The every-minute requeue sends them; a task queued twice sends once."""
    with receiver((200, 0)) as rx:
        call = make_call()
        WebhookFactory(campaign=call.campaign, url=rx.url("/crm"), events=["call.completed"], name="CRM")
        WebhookFactory(campaign=call.campaign, url=rx.url("/sheet"), events=["call.completed"], name="Sheet")
        deliveries = queue(call, "call.completed")
        OrmQ.objects.filter(pk=OrmQ.objects.order_by("id").first().pk).delete()  # the first one's task is lost
        assert webhook_deliveries_requeue() == 0  # not yet: a task may simply be waiting in a long queue
        later = timezone.now() + REQUEUE_AFTER + timedelta(seconds=1)
        assert webhook_deliveries_requeue(now=later) == 2  # the lost one, and the other whose task is still queued
        run_queued_tasks()
        run_queued_tasks()
    assert sorted(r.headers["X-Calltrack-Delivery"] for r in rx.requests) == sorted(str(d.pk) for d in deliveries)
    assert set(WebhookDelivery.objects.values_list("status", "attempts")) == {(DeliveryStatus.DELIVERED, 1)}
    assert webhook_deliveries_requeue(now=later + timedelta(hours=1)) == 0  # nothing left to send


def test_a_try_cut_off_midway_is_tried_again_after_its_lease_never_while_it_may_still_be_under_way(queue):
    with receiver((200, 0)) as rx:
        call = make_call()
        WebhookFactory(campaign=call.campaign, url=rx.url(), events=["call.completed"])
        (delivery,) = queue(call, "call.completed")
        # The worker dies mid-try (the try was claimed; nothing was logged or sent).
        with mock.patch("tracking.services.webhooks._send", side_effect=KeyboardInterrupt), pytest.raises(KeyboardInterrupt):
            webhook_delivery_attempt(delivery_id=delivery.pk)
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
        assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=60)  # the lease: past django-q2's timeout
        # While the lease runs, a duplicate task does nothing and the requeue leaves it alone.
        assert webhook_delivery_attempt(delivery_id=delivery.pk) is None
        assert webhook_deliveries_requeue(now=timezone.now() + REQUEUE_AFTER) == 0
        assert rx.requests == []
        assert webhook_deliveries_requeue(now=delivery.next_attempt_at + REQUEUE_AFTER) == 1
        with mock.patch("tracking.services.webhooks.timezone.now", return_value=delivery.next_attempt_at + REQUEUE_AFTER):
            run_queued_tasks()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, len(rx.requests)) == (DeliveryStatus.DELIVERED, 2, 1)


def test_the_requeue_of_lost_deliveries_is_scheduled_every_minute():
    from calltrack.schedules import SCHEDULES

    assert ("calltrack: requeue lost webhook deliveries", "tracking.tasks.webhook_deliveries_requeue_task", "I", 1) in SCHEDULES


def test_unknown_tokens_are_rejected_when_the_webhook_is_saved():
    hook = WebhookFactory.build(campaign=CampaignFactory(), url="https://crm.example/x?c=[caller_numbr]", events=["call.completed"])
    with pytest.raises(ValidationError) as exc:
        hook.full_clean()
    assert "Unknown token [caller_numbr] in the URL (line 1)" in str(exc.value.message_dict["url"])
    hook = WebhookFactory.build(
        campaign=CampaignFactory(), url="https://crm.example/x", events=["call.completed"],
        body_template='{\n  "a": "[caller_number]",\n  "b": "[colour:red]"\n}',
    )
    with pytest.raises(ValidationError) as exc:
        hook.full_clean()
    assert "Unknown token [colour:red] in the body template (line 3)" in exc.value.message_dict["body_template"][0]


def test_a_json_template_must_stay_json_and_get_takes_no_body():
    campaign = CampaignFactory()
    bad_json = WebhookFactory.build(campaign=campaign, url="https://crm.example/x", events=["call.completed"], body_template='{"a": [caller_number]}')
    with pytest.raises(ValidationError, match="not valid JSON"):
        bad_json.full_clean()
    get_body = WebhookFactory.build(campaign=campaign, url="https://crm.example/x", events=["call.completed"], method="GET", body_template="a=[call_id]")
    with pytest.raises(ValidationError, match="A GET sends no body"):
        get_body.full_clean()
    ok = WebhookFactory.build(
        campaign=campaign, url="https://crm.example/x?s=[tag:state]&id=[call_id]", events=["call.completed", "call.converted"],
        body_template='{"a": "[caller_number]", "list": [1, 2]}',
    )
    ok.full_clean()


def test_a_stuck_receiver_does_not_delay_the_call(django_capture_on_commit_callbacks, settings):
    """Service-level proof (routing's /voice views are on another branch): announcing every lifecycle event
    of a call, with a receiver that takes 5 s to answer, returns at once; only the worker waits."""
    settings.CALLTRACK_WEBHOOK_TIMEOUT = 10
    with receiver((200, 5.0)) as rx:
        call = make_call()
        WebhookFactory(
            campaign=call.campaign, url=rx.url(), events=["call.started", "call.routed", "call.answered", "call.completed", "call.converted"]
        )
        ConversionRuleFactory(campaign=call.campaign, min_duration=30, revenue=Decimal("10"))
        started = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True):
            for event in ("call.started", "call.routed", "call.answered"):
                with transaction.atomic():
                    call_lifecycle_notify(call=call, event=event)
            with transaction.atomic():
                call_complete(call)
        elapsed = time.monotonic() - started
        assert elapsed < 1.0, f"notify took {elapsed:.2f} s"
        assert rx.requests == []
        assert WebhookDelivery.objects.count() == 5  # four events and call.converted
        assert OrmQ.objects.count() == 5
