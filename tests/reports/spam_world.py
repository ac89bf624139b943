"""Calls with spam marks for the dashboard's spam panel tests: what the voice path writes (the spam tags and the
mark in the call's decision), for two sources, with known counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from tests.tracking.factories import CallFactory, CampaignFactory, SourceFactory
from tracking.call_state import CallState, SpamMark
from tracking.models import Call, CallStatus, Source


@dataclass
class SpamWorld:
    google: Source
    radio: Source
    calls: list[Call]


def spam_call(*, source: Source, caller: str, codes: tuple[str, ...], action: str, score: int = 80, is_spam: bool = True,
              minutes_ago: int = 30, status: str = CallStatus.COMPLETED, is_test: bool = False) -> Call:
    mark = SpamMark(score, tuple(f"reason {c}" for c in codes), codes, is_spam, action if is_spam else "",
                    action == "not_payable")
    return CallFactory(
        campaign=source.campaign_for_tests, source=source, caller_number=caller, status=status, is_test=is_test,
        started_at=timezone.now() - timedelta(minutes=minutes_ago),
        tags={"spam_score": str(score), "spam": "yes" if is_spam else "no"}, decision=CallState(spam=mark).to_json(),
    )


def make_spam_world() -> SpamWorld:
    campaign = CampaignFactory(name="Roofing", spam_action="reject")
    google, radio = SourceFactory(name="Google Ads"), SourceFactory(name="Radio")
    google.campaign_for_tests = radio.campaign_for_tests = campaign
    robo, dialer, person = "+14155550111", "+14155550122", "+14155550133"
    calls = [
        # Google Ads: 5 spam calls (3 from the robocaller), 2 clean ones, 1 clean call no campaign scored.
        spam_call(source=google, caller=robo, codes=("attestation_failed", "caller_name"), action="reject", status=CallStatus.REJECTED),
        spam_call(source=google, caller=robo, codes=("attestation_failed",), action="challenge", status=CallStatus.REJECTED),
        spam_call(source=google, caller=robo, codes=("attestation_failed", "repeat_dialer"), action="passed"),
        spam_call(source=google, caller=dialer, codes=("repeat_dialer",), action="not_payable"),
        spam_call(source=google, caller=dialer, codes=("unpublished_number", "attestation_c"), action="tag"),
        spam_call(source=google, caller=person, codes=(), action="", score=0, is_spam=False),
        spam_call(source=google, caller=person, codes=("attestation_c",), action="", score=20, is_spam=False),
        CallFactory(campaign=campaign, source=google, caller_number=person, started_at=timezone.now() - timedelta(minutes=20)),
        # Radio: 1 spam call; a test call and a call of last month, in no figure.
        spam_call(source=radio, caller=dialer, codes=("repeat_dialer",), action="reject", status=CallStatus.REJECTED),
        spam_call(source=radio, caller=robo, codes=("caller_name",), action="reject", is_test=True),
        spam_call(source=radio, caller=robo, codes=("caller_name",), action="reject", minutes_ago=60 * 24 * 40),
    ]
    return SpamWorld(google=google, radio=radio, calls=calls)
