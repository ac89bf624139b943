from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _webhook_receivers_on_localhost_allowed(settings):
    """The webhook tests' receivers listen on 127.0.0.1, which calltrack.outbound refuses unless allow-listed
    (tests/calltrack/test_outbound.py checks the refusal itself)."""
    settings.CALLTRACK_OUTBOUND_ALLOW = ["127.0.0.1"]
