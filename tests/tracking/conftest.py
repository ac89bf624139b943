from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone


@pytest.fixture(autouse=True)
def _webhook_receivers_on_localhost_allowed(settings):
    """The webhook tests' receivers listen on 127.0.0.1, which calltrack.outbound refuses unless allow-listed
    (tests/calltrack/test_outbound.py checks the refusal itself)."""
    settings.CALLTRACK_OUTBOUND_ALLOW = ["127.0.0.1"]


@pytest.fixture
def call():
    """A completed call of a campaign whose handler confirms sales by postback (50 revenue, 20 payout): the postback
    and money history tests' call."""
    from tests.tracking.factories import CallFactory, CampaignFactory, ConversionRuleFactory, HandlerFactory, SourceFactory
    from tracking.models import CallStatus
    from tracking.services.conversions import call_conversion_evaluate

    campaign = CampaignFactory()
    handler = HandlerFactory()
    ConversionRuleFactory(campaign=campaign, kind="postback", revenue=Decimal("50"), payout=Decimal("20"), postback_window=60)
    started = timezone.now() - timedelta(minutes=10)
    c = CallFactory(
        campaign=campaign, handler=handler, source=SourceFactory(), status=CallStatus.COMPLETED, started_at=started,
        answered_at=started, ended_at=started + timedelta(minutes=3), talk_time=180, caller_number="+14155550177",
    )
    return call_conversion_evaluate(call=c)
