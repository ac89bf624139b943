"""Every replacement token the README and the help texts document renders a value for a real call."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from calltrack.numbers.models import ReceivingNumber
from routing import services as voice
from tests.numbers.factories import ReceivingNumberFactory, TrackingNumberFactory
from tests.tracking.factories import CampaignFactory, HandlerFactory, SourceFactory, WebhookFactory
from tracking import webhook_templates
from tracking.models import AttemptKind, Call, CallAttempt, CallStatus, ConversionStatus, WebhookMethod
from tracking.services.webhooks import webhook_render

pytestmark = pytest.mark.django_db

TOKEN = re.compile(r"\[[a-z_]+(?::[a-z_]+)?\]")
MARKETING = {
    "utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring", "utm_term": "roof repair", "utm_content": "ad-2",
    "gclid": "g-123", "fbclid": "f-456", "msclkid": "m-789", "keyword": "roofer near me", "any_key": "any value",
}


def documented_tokens() -> list[str]:
    """Tokens named in the README's webhook paragraph and in the webhook fields' help texts (examples included)."""
    readme = Path(settings.BASE_DIR, "README.md").read_text()
    paragraph = readme[readme.index("**Webhooks out**"):]
    paragraph = paragraph[: paragraph.index("\n\n")]
    found = set(TOKEN.findall(paragraph)) | set(TOKEN.findall(webhook_templates.HELP_TEXT))
    for help_text in webhook_templates.PREFIXES.values():
        found |= set(TOKEN.findall(help_text))
    found -= {"[tag:name]", "[data:key]"}  # the placeholders themselves (their examples are tested)
    return sorted(found)


@pytest.fixture
def call():
    """A call as the voice webhook records it (geo tags from Twilio's parameters, the number's marketing data),
    then answered, recorded, converted and ended."""
    campaign = CampaignFactory(name="Roofing", campaign_id="roofing")
    tn = TrackingNumberFactory(campaign=campaign, source=SourceFactory(name="Google Ads", source_id="adwords"), marketing_data=MARKETING)
    incoming = voice.IncomingCall(
        call_sid="CAtokens", caller="+13035550100", called=tn.number, from_city="Denver", from_state="CO", from_zip="80202",
        from_country="US", caller_name="JANE DOE", attestation="passed_a",
    )
    turn = voice.Turn(links=voice.Links("https://calls.example.com"))
    voice.call_start(turn, incoming=incoming, tracking_number=voice.tracking_number_for(tn.number)[0])
    turn.flush()
    call = turn.the_call
    handler = HandlerFactory(name="Acme Roofing", buyer_id="BUY-1")
    now = timezone.now()
    Call.objects.filter(pk=call.pk).update(
        handler=handler, status=CallStatus.COMPLETED, answered_at=now, ended_at=now + timedelta(seconds=95), duration=98,
        talk_time=95, recording_url="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1", recording_sid="RE1",
        recording_status="completed", recording_duration=90, visitor_id="v-1",
        landing_page="https://example.com/roofs", referrer="https://google.com/", conversion_status=ConversionStatus.CONVERTED,
        conversion_reason="connected 95 s (timer 60 s)", revenue=Decimal("40"), payout=Decimal("15"),
        revenue_converted=True, payout_converted=True, converted_at=now,
    )
    return Call.objects.select_related("campaign", "source", "handler").get(pk=call.pk)


def test_every_documented_webhook_token_renders_a_value(call):
    tokens = documented_tokens()
    assert {"[tag:state]", "[data:keyword]", "[caller_number]", "[revenue]", "[recording_url]"} <= set(tokens)
    # A text's own tokens are empty for a call (tests/routing/test_texts_routing.py renders them for a text).
    tokens = [t for t in tokens if t.strip("[]") not in webhook_templates.MESSAGE_TOKENS]
    template = json.dumps({token.strip("[]"): token for token in tokens})
    hook = WebhookFactory(campaign=call.campaign, method=WebhookMethod.POST_JSON, body_template=template, url="https://crm.example.com/lead")
    body = json.loads(webhook_render(webhook=hook, call=call, event="call.completed").body)
    empty = [token for token, value in body.items() if value == ""]
    assert empty == []
    assert len(body) == len(tokens)
    assert body["tag:state"] == "CO" and body["data:keyword"] == "roofer near me" and body["data:any_key"] == "any value"


def test_the_help_texts_form_body_example_fills_the_callers_state(call):
    hook = WebhookFactory(campaign=call.campaign, method=WebhookMethod.POST_FORM, url="https://crm.example.com/lead",
                          body_template="caller=[caller_number]&state=[tag:state]&city=[tag:city]&zip=[tag:zip]&country=[tag:country]")
    body = webhook_render(webhook=hook, call=call, event="call.completed").body
    assert body == "caller=%2B13035550100&state=CO&city=Denver&zip=80202&country=US"


def test_a_tag_literally_named_state_wins_over_the_callers_state():
    assert webhook_templates.render("[tag:state]", values={}, tags={"state": "TX", "caller_state": "CO"}, escape="url") == "TX"


def test_every_documented_whisper_token_is_said(call):
    help_text = str(ReceivingNumber._meta.get_field("whisper_message").help_text)
    tokens = re.findall(r"\{[a-z]+\}", help_text)
    assert tokens == ["{campaign}", "{source}", "{city}", "{state}"]
    line = ReceivingNumberFactory(whisper_message=" | ".join(tokens))
    attempt = CallAttempt.objects.create(call=call, sequence=1, kind=AttemptKind.HANDLER, receiving_number=line, number_dialed=line.number)
    turn = voice.Turn(links=voice.Links("https://calls.example.com"))
    said = voice.whisper_answer(turn, attempt_id=attempt.pk)
    turn.flush()
    assert "Roofing | Google Ads | Denver | CO" in said
