"""Issue 7: a stuck webhook receiver provably does not slow the voice webhooks.

A real HTTP server on 127.0.0.1 takes 5 s to answer. The campaign's webhook listens to the events the voice
requests announce. Real commits (``transaction=True``) so the after-commit work runs inside each request, as
in production: the responses come back at once, no HTTP request leaves the process during them, and the
deliveries wait in django-q2's queue for a worker.
"""

from __future__ import annotations

import http.client
import time
import urllib.request

import pytest
from django_q.models import OrmQ

from tests.numbers.factories import TrackingNumberFactory
from tests.tracking.factories import CampaignFactory, CampaignHandlerFactory, WebhookFactory
from tests.tracking.receiver import receiver
from tracking.models import Call, WebhookDelivery

CALLER = "+14155550100"


@pytest.mark.django_db(transaction=True)
def test_a_receiver_that_takes_5_s_does_not_slow_incoming_or_status(twilio, settings, monkeypatch):
    settings.CALLTRACK_WEBHOOK_TIMEOUT = 10  # a delivery made inside the request would take the full 5 s
    outgoing: list[str] = []
    real_urlopen, real_request = urllib.request.urlopen, http.client.HTTPConnection.request

    def spy_urlopen(req, *args, **kwargs):
        outgoing.append(getattr(req, "full_url", str(req)))
        return real_urlopen(req, *args, **kwargs)

    def spy_request(self, method, url, *args, **kwargs):
        outgoing.append(f"{method} {self.host}:{self.port}{url}")
        return real_request(self, method, url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", spy_urlopen)
    monkeypatch.setattr(http.client.HTTPConnection, "request", spy_request)

    with receiver((200, 5.0)) as rx:
        campaign = CampaignFactory()
        CampaignHandlerFactory(campaign=campaign)
        tn = TrackingNumberFactory(campaign=campaign)
        WebhookFactory(campaign=campaign, url=rx.url(), events=["call.started", "call.routed", "call.completed"])

        started = time.monotonic()
        response = twilio.post("/voice/incoming", {"CallSid": "CAstuck", "From": CALLER, "To": tn.number})
        incoming_s = time.monotonic() - started
        assert response.status_code == 200 and b"<Dial" in response.content

        started = time.monotonic()
        response = twilio.post("/voice/status", {"CallSid": "CAstuck", "CallStatus": "completed", "CallDuration": "42", "SequenceNumber": "3"})
        status_s = time.monotonic() - started
        assert response.status_code == 200

        assert incoming_s < 1.0, f"/voice/incoming took {incoming_s:.2f} s"
        assert status_s < 1.0, f"/voice/status took {status_s:.2f} s"
        assert outgoing == [] and rx.requests == []  # nothing was sent from inside the requests
        call = Call.objects.get(call_sid="CAstuck")
        assert call.status == "completed"
        deliveries = WebhookDelivery.objects.filter(call=call)
        assert sorted(deliveries.values_list("event", flat=True)) == ["call.completed", "call.routed", "call.started"]
        assert {d.url for d in deliveries} == {rx.url()}
        queued = [q.task for q in OrmQ.objects.all()]  # each delivery waits for a django-q2 worker
        assert sorted(t["args"][0] for t in queued) == sorted(d.pk for d in deliveries)
        assert {t["func"] for t in queued} == {"tracking.tasks.webhook_deliver"}
