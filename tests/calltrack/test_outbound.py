"""calltrack.outbound: outgoing requests reach only public addresses (or allow-listed ones), never follow redirects.

The receivers are real servers on 127.0.0.1: refused unless CALLTRACK_OUTBOUND_ALLOW lists them.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from calltrack import outbound
from tests.tracking.factories import CallFactory, CampaignFactory, WebhookFactory
from tests.tracking.receiver import receiver, run_queued_tasks
from tracking.models import DeliveryStatus, WebhookDelivery
from tracking.services.call_events import call_lifecycle_notify


@pytest.fixture
def notify(django_capture_on_commit_callbacks):
    """Announce call.answered for a call and run the queued deliveries, as a worker would."""

    def run(call):
        with django_capture_on_commit_callbacks(execute=True):
            with transaction.atomic():
                call_lifecycle_notify(call=call, event="call.answered")
        run_queued_tasks()

    return run


@pytest.fixture
def redirector():
    """A server on 127.0.0.1 that answers every request with a 302 to ``target`` and counts what it got."""
    state = {"target": "", "hits": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            state["hits"] += 1
            self.send_response(302)
            self.send_header("Location", state["target"])
            self.send_header("Content-Length", "14")
            self.end_headers()
            self.wfile.write(b"secret details")

        do_POST = do_GET

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield state
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/hook",
        "http://localhost:{port}/hook",
        "http://[::1]:{port}/hook",
        "http://[::ffff:127.0.0.1]:{port}/hook",
        "http://0.0.0.0:{port}/hook",
        "http://2130706433:{port}/hook",  # 127.0.0.1 written as one number
    ],
)
def test_a_request_to_this_machine_is_refused_and_never_reaches_the_listener(settings, url):
    settings.CALLTRACK_OUTBOUND_ALLOW = []
    with receiver((200, 0)) as rx:
        with pytest.raises((outbound.OutboundRefused, OSError)) as refused:
            outbound.request("GET", url.format(port=rx.port), timeout=2)
        assert rx.requests == []
    assert isinstance(refused.value, outbound.OutboundRefused) or "resolve" in str(refused.value)


@pytest.mark.parametrize(
    "url, reason",
    [
        ("ftp://files.example.com/x", "only http:// and https://"),
        ("file:///etc/passwd", "only http:// and https://"),
        ("http://169.254.169.254/latest/meta-data/", "not a public address"),
        ("http://10.0.0.7/hook", "not a public address"),
        ("http://192.168.1.1/hook", "not a public address"),
        ("http://100.64.0.1/hook", "not a public address"),
        ("http://[fe80::1]/hook", "not a public address"),
        ("http://224.0.0.1/hook", "not a public address"),
        ("http://localhost/hook", "this server itself"),
    ],
)
def test_urls_that_may_never_be_called_are_named_with_the_reason(settings, url, reason):
    settings.CALLTRACK_OUTBOUND_ALLOW = []
    assert reason in (outbound.url_problem(url) or "")
    with pytest.raises(outbound.OutboundRefused, match=reason):
        outbound.request("GET", url, timeout=1)


def test_public_urls_pass_the_static_check():
    assert outbound.url_problem("https://hooks.example.com/calltrack?x=1") is None
    assert outbound.url_problem("http://93.184.216.34/hook") is None


def test_the_address_is_checked_when_connecting_so_dns_rebinding_cannot_get_around_it(settings, monkeypatch):
    """A host name that looked public when saved answers 127.0.0.1 when the request is sent: refused then."""
    settings.CALLTRACK_OUTBOUND_ALLOW = []
    with receiver((200, 0)) as rx:
        assert outbound.url_problem(f"http://rebind.example:{rx.port}/hook") is None
        real = socket.getaddrinfo
        monkeypatch.setattr(
            outbound.socket, "getaddrinfo",
            lambda host, *a, **k: real("127.0.0.1", *a, **k) if host == "rebind.example" else real(host, *a, **k),
        )
        with pytest.raises(outbound.OutboundRefused, match="rebind.example resolves to 127.0.0.1"):
            outbound.request("GET", f"http://rebind.example:{rx.port}/hook", timeout=2)
        assert rx.requests == []


def test_an_allow_listed_private_receiver_is_reached(settings):
    settings.CALLTRACK_OUTBOUND_ALLOW = ["127.0.0.0/8"]
    with receiver((200, 0)) as rx:
        answer = outbound.request("POST", rx.url(), body=b"{}", headers={"Content-Type": "application/json"}, timeout=2)
    assert answer.ok and answer.body.startswith(b"answer 1")
    assert len(rx.requests) == 1 and rx.requests[0].headers["Host"] == f"127.0.0.1:{rx.port}"


def test_an_allow_listed_host_name_is_reached(settings):
    settings.CALLTRACK_OUTBOUND_ALLOW = ["localhost"]
    with receiver((204, 0)) as rx:
        assert outbound.request("GET", f"http://localhost:{rx.port}/x", timeout=2).status == 204


def test_redirects_are_not_followed(settings, redirector):
    settings.CALLTRACK_OUTBOUND_ALLOW = ["127.0.0.1"]
    with receiver((200, 0)) as target:
        redirector["target"] = target.url("/elsewhere")
        answer = outbound.request("GET", redirector["url"], timeout=2)
        assert answer.status == 302 and answer.headers["location"] == target.url("/elsewhere")
        assert target.requests == []


@pytest.mark.django_db
def test_a_webhook_answered_with_a_redirect_fails_without_following_it_or_keeping_the_answer(settings, redirector, notify):
    settings.CALLTRACK_OUTBOUND_ALLOW = ["127.0.0.1"]
    with receiver((200, 0)) as target:
        redirector["target"] = target.url("/elsewhere")
        campaign = CampaignFactory()
        WebhookFactory(campaign=campaign, url=redirector["url"], events=["call.answered"])
        notify(CallFactory(campaign=campaign, status="in_progress"))
        assert target.requests == []  # the signature header never went to the redirect's target
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED and delivery.last_status_code == 302
    assert "not followed" in delivery.last_error
    assert delivery.response_excerpt == "" and delivery.attempt_log.get().response_excerpt == ""


@pytest.mark.django_db
def test_a_webhook_to_a_private_address_fails_at_once_and_sends_nothing(settings, notify):
    settings.CALLTRACK_OUTBOUND_ALLOW = []
    with receiver((200, 0)) as rx:
        campaign = CampaignFactory()
        WebhookDelivery.objects.all().delete()
        hook = WebhookFactory(campaign=campaign, url="http://example.invalid/hook", events=["call.answered"])
        type(hook).objects.filter(pk=hook.pk).update(url=rx.url())  # saved before the rule existed
        notify(CallFactory(campaign=campaign, status="in_progress"))
        assert rx.requests == []
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 1
    assert "not a public address" in delivery.last_error


@pytest.mark.django_db
def test_a_non_2xx_answer_is_not_stored(settings, notify):
    settings.CALLTRACK_OUTBOUND_ALLOW = ["127.0.0.1"]
    with receiver((404, 0)) as rx:
        campaign = CampaignFactory()
        WebhookFactory(campaign=campaign, url=rx.url(), events=["call.answered"])
        notify(CallFactory(campaign=campaign, status="in_progress"))
    delivery = WebhookDelivery.objects.get()
    assert delivery.last_status_code == 404 and delivery.response_excerpt == ""


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url, message",
    [
        ("ftp://hooks.example.com/x", "only http:// and https://"),
        ("http://169.254.169.254/latest/meta-data/", "not a public address"),
        ("http://localhost:8000/admin/", "this server itself"),
    ],
)
def test_the_webhook_form_refuses_urls_that_may_never_be_called(settings, url, message):
    settings.CALLTRACK_OUTBOUND_ALLOW = []
    hook = WebhookFactory.build(campaign=CampaignFactory(), url=url, events=["call.answered"])
    with pytest.raises(ValidationError) as refused:
        hook.full_clean()
    assert message in str(refused.value.message_dict["url"])
