"""The hot path's cost: /voice/incoming runs the same queries for 5 handlers as for 200."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.numbers.factories import ReceivingNumberFactory, TrackingNumberFactory
from tests.tracking.factories import CampaignFactory
from tracking.models import Call, CampaignHandler, Handler

pytestmark = pytest.mark.django_db

# /voice/incoming for a static number, priority routing, capped handlers, the campaign's routing configuration
# already in this process's cache (one transaction per request: BEGIN/COMMIT in production, SAVEPOINT/RELEASE
# inside the test's transaction).
# On PostgreSQL ids are drawn ahead from the sequences, and the call and its first leg are written once, at the end:
#  1 SAVEPOINT (the request's transaction)
#  2 SELECT tracking number (+ campaign with its config_version, source, pool joined; + whether the caller is
#    blocked, EXISTS; + the new call's id and a leg's, nextval)
#    (the campaign's handlers, IVR options and webhook events come from the cache keyed by config_version)
#  3 SELECT live counters of all the handlers (one aggregate over arrays)
#  4 SELECT ... FOR UPDATE the first step's handler row, with its caps (a cached plan cannot overbook) and the id of
#    its leg (nextval); no savepoint: were the step full under the lock, the request would run again with one per step
#  5 SELECT its counters again, under the lock
#  6 INSERT the call (as decided: stored answer, plan index, handler), its leg and the call.started and call.routed
#    events: one statement (data-modifying WITHs), before the commit releases the lock. A CallSid seen before fails
#    here on the unique index and the request runs again with a look-up first (test_voice_incoming,
#    test_voice_concurrency)
#  7 RELEASE SAVEPOINT (the request)
# Elsewhere (SQLite) the call is inserted first (its id comes from the INSERT) and updated at the end:
#  1 SAVEPOINT, 2 SELECT tracking number, 3 INSERT call, 4 SELECT counters, 5 SELECT handler (no row locks),
#  6 SELECT its counters, 7 INSERT the attempt, 8 UPDATE the call, 9 INSERT the events, 10 RELEASE SAVEPOINT
# No after-commit work: no webhook listens to call.started or call.routed.
EXPECTED_QUERIES = 7 if connection.vendor == "postgresql" else 10
# The first call of a campaign (or after its config_version changed) loads its configuration: handlers (+ handler
# and receiving number joined), IVR options (+ the sub-menus they open), webhooks, tagging hours (the campaign's and the
# account-wide ones), lookup tables (their rows are read per call, by index, only when the call has their value).
CONFIG_LOAD_QUERIES = 5


def campaign_with(n: int):
    campaign = CampaignFactory()
    lines = ReceivingNumberFactory.create_batch(n)
    handlers = Handler.objects.bulk_create(
        Handler(name=f"H{i}", receiving_number=line, concurrency_cap=3, hourly_cap=50, daily_cap=100, total_cap=1000, weight=1 + i % 4)
        for i, line in enumerate(lines)
    )
    CampaignHandler.objects.bulk_create(CampaignHandler(campaign=campaign, handler=h, position=i) for i, h in enumerate(handlers))
    return TrackingNumberFactory(campaign=campaign)


@pytest.mark.parametrize("handlers", [5, 200])
def test_incoming_query_count_does_not_grow_with_handlers(twilio, django_assert_num_queries, handlers):
    tn = campaign_with(handlers)
    with django_assert_num_queries(EXPECTED_QUERIES + CONFIG_LOAD_QUERIES):
        response = twilio.post("/voice/incoming", {"CallSid": f"CAq{handlers}", "From": "+14155550100", "To": tn.number})
    assert response.status_code == 200 and b"<Dial" in response.content
    with django_assert_num_queries(EXPECTED_QUERIES):
        response = twilio.post("/voice/incoming", {"CallSid": f"CAr{handlers}", "From": "+14155550101", "To": tn.number})
    assert response.status_code == 200 and b"<Dial" in response.content
    assert [c.attempts.count() for c in Call.objects.all()] == [1, 1]


def turns_tried(monkeypatch, policy: str) -> list[bool]:
    """Each try of a request's unit of work, as its retry policy ``policy`` (a ``Turn`` field) was for it."""
    from routing import services

    tried: list[bool] = []
    real = services.Turn.__init__

    def spy(self, *args, **kwargs):
        real(self, *args, **kwargs)
        tried.append(getattr(self, policy))

    monkeypatch.setattr(services.Turn, "__init__", spy)
    return tried


def warm(twilio, tn) -> None:
    """One call first, so the campaign's configuration is in the cache."""
    twilio.post("/voice/incoming", {"CallSid": "CAwarm", "From": "+14155550199", "To": tn.number})


