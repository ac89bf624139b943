"""The call's admin page shows its routing timeline: steps, attempts, and why handlers were skipped."""

from __future__ import annotations

import pytest
from django.urls import reverse
from lxml import etree

from tests.numbers.factories import TrackingNumberFactory
from tests.tracking.factories import CampaignFactory, CampaignHandlerFactory, HandlerFactory
from tracking.models import Call

pytestmark = pytest.mark.django_db


def test_call_page_shows_each_step_attempt_and_skip_reason(admin_client, twilio):
    campaign = CampaignFactory(name="Roofing")
    for name, kwargs in [
        ("Night crew", {"always_open": False, "business_hours": {"mon": ["00:00-00:01"]}, "timezone": "Pacific/Kiritimati"}),
        ("Picky buyer", {"tag_criteria": [{"key": "caller_state", "op": "equals", "value": "TX"}]}),
        ("Full desk", {"concurrency_cap": 0}),
        ("Day desk", {"priority": 1}),
        ("Backup desk", {"priority": 2}),
    ]:
        CampaignHandlerFactory(campaign=campaign, handler=HandlerFactory(name=name, **kwargs))
    tn = TrackingNumberFactory(campaign=campaign)
    first = etree.fromstring(twilio.post("/voice/incoming", {"CallSid": "CAadm", "From": "+14155550100", "To": tn.number}).content)
    second = etree.fromstring(twilio.post(first.find("Dial").get("action"), {"CallSid": "CAadm", "DialCallStatus": "no-answer"}).content)
    twilio.post(second.find("Dial").get("action"), {"CallSid": "CAadm", "DialCallStatus": "completed", "DialCallDuration": "77"})
    call = Call.objects.get()
    page = admin_client.get(reverse("admin:tracking_call_change", args=[call.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Timeline" in html and html.count('id="call-timeline"') == 1  # once, not twice
    assert "Day desk" in html and "Backup desk" in html
    assert "No answer" in html and "77s" in html
    for reason in ("closed", "tag mismatch", "capped"):
        assert reason in html
    assert "caller_state = TX (call has CA)" in html
    assert "concurrency cap 0 reached" in html
    assert "Priority, then weight" in html and "priority_weight" not in html  # labels, not codes


def test_the_timeline_lists_the_decision_before_the_leg_it_dialled_and_dates_a_later_day():
    from datetime import timedelta

    from django.utils import timezone

    from tests.tracking.factories import CallAttemptFactory, CallFactory
    from tracking.models import CallEvent
    from tracking.timeline import call_timeline, call_timeline_rows

    start = timezone.now().replace(microsecond=100_000) - timedelta(days=3)
    call = CallFactory(started_at=start)
    CallAttemptFactory(call=call, sequence=1, started_at=start + timedelta(microseconds=200_000))
    CallEvent.objects.create(call=call, at=start + timedelta(microseconds=600_000), kind="call.routed", message="routed")
    CallEvent.objects.create(call=call, at=start + timedelta(days=1), kind="call.converted", message="converted")
    assert [r.kind for r in call_timeline_rows(call)] == ["routed", "attempt 1", "converted"]
    html = str(call_timeline(call))
    later = timezone.localtime(start + timedelta(days=1))
    assert f"{later:%b} {later.day} {later:%H:%M:%S}" in html
