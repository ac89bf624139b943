"""The call's timeline: steps written at once, or gathered by a voice webhook's unit of work into one INSERT."""

from __future__ import annotations

import pytest
from django.db import transaction

from routing.services import Links, Turn
from tests.tracking.factories import CallFactory
from tracking.models import CallEvent
from tracking.services.call_events import call_event_record

pytestmark = pytest.mark.django_db


def test_a_step_outside_a_turn_is_written_at_once():
    call = CallFactory()
    event = call_event_record(call=call, kind="call.started", message="started")
    assert event.pk is not None and CallEvent.objects.filter(call=call).count() == 1


def test_a_turn_writes_its_steps_in_one_statement_in_order(django_assert_num_queries):
    call = CallFactory()
    turn = Turn(links=Links("https://calls.example.com")).bind(call)
    with django_assert_num_queries(2):  # the count below, then the one INSERT
        turn.step("call.started", "started", {"tags": {"caller_state": "CO"}})
        turn.step("call.routed", "dialling H1")
        turn.step("call.answered", "x" * 600)
        assert CallEvent.objects.filter(call=call).count() == 0  # nothing written yet
        turn.flush()
    rows = list(CallEvent.objects.filter(call=call).values_list("kind", "message", "data"))
    assert [r[0] for r in rows] == ["call.started", "call.routed", "call.answered"]
    assert rows[0][2] == {"tags": {"caller_state": "CO"}} and len(rows[2][1]) == 500


def test_a_turn_that_raises_writes_nothing():
    call = CallFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        turn = Turn(links=Links("https://calls.example.com")).bind(call)
        turn.step("call.started", "started")
        raise RuntimeError("routing failed")
    assert not CallEvent.objects.filter(call=call).exists()
    call_event_record(call=call, kind="call.failsafe", message="after the turn: written at once")
    assert list(CallEvent.objects.filter(call=call).values_list("kind", flat=True)) == ["call.failsafe"]