def test_uncapped_handlers_need_no_counters_and_no_lock(twilio, django_assert_num_queries):
    tn = campaign_with(50)
    Handler.objects.update(concurrency_cap=None, hourly_cap=None, daily_cap=None, total_cap=None)
    warm(twilio, tn)
    # EXPECTED_QUERIES less the counters, the step's lock and its recount (on PostgreSQL the leg takes the id drawn with
    # the tracking number, and is written with the call).
    with django_assert_num_queries(EXPECTED_QUERIES - 3):
        response = twilio.post("/voice/incoming", {"CallSid": "CAfree", "From": "+14155550100", "To": tn.number})
    assert b"<Dial" in response.content


@pytest.mark.postgres
def test_async_commit_is_set_for_the_request_only_when_configured(twilio, settings, django_assert_num_queries):
    tn = campaign_with(5)
    warm(twilio, tn)
    settings.CALLTRACK_VOICE_ASYNC_COMMIT = True
    with django_assert_num_queries(EXPECTED_QUERIES + 1) as captured:
        twilio.post("/voice/incoming", {"CallSid": "CAasync", "From": "+14155550100", "To": tn.number})
    assert "SET LOCAL synchronous_commit TO OFF" in captured.captured_queries[1]["sql"]


def test_a_step_full_under_its_lock_runs_the_request_again_with_savepoints(twilio, monkeypatch):
    """The plan (from the cache) says the first handler has room; its locked row says it is full: the first
    try, without savepoints, is rolled back whole and the second, with one per step, dials the next handler."""

    tn = campaign_with(2)
    first, second = Handler.objects.order_by("campaign_handlers__position")
    CampaignHandler.objects.filter(handler=first).update(priority=1)
    CampaignHandler.objects.filter(handler=second).update(priority=2)
    Handler.objects.filter(pk=first.pk).update(concurrency_cap=1)
    twilio.post("/voice/incoming", {"CallSid": "CAheld", "From": "+14155550101", "To": tn.number})  # holds First's slot
    assert Call.objects.get(call_sid="CAheld").attempts.get().handler == first

    modes = turns_tried(monkeypatch, "step_savepoints")
    monkeypatch.setattr("routing.services.plan.handler_loads", lambda **kw: {})  # the plan sees every handler free
    monkeypatch.setattr("routing.services.calls._counters_to_read_ahead", lambda *args: [])  # (no counters read ahead)
    response = twilio.post("/voice/incoming", {"CallSid": "CAnext", "From": "+14155550102", "To": tn.number})
    assert b"<Dial" in response.content
    assert modes == [False, True]
    call = Call.objects.get(call_sid="CAnext")
    assert [a.handler for a in call.attempts.all()] == [second]
    assert Call.objects.filter(call_sid="CAnext").count() == 1  # the first try's call was rolled back
    assert any(s.handler_id == first.pk and s.reason == "capped" for s in call.state.skipped)


def answered_call(twilio, tn, sid: str) -> None:
    """A call dialled and answered for 90 s (its dial result), so its status callback ends it with a handler."""
    from lxml import etree

    doc = etree.fromstring(twilio.post("/voice/incoming", {"CallSid": sid, "From": "+14155550100", "To": tn.number}).content)
    action = doc.find("Dial").get("action")
    twilio.post(action, {"CallSid": sid, "DialCallStatus": "completed", "DialCallDuration": "90"})


def status_completed(twilio, sid: str):
    return twilio.post("/voice/status", {"CallSid": sid, "CallStatus": "completed", "CallDuration": "95", "SequenceNumber": "9"})


@pytest.mark.postgres
def test_the_status_callback_decides_the_conversion_without_a_savepoint_of_its_own(twilio, django_assert_num_queries):
    """A call ended with a handler, its campaign's rules cached and no de-dupe window: nothing is read to decide it,
    so no savepoint; the outcome is written with the request's last statement:
      1 SAVEPOINT (the request)   2 SELECT the call FOR UPDATE (+ its campaign)   3 UPDATE the call's end and its legs
      4 UPDATE the call's outcome and INSERT the call.completed and call.converted steps   5 RELEASE SAVEPOINT."""
    from decimal import Decimal

    from tests.tracking.factories import ConversionRuleFactory
    from tracking.models import CallEvent

    tn = campaign_with(3)
    ConversionRuleFactory(campaign=tn.campaign, min_duration=60, revenue=Decimal("20"), payout=Decimal("8"))
    answered_call(twilio, tn, "CAconv1")
    with django_assert_num_queries(5 + 1):  # + the campaign's rules, read once per configuration version
        status_completed(twilio, "CAconv1")
    answered_call(twilio, tn, "CAconv2")
    with django_assert_num_queries(5) as captured:
        assert status_completed(twilio, "CAconv2").status_code == 200
    assert sum("SAVEPOINT" in q["sql"] for q in captured.captured_queries) == 2  # the request's own, and its release
    for sid in ("CAconv1", "CAconv2"):
        call = Call.objects.get(call_sid=sid)
        assert (call.converted, call.revenue, call.payout, call.conversion_status) == (True, Decimal("20.00"), Decimal("8.00"), "converted")
        assert call.conversion_evaluated_at is not None and call.conversion_reason == "connected 90 s (timer 60 s)"
        assert list(CallEvent.objects.filter(call=call, kind__in=["call.completed", "call.converted"]).values_list("kind", flat=True)) == [
            "call.completed", "call.converted"]


