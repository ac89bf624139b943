"""The call's timeline: steps written at once, or batched into one INSERT at the end of a block."""

from __future__ import annotations

import pytest
from django.db import transaction

from tests.tracking.factories import CallFactory
from tracking.models import CallEvent
from tracking.services.call_events import call_event_record, call_events_batched

pytestmark = pytest.mark.django_db


def test_a_step_outside_a_batch_is_written_at_once():
    call = CallFactory()
    event = call_event_record(call=call, kind="call.started", message="started")
    assert event.pk is not None and CallEvent.objects.filter(call=call).count() == 1


def test_a_batch_writes_its_steps_in_one_statement_in_order(django_assert_num_queries):
    call = CallFactory()
    with django_assert_num_queries(2), call_events_batched():  # the count below, then the one INSERT
        call_event_record(call=call, kind="call.started", message="started", data={"tags": {"caller_state": "CO"}})
        call_event_record(call=call, kind="call.routed", message="dialling H1")
        call_event_record(call=call, kind="call.answered", message="x" * 600)
        assert CallEvent.objects.filter(call=call).count() == 0  # nothing written yet
    rows = list(CallEvent.objects.filter(call=call).values_list("kind", "message", "data"))
    assert [r[0] for r in rows] == ["call.started", "call.routed", "call.answered"]
    assert rows[0][2] == {"tags": {"caller_state": "CO"}} and len(rows[2][1]) == 500


def test_a_batch_that_raises_writes_nothing():
    call = CallFactory()
    with pytest.raises(RuntimeError), transaction.atomic(), call_events_batched():
        call_event_record(call=call, kind="call.started", message="started")
        raise RuntimeError("routing failed")
    assert not CallEvent.objects.filter(call=call).exists()
    call_event_record(call=call, kind="call.failsafe", message="after the batch: written at once")
    assert list(CallEvent.objects.filter(call=call).values_list("kind", flat=True)) == ["call.failsafe"]
