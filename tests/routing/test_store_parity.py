"""The store's two forms of each statement agree (``routing.store``): where PostgreSQL runs its own form (arrays through
``unnest``, data-modifying WITHs) and SQLite the portable one, both are run here on PostgreSQL over the same rows and
must give the same answer. ``make test`` on SQLite runs the portable forms through every flow test; this is what
keeps the production forms honest against them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction

from routing import decision as dec
from routing.store import counters
from routing.store import voice as store
from tests.tracking.factories import CallAttemptFactory, CallFactory, HandlerFactory
from tracking.models import AttemptStatus, Call, CallAttempt, CallStatus, CapDelta

pytestmark = [pytest.mark.django_db(transaction=False), pytest.mark.postgres]
NOW = datetime(2026, 6, 15, 16, 30, tzinfo=UTC)
CAPS = {"concurrency_cap": 5, "hourly_cap": 10, "daily_cap": 10, "monthly_cap": 10, "total_cap": 10}


def option(handler, **caps):
    return dec.HandlerOption(id=handler.id, name=handler.name, number="+13035550100", timezone=handler.timezone, **caps)


@pytest.fixture
def handlers():
    """Handlers in three time zones with history around their hour, day and month boundaries, slots held and stale,
    and pending cap deltas."""
    found = []
    for zone in ("America/New_York", "America/Los_Angeles", "Europe/Berlin"):
        h = HandlerFactory(timezone=zone)
        for minutes in (5, 45, 130, 600, 1500, 20 * 1440, 40 * 1440):
            CallAttemptFactory(handler=h, started_at=NOW - timedelta(minutes=minutes), counted=minutes % 2 == 1)
        CallAttemptFactory(handler=h, started_at=NOW, holds_slot=True, slot_expires_at=NOW + timedelta(seconds=40))
        CallAttemptFactory(handler=h, started_at=NOW, holds_slot=True, slot_expires_at=NOW - timedelta(seconds=1))
        found.append(h)
    return found


def test_the_counter_reads_agree(handlers):
    options = [option(h, **CAPS) for h in handlers] + [option(handlers[0])]  # one without caps: no period counts
    assert CapDelta.objects.exists()  # the history's counted legs, not folded yet
    assert counters.counter_reads_pg(options=options, at=NOW) == counters.counter_reads_portable(options=options, at=NOW)
    counters.cap_counters_fold(at=NOW)
    assert counters.counter_reads_pg(options=options, at=NOW) == counters.counter_reads_portable(options=options, at=NOW)


def test_the_attempt_counts_agree(handlers):
    options = [option(h, **CAPS) for h in handlers]
    conn = options[:2]
    pg = sorted(tuple(int(v) for v in row) for row in counters.attempt_counts_pg(options=options, conn=conn, at=NOW))
    portable = sorted(tuple(int(v) for v in row) for row in counters.attempt_counts_portable(options=options, conn=conn, at=NOW))
    assert pg == portable and pg


def _legs(call: Call) -> list[tuple]:
    return list(call.attempts.order_by("sequence", "id").values_list("status", "counted", "holds_slot", "duration", "ended_at"))


def _call_with_legs(sid: str) -> Call:
    call = CallFactory(call_sid=sid, status=CallStatus.IN_PROGRESS)
    h = HandlerFactory()
    CallAttemptFactory(call=call, handler=h, sequence=1, status=AttemptStatus.NO_ANSWER, counted=False, ended_at=NOW)
    CallAttemptFactory(call=call, handler=h, sequence=2, status=AttemptStatus.ANSWERED, counted=True, holds_slot=True,
                       slot_expires_at=NOW + timedelta(hours=4))
    CallAttemptFactory(call=call, handler=h, sequence=2, status=AttemptStatus.DIALING, counted=True, holds_slot=True,
                       slot_expires_at=NOW + timedelta(seconds=30))
    return call


@pytest.mark.parametrize("seq", [None, 7])
def test_the_call_end_agrees(seq):
    merged, apart = _call_with_legs("CAmerged"), _call_with_legs("CAapart")
    for call, form in ((merged, True), (apart, False)):
        assert store.call_end(call.pk, status=CallStatus.COMPLETED, at=NOW, duration=90, seq=seq, merged=form)
        assert not store.call_end(call.pk, status=CallStatus.COMPLETED, at=NOW, duration=90, seq=seq, merged=form)  # once
    assert _legs(merged) == _legs(apart)
    row = ("status", "ended_at", "duration", "last_sequence")
    assert Call.objects.filter(pk=merged.pk).values_list(*row).get() == Call.objects.filter(pk=apart.pk).values_list(*row).get()


def test_the_answer_with_the_step_legs_agrees():
    results = []
    for sid, form in (("CAm", True), ("CAa", False)):
        call = CallFactory(call_sid=sid, status=CallStatus.RINGING)
        h = HandlerFactory()
        winner = CallAttemptFactory(call=call, handler=h, sequence=1, status=AttemptStatus.ANSWERED, counted=True, holds_slot=True)
        CallAttemptFactory(call=call, handler=HandlerFactory(), sequence=1, status=AttemptStatus.DIALING, counted=True, holds_slot=True)
        step = store.StepAnswered(call_id=call.pk, seq=1, winner_id=winner.pk, duration=42, counted=True, at=NOW)
        with transaction.atomic():
            first = store.call_mark_answered(call.pk, handler_id=h.pk, at=NOW, step=step, merged=form)
            again = store.call_mark_answered(call.pk, handler_id=h.pk, at=NOW, step=step, merged=form)
        call.refresh_from_db()
        results.append((first, again, call.status, call.answered_at, call.handler_id == h.pk,
                        [leg[:4] for leg in _legs(call)], CallAttempt.objects.filter(call=call, holds_slot=True).count()))
    assert results[0] == results[1]
    assert results[0][:3] == (True, False, CallStatus.IN_PROGRESS)