@pytest.mark.postgres
def test_a_de_dupe_window_decides_the_conversion_in_a_savepoint_as_before(twilio):
    from decimal import Decimal

    from tests.tracking.factories import ConversionRuleFactory

    tn = campaign_with(3)
    ConversionRuleFactory(campaign=tn.campaign, min_duration=60, revenue=Decimal("20"), payout=Decimal("8"), dedupe_window=24)
    answered_call(twilio, tn, "CAdd1")
    status_completed(twilio, "CAdd1")
    answered_call(twilio, tn, "CAdd2")
    with CaptureQueriesContext(connection) as captured:
        status_completed(twilio, "CAdd2")
    assert sum(q["sql"].startswith("SAVEPOINT") for q in captured.captured_queries) == 2  # the request's, the rules'

    first, second = Call.objects.get(call_sid="CAdd1"), Call.objects.get(call_sid="CAdd2")
    assert first.converted and first.revenue == Decimal("20.00")
    assert not second.converted and "already converted" in second.conversion_reason


def test_a_rule_changed_through_the_services_is_used_by_the_next_status_callback(twilio):
    from decimal import Decimal

    from tracking.models import ConversionRule
    from tracking.services.campaigns import campaign_part_save

    tn = campaign_with(3)
    rule = campaign_part_save(part=ConversionRule(), fields={"campaign": tn.campaign, "min_duration": 60, "revenue": Decimal("20"), "payout": Decimal("8")})
    answered_call(twilio, tn, "CArule1")
    status_completed(twilio, "CArule1")
    campaign_part_save(part=rule, fields={"revenue": Decimal("35")})
    answered_call(twilio, tn, "CArule2")
    status_completed(twilio, "CArule2")
    assert [Call.objects.get(call_sid=s).revenue for s in ("CArule1", "CArule2")] == [Decimal("20.00"), Decimal("35.00")]


def test_a_test_call_costs_the_voice_path_no_statement_more(twilio, django_assert_num_queries):
    """The test flag rides in the signed /voice/incoming request (a marker signed for the CallSid) and is written with
    the call's INSERT: the same budgets as a real call for the incoming call, its dial result and its status callback
    (which decides "not converted" without a statement, whatever the rules)."""
    from decimal import Decimal

    from lxml import etree

    from routing.services.common import TEST_CALL_PARAM, TestCallOptions, call_test_marker
    from tests.tracking.factories import ConversionRuleFactory

    tn = campaign_with(5)
    ConversionRuleFactory(campaign=tn.campaign, min_duration=60, revenue=Decimal("20"), payout=Decimal("8"))
    warm(twilio, tn)
    status_completed(twilio, "CAwarm")  # the rules, read once per configuration version
    marker = {TEST_CALL_PARAM: call_test_marker(call_sid="CAtest", options=TestCallOptions())}
    with django_assert_num_queries(EXPECTED_QUERIES):
        response = twilio.post("/voice/incoming", {"CallSid": "CAtest", "From": "+14155550100", "To": tn.number, **marker})
    real = twilio.post("/voice/incoming", {"CallSid": "CAreal", "From": "+14155550101", "To": tn.number})
    dials = {}
    for sid, answer in (("CAtest", response), ("CAreal", real)):
        action = etree.fromstring(answer.content).find("Dial").get("action")
        with CaptureQueriesContext(connection) as dials[sid]:
            twilio.post(action, {"CallSid": sid, "DialCallStatus": "completed", "DialCallDuration": "90"})
    assert len(dials["CAtest"].captured_queries) == len(dials["CAreal"].captured_queries)
    with CaptureQueriesContext(connection) as test_status:
        status_completed(twilio, "CAtest")
    with CaptureQueriesContext(connection) as real_status:
        status_completed(twilio, "CAreal")
    assert len(test_status.captured_queries) == len(real_status.captured_queries)
    test, real = Call.objects.get(call_sid="CAtest"), Call.objects.get(call_sid="CAreal")
    assert test.is_test and not test.converted and not real.is_test and real.converted
    assert not test.attempts.filter(counted=True).exists() and real.attempts.filter(counted=True).exists()


