"""The Twilio webhooks and the DNI API skip the admin's middleware (calltrack.middleware.HotPathsMiddleware)."""

from __future__ import annotations

from unittest import mock

import pytest
from django.contrib.sessions.middleware import SessionMiddleware
from django.test import Client

pytestmark = pytest.mark.django_db

PARAMS = {"CallSid": "CA" + "1" * 32, "From": "+14155550100", "To": "+14155550199", "CallStatus": "ringing"}


@pytest.fixture
def session_requests():
    """How many requests went through the session middleware."""
    original = SessionMiddleware.process_request
    with mock.patch.object(SessionMiddleware, "process_request", autospec=True, side_effect=original) as spy:
        yield spy


def test_voice_webhook_skips_the_admin_stack_but_keeps_the_security_headers(twilio, session_requests):
    response = twilio.post("/voice/incoming", PARAMS)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    assert b"<Response>" in response.content  # an unknown number: the fail-safe answer, still TwiML
    assert session_requests.call_count == 0
    assert response["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware runs before the shortcut
    assert "X-Frame-Options" not in response and "Vary" not in response


def test_a_bad_signature_is_still_refused_on_the_short_path(twilio, session_requests):
    response = twilio.post("/voice/incoming", PARAMS, signature="bad")
    assert response.status_code == 403
    assert session_requests.call_count == 0


def test_the_admin_keeps_its_whole_stack(session_requests):
    response = Client().get("/admin/login/")
    assert response.status_code == 200
    assert session_requests.call_count == 1
    assert response["X-Frame-Options"] == "DENY"


def test_an_unknown_path_under_a_hot_prefix_gets_the_usual_404(session_requests):
    response = Client().get("/voice/no-such-webhook")
    assert response.status_code == 404
    assert session_requests.call_count == 1  # answered by the whole stack, as any 404


def test_the_dni_api_takes_the_short_path_and_the_demo_page_does_not(session_requests):
    client = Client()
    response = client.post("/dni/v1/assign", "{}", content_type="application/json")
    assert response.status_code in (400, 404)  # no pool named: a clear JSON error
    assert response["Content-Type"].startswith("application/json")
    assert session_requests.call_count == 0
    client.get("/dni/demo/")
    assert session_requests.call_count == 1


def test_without_hot_paths_every_url_takes_the_whole_stack(settings, twilio, session_requests):
    settings.CALLTRACK_LEAN_PATHS = []
    assert twilio.post("/voice/incoming", PARAMS).status_code == 200
    assert session_requests.call_count == 1
