"""Conversion services on the database: evaluation at completion, postbacks, de-dupe, caps and totals."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from tests.tracking.factories import (
    CallAttemptFactory,
    CallFactory,
    CampaignFactory,
    CampaignHandlerFactory,
    ConversionRuleFactory,
    HandlerFactory,
    SourceFactory,
)
from tests.tracking.helpers import call_complete
from tracking.models import Call, CallEvent, CallStatus, ConversionStatus
from tracking.selectors import campaign_dials_only_one, conversion_totals, handler_conversions_count
from tracking.services.conversions import (
    AlreadyConverted,
    ConversionRefused,
    call_conversion_evaluate,
    call_conversions_expire,
    call_convert,
)

pytestmark = pytest.mark.django_db


def completed_call(*, campaign, handler, talk_time=90, caller="+14155550111", started_at=None, **kw) -> Call:
    started_at = started_at or timezone.now() - timedelta(minutes=10)
    fields = dict(
        campaign=campaign, handler=handler, caller_number=caller, status=CallStatus.COMPLETED, started_at=started_at,
        answered_at=started_at + timedelta(seconds=5) if talk_time else None, ended_at=started_at + timedelta(seconds=talk_time + 10),
        talk_time=talk_time, duration=talk_time + 10,
    )
    fields.update(kw)
    return CallFactory(**fields)


@pytest.fixture
def setup():
    campaign = CampaignFactory()
    handler = HandlerFactory()
    CampaignHandlerFactory(campaign=campaign, handler=handler)
    return campaign, handler


def test_completing_a_call_applies_the_rules_in_its_transaction_and_records_the_outcome(setup, django_capture_on_commit_callbacks):
    campaign, handler = setup
    ConversionRuleFactory(campaign=campaign, min_duration=60, revenue=Decimal("20"), payout=Decimal("8"))
    call = completed_call(campaign=campaign, handler=handler, talk_time=75)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        call_complete(call)
        assert call.converted and call.conversion_status == ConversionStatus.CONVERTED  # the instance is kept in step
        assert Call.objects.get(pk=call.pk).converted  # written before the commit, in the call's own transaction
    call.refresh_from_db()
    assert call.converted and call.revenue_converted and call.payout_converted
    assert call.conversion_status == ConversionStatus.CONVERTED
    assert (call.revenue, call.payout, call.margin) == (Decimal("20.00"), Decimal("8.00"), Decimal("12.00"))
    assert call.conversion_reason == "connected 75 s (timer 60 s)"
    assert call.converted_at is not None
    assert list(CallEvent.objects.filter(call=call).values_list("kind", flat=True)) == ["call.completed", "call.converted"]


def test_failing_rules_are_rolled_back_alone_and_logged(setup, monkeypatch, caplog):
    from tracking.services import conversions

    campaign, handler = setup
    ConversionRuleFactory(campaign=campaign, min_duration=60, revenue=Decimal("20"), payout=Decimal("8"))
    call = completed_call(campaign=campaign, handler=handler, talk_time=75)

    def broken(*, rules, call, prior=(), postback_at=None):
        raise RuntimeError("rule engine down")

    monkeypatch.setattr(conversions, "conversion_evaluate", broken)
    with transaction.atomic():
        call_complete(call)
        CallEvent.objects.create(call=call, kind="note", message="the transaction is still usable")
    call.refresh_from_db()
    assert call.conversion_evaluated_at is None and not call.converted
    assert list(CallEvent.objects.filter(call=call).values_list("kind", flat=True)) == ["call.completed", "note"]
    assert f"conversion rules failed for call {call.pk}" in caplog.text


def test_rules_decided_in_memory_save_the_outcome_with_the_last_statement(setup):
    campaign, handler = setup
    ConversionRuleFactory(campaign=campaign, min_duration=60, revenue=Decimal("20"), payout=Decimal("8"))
    call = completed_call(campaign=campaign, handler=handler, talk_time=75)
    with transaction.atomic():
        turn = call_complete(call, flush=False)
        assert call.converted and not Call.objects.get(pk=call.pk).converted  # decided, saved with the turn's writes
        assert "revenue" in turn.fields
        turn.flush()
    call.refresh_from_db()
    assert (call.converted, call.revenue, call.payout, call.conversion_status) == (True, Decimal("20.00"), Decimal("8.00"), "converted")
    assert list(CallEvent.objects.filter(call=call).values_list("kind", flat=True)) == ["call.completed", "call.converted"]


def test_failing_rules_decided_in_memory_leave_the_call_as_it_was_and_are_logged(setup, monkeypatch, caplog):
    from tracking.services import conversions

    campaign, handler = setup
    ConversionRuleFactory(campaign=campaign, min_duration=60, revenue=Decimal("20"), payout=Decimal("8"))
    call = completed_call(campaign=campaign, handler=handler, talk_time=75)

    def broken(*, rules, call, prior=(), postback_at=None):
        raise RuntimeError("rule engine down")

    monkeypatch.setattr(conversions, "conversion_evaluate", broken)
    with transaction.atomic():
        call_complete(call)
        assert call.conversion_evaluated_at is None and call.conversion_status == ConversionStatus.PENDING
    call.refresh_from_db()
    assert call.conversion_evaluated_at is None and not call.converted
    assert list(CallEvent.objects.filter(call=call).values_list("kind", flat=True)) == ["call.completed"]
    assert f"conversion rules failed for call {call.pk}" in caplog.text


def test_a_short_call_does_not_convert_and_says_why(setup):
    campaign, handler = setup
    ConversionRuleFactory(campaign=campaign, min_duration=60, revenue=Decimal("20"), payout=Decimal("8"))
    call = call_conversion_evaluate(call=completed_call(campaign=campaign, handler=handler, talk_time=12))
    assert not call.converted and call.conversion_status == ConversionStatus.NOT_CONVERTED
    assert call.conversion_reason == "connected 12 s, under the 60 s timer"
    assert call.payout_reason == "connected 12 s, under the 60 s timer"
    assert call.revenue == 0 and call.payout == 0


def test_evaluation_runs_once(setup):
    campaign, handler = setup
    rule = ConversionRuleFactory(campaign=campaign, min_duration=30, revenue=Decimal("20"), payout=Decimal("8"))
    call = call_conversion_evaluate(call=completed_call(campaign=campaign, handler=handler))
    rule.revenue = Decimal("99")
    rule.save()
    again = call_conversion_evaluate(call=call)
    assert again.revenue == Decimal("20.00")
    assert CallEvent.objects.filter(call=call, kind="call.converted").count() == 1


def test_split_rules_can_pay_the_source_while_the_handler_does_not(setup):
    campaign, handler = setup
    ConversionRuleFactory(campaign=campaign, side="payout", min_duration=30, payout=Decimal("6"))
    ConversionRuleFactory(campaign=campaign, side="revenue", min_duration=120, revenue=Decimal("25"))
    call = call_conversion_evaluate(call=completed_call(campaign=campaign, handler=handler, talk_time=60))
    assert call.payout_converted and not call.revenue_converted
    assert call.converted and call.conversion_status == ConversionStatus.CONVERTED
    assert (call.revenue, call.payout, call.margin) == (Decimal("0.00"), Decimal("6.00"), Decimal("-6.00"))
    assert "under the 120 s timer" in call.conversion_reason


def test_a_repeat_caller_is_not_paid_twice_within_the_dedupe_window(setup):
    campaign, handler = setup
    ConversionRuleFactory(campaign=campaign, min_duration=30, revenue=Decimal("20"), payout=Decimal("8"), dedupe_window=24)
    now = timezone.now()
    first = call_conversion_evaluate(call=completed_call(campaign=campaign, handler=handler, started_at=now - timedelta(hours=5)))
    second = call_conversion_evaluate(call=completed_call(campaign=campaign, handler=handler, started_at=now - timedelta(hours=1)))
    other_caller = call_conversion_evaluate(
        call=completed_call(campaign=campaign, handler=handler, caller="+14155550999", started_at=now - timedelta(minutes=30))
    )
    assert first.converted
    assert not second.converted and second.revenue == 0
    assert second.conversion_reason == f"repeat caller: call #{first.pk} already converted in this campaign within 24 h"
    assert other_caller.converted


def test_a_dedupe_count_of_two_pays_the_second_call_in_the_window_but_not_the_third(setup):
    campaign, handler = setup
    ConversionRuleFactory(campaign=campaign, min_duration=30, revenue=Decimal("20"), payout=Decimal("8"), dedupe_window=24,
                          dedupe_max_payable=2)
    now = timezone.now()
    calls = [
        call_conversion_evaluate(call=completed_call(campaign=campaign, handler=handler, started_at=now - timedelta(hours=h)))
        for h in (5, 3, 1)
    ]
    assert [c.converted for c in calls] == [True, True, False]
    assert calls[1].revenue == Decimal("20") and calls[2].revenue == 0 and calls[2].payout == 0
    assert calls[2].conversion_reason == (
        f"repeat caller: already paid 2 times in this campaign in 24 h (at most 2; calls #{calls[0].pk}, #{calls[1].pk})")
    later = call_conversion_evaluate(call=completed_call(campaign=campaign, handler=handler, started_at=now + timedelta(hours=20)))
    assert later.converted  # the first call is out of its window: one paid call (the second) within 24 h


def test_attempt_rules_pay_a_dialled_handler_and_make_routing_dial_only_one(setup):
    campaign, handler = setup
    assert not campaign_dials_only_one(campaign)
    ConversionRuleFactory(campaign=campaign, kind="attempt", revenue=Decimal("4"), payout=Decimal("1"))
    assert campaign_dials_only_one(campaign) and campaign_dials_only_one(campaign.pk)
    call = completed_call(campaign=campaign, handler=None, talk_time=0, status=CallStatus.NO_ANSWER)
    CallAttemptFactory(call=call, handler=handler)
    call = call_conversion_evaluate(call=call)
    assert call.converted and call.revenue == Decimal("4.00")


def test_a_handlers_own_attempt_rule_also_limits_dialling_to_one(setup):
    campaign, handler = setup
    ConversionRuleFactory(campaign=campaign, handler=handler, kind="attempt", revenue=Decimal("4"))
    assert campaign_dials_only_one(campaign)


def test_a_postback_converts_once_and_a_repeat_changes_nothing(setup):
    campaign, handler = setup
    ConversionRuleFactory(campaign=campaign, kind="postback", revenue=Decimal("50"), payout=Decimal("20"), postback_window=60)
    call = call_conversion_evaluate(call=completed_call(campaign=campaign, handler=handler))
    assert call.conversion_status == ConversionStatus.PENDING
    assert call.conversion_reason == "waiting for the handler's postback (up to 60 min after the call)"
    result = call_convert(call=call, source="api")
    assert result.converted_sides == ("revenue", "payout")
    call.refresh_from_db()
    converted_at = call.converted_at
    assert call.conversion_status == ConversionStatus.CONVERTED and call.revenue == Decimal("50.00")
    with pytest.raises(AlreadyConverted, match="already converted") as exc:
        call_convert(call=call, source="postback")
    assert exc.value.status_code == 409
    call.refresh_from_db()
    assert call.converted_at == converted_at
    assert CallEvent.objects.filter(call=call, kind="call.converted").count() == 1


def test_a_postback_after_the_time_limit_is_refused_and_recorded(setup):
    campaign, handler = setup
    ConversionRuleFactory(campaign=campaign, kind="postback", revenue=Decimal("50"), postback_window=60)
    call = call_conversion_evaluate(call=completed_call(campaign=campaign, handler=handler))
    with pytest.raises(ConversionRefused, match="the limit is 60 min") as exc:
        call_convert(call=call, source="postback", at=call.ended_at + timedelta(minutes=90))
    assert exc.value.status_code == 422
    call.refresh_from_db()
    assert not call.converted and call.conversion_status == ConversionStatus.NOT_CONVERTED
    assert call.conversion_reason == "postback came 90 min after the call ended; the limit is 60 min"


def test_a_postback_for_a_timer_campaign_is_refused(setup):
    campaign, handler = setup
    ConversionRuleFactory(campaign=campaign, min_duration=30)
    call = completed_call(campaign=campaign, handler=handler)
    with pytest.raises(ConversionRefused, match=r"take no postback \(its rules: timer\)"):
        call_convert(call=call, source="api")


def test_a_postback_during_the_call_sticks_when_the_call_completes(setup):
    campaign, handler = setup
    ConversionRuleFactory(campaign=campaign, side="revenue", kind="postback", revenue=Decimal("50"))
    ConversionRuleFactory(campaign=campaign, side="payout", min_duration=30, payout=Decimal("5"))
    call = completed_call(campaign=campaign, handler=handler, ended_at=None, status=CallStatus.IN_PROGRESS)
    call_convert(call=call, source="postback")
    call.refresh_from_db()
    assert call.revenue_converted and call.conversion_status == ConversionStatus.CONVERTED
    call.ended_at = timezone.now()
    call.status = CallStatus.COMPLETED
    call.save()
    call = call_conversion_evaluate(call=call)
    assert call.revenue_converted and call.payout_converted
    assert (call.revenue, call.payout) == (Decimal("50.00"), Decimal("5.00"))


def test_pending_postbacks_expire_after_the_window(setup):
    campaign, handler = setup
    ConversionRuleFactory(campaign=campaign, kind="postback", revenue=Decimal("50"), postback_window=60)
    call = call_conversion_evaluate(call=completed_call(campaign=campaign, handler=handler))
    assert call_conversions_expire(now=call.ended_at + timedelta(minutes=30)) == 0
    assert call_conversions_expire(now=call.ended_at + timedelta(minutes=61)) == 1
    call.refresh_from_db()
    assert call.conversion_status == ConversionStatus.NOT_CONVERTED
    assert call.conversion_reason == "no postback within 60 min of the call"
    assert call_conversions_expire(now=call.ended_at + timedelta(minutes=62)) == 0


def test_conversion_caps_count_converted_calls_not_connections(setup):
    campaign, handler = setup
    ConversionRuleFactory(campaign=campaign, min_duration=60, revenue=Decimal("20"))
    since = timezone.now() - timedelta(hours=1)
    for talk in (90, 30, 120, 10):
        call_conversion_evaluate(call=completed_call(campaign=campaign, handler=handler, talk_time=talk, caller=f"+1415555{talk:04d}"))
    assert Call.objects.filter(handler=handler, status=CallStatus.COMPLETED).count() == 4
    assert handler_conversions_count(handler=handler, since=since) == 2
    assert handler_conversions_count(handler=handler, since=since, until=since + timedelta(minutes=1)) == 0
    assert handler_conversions_count(handler=HandlerFactory(), since=since) == 0


def test_totals_by_source_handler_and_campaign(setup):
    campaign, handler = setup
    ConversionRuleFactory(campaign=campaign, min_duration=60, revenue=Decimal("20"), payout=Decimal("8"))
    google, bing = SourceFactory(name="Google"), SourceFactory(name="Bing")
    for source, talk, caller in ((google, 90, "+14155550201"), (google, 10, "+14155550202"), (bing, 70, "+14155550203")):
        call_conversion_evaluate(call=completed_call(campaign=campaign, handler=handler, talk_time=talk, caller=caller, source=source))
    rows = {row["name"]: row for row in conversion_totals(by="source")}
    assert rows["Google"] == {"id": google.pk, "name": "Google", "calls": 2, "converted": 1, "revenue": Decimal("20.00"), "payout": Decimal("8.00"), "margin": Decimal("12.00")}
    assert rows["Bing"]["converted"] == 1
    (by_handler,) = conversion_totals(by="handler")
    assert (by_handler["calls"], by_handler["revenue"], by_handler["margin"]) == (3, Decimal("40.00"), Decimal("24.00"))
    (by_campaign,) = conversion_totals(by="campaign", start=timezone.now() - timedelta(hours=1))
    assert by_campaign["name"] == campaign.name
    with pytest.raises(ValueError, match="by must be one of"):
        conversion_totals(by="planet")


def test_an_hourly_schedule_closes_expired_postback_waits():
    from django.core.management import call_command
    from django_q.models import Schedule

    call_command("calltrack_schedules", stdout=io.StringIO())
    schedule = Schedule.objects.get(func="tracking.tasks.conversions_expire")
    assert schedule.schedule_type == Schedule.HOURLY and schedule.repeats == -1