def test_a_spam_score_costs_nothing_without_repeat_counting_and_one_indexed_read_with_it(twilio, django_assert_num_queries):
    """Scoring the caller's identity reads nothing (the campaign's row came with the tracking number); counting the
    number's recent calls is one bounded read over the (caller_number, started_at) index, only when the rules count
    repeats. Its tags and mark go with the call's INSERT, its timeline step with the request's last statement."""
    tn = campaign_with(5)
    Campaign = type(tn.campaign)
    Campaign.objects.filter(pk=tn.campaign_id).update(spam_action="tag", spam_rules={"repeat_calls": 0})
    warm(twilio, tn)
    with django_assert_num_queries(EXPECTED_QUERIES):
        response = twilio.post("/voice/incoming", {"CallSid": "CAscored", "From": "+14155550100", "To": tn.number,
                                                    "StirVerstat": "TN-Validation-Failed-A", "CallerName": "SPAM LIKELY"})
    assert b"<Dial" in response.content and Call.objects.get(call_sid="CAscored").tags["spam"] == "yes"
    # The number dialled was never published (a static number with no source, label or data): scored from its row.
    assert "unpublished_number" in Call.objects.get(call_sid="CAscored").state_spam.codes
    Campaign.objects.filter(pk=tn.campaign_id).update(spam_rules={"repeat_calls": 3})
    warm(twilio, tn)  # the configuration version moved: load it again
    with django_assert_num_queries(EXPECTED_QUERIES + 1) as captured:
        twilio.post("/voice/incoming", {"CallSid": "CAcounted", "From": "+14155550100", "To": tn.number})
    counts = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("SELECT COUNT(*)") and "caller_number" in q["sql"]]
    assert len(counts) == 1 and "LIMIT 3" in counts[0]


def test_a_carrier_lookup_costs_one_indexed_read_when_cached_and_nothing_when_off(twilio, django_assert_num_queries):
    """The carrier's caller lookup, when the campaign's spam rules ask for it: a caller already looked up costs one
    read on the unique index of CallerLookup.number; a new one asks the carrier (the local carrier here: no
    network) and caches the answer in one upsert inside a savepoint (SAVEPOINT, INSERT ... ON CONFLICT, RELEASE).
    Without "lookup" nothing is read (the other spam budget test)."""
    tn = campaign_with(5)
    Campaign = type(tn.campaign)
    Campaign.objects.filter(pk=tn.campaign_id).update(spam_action="tag", spam_rules={"repeat_calls": 0, "lookup": ["line_type"]})
    warm(twilio, tn)
    with django_assert_num_queries(EXPECTED_QUERIES + 4) as captured:
        twilio.post("/voice/incoming", {"CallSid": "CAmiss", "From": "+14155550142", "To": tn.number})
    assert sum("tracking_callerlookup" in q["sql"] for q in captured.captured_queries) == 2
    with django_assert_num_queries(EXPECTED_QUERIES + 1) as captured:
        response = twilio.post("/voice/incoming", {"CallSid": "CAhit", "From": "+14155550142", "To": tn.number})
    (read,) = [q["sql"] for q in captured.captured_queries if "tracking_callerlookup" in q["sql"]]
    assert read.startswith("SELECT") and '"number" = ' in read
    assert b"<Dial" in response.content and Call.objects.get(call_sid="CAhit").tags["line_type"]


@pytest.mark.parametrize("why", ["campaign_disabled", "source_paused"])
def test_a_new_call_answered_with_the_failsafe_is_recorded_in_one_try(twilio, settings, monkeypatch, why):
    """The fail-safe finds its call by CallSid: a new call whose id was drawn ahead is written before it looks (no
    second try of the request after a unique-index failure), and it is recorded once, with its fail-safe leg."""
    from django.utils import timezone


    settings.CALLTRACK_FAILSAFE_NUMBER = "+13035550100"
    tn = campaign_with(2)
    if why == "campaign_disabled":
        tn.campaign.enabled = False
        tn.campaign.save()
    else:
        from tests.tracking.factories import SourceFactory

        tn.source = SourceFactory(paused_at=timezone.now(), paused_reason="fraud monitor")
        tn.save()
    tries = turns_tried(monkeypatch, "insert_first")
    response = twilio.post("/voice/incoming", {"CallSid": "CAfailsafe", "From": "+14155550100", "To": tn.number})
    assert b"+13035550100" in response.content
    assert tries == [True]
    call = Call.objects.get(call_sid="CAfailsafe")
    assert call.used_failsafe and [a.kind for a in call.attempts.all()] == ["failsafe"]
    assert call.answers and "incoming" in call.answers
