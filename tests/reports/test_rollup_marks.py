"""The rollups' trigger (tracking/sql/call_rollup_dirty.sql) marks a call's day only when a value a report figure
reads changed: the routing state a voice webhook writes on every request (the decision's plan, dials and stored
answers, the plan index) leaves the day rolled up, and every figure's input still marks it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from calltrack import reports
from calltrack.scoping import Scope
from tests.numbers.factories import TrackingNumberFactory
from tests.tracking.factories import CallFactory, CampaignFactory, HandlerFactory, SourceFactory
from tracking import report_figures as figures
from tracking.models import Call, CallRollupDirty, CallRollupZone
from tracking.services.reports import report_rollups_refresh

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
ZONES = ("America/Chicago", "Asia/Tokyo")


def capped(handler_id: int) -> dict[str, Any]:
    return {"handler_id": handler_id, "name": "H", "reason": "capped", "detail": "daily cap 5 reached"}


@pytest.fixture
def handlers():
    return HandlerFactory(name="Denver"), HandlerFactory(name="Chicago")


@pytest.fixture
def call(handlers):
    """An answered call in the middle of its routing: a plan, one handler skipped at a cap and one for its tags,
    stored answers, UTM values and a click id; its creation's marks cleared, two zones registered."""
    for tz in ZONES:
        CallRollupZone.objects.create(tz=tz, refreshed_at=timezone.now())
    denver, chicago = handlers
    tn = TrackingNumberFactory(source=SourceFactory())
    started = timezone.now() - timedelta(days=2)
    row = CallFactory(
        tracking_number=tn, campaign=tn.campaign, source=tn.source, handler=chicago, status="in_progress",
        started_at=started, answered_at=started + timedelta(seconds=5), talk_time=30, caller_state="CA",
        marketing_data={"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "brand", "gclid": "abc"},
        decision={
            "steps": [[denver.pk], [chicago.pk]], "dials": 1, "tail_index": 0,
            "skipped": [capped(denver.pk), {"handler_id": 999, "name": "X", "reason": "tag_mismatch", "detail": ""}],
            "answers": {"incoming": "<Response><Dial/></Response>"},
        },
    )
    CallRollupDirty.objects.all().delete()
    return row


def marks() -> list[tuple[str, Any]]:
    return sorted(CallRollupDirty.objects.values_list("tz", "at"))


def update(call: Call, **values: Any) -> None:
    """One UPDATE of the call's row, as a webhook or a postback writes it."""
    Call.objects.filter(pk=call.pk).update(**values)


# Writes that change no figure: (what, the values set, given the call fixture's row).
ROUTING_STATE = {
    "next dial: dials and tail index": lambda c: {"decision": {**c.decision, "dials": 2, "tail_index": 1}},
    "a stored answer added": lambda c: {"decision": {**c.decision, "answers": {**c.decision["answers"], "dial:1": "<Response><Hangup/></Response>"}}},
    "a skip for another reason": lambda c: {"decision": {**c.decision, "skipped": [*c.decision["skipped"], {"handler_id": 5, "reason": "closed"}]}},
    "the capped skip's detail reworded": lambda c: {"decision": {**c.decision, "skipped": [{**capped(c.decision["skipped"][0]["handler_id"]), "detail": "x"}, c.decision["skipped"][1]]}},
    "the plan index": lambda c: {"plan_index": 3},
    "a marketing key no report breaks down by": lambda c: {"marketing_data": {**c.marketing_data, "gclid": "other", "custom": 1}},
    "a fallback step while a handler has the call": lambda c: {"fallback_step": "company_phone"},
    "the same reported values written again": lambda c: {"status": c.status, "talk_time": c.talk_time, "handler_id": c.handler_id, "decision": c.decision},
    "tags": lambda c: {"tags": {"language": "es"}},
}


@pytest.mark.parametrize("what", ROUTING_STATE)
def test_a_write_that_changes_no_reported_value_marks_no_day(call, what):
    update(call, **ROUTING_STATE[what](call))
    assert marks() == []


# Each figure's input (report_figures.MEASURES, then ROLLUP_DIMS and the capped alert), changed.
FIGURES: dict[str, Any] = {
    # the outcomes: calls, answered, missed, blocked, live
    "status": lambda c, h: {"status": "completed"},
    "answered_at": lambda c, h: {"answered_at": None},
    "converted": lambda c, h: {"converted": True},
    "failsafe": lambda c, h: {"used_failsafe": True},
    "talk_time": lambda c, h: {"talk_time": 31},
    "revenue": lambda c, h: {"revenue": Decimal("25.00")},
    "payout": lambda c, h: {"payout": Decimal("10.00")},
    # the breakdowns
    "source": lambda c, h: {"source": None},
    "campaign": lambda c, h: {"campaign": CampaignFactory()},
    "handler": lambda c, h: {"handler": h[0]},
    "tracking_number": lambda c, h: {"tracking_number": None},
    "caller_state": lambda c, h: {"caller_state": "NY"},
    "utm_source": lambda c, h: {"marketing_data": {**c.marketing_data, "utm_source": "bing"}},
    "utm_medium": lambda c, h: {"marketing_data": {**c.marketing_data, "utm_medium": 5}},
    "utm_campaign": lambda c, h: {"marketing_data": {k: v for k, v in c.marketing_data.items() if k != "utm_campaign"}},
    # the capped handlers' alert
    figures.CAPPED_DIM: lambda c, h: {"decision": {**c.decision, "skipped": [*c.decision["skipped"], capped(h[1].pk)]}},
    "a capped skip removed": lambda c, h: {"decision": {**c.decision, "skipped": c.decision["skipped"][1:]}},
    "a capped skip of the same handler again": lambda c, h: {"decision": {**c.decision, "skipped": [*c.decision["skipped"], capped(h[0].pk)]}},
}


def test_every_figure_and_breakdown_has_a_write_that_must_mark():
    """A figure or breakdown added to the rollups must be added here (and to the trigger's inputs)."""
    assert {*figures.MEASURES, *figures.ROLLUP_DIMS, figures.CAPPED_DIM} - {"calls", "answered", "missed", "blocked", "live"} <= set(FIGURES)


@pytest.mark.parametrize("what", FIGURES)
def test_a_write_that_changes_a_reported_value_marks_its_day_in_every_zone(call, handlers, what):
    update(call, **FIGURES[what](call, handlers))
    assert marks() == sorted((tz, call.started_at) for tz in ZONES)


def test_a_fallback_step_on_an_answer_credited_to_no_handler_moves_the_call_to_the_fallback_row(call):
    update(call, handler=None)
    CallRollupDirty.objects.all().delete()
    update(call, fallback_step="company_phone")
    assert len(marks()) == len(ZONES)


def test_a_call_moved_to_another_day_marks_both_days(call):
    before = call.started_at
    update(call, started_at=before - timedelta(days=1))
    assert marks() == sorted([*((tz, before) for tz in ZONES), *((tz, before - timedelta(days=1)) for tz in ZONES)])


def test_an_inserted_and_a_deleted_call_mark_their_day(call):
    other = CallFactory(started_at=call.started_at)
    assert len(marks()) == len(ZONES)
    other.delete()
    assert len(marks()) == 2 * len(ZONES)


def test_a_test_calls_writes_mark_nothing_until_it_enters_or_leaves_the_figures(call, handlers):
    update(call, is_test=True)
    assert len(marks()) == len(ZONES)  # it leaves the figures
    CallRollupDirty.objects.all().delete()
    update(call, status="completed", revenue=Decimal("40.00"), decision={**call.decision, "skipped": [capped(handlers[1].pk)]})
    assert marks() == []
    update(call, is_test=False)  # back in them
    assert len(marks()) == len(ZONES)
    CallRollupDirty.objects.all().delete()
    CallFactory(started_at=call.started_at, is_test=True)
    assert marks() == []


def test_a_day_left_rolled_up_by_routing_writes_still_gives_the_calls_figures(call, settings):
    """What the trigger lets through changes no figure: after the routing-state writes, the day read from its
    rollups equals the day read from the calls (the capped alert included)."""
    settings.TIME_ZONE = ZONES[0]
    report_rollups_refresh(all_days=True)
    for what, values in ROUTING_STATE.items():
        update(call, **values(Call.objects.get(pk=call.pk)))
        assert marks() == [], what
    period = reports.period_for("7d")
    day = call.started_at.astimezone(period.tz).date()
    assert day in reports.split_days(Scope(), period)[0]
    from_rollups = (reports.report_summary(scope=Scope(), period=period).current.as_dict(), reports.report_alerts(scope=Scope(), period=period),
                    {by: reports.report_breakdown(scope=Scope(), period=period, by=by) for by in figures.ROLLUP_DIMS})
    CallRollupDirty.objects.create(at=call.started_at, tz=ZONES[0])  # the same day, read from the calls
    assert day in reports.split_days(Scope(), period)[1]
    from_calls = (reports.report_summary(scope=Scope(), period=period).current.as_dict(), reports.report_alerts(scope=Scope(), period=period),
                  {by: reports.report_breakdown(scope=Scope(), period=period, by=by) for by in figures.ROLLUP_DIMS})
    assert from_rollups == from_calls
    assert any(a.kind == "handler_cap" for a in from_calls[1])
