"""Fraud monitors end to end: traffic through the signed voice webhook, the scheduled check, the alert sent once by
email (locmem) and to a real webhook receiver on 127.0.0.1, the source paused and resumed."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.utils import timezone
from lxml import etree

from calltrack.alerts_check import alerts_check_task
from tests.numbers.factories import ReceivingNumberFactory, TrackingNumberFactory
from tests.tracking.factories import CallFactory, CampaignFactory, CampaignHandlerFactory, HandlerFactory, SourceFactory
from tests.tracking.receiver import receiver
from tracking.models import Alert, AlertRecipient, CallStatus, FraudMonitor, MonitorKind, Source
from tracking.services.monitors import monitor_measure, source_resume

pytestmark = pytest.mark.django_db
FAILSAFE = "+13035550199"


def incoming(twilio, to, sid):
    response = twilio.post("/voice/incoming", {"CallSid": sid, "From": "+14155550100", "To": to, "CallStatus": "ringing"})
    assert response.status_code == 200, response.content
    return etree.fromstring(response.content)


def dialled(document) -> list[str]:
    return [n.text for n in document.iter("Number")]


def answered_calls(source, campaign, *, count: int, short: int, start, spread: timedelta, talk_short=5, talk_long=180):
    """``count`` completed, answered calls of ``source`` from ``start`` over ``spread``, the first ``short`` of them short."""
    step = spread / count
    for i in range(count):
        at = start + step * i
        CallFactory(source=source, campaign=campaign, caller_number=f"+1415555{i:04d}", started_at=at, answered_at=at,
                    ended_at=at + timedelta(seconds=talk_short if i < short else talk_long), status=CallStatus.COMPLETED,
                    talk_time=talk_short if i < short else talk_long, duration=talk_short if i < short else talk_long)


@pytest.fixture
def setup():
    campaign = CampaignFactory(name="Roofing", failsafe_number=FAILSAFE)
    handler = HandlerFactory(receiving_number=ReceivingNumberFactory())
    CampaignHandlerFactory(campaign=campaign, handler=handler)
    source = SourceFactory(name="Publisher A")
    number = TrackingNumberFactory(campaign=campaign, source=source)
    return campaign, handler, source, number


def test_a_source_sending_40_percent_short_calls_is_alerted_once_and_paused_until_resumed(twilio, settings, mailoutbox, setup):
    settings.CALLTRACK_OUTBOUND_ALLOW = ["127.0.0.1"]
    campaign, handler, source, number = setup
    # Before: the source's calls are routed to the handler.
    assert dialled(incoming(twilio, number.number, "CA-before")) == [handler.receiving_number.number]

    now = timezone.now()
    # Its week before the last hour: 40 calls, 2 short (5%); the last hour: 20 calls, 8 short (40%).
    answered_calls(source, campaign, count=40, short=2, start=now - timedelta(days=7), spread=timedelta(days=6))
    answered_calls(source, campaign, count=20, short=8, start=now - timedelta(minutes=59), spread=timedelta(minutes=55))
    monitor = FraudMonitor.objects.create(
        name="Short calls", kind=MonitorKind.SHORT_CALLS, source=source, window_minutes=60, baseline_hours=7 * 24,
        min_calls=10, threshold_points=25, short_seconds=15, alert=True, pause_source=True,
    )
    with receiver((200, 0)) as hook:
        AlertRecipient.objects.create(name="On-call", email="ops@example.com", webhook_url=hook.url("/alerts"))
        alerts_check_task()
        alerts_check_task()  # the condition lasts: the open episode is only seen again

    alert = Alert.objects.get()
    assert alert.kind == "fraud_monitor" and alert.cleared_at is None and alert.source_id == source.pk
    assert "short 40% of 20 calls" in alert.message and "baseline 5%" in alert.message
    # Emailed once, posted once, signed with the recipient's secret.
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["ops@example.com"] and "Publisher A" in mailoutbox[0].subject
    assert len(hook.requests) == 1
    posted = hook.requests[0]
    recipient = AlertRecipient.objects.get()
    expected = "sha256=" + hmac.new(recipient.webhook_secret.encode(), posted.body, hashlib.sha256).hexdigest()
    assert posted.headers["X-Calltrack-Signature"] == expected
    body = json.loads(posted.body)
    assert body["event"] == "alert.opened" and body["alerts"][0]["id"] == alert.pk

    # Paused: the source's numbers go where a disabled campaign's calls go (the fail-safe).
    source.refresh_from_db()
    assert source.paused_at is not None and "Short calls" in source.paused_reason
    assert dialled(incoming(twilio, number.number, "CA-paused")) == [FAILSAFE]
    monitor.refresh_from_db()
    assert "TRIGGERED" in monitor.last_result

    # Resumed: routed again, and the still-open episode does not pause it again.
    assert source_resume(source=source)
    assert dialled(incoming(twilio, number.number, "CA-after")) == [handler.receiving_number.number]
    alerts_check_task()
    assert Source.objects.get(pk=source.pk).paused_at is None
    assert len(mailoutbox) == 1


def test_the_episode_clears_when_the_window_is_fine_and_a_new_one_alerts_again(settings, mailoutbox, setup):
    campaign, _, source, _ = setup
    now = timezone.now()
    monitor = FraudMonitor.objects.create(name="Short", kind=MonitorKind.SHORT_CALLS, source=source, min_calls=10,
                                          threshold_points=25, baseline_hours=24)
    AlertRecipient.objects.create(name="Ops", email="ops@example.com")
    answered_calls(source, campaign, count=10, short=5, start=now - timedelta(minutes=50), spread=timedelta(minutes=40))
    alerts_check_task()
    assert Alert.objects.open().count() == 1 and len(mailoutbox) == 1
    # An hour later the window holds long calls only: the episode ends.
    later = now + timedelta(minutes=70)
    answered_calls(source, campaign, count=10, short=0, start=later - timedelta(minutes=50), spread=timedelta(minutes=40))
    from tracking.services.monitors import monitor_check

    monitor_check(monitor=monitor, at=later)
    assert Alert.objects.open().count() == 0
    # Short calls again: a new episode, sent again.
    again = later + timedelta(minutes=70)
    answered_calls(source, campaign, count=10, short=6, start=again - timedelta(minutes=50), spread=timedelta(minutes=40))
    monitor_check(monitor=monitor, at=again)
    from tracking.services.alerts import alerts_notify

    alerts_notify()
    assert Alert.objects.count() == 2 and Alert.objects.open().count() == 1
    assert len(mailoutbox) == 2


def test_too_few_calls_are_not_judged_and_a_drop_needs_a_baseline(setup):
    campaign, _, source, _ = setup
    now = timezone.now()
    answered_calls(source, campaign, count=5, short=5, start=now - timedelta(minutes=30), spread=timedelta(minutes=20))
    short = FraudMonitor(name="s", kind=MonitorKind.SHORT_CALLS, source=source, min_calls=10, threshold_points=20)
    measure = monitor_measure(short, source_id=source.pk, at=now)
    assert (measure.calls, measure.hits, measure.triggered) == (5, 5, None)
    drop = FraudMonitor(name="a", kind=MonitorKind.ANSWER_RATE_DROP, source=source, min_calls=5, threshold_points=20)
    measure = monitor_measure(drop, source_id=source.pk, at=now)
    assert measure.value == 1.0 and measure.baseline is None and measure.triggered is None


def test_answer_rate_drop_against_the_baseline(setup):
    campaign, _, source, _ = setup
    now = timezone.now()
    answered_calls(source, campaign, count=20, short=0, start=now - timedelta(hours=20), spread=timedelta(hours=10))
    for i in range(10):  # the last hour: 4 answered of 10
        at = now - timedelta(minutes=50 - i)
        CallFactory(source=source, campaign=campaign, started_at=at, status=CallStatus.COMPLETED if i < 4 else CallStatus.NO_ANSWER,
                    answered_at=at if i < 4 else None, talk_time=60 if i < 4 else 0)
    monitor = FraudMonitor(name="a", kind=MonitorKind.ANSWER_RATE_DROP, source=source, min_calls=10, threshold_points=50, baseline_hours=24)
    measure = monitor_measure(monitor, source_id=source.pk, at=now)
    assert (measure.value, measure.baseline, measure.triggered) == (0.4, 1.0, True)
    monitor.threshold_points = 70
    assert monitor_measure(monitor, source_id=source.pk, at=now).triggered is False


def test_repeat_callers_and_calls_outside_the_campaigns_hours(setup):
    campaign, handler, source, _ = setup
    handler.always_open, handler.business_hours, handler.timezone = False, {"mon": ["09:00-09:01"]}, "UTC"
    handler.save()
    now = timezone.now()
    for i in range(10):  # 10 calls from 4 numbers in the last hour: 6 repeats
        CallFactory(source=source, campaign=campaign, caller_number=f"+1415555000{i % 4}", started_at=now - timedelta(minutes=50 - i))
    repeats = FraudMonitor(name="r", kind=MonitorKind.REPEAT_CALLERS, source=source, min_calls=10, threshold_points=50)
    measure = monitor_measure(repeats, source_id=source.pk, at=now)
    assert (measure.calls, measure.hits, measure.triggered) == (10, 6, True)
    off = FraudMonitor(name="o", kind=MonitorKind.OFF_HOURS, source=source, min_calls=10, threshold_points=50)
    measure = monitor_measure(off, source_id=source.pk, at=now)
    assert measure.calls == 10 and measure.hits >= 9  # open one minute a week


def test_a_monitor_on_a_handler_alerts_about_that_handler_and_cannot_pause(setup):
    from django.core.exceptions import ValidationError

    campaign, handler, source, _ = setup
    monitor = FraudMonitor(name="h", kind=MonitorKind.CONVERSION_RATE_DROP, handler=handler, pause_source=True)
    with pytest.raises(ValidationError):
        monitor.full_clean()
