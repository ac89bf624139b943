"""Signed Twilio requests for the voice webhook tests."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from twilio.request_validator import RequestValidator

TOKEN = "test-auth-token-0123456789abcdef"


@pytest.fixture(autouse=True)
def _twilio_settings(settings):
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.CALLTRACK_VALIDATE_TWILIO_SIGNATURE = True
    settings.CALLTRACK_PUBLIC_BASE_URL = ""
    settings.CALLTRACK_FAILSAFE_NUMBER = ""


def sign(url: str, params: dict[str, str], token: str = TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


class Twilio:
    """Plays Twilio: posts a signed form to a URL (absolute, as written in our TwiML, or a path)."""

    def __init__(self, client) -> None:
        self.client = client

    def post(self, url: str, params: dict[str, str], *, signature: str | None = None, **extra):
        if url.startswith("/"):
            url = "http://testserver" + url
        parts = urlsplit(url)
        sig = sign(url, params) if signature is None else signature
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"HTTP_X_TWILIO_SIGNATURE": sig} if sig else {}
        return self.client.post(path, params, HTTP_HOST=parts.netloc, **headers, **extra)


@pytest.fixture
def twilio(client) -> Twilio:
    return Twilio(client)
