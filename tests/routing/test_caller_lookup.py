"""The carrier's caller lookup (issue 28): Twilio Lookup v2 through the SDK (the exact request, its answer, its
failures), the local carrier's deterministic fake, the per-number cache, and the voice path: the line type and the
caller name become tags and spam reasons, a cached caller costs one indexed read, a failing carrier never fails a call."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import requests
from django.urls import reverse
from django.utils import timezone
from lxml import etree
from twilio.http import HttpClient
from twilio.http.response import Response

from calltrack.carriers import CallerLookupResult, CarrierError
from calltrack.numbers.providers import local as local_carrier
from calltrack.numbers.providers import twilio as twilio_carrier
from calltrack.numbers.providers.twilio import TwilioCarrier
from calltrack.numbers.services import caller_lookup as lookup_service
from calltrack.numbers.services.caller_lookup import caller_lookup_get
from tests.numbers.factories import TrackingNumberFactory
from tests.routing.test_voice_flow import Flow, dialled, handler
from tests.tracking.factories import CampaignFactory, SourceFactory
from tracking.models import Call, CallerLookup, CallEvent
from tracking.spam_rules import SpamAction

SID = "AC" + "b" * 32
SPAMMY = "+14155550666"  # the local carrier: a non-fixed VoIP line named "SPAM LIKELY"


class FakeTwilio(HttpClient):
    """Records every request and answers with queued (status, body) pairs, or raises a queued exception."""

    def __init__(self, *answers, timeout=None) -> None:
        super().__init__(logger=None, is_async=False, timeout=timeout)
        self.answers = list(answers)
        self.requests: list[dict] = []

    def request(self, method, uri, params=None, data=None, headers=None, auth=None, timeout=None, allow_redirects=False):
        self.requests.append({"method": method, "uri": uri, "params": dict(params or {}), "auth": auth})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        return Response(status, json.dumps(body), headers={})


LOOKUP_ANSWER = {
    "phone_number": "+14155550100", "country_code": "US", "valid": True, "calling_country_code": "1", "national_format": "(415) 555-0100",
    "caller_name": {"caller_name": "DELICIOUS CHEESE CAKE", "caller_type": "CONSUMER", "error_code": None},
    "line_type_intelligence": {"carrier_name": "Twilio - SMS/MMS-SVR", "error_code": None, "mobile_country_code": "311",
                               "mobile_network_code": "950", "type": "nonFixedVoip"},
    "url": "https://lookups.twilio.com/v2/PhoneNumbers/+14155550100",
}


def test_twilio_lookup_asks_lookup_v2_for_the_caller_name_and_line_type():
    fake = FakeTwilio((200, LOOKUP_ANSWER))
    answer = TwilioCarrier(account_sid=SID, auth_token="secret", http_client=fake).caller_lookup(
        number="+14155550100", fields=("caller_name", "line_type"), timeout=2)
    assert answer == CallerLookupResult(caller_name="DELICIOUS CHEESE CAKE", caller_type="CONSUMER", line_type="nonFixedVoip",
                                        carrier_name="Twilio - SMS/MMS-SVR")
    (request,) = fake.requests
    assert (request["method"], request["uri"]) == ("GET", "https://lookups.twilio.com/v2/PhoneNumbers/+14155550100")
    assert request["params"] == {"Fields": "caller_name,line_type_intelligence"}
    assert request["auth"] == (SID, "secret")


def test_twilio_lookup_of_the_line_type_alone_asks_only_that_package():
    answer = {**LOOKUP_ANSWER, "caller_name": None}
    fake = FakeTwilio((200, answer))
    found = TwilioCarrier(account_sid=SID, auth_token="secret", http_client=fake).caller_lookup(
        number="+14155550100", fields=("line_type",), timeout=2)
    assert (found.caller_name, found.line_type) == ("", "nonFixedVoip")
    assert fake.requests[0]["params"] == {"Fields": "line_type_intelligence"}


def test_twilio_lookup_gets_its_own_http_client_with_the_short_timeout(monkeypatch):
    made: list[FakeTwilio] = []

    def client(timeout=None):
        made.append(FakeTwilio((200, LOOKUP_ANSWER), timeout=timeout))
        return made[-1]

    monkeypatch.setattr(twilio_carrier, "TwilioHttpClient", client)
    TwilioCarrier(account_sid=SID, auth_token="secret").caller_lookup(number="+14155550100", fields=("line_type",), timeout=1.5)
    assert [c.timeout for c in made] == [1.5] and len(made[0].requests) == 1


@pytest.mark.parametrize(("answer", "code"), [
    ((404, {"code": 20404, "message": "The requested resource was not found", "status": 404}), "not_found"),
    ((401, {"code": 20003, "message": "Authenticate", "status": 401}), "auth"),
    (requests.Timeout("read timed out"), "unavailable"),
    (requests.ConnectionError("no route to host"), "unavailable"),
])
def test_twilio_lookup_failures_are_carrier_errors(answer, code):
    carrier = TwilioCarrier(account_sid=SID, auth_token="secret", http_client=FakeTwilio(answer))
    with pytest.raises(CarrierError) as caught:
        carrier.caller_lookup(number="+14155550100", fields=("caller_name", "line_type"), timeout=2)
    assert caught.value.code == code and str(caught.value)


def test_the_local_carrier_answers_the_same_way_for_the_same_number():
    carrier = local_carrier.LocalCarrier()
    both = ("caller_name", "line_type")
    answers = {n: carrier.caller_lookup(number=n, fields=both, timeout=1) for n in (f"+1415555{i:04d}" for i in range(1, 200, 7))}
    assert answers == {n: carrier.caller_lookup(number=n, fields=both, timeout=1) for n in answers}
    assert {a.line_type for a in answers.values()} <= {"mobile", "landline", "fixedVoip", "nonFixedVoip"}
    assert len({a.line_type for a in answers.values()}) > 1 and all(a.caller_name for a in answers.values())
    assert carrier.caller_lookup(number=SPAMMY, fields=both, timeout=1) == CallerLookupResult(
        caller_name="SPAM LIKELY", caller_type="CONSUMER", line_type="nonFixedVoip", carrier_name="Local Carrier")
    assert carrier.caller_lookup(number="+18005550199", fields=("line_type",), timeout=1) == CallerLookupResult(
        line_type="tollFree", carrier_name="Local Carrier")
    assert carrier.caller_lookup(number="+14155550100", fields=("caller_name",), timeout=1).line_type == ""
    with pytest.raises(CarrierError):
        carrier.caller_lookup(number="not a number", fields=both, timeout=1)


class CountingCarrier:
    def __init__(self, answer=None, error=None):
        self.answer, self.error, self.asked = answer or CallerLookupResult(line_type="mobile", caller_name="JANE DOE"), error, []

    def caller_lookup(self, *, number, fields, timeout):
        self.asked.append((number, fields, timeout))
        if self.error:
            raise self.error
        return self.answer


@pytest.mark.django_db
def test_a_cached_answer_is_one_indexed_read_and_expires(django_assert_num_queries, settings):
    settings.CALLTRACK_CALLER_LOOKUP_DAYS, settings.CALLTRACK_CALLER_LOOKUP_TIMEOUT = 10, 1.25
    carrier, now = CountingCarrier(), timezone.now()
    first = caller_lookup_get(number="+14155550100", fields=("caller_name", "line_type"), now=now, carrier=carrier)
    assert (first.caller_name, first.line_type, first.cached) == ("JANE DOE", "mobile", False)
    assert carrier.asked == [("+14155550100", ("caller_name", "line_type"), 1.25)]
    with django_assert_num_queries(1) as captured:  # SELECT ... WHERE number = %s (the unique index)
        again = caller_lookup_get(number="+14155550100", fields=("line_type",), now=now + timedelta(days=9), carrier=carrier)
    assert (again.line_type, again.caller_name, again.cached) == ("mobile", "", True) and len(carrier.asked) == 1
    assert '"number" = ' in captured.captured_queries[0]["sql"]
    caller_lookup_get(number="+14155550100", fields=("line_type",), now=now + timedelta(days=11), carrier=carrier)
    assert len(carrier.asked) == 2  # older than CALLTRACK_CALLER_LOOKUP_DAYS: asked again, and cached again
    row = CallerLookup.objects.get()
    assert (row.fields, row.fetched_at) == ("line_type", now + timedelta(days=11))


@pytest.mark.django_db
def test_a_lookup_that_asked_less_is_asked_again():
    carrier, now = CountingCarrier(), timezone.now()
    caller_lookup_get(number="+14155550100", fields=("line_type",), now=now, carrier=carrier)
    caller_lookup_get(number="+14155550100", fields=("caller_name", "line_type"), now=now, carrier=carrier)
    assert [fields for _, fields, _ in carrier.asked] == [("line_type",), ("caller_name", "line_type")]


@pytest.mark.django_db
@pytest.mark.parametrize("error", [CarrierError("Twilio Lookup did not answer", code="unavailable"), RuntimeError("bug")])
def test_a_failing_carrier_gives_no_answer_and_caches_nothing(error):
    found = caller_lookup_get(number="+14155550100", fields=("line_type",), now=timezone.now(), carrier=CountingCarrier(error=error))
    assert found.error and not found.line_type and not CallerLookup.objects.exists()
    assert found.words().startswith("carrier lookup failed, went on without it")


# --- Through the voice webhook -----------------------------------------------------------------------------------


def make(rules, action=SpamAction.TAG, **number):
    campaign = CampaignFactory(name="Roofing", spam_action=action, spam_rules=rules)
    if "source" not in number:
        number["source"] = SourceFactory(name="Google Ads")
    tn = TrackingNumberFactory(campaign=campaign, **number)
    return campaign, tn, handler(campaign)


@pytest.mark.django_db
def test_the_line_type_and_caller_name_become_tags_and_reasons(twilio, assert_valid_twiml, admin_client):
    _, tn, line = make({"lookup": ["line_type", "caller_name"]})
    doc = Flow(twilio, tn).start(From=SPAMMY)
    assert_valid_twiml(etree.tostring(doc))
    assert dialled(doc) == [line.receiving_number.number]  # only tagged
    call = Call.objects.get()
    assert call.tags["line_type"] == "nonFixedVoip" and call.tags["caller_name"] == "SPAM LIKELY"
    spam = call.state_spam
    assert (spam.score, spam.codes, spam.is_spam) == (80, ("caller_name", "line_type"), True)
    assert "the carrier says the caller's line is nonFixedVoip" in spam.reasons
    step = CallEvent.objects.get(call=call, kind="call.caller_lookup")
    assert step.message == "carrier lookup: line type nonFixedVoip, caller name SPAM LIKELY"
    page = admin_client.get(reverse("admin:tracking_call_change", args=[call.pk])).content.decode()
    assert 'id="call-line-type">nonFixedVoip <' in page and 'id="call-caller-name">SPAM LIKELY<' in page


@pytest.mark.django_db
def test_a_second_call_uses_the_cache_and_twilios_caller_name_is_not_looked_up(twilio, monkeypatch):
    carrier = CountingCarrier(CallerLookupResult(line_type="landline", caller_name="LOOKED UP"))
    monkeypatch.setattr("calltrack.numbers.providers.get_carrier", lambda name=None: carrier)
    _, tn, _ = make({"lookup": ["line_type", "caller_name"]})
    Flow(twilio, tn, sid="CA1").start(CallerName="JANE DOE")
    Flow(twilio, tn, sid="CA2").start(CallerName="JANE DOE")
    assert [fields for _, fields, _ in carrier.asked] == [("line_type",)]  # Twilio's CallerName is used as is
    first, second = Call.objects.get(call_sid="CA1"), Call.objects.get(call_sid="CA2")
    assert first.tags["caller_name"] == second.tags["caller_name"] == "JANE DOE"
    assert first.tags["line_type"] == second.tags["line_type"] == "landline"
    assert CallEvent.objects.get(call=second, kind="call.caller_lookup").message == "carrier lookup (cached): line type landline"


@pytest.mark.django_db
def test_a_carrier_that_fails_never_fails_the_call(twilio, monkeypatch, assert_valid_twiml):
    carrier = CountingCarrier(error=CarrierError("Twilio Lookup did not answer for +14155550100: read timed out", code="unavailable"))
    monkeypatch.setattr("calltrack.numbers.providers.get_carrier", lambda name=None: carrier)
    _, tn, line = make({"lookup": ["line_type"]}, action=SpamAction.REJECT)
    doc = Flow(twilio, tn).start()
    assert_valid_twiml(etree.tostring(doc))
    assert dialled(doc) == [line.receiving_number.number]
    call = Call.objects.get()
    assert "line_type" not in call.tags and len(carrier.asked) == 1
    assert "read timed out" in CallEvent.objects.get(call=call, kind="call.caller_lookup").message


@pytest.mark.django_db
def test_a_number_rule_reads_the_line_type(twilio, assert_valid_twiml):
    _, tn, _ = make({"lookup": ["line_type"], "weights": {"line_type": 0}},
                    filters=[{"action": "reject", "key": "line_type", "op": "one_of", "value": ["nonFixedVoip"]}])
    doc = Flow(twilio, tn).start(From=SPAMMY)
    assert_valid_twiml(etree.tostring(doc))
    assert [el.tag for el in doc] == ["Reject"]
    assert Call.objects.get().reject_reason == "rejected by filter line_type in [nonFixedVoip] (call has nonFixedVoip)"


@pytest.mark.django_db
def test_marketing_data_cannot_pose_as_the_line_type(twilio):
    _, tn, _ = make({}, marketing_data={"line_type": "landline"}, source=None)
    Flow(twilio, tn).start()
    assert "line_type" not in Call.objects.get().tags


@pytest.mark.django_db
def test_the_lookup_is_off_by_default(twilio, monkeypatch):
    def refuse(name=None):
        raise AssertionError("no lookup was asked for")

    monkeypatch.setattr("calltrack.numbers.providers.get_carrier", refuse)
    _, tn, _ = make({})
    Flow(twilio, tn).start(From=SPAMMY)
    assert "line_type" not in Call.objects.get().tags and not CallerLookup.objects.exists()
    assert lookup_service.CallerIdentity().words() == "carrier lookup: nothing known"


@pytest.mark.django_db
def test_the_rules_refuse_an_unknown_lookup_or_line_type():
    from tracking.spam_rules import spam_rules_problems, spam_rules_read

    assert spam_rules_problems({"lookup": ["line_type", "sim_swap"], "spam_line_types": ["voip"], "unpublished_static": "yes"}) == [
        "unpublished_static: true or false.",
        "spam_line_types: a list of line types (landline, mobile, fixedVoip, nonFixedVoip, personal, tollFree, premium, "
        "sharedCost, uan, voicemail, pager, unknown).",
        "lookup: a list of what to ask the carrier (caller_name, line_type), or [] (off).",
    ]
    rules = spam_rules_read(action="tag", threshold=50, raw={"lookup": ["line_type", "caller_name"], "spam_line_types": ["mobile"]})
    assert (rules.lookup, rules.spam_line_types, rules.unpublished_static) == (("caller_name", "line_type"), ("mobile",), True)
    assert spam_rules_read(action="off", threshold=50, raw={"lookup": ["line_type"]}).lookup == ()  # off: no lookup either


@pytest.mark.django_db
def test_the_admin_lists_the_cached_answers_read_only(admin_client):
    caller_lookup_get(number=SPAMMY, fields=("caller_name", "line_type"), now=timezone.now(), carrier=local_carrier.LocalCarrier())
    page = admin_client.get(reverse("admin:tracking_callerlookup_changelist"), {"q": SPAMMY}).content.decode()
    assert "nonFixedVoip" in page and "SPAM LIKELY" in page
    row = CallerLookup.objects.get()
    assert admin_client.get(reverse("admin:tracking_callerlookup_add")).status_code == 403
    change = admin_client.post(reverse("admin:tracking_callerlookup_change", args=[row.pk]), {"line_type": "mobile"})
    assert change.status_code == 403 and CallerLookup.objects.get().line_type == "nonFixedVoip"


@pytest.mark.django_db
def test_an_answer_that_cannot_be_cached_is_still_used(monkeypatch):
    from django.db import DatabaseError

    def fail(*args, **kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(CallerLookup.objects, "bulk_create", fail)
    found = caller_lookup_get(number=SPAMMY, fields=("line_type",), now=timezone.now(), carrier=local_carrier.LocalCarrier())
    assert (found.line_type, found.error) == ("nonFixedVoip", "")
    assert not CallerLookup.objects.exists()  # the savepoint kept the transaction usable
