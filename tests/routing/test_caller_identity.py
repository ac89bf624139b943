"""The caller's identity on every call (issue 28): Twilio's StirVerstat and CallerName, through the signed
webhooks, stored on the call, as its tags (criteria, number rules, webhook tokens), in the API and the export."""

from __future__ import annotations

import pytest
from lxml import etree

from routing.services.common import IncomingCall, attestation_read, caller_name_read
from tests.numbers.factories import TrackingNumberFactory
from tests.routing.test_voice_flow import Flow, dialled, handler
from tests.tracking.factories import CampaignFactory, SourceFactory
from tracking.models import Attestation, Call, CallStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign():
    return CampaignFactory(name="Roofing")


@pytest.fixture
def tn(campaign):
    return TrackingNumberFactory(campaign=campaign, source=SourceFactory(name="Google Ads"))


@pytest.mark.parametrize(("verstat", "expected"), [
    ("TN-Validation-Passed-A", Attestation.PASSED_A),
    ("TN-Validation-Passed-B", Attestation.PASSED_B),
    ("TN-Validation-Passed-C", Attestation.PASSED_C),
    ("TN-Validation-Passed", Attestation.PASSED_A),
    ("TN-Validation-Failed-A", Attestation.FAILED),
    ("TN-Validation-Failed-B", Attestation.FAILED),
    ("TN-Validation-Failed", Attestation.FAILED),
    ("No-TN-Validation", Attestation.NONE),
    ("tn-validation-passed-c", Attestation.PASSED_C),
    ("", Attestation.UNKNOWN),
    ("TN-Validation-Passed-Z", Attestation.UNKNOWN),
    ("garbage\x00value", Attestation.UNKNOWN),
])
def test_each_stir_verstat_value_is_stored_as_its_attestation_and_tag(twilio, tn, campaign, assert_valid_twiml, verstat, expected):
    line = handler(campaign)
    doc = Flow(twilio, tn).start(StirVerstat=verstat)
    assert_valid_twiml(etree.tostring(doc))
    assert dialled(doc) == [line.receiving_number.number]
    call = Call.objects.get()
    assert call.attestation == expected
    assert call.tags.get("attestation", "") == expected


def test_the_caller_name_is_kept_clean_as_the_calls_tag(twilio, tn, campaign):
    handler(campaign)
    Flow(twilio, tn).start(CallerName="  JANE\x00  DOE\t ", StirVerstat="TN-Validation-Passed-A")
    call = Call.objects.get()
    assert call.caller_name == "JANE DOE" and call.tags["caller_name"] == "JANE DOE"


def test_odd_identity_values_never_raise_and_are_cut_to_size():
    assert caller_name_read("X" * 500) == "X" * 64
    assert caller_name_read("\ud800\x00") == ""
    assert caller_name_read(None) == ""
    assert attestation_read(None) == "" and attestation_read("TN-Validation-Passed-" + "A" * 100) == ""
    incoming = IncomingCall.from_params({"CallSid": "CA1", "From": "+14155550100", "To": "+13035550100",
                                         "CallerName": "Ünïcode Name", "StirVerstat": "No-TN-Validation"})
    assert (incoming.caller_name, incoming.attestation) == ("Ünïcode Name", "none")


def test_a_visitors_marketing_data_cannot_claim_an_attestation(twilio, campaign):
    tn = TrackingNumberFactory(campaign=campaign, marketing_data={"attestation": "passed_a", "caller_name": "ACME", "utm_source": "x"})
    handler(campaign)
    Flow(twilio, tn).start(StirVerstat="TN-Validation-Failed-A")
    call = Call.objects.get()
    assert call.tags["attestation"] == "failed" and "caller_name" not in call.tags and call.tags["utm_source"] == "x"


def test_a_number_rule_rejects_callers_whose_verification_failed(twilio, campaign, assert_valid_twiml):
    tn = TrackingNumberFactory(campaign=campaign, filters=[{"action": "reject", "key": "attestation", "op": "equals", "value": "failed"}])
    handler(campaign)
    doc = Flow(twilio, tn, sid="CAfailed").start(StirVerstat="TN-Validation-Failed-B")
    assert_valid_twiml(etree.tostring(doc))
    assert [el.tag for el in doc] == ["Reject"]
    rejected = Call.objects.get(call_sid="CAfailed")
    assert rejected.status == CallStatus.REJECTED and "attestation = failed" in rejected.reject_reason
    doc = Flow(twilio, tn, sid="CApassed").start(StirVerstat="TN-Validation-Passed-A")
    assert doc.find("Dial") is not None


def test_handler_criteria_read_the_attestation(twilio, tn, campaign):
    verified_only = handler(campaign, 1, tag_criteria=[{"key": "attestation", "op": "one_of", "value": ["passed_a", "passed_b"]}])
    anyone = handler(campaign, 2)
    assert dialled(Flow(twilio, tn, sid="CAa").start(StirVerstat="TN-Validation-Passed-A")) == [verified_only.receiving_number.number]
    assert dialled(Flow(twilio, tn, sid="CAc").start(StirVerstat="TN-Validation-Passed-C")) == [anyone.receiving_number.number]


def test_a_webhook_token_renders_the_callers_name_and_attestation(twilio, tn, campaign):
    from tests.tracking.factories import WebhookFactory
    from tracking.models import WebhookMethod
    from tracking.services.webhooks import webhook_render

    handler(campaign)
    Flow(twilio, tn).start(CallerName="JANE DOE", StirVerstat="TN-Validation-Passed-B")
    hook = WebhookFactory(campaign=campaign, method=WebhookMethod.POST_FORM, url="https://crm.example.com/lead",
                          body_template="name=[tag:caller_name]&shaken=[tag:attestation]")
    assert webhook_render(webhook=hook, call=Call.objects.get(), event="call.started").body == "name=JANE+DOE&shaken=passed_b"
