"""A priority-weight plan decided one priority group at a time (issue 26: only the handlers that can be chosen cost):
the first group with a handler that can take the call is decided with its counters, the later groups when the plan
reaches them, with their own counters and eligibility; caps stay exact (checked under the row locks when dialled)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from routing import decision as dec
from routing.services import plan as plan_service
from routing.store import counters
from tests.numbers.factories import TrackingNumberFactory
from tests.routing.test_voice_flow import Flow, dialled, handler
from tests.tracking.factories import CallAttemptFactory, CampaignFactory
from tracking.call_state import CallState
from tracking.models import Call, CallAttempt

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign():
    return CampaignFactory(name="Buyers", company_phone="+13035550190")


@pytest.fixture
def tn(campaign):
    return TrackingNumberFactory(campaign=campaign)


@pytest.fixture
def read(monkeypatch):
    """The handlers whose counters each read turned into loads (the INSERT's read ahead or a read of its own, and the
    step's read under its locks)."""
    seen: list[set[int]] = []
    real = counters.loads_from_counter_rows

    def spy(*, options, rows, at):
        seen.append({o.id for o in options})
        return real(options=options, rows=rows, at=at)

    monkeypatch.setattr(counters, "loads_from_counter_rows", spy)
    return seen


def state(call_sid: str) -> CallState:
    call = Call.objects.get(call_sid=call_sid)
    return CallState.from_json(call.decision, plan_index=call.plan_index)


def test_later_groups_are_decided_when_the_plan_reaches_them(twilio, tn, campaign, read):
    first = handler(campaign, 1, concurrency_cap=2)
    full = handler(campaign, 2, hourly_cap=1)
    second = handler(campaign, 2, daily_cap=50)
    third = handler(campaign, 3, hourly_cap=10)
    CallAttemptFactory(handler=full, started_at=timezone.now(), counted=True)  # its hour's one call: capped
    flow = Flow(twilio, tn, sid="CAgroups1")
    doc = flow.start()
    assert dialled(doc) == [first.receiving_number.number]
    # Only the first group's counters were read (for the plan, then under the step's lock); the later groups are steps
    # of their own, not decided yet.
    assert read == [{first.id}, {first.id}]
    s = state("CAgroups1")
    assert s.steps == [[first.id], [full.id, second.id], [third.id]]
    assert s.skipped == [] and s.option_name(third.id) == third.name
    nxt = flow.dial_result(doc, "no-answer")
    # The second group, decided now: the capped handler skipped with its reason, the other dialled.
    assert dialled(nxt) == [second.receiving_number.number]
    assert read[2:] == [{full.id, second.id}, {second.id}]
    s = state("CAgroups1")
    assert [(k.handler_id, k.reason) for k in s.skipped] == [(full.id, dec.CAPPED)]
    assert s.steps == [[first.id], [second.id], [third.id]]
    last = flow.dial_result(nxt, "no-answer")
    assert dialled(last) == [third.receiving_number.number]
    assert list(CallAttempt.objects.filter(call__call_sid="CAgroups1").order_by("sequence").values_list("handler_id", flat=True)) == [
        first.id, second.id, third.id]


def test_a_group_that_cannot_take_the_call_gives_way_to_the_next_at_once(twilio, tn, campaign, read):
    closed = handler(campaign, 1, always_open=False, business_hours={})
    capped = handler(campaign, 1, hourly_cap=1)
    CallAttemptFactory(handler=capped, started_at=timezone.now(), counted=True)
    open_ = handler(campaign, 2, hourly_cap=5)
    later = handler(campaign, 3)
    doc = Flow(twilio, tn, sid="CAgroups2").start()
    assert dialled(doc) == [open_.receiving_number.number]
    assert read == [{capped.id}, {open_.id}, {open_.id}]
    s = state("CAgroups2")
    assert {(k.handler_id, k.reason) for k in s.skipped} == {(closed.id, dec.CLOSED), (capped.id, dec.CAPPED)}
    assert s.steps == [[open_.id], [later.id]]


def test_the_rest_of_the_plan_is_named_when_the_call_is_answered(twilio, tn, campaign):
    first = handler(campaign, 1)
    later = handler(campaign, 2)
    flow = Flow(twilio, tn, sid="CAgroups3")
    doc = flow.start()
    assert dialled(doc) == [first.receiving_number.number]
    flow.dial_result(doc, "completed", "30")
    s = state("CAgroups3")
    assert [(k.handler_id, k.name, k.reason) for k in s.skipped] == [(later.id, later.name, dec.ANSWERED)]


def test_one_group_or_another_strategy_plans_every_handler_at_once(twilio, tn, campaign, read):
    a, b = handler(campaign, 1, hourly_cap=5), handler(campaign, 1, hourly_cap=5)
    Flow(twilio, tn, sid="CAgroups4").start()
    assert read[0] == {a.id, b.id}
    assert not plan_service.by_priority_groups(campaign, plan_service.campaign_config(campaign))


def test_a_large_group_is_decided_a_batch_at_a_time(twilio, tn, campaign, read):
    group = [handler(campaign, 1, hourly_cap=100) for _ in range(plan_service.GROUP_BATCH + 5)]
    later = handler(campaign, 2)
    flow = Flow(twilio, tn, sid="CAgroups5")
    doc = flow.start()
    s = state("CAgroups5")
    # The first batch of the group's weighted order decided (one handler per step), the rest of the group one step
    # undecided, then the next group.
    batch = [step[0] for step in s.steps[:plan_service.GROUP_BATCH]]
    assert all(len(step) == 1 for step in s.steps[:plan_service.GROUP_BATCH]) and len(s.steps) == plan_service.GROUP_BATCH + 2
    assert sorted(batch + s.steps[plan_service.GROUP_BATCH]) == sorted(h.id for h in group) and s.steps[-1] == [later.id]
    assert read[0] == set(batch) and all(not s.options[h].get(plan_service.LATER) for h in batch)
    numbers = {h.id: h.receiving_number.number for h in group}
    assert dialled(doc) == [numbers[batch[0]]]
    for _ in range(plan_service.GROUP_BATCH):
        doc = flow.dial_result(doc, "no-answer")
    # Past the batch: the rest of the group decided when reached, one of them dialled.
    assert dialled(doc)[0] in {numbers[h] for h in state("CAgroups5").steps[plan_service.GROUP_BATCH]}
    assert len(state("CAgroups5").steps) == len(group) + 1
