"""The call's routing state, typed (``tracking.call_state``): round trips, older layouts, garbage."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracking.call_state import (
    CallState,
    Ending,
    MenuPosition,
    NoAnswerStop,
    QueueStay,
    SkipRecord,
    SpamMark,
    TailEntry,
    TestOptions,
)


def full_state() -> CallState:
    return CallState(
        strategy="priority_weight", steps=[[3], [1, 2]], options={3: {"name": "Denver", "number": "+13035550100"}, 1: {"name": "A"}},
        skipped=[SkipRecord(4, "Boulder", "capped", "hourly cap 2 reached", 1_800_000_000), SkipRecord(5, "Aurora", "closed", "closed")],
        sticky_handler=3, one_handler_per_call=True, plan_index=1, dials=2,
        tail=[TailEntry("fallback", "campaign's company phone", "+13035550199", None, "", "company_phone"),
              TailEntry("menu", "menu 'Nobody free'", "", step="menu", menu_id=7), TailEntry("queue", "campaign's queue", "", step="queue")],
        tail_index=1, no_answer=[NoAnswerStop("queue", after=1), NoAnswerStop("menu", after=2, name="Nobody free")],
        ending=Ending("hangup", "Sorry."), menu=MenuPosition(rounds=2, menus=3), queue=QueueStay(at=1_700_000_000, result="leave", seconds=60),
        test=TestOptions(webhooks=True, clock=datetime(2026, 12, 7, 9, 30, tzinfo=UTC)),
        spam=SpamMark(score=110, reasons=("the caller ID's STIR/SHAKEN verification failed", "the caller name 'SCAM' has the spam label 'SCAM'"),
                      codes=("attestation_failed", "caller_name"), is_spam=True, action="not_payable", unpaid=True),
    )


def test_a_state_reads_back_what_it_wrote():
    state = full_state()
    again = CallState.from_json(state.to_json(), plan_index=state.plan_index)
    assert again == state
    assert state.to_json()["v"] == 2


def test_the_spam_mark_reads_alone_and_garbage_in_it_reads_as_defaults():
    state = full_state()
    assert CallState.spam_from_json(state.to_json()) == state.spam
    assert CallState.spam_from_json({"v": 2}) is None and CallState.spam_from_json(None) is None
    odd = CallState.from_json({"v": 2, "spam": {"score": "high", "reasons": "x", "codes": [1, "blocked"], "unpaid": 1}}).spam
    assert odd == SpamMark(score=0, reasons=(), codes=("blocked",), is_spam=False, action="", unpaid=True)


def test_an_empty_state_is_small():
    assert CallState().to_json() == {"v": 2}


def test_the_layout_before_the_typed_state_still_loads():
    """A call in progress across the upgrade: answers in the column (now Call.answers), a queue marked "enqueued", a
    capped skip without frees_at (read as freeing at once), option keys as strings."""
    legacy = {
        "answers": {"incoming": "<Response/>"}, "strategy": "sequential", "steps": [[7]], "options": {"7": {"name": "Lone"}},
        "skipped": [{"handler_id": 8, "name": "Full", "reason": "capped", "detail": "concurrency cap 1 reached"}],
        "queue": {"enqueued": True, "at": 1_700_000_000}, "ivr": {"rounds": 1}, "dials": 1,
        "test": {"webhooks": False, "clock": None},
    }
    state = CallState.from_json(legacy, plan_index=1)
    assert state.options == {7: {"name": "Lone"}} and state.option_name(7) == "Lone" and state.option_name(9) == "9"
    assert state.skipped[0].frees_at == 0 and state.capped_handler_ids() == [8]
    assert state.queue == QueueStay(at=1_700_000_000) and state.menu == MenuPosition(1, 1) and state.test == TestOptions()
    assert "answers" not in state.to_json()


@pytest.mark.parametrize("garbage", [None, [], "text", 3, {"steps": "x", "skipped": [1, None], "options": [], "tail": {},
                                                             "ivr": "x", "queue": 5, "test": {"clock": "not a date"}, "dials": "2"}])
def test_garbage_reads_as_an_empty_state(garbage):
    state = CallState.from_json(garbage)
    assert state.steps == [] and state.skipped == [] and state.dials == 0 and state.tail is None


json_values: st.SearchStrategy = st.deferred(
    lambda: st.none() | st.booleans() | st.integers() | st.text(max_size=5)
    | st.lists(json_values, max_size=3) | st.dictionaries(st.text(max_size=12), json_values, max_size=3)
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["strategy", "steps", "options", "skipped", "sticky_handler", "dials", "tail", "tail_index",
                                        "terminal", "ivr", "queue", "test", "one_handler_per_call", "no_answer"]), json_values, max_size=8))
def test_any_json_loads_without_an_error_and_round_trips_after_one_load(data):
    state = CallState.from_json(data)
    assert CallState.from_json(state.to_json()) == state


def test_a_tail_stored_before_queue_and_menu_steps_still_loads_and_is_written_back_the_same():
    """A call in progress across the upgrade: its tail entries have no menu_id, the state no no-answer stops."""
    stored = {"v": 2, "tail": [{"kind": "fallback", "label": "campaign's company phone", "number": "+13035550199",
                                "receiving_number_id": None, "send_digits": "", "step": "company_phone"}], "tail_index": 0,
              "terminal": {"kind": "hangup", "message": "Bye."}}
    state = CallState.from_json(stored)
    assert state.tail == [TailEntry("fallback", "campaign's company phone", "+13035550199", step="company_phone")]
    assert state.no_answer == [] and state.to_json() == stored


def test_a_restarted_route_forgets_its_tail():
    state = full_state()
    state.tail_restart()
    assert (state.tail, state.tail_index, state.ending) == (None, 0, None)
    assert state.no_answer  # what the route in words tells is kept


def test_the_plan_rest_and_the_next_dial_follow_the_plan_index():
    state = full_state()
    assert state.plan_rest() == [1, 2]
    assert state.next_dial() == 3 and state.dials == 3
    state.menu_opened()
    assert state.menu == MenuPosition(rounds=1, menus=4)
