"""manage.py simulate_call plays Twilio through the real, signed URLs."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from calltrack.numbers.models import NoAnswerAction
from tests.numbers.factories import ReceivingNumberFactory, TrackingNumberFactory
from tests.tracking.factories import CampaignFactory, CampaignHandlerFactory, HandlerFactory
from tracking.models import Call, CallStatus, IVROption

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("simulate_call", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def campaign():
    c = CampaignFactory(name="Plumbing", company_phone="+13035550190")
    CampaignHandlerFactory(campaign=c, handler=HandlerFactory(name="First desk", priority=1))
    CampaignHandlerFactory(campaign=c, handler=HandlerFactory(name="Second desk", priority=2))
    return c


def test_answered_by_the_second_handler(campaign):
    tn = TrackingNumberFactory(campaign=campaign)
    out = run("--to", tn.number, "--from", "+14155550100", "--answer", "2")
    call = Call.objects.get()
    assert call.status == CallStatus.COMPLETED and call.handler.name == "Second desk" and call.talk_time == 42
    assert "<Dial" in out and "handler: Second desk" in out and "attempt 1: Handler First desk" in out


def test_nobody_answers_then_the_company_phone_then_the_message(campaign):
    tn = TrackingNumberFactory(campaign=campaign)
    out = run("--to", tn.number, "--from", "+14155550100", "--answer", "none")
    assert "+13035550190" in out and "<Hangup/>" in out
    assert Call.objects.get().attempts.count() == 3


def test_menu_key_and_voicemail(campaign):
    campaign.ivr_prompt = "Press 1 for sales."
    campaign.save()
    IVROption.objects.create(campaign=campaign, digit="1", tag_key="dept", tag_value="sales")
    campaign.campaign_handlers.filter(handler__name="Second desk").delete()
    first = campaign.handlers.get()
    first.receiving_number = ReceivingNumberFactory(no_answer_action=NoAnswerAction.VOICEMAIL)
    first.save()
    tn = TrackingNumberFactory(campaign=campaign)
    out = run("--to", tn.number, "--from", "+14155550100", "--digits", "1", "--answer", "none")
    assert "<Gather" in out and "<Record" in out
    call = Call.objects.get()
    assert call.tags["dept"] == "sales" and call.voicemail_url.startswith("https://local.calltrack.invalid/Recordings/RE")
    assert default_storage.exists(f"recordings/{call.voicemail_url.rsplit('/', 1)[1]}.wav")  # the local carrier's WAV


@pytest.mark.parametrize(("args", "message"), [
    (["--to", "nope", "--from", "+14155550100"], "--to: 'nope' is not a valid phone number"),
    (["--to", "+14155550100", "--from", "+14155550100", "--answer", "maybe"], "--answer must be first, none or a positive number"),
    (["--to", "+14155550100", "--from", "+14155550100", "--digits", "1a"], "--digits may hold only"),
    (["--to", "+14155550100", "--from", "+14155550100", "--stir-verstat", "maybe"], "invalid choice: 'maybe'"),
    (["--to", "+14155550100", "--from", "+14155550100", "--caller-name", "x" * 101], "CallerName must be at most 100 characters"),
])
def test_bad_arguments_are_refused_with_the_reason(args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_simulate_call_shows_the_tagging_hours_tag_and_the_options_response(campaign):
    from tracking.services.tagging import tagging_hours_create

    tagging_hours_create(fields={"name": "Always", "timezone": "UTC", "hours": {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
                                 "tag_key": "hours", "tag_value": "anytime"})
    campaign.ivr_prompt = "Sales press 1."
    campaign.save()
    IVROption.objects.create(campaign=campaign, digit="1", tag_key="department", tag_value="sales", response="Connecting you to sales.")
    tn = TrackingNumberFactory(campaign=campaign)
    out = run("--to", tn.number, "--from", "+14155550100", "--digits", "1")
    assert "call.tagged: hours=anytime" in out
    assert "caller hears: Connecting you to sales." in out
    assert Call.objects.get().tags["hours"] == "anytime"


def test_the_callers_place_name_verification_keys_and_clock_reach_the_call(campaign, settings):
    """Every option of the command arrives as Twilio sends it: the place on the call and its tags, the name and the
    STIR/SHAKEN verdict on the signed /voice/incoming request, the keys through the menus' gathers, the clock in routing."""
    settings.TIME_ZONE = "America/Denver"
    campaign.ivr_prompt = "Sales 1, service 2."
    campaign.save()
    night = HandlerFactory(name="Night desk", always_open=False, timezone="America/Denver", business_hours={"mon": ["20:00-23:00"]},
                           tag_criteria=[{"key": "caller_state", "op": "equals", "value": "CO"}])
    IVROption.objects.create(campaign=campaign, digit="2", action="handler", handler=night, tag_key="department", tag_value="service")
    tn = TrackingNumberFactory(campaign=campaign)
    out = run("--to", tn.number, "--from", "+14155550100", "--from-city", "Boulder", "--from-state", "CO", "--from-zip", "80301",
              "--caller-name", "SMITH JOHN", "--stir-verstat", "TN-Validation-Passed-A", "--digits", "2",
              "--test", "--clock", "2026-12-07 21:30")  # a Monday evening in Denver: the night desk is open
    call = Call.objects.get()
    assert (call.caller_city, call.caller_state, call.caller_zip) == ("Boulder", "CO", "80301")
    assert call.tags["caller_state"] == "CO" and call.tags["caller_zip"] == "80301" and call.tags["department"] == "service"
    assert call.handler == night and call.is_test and call.test_clock.isoformat() == "2026-12-07T21:30:00-07:00"
    incoming = next(line for line in out.splitlines() if line.startswith("-> POST /voice/incoming"))
    assert "'CallerName': 'SMITH JOHN'" in incoming and "'StirVerstat': 'TN-Validation-Passed-A'" in incoming
    gather = next(line for line in out.splitlines() if line.startswith("-> POST /voice/gather"))
    assert "'Digits': '2'" in gather and "'CallerName': 'SMITH JOHN'" in gather and "StirVerstat" not in gather


def test_the_callers_identity_and_the_spam_challenge_can_be_tried(campaign):
    campaign.spam_action, campaign.spam_threshold = "challenge", 50
    campaign.save()
    tn = TrackingNumberFactory(campaign=campaign)
    out = run("--to", tn.number, "--from", "+14155550100", "--stir-verstat", "TN-Validation-Failed-A", "--caller-name", "SPAM LIKELY",
              "--digits", "1", "--answer", "1")
    call = Call.objects.get()
    assert (call.attestation, call.caller_name, call.state_spam.action) == ("failed", "SPAM LIKELY", "passed")
    assert "To be connected, press 1." in out and call.handler.name == "First desk"
