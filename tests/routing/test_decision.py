"""The pure routing decision: eligibility, strategies, sticky routing, tails, IVR and tags (no database)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from routing import decision as dec
from routing.geo import caller_geo

MON_NOON_NY = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)  # Monday 12:00 in New York (EST)


def opt(id, **kw):
    kw.setdefault("name", f"H{id}")
    kw.setdefault("number", f"+1303555{id:04d}")
    return dec.HandlerOption(id=id, **kw)


def ctx(at=MON_NOON_NY, **tags):
    return dec.CallContext("CA1", "+14155550100", "+18005550100", at, tags)


def plan(options, loads=None, **kw):
    kw.setdefault("context", ctx())
    return dec.plan_build(options=options, loads=loads or {}, **kw)


# --- eligibility ---------------------------------------------------------------------------------------------


def test_disabled_handler_is_skipped_with_the_reason():
    p = plan([opt(1, enabled=False), opt(2)])
    assert p.steps == [[2]]
    assert (p.skipped[0].handler_id, p.skipped[0].reason) == (1, dec.DISABLED)


def test_disabled_campaign_skips_everyone():
    p = plan([opt(1), opt(2)], campaign_enabled=False)
    assert p.steps == [] and {s.reason for s in p.skipped} == {dec.DISABLED}


def test_handler_without_a_number_is_skipped():
    assert plan([opt(1, number="")]).skipped[0].reason == dec.NO_NUMBER


def test_a_handler_that_had_the_caller_is_skipped_as_a_duplicate_and_the_call_goes_to_the_next():
    p = plan([opt(1, priority=1), opt(2, priority=2)], duplicates={1: "answered 3 days ago; restricts duplicates for 7 days"},
             sticky_handler_id=1)
    assert p.steps == [[2]] and p.sticky_handler_id is None
    assert (p.skipped[0].handler_id, p.skipped[0].reason, p.skipped[0].detail) == (
        1, dec.DUPLICATE, "answered 3 days ago; restricts duplicates for 7 days")


def test_duplicates_are_found_per_handler_window_and_mode():
    at = MON_NOON_NY
    options = [
        opt(1, duplicate_days=7), opt(2, duplicate_days=2), opt(3, duplicate_days=30, duplicate_on=dec.DUPLICATE_CONVERTED),
        opt(4, duplicate_days=30, duplicate_on=dec.DUPLICATE_CONVERTED), opt(5),
    ]
    three_days = at - timedelta(days=3, minutes=5)
    history = {
        1: dec.CallerHistory(answered_at=three_days),
        2: dec.CallerHistory(answered_at=three_days),  # outside its 2 days
        3: dec.CallerHistory(answered_at=at - timedelta(hours=1)),  # answered, never converted
        4: dec.CallerHistory(answered_at=three_days, converted_at=at - timedelta(hours=5)),
        5: dec.CallerHistory(answered_at=at - timedelta(hours=1)),  # no restriction
    }
    assert dec.duplicate_windows(options) == {1: 7, 2: 2, 3: 30, 4: 30}
    assert dec.duplicates_find(options, history, at) == {
        1: "answered 3 days ago; restricts duplicates for 7 days",
        4: "converted 5 hours ago; restricts duplicates for 30 days",
    }


@pytest.mark.parametrize(
    ("hours", "tz", "at", "open_"),
    [
        ({"mon": ["09:00-17:00"]}, "America/New_York", MON_NOON_NY, True),
        ({"mon": ["09:00-17:00"]}, "America/Los_Angeles", MON_NOON_NY, True),  # 09:00 in LA: the opening minute
        ({"mon": ["10:00-17:00"]}, "America/Los_Angeles", MON_NOON_NY, False),
        ({"mon": ["13:00-17:00"]}, "America/New_York", MON_NOON_NY, False),
        ({"sun": ["22:00-02:00+1"]}, "America/New_York", datetime(2026, 3, 2, 6, 30, tzinfo=UTC), True),  # Mon 01:30 local
        ({"sun": ["22:00-02:00+1"]}, "America/New_York", datetime(2026, 3, 2, 7, 30, tzinfo=UTC), False),  # Mon 02:30
        ({"sun": ["22:00-02:00+1"]}, "America/New_York", datetime(2026, 3, 2, 3, 30, tzinfo=UTC), True),  # Sun 22:30
        # DST starts Sun 8 March 2026 in New York: 09:00 local is 13:00 UTC after, 14:00 UTC before.
        ({"mon": ["09:00-10:00"]}, "America/New_York", datetime(2026, 3, 9, 13, 30, tzinfo=UTC), True),
        ({"mon": ["09:00-10:00"]}, "America/New_York", datetime(2026, 3, 2, 13, 30, tzinfo=UTC), False),
        ({"mon": ["09:00-10:00"]}, "Europe/London", datetime(2026, 3, 30, 8, 30, tzinfo=UTC), True),  # BST: 09:30 local
    ],
)
def test_open_now_in_the_handlers_own_time_zone(hours, tz, at, open_):
    p = plan([opt(1, always_open=False, business_hours=hours, timezone=tz)], context=ctx(at))
    assert (p.steps == [[1]]) is open_
    if not open_:
        assert p.skipped[0].reason == dec.CLOSED and tz in p.skipped[0].detail


def test_always_open_ignores_the_hours():
    assert plan([opt(1, always_open=True, business_hours={"tue": ["09:00-10:00"]})]).steps == [[1]]


def test_unreadable_hours_close_the_handler_instead_of_failing():
    p = plan([opt(1, always_open=False, business_hours={"mon": ["nonsense"]})])
    assert p.skipped[0].reason == dec.CLOSED and "unreadable" in p.skipped[0].detail


@pytest.mark.parametrize(
    ("criteria", "tags", "ok"),
    [
        ([{"key": "caller_state", "op": "one_of", "value": ["CA", "NV"]}], {"caller_state": "ca"}, True),
        ([{"key": "caller_state", "op": "one_of", "value": ["CA", "NV"]}], {"caller_state": "TX"}, False),
        ([{"key": "caller_state", "op": "one_of", "value": ["CA"]}], {}, False),
        ([{"key": "utm_source", "op": "equals", "value": "google"}], {"utm_source": "Google"}, True),
        ([{"key": "key_pressed", "op": "equals", "value": "2"}], {"key_pressed": "1"}, False),
        ([{"key": "caller_zip", "op": "not_one_of", "value": ["10001"]}], {}, True),
        ([{"key": "gclid", "op": "present"}], {"gclid": "x"}, True),
        ([{"key": "gclid", "op": "present"}, {"key": "caller_state", "op": "equals", "value": "NY"}], {"gclid": "x", "caller_state": "CA"}, False),
    ],
)
def test_tag_criteria(criteria, tags, ok):
    p = plan([opt(1, tag_criteria=criteria)], context=ctx(**tags))
    assert (p.steps == [[1]]) is ok
    if not ok:
        assert p.skipped[0].reason == dec.TAGS and "call has" in p.skipped[0].detail


@pytest.mark.parametrize(
    ("caps", "load", "why"),
    [
        ({"concurrency_cap": 3}, dec.HandlerLoad(in_progress=3), "concurrency cap 3 reached (3 calls in progress)"),
        ({"concurrency_cap": 3}, dec.HandlerLoad(in_progress=2), ""),
        ({"hourly_cap": 5}, dec.HandlerLoad(hour=5), "hourly cap 5 reached (5 calls this hour)"),
        ({"daily_cap": 10}, dec.HandlerLoad(hour=1, day=10), "daily cap 10 reached (10 calls today)"),
        ({"monthly_cap": 100}, dec.HandlerLoad(month=101), "monthly cap 100 reached (101 calls this month)"),
        ({"total_cap": 1}, dec.HandlerLoad(total=1), "total cap 1 reached (1 calls in total)"),
        ({"daily_cap": 2, "cap_counts": "conversion"}, dec.HandlerLoad(day=2), "daily cap 2 reached (2 conversions today)"),
        ({"concurrency_cap": 0}, dec.HandlerLoad(), "concurrency cap 0 reached (0 calls in progress)"),
    ],
)
def test_caps(caps, load, why):
    assert dec.cap_reached(opt(1, **caps), load) == why
    p = plan([opt(1, **caps)], loads={1: load})
    assert (p.steps == []) is bool(why)


def test_period_starts_follow_the_handlers_wall_clock_across_dst():
    # 2026-03-08 03:30 New York (just after the spring-forward gap), 07:30 UTC.
    starts = dec.period_starts("America/New_York", datetime(2026, 3, 8, 7, 30, tzinfo=UTC))
    assert starts.day == datetime(2026, 3, 8, 5, 0, tzinfo=UTC)  # midnight EST
    assert starts.hour == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT
    assert starts.month == datetime(2026, 3, 1, 5, 0, tzinfo=UTC)
    tokyo = dec.period_starts("Asia/Tokyo", datetime(2026, 3, 8, 7, 30, tzinfo=UTC))
    assert tokyo.day == datetime(2026, 3, 7, 15, 0, tzinfo=UTC)
    # Fall back, 2026-11-01: 01:30 EST is the second 01:30 of the night (06:30 UTC); its hour began 06:00 UTC.
    repeated = dec.period_starts("America/New_York", datetime(2026, 11, 1, 6, 30, tzinfo=UTC))
    assert repeated.hour == datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
    assert repeated.day == datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # midnight EDT
    india = dec.period_starts("Asia/Kolkata", datetime(2026, 3, 8, 7, 10, tzinfo=UTC))  # 12:40 local
    assert india.hour == datetime(2026, 3, 8, 6, 30, tzinfo=UTC)


@pytest.mark.parametrize("zone", ["America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "America/St_Johns", "Europe/London", "UTC"])
def test_period_starts_kept_per_quarter_hour_are_those_of_the_exact_moment(zone):
    """The starts kept per zone and quarter hour of UTC equal the starts worked out for each exact moment, across
    DST changes (Lord Howe moves by half an hour; Kathmandu is +05:45, St John's -03:30/-02:30)."""
    from calltrack import hours as hours_rules

    rng = random.Random(zone)
    for first in (datetime(2026, 3, 7, tzinfo=UTC), datetime(2026, 4, 4, tzinfo=UTC), datetime(2026, 10, 3, tzinfo=UTC),
                  datetime(2026, 10, 31, tzinfo=UTC), datetime(2026, 12, 31, 20, tzinfo=UTC)):
        for step in range(0, 3 * 24 * 60, 7):
            at = first + timedelta(minutes=step, seconds=rng.randrange(60), microseconds=rng.randrange(10**6))
            assert dec.period_starts(zone, at) == dec._period_starts(hours_rules.zone(zone), at), at


def test_period_starts_of_an_offset_in_seconds_are_worked_out_each_time():
    # Amsterdam's local mean time (+00:19:32 before 1937) changes its hour start inside a quarter hour of UTC.
    at = datetime(1930, 6, 1, 12, 1, tzinfo=UTC)
    assert dec.period_starts("Europe/Amsterdam", at).hour == datetime(1930, 6, 1, 11, 40, 28, tzinfo=UTC)
    assert dec.period_starts("Europe/Amsterdam", at + timedelta(minutes=10)).hour == datetime(1930, 6, 1, 11, 40, 28, tzinfo=UTC)
    # 12:40:00 and 12:41:00 UTC share a quarter hour, not a local hour (it turns at 12:40:28 UTC).
    assert dec.period_starts("Europe/Amsterdam", datetime(1930, 6, 1, 12, 40, tzinfo=UTC)).hour == datetime(1930, 6, 1, 11, 40, 28, tzinfo=UTC)
    assert dec.period_starts("Europe/Amsterdam", datetime(1930, 6, 1, 12, 41, tzinfo=UTC)).hour == datetime(1930, 6, 1, 12, 40, 28, tzinfo=UTC)


# --- strategies ------------------------------------------------------------------------------------------------


def test_priority_first_then_next_priority():
    p = plan([opt(1, priority=2), opt(2, priority=1), opt(3, priority=3)], rng=random.Random(1))
    assert p.steps == [[2], [1], [3]]


def test_weight_shares_calls_inside_a_priority():
    rng = random.Random(7)
    options = [opt(1, weight=1), opt(2, weight=3), opt(3, priority=2, weight=100)]
    firsts = Counter(plan(options, rng=rng).steps[0][0] for _ in range(8000))
    assert set(firsts) == {1, 2}  # priority 2 never first while priority 1 is open
    assert 2.6 < firsts[2] / firsts[1] < 3.4


def test_weighted_order_keeps_every_handler_of_the_priority():
    p = plan([opt(i, weight=i) for i in range(1, 6)], rng=random.Random(3))
    assert sorted(h for step in p.steps for h in step) == [1, 2, 3, 4, 5]


def test_round_robin_rotates_among_the_handlers_that_can_take_the_call():
    options = [opt(1, position=0), opt(2, position=1, enabled=False), opt(3, position=2), opt(4, position=3)]
    firsts = [plan(options, strategy=dec.ROUND_ROBIN, rr_position=n).steps[0][0] for n in range(6)]
    assert firsts == [1, 3, 4, 1, 3, 4]
    assert plan(options, strategy=dec.ROUND_ROBIN, rr_position=2).steps == [[4], [1], [3]]


def test_round_robin_spreads_evenly_over_many_calls():
    options = [opt(i, position=i) for i in range(5)]
    counts = Counter(plan(options, strategy=dec.ROUND_ROBIN, rr_position=n).steps[0][0] for n in range(500))
    assert set(counts.values()) == {100}


def test_sequential_always_starts_at_the_top_of_the_list():
    options = [opt(1, position=5, priority=1), opt(2, position=1, priority=9), opt(3, position=3)]
    assert plan(options, strategy=dec.SEQUENTIAL).steps == [[2], [3], [1]]


def test_simultaneous_rings_up_to_ten_at_once():
    options = [opt(i, position=i) for i in range(1, 24)]
    steps = plan(options, strategy=dec.SIMULTANEOUS).steps
    assert [len(s) for s in steps] == [10, 10, 3]
    assert steps[0] == list(range(1, 11))


def test_least_connected_orders_by_calls_in_progress():
    loads = {1: dec.HandlerLoad(in_progress=4), 2: dec.HandlerLoad(in_progress=0), 3: dec.HandlerLoad(in_progress=1)}
    assert plan([opt(1), opt(2), opt(3)], loads=loads, strategy=dec.LEAST_CONNECTED).steps == [[2], [3], [1]]


def test_unknown_strategy_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown routing strategy 'nope'"):
        plan([opt(1)], strategy="nope")


def test_sticky_handler_goes_first_when_eligible():
    p = plan([opt(1, priority=1), opt(2, priority=2)], sticky_handler_id=2, rng=random.Random(0))
    assert p.steps == [[2], [1]] and p.sticky_handler_id == 2


def test_sticky_handler_that_is_capped_is_not_forced():
    p = plan([opt(1), opt(2, concurrency_cap=1)], loads={2: dec.HandlerLoad(in_progress=1)}, sticky_handler_id=2)
    assert p.steps == [[1]] and p.sticky_handler_id is None


def test_sticky_with_simultaneous_rings_the_known_handler_alone_first():
    options = [opt(i, position=i) for i in range(1, 4)]
    assert plan(options, strategy=dec.SIMULTANEOUS, sticky_handler_id=3).steps == [[3], [1, 2]]


def test_only_handler_limits_the_plan_to_the_ivr_choice():
    assert plan([opt(1), opt(2), opt(3)], only_handler_id=2).steps == [[2]]


def test_a_plan_kept_in_the_call_state_lists_steps_skip_reasons_and_the_planned_handlers_only():
    from tracking.call_state import CallState

    options = [opt(1), opt(2, enabled=False)]
    state = CallState(plan_index=3)
    plan(options).keep(state, {o.id: o for o in options})
    data = state.to_json()
    assert data["steps"] == [[1]] and state.plan_index == 0
    assert data["skipped"] == [{"handler_id": 2, "name": "H2", "reason": "disabled", "detail": "handler disabled"}]
    assert list(data["options"]) == ["1"]
    assert CallState.from_json(data).to_json() == data


# --- after the plan ------------------------------------------------------------------------------------------


def agent(n, label):
    return dec.TailStep("fallback", label, f"+1303555{n:04d}", n)


def test_tail_runs_the_fallback_chain_in_the_seeds_order():
    steps, terminal = dec.tail_build(dec.FallbackInputs(
        last_no_answer_action="hangup", number_agent=agent(1, "number"), caller_agent=agent(2, "caller"),
        forwarding_number="+13035550003", company_phone="+13035550004", campaign_message="Bye.",
    ))
    assert [s.number for s in steps] == ["+13035550001", "+13035550002", "+13035550003", "+13035550004"]
    assert terminal == dec.Terminal("hangup", "Bye.")


def test_tail_forward_comes_before_the_chain_and_numbers_are_not_dialled_twice():
    forward = dec.TailStep("no_answer_forward", "fwd", "+13035550009", 9)
    steps, _ = dec.tail_build(
        dec.FallbackInputs(last_no_answer_action="forward", forward=forward, number_agent=agent(1, "n"), company_phone="+13035550001"),
        already_dialed=["+13035550009"],
    )
    assert [s.number for s in steps] == ["+13035550001"]


def test_tail_voicemail_ends_the_call_with_a_message():
    steps, terminal = dec.tail_build(dec.FallbackInputs(
        last_no_answer_action="voicemail", last_no_answer_message="Leave a message.", company_phone="+13035550004"))
    assert steps == [] and terminal == dec.Terminal("voicemail", "Leave a message.")


def test_tail_with_nothing_configured_is_a_default_message():
    steps, terminal = dec.tail_build(dec.FallbackInputs())
    assert steps == [] and terminal.kind == "hangup" and terminal.message


MENU = dec.IVRMenuData(5, "Nobody free", "Press 1.")


def test_tail_queue_comes_before_the_chain_and_only_once_a_call():
    inputs = dec.FallbackInputs(last_no_answer_action="queue", last_no_answer_message="Sorry.", company_phone="+13035550004")
    steps, terminal = dec.tail_build(inputs)
    assert [(s.kind, s.number) for s in steps] == [("queue", ""), ("fallback", "+13035550004")]
    assert terminal == dec.Terminal("hangup", "Sorry.")
    steps, _ = dec.tail_build(inputs, queued=True)  # queued before (every handler busy, or another line's no answer)
    assert [s.kind for s in steps] == ["fallback"]


def test_tail_menu_comes_before_the_chain_while_the_call_may_hear_one_more_menu():
    inputs = dec.FallbackInputs(last_no_answer_action="menu", menu=MENU, company_phone="+13035550004")
    steps, _ = dec.tail_build(inputs, menus_heard=dec.MENUS_MAX - 1)
    assert steps[0] == dec.TailStep("menu", "menu 'Nobody free'", "", step="menu", menu_id=5) and steps[1].number == "+13035550004"
    assert [s.kind for s in dec.tail_build(inputs, menus_heard=dec.MENUS_MAX)[0]] == ["fallback"]
    # A line whose menu is not one the call's campaign can play (another campaign's, no keys) goes on as 'hangup'.
    assert [s.kind for s in dec.tail_build(dec.FallbackInputs(last_no_answer_action="menu", company_phone="+13035550004"))[0]] == ["fallback"]


def test_a_tail_number_set_to_queue_or_menu_puts_it_before_the_rest_of_the_chain():
    rest = [agent(2, "caller"), agent(4, "company")]
    hangup = dec.Terminal("hangup", "Bye.")
    steps, terminal = dec.tail_after_no_answer(dec.NoAnswerSetting("queue", "Closed."), rest=rest, terminal=hangup, already_dialed=[],
                                               forwards=0)
    assert [s.kind for s in steps] == ["queue", "fallback", "fallback"] and terminal == dec.Terminal("hangup", "Closed.")
    steps, _ = dec.tail_after_no_answer(dec.NoAnswerSetting("queue"), rest=rest, terminal=hangup, already_dialed=[], forwards=0, queued=True)
    assert steps == rest
    steps, _ = dec.tail_after_no_answer(dec.NoAnswerSetting("menu", menu=MENU), rest=rest, terminal=hangup, already_dialed=[], forwards=0,
                                        menus_heard=3)
    assert [(s.kind, s.menu_id) for s in steps] == [("menu", 5), ("fallback", None), ("fallback", None)]
    steps, _ = dec.tail_after_no_answer(dec.NoAnswerSetting("menu", menu=MENU), rest=rest, terminal=hangup, already_dialed=[], forwards=0,
                                        menus_heard=dec.MENUS_MAX)
    assert steps == rest


# --- IVR, tags, whisper, geo -------------------------------------------------------------------------------


CHOICES = [dec.IVRChoice("1", "tag", "department", "sales", label="Sales"), dec.IVRChoice("2", "handler", handler_id=7)]


@pytest.mark.parametrize(
    ("digits", "round_no", "repeat", "default", "expected"),
    [
        ("1", 1, 1, "", dec.IVRResult(False, {"key_pressed": "1", "department": "sales"}, None, "pressed 1: Sales")),
        ("2", 1, 1, "", dec.IVRResult(False, {"key_pressed": "2"}, 7, "pressed 2: straight to a handler")),
        ("", 1, 1, "1", dec.IVRResult(True, note="no key pressed")),
        ("5", 1, 1, "1", dec.IVRResult(True, note="key '5' has no option")),
        ("", 2, 1, "1", dec.IVRResult(False, {"key_pressed": "1", "ivr_default": "yes", "department": "sales"}, None, "default 1: Sales")),
        ("", 2, 1, "", dec.IVRResult(False, note="no option chosen; routing without a menu choice")),
        ("", 1, 0, "", dec.IVRResult(False, note="no option chosen; routing without a menu choice")),
    ],
)
def test_ivr_choose(digits, round_no, repeat, default, expected):
    assert dec.ivr_choose(digits=digits, round_no=round_no, repeat=repeat, default_digit=default, choices=CHOICES) == expected


def test_ivr_tag_value_defaults_to_the_key():
    result = dec.ivr_choose(digits="3", round_no=1, repeat=0, default_digit="", choices=[dec.IVRChoice("3", "tag", "choice")])
    assert result.tags == {"key_pressed": "3", "choice": "3"}


def test_call_tags_merge_marketing_data_geo_and_extras():
    tags = dec.call_tags(caller_state="CA", source="adwords", marketing_data={"utm_source": "g", "caller_state": "fake", "n": 3, "x": None, "b": True},
                         extra={"department": "sales", "empty": ""})
    assert tags == {"utm_source": "g", "caller_state": "CA", "n": "3", "source": "adwords", "department": "sales"}


def test_whisper_text_default_and_template():
    assert dec.whisper_text("", campaign="Roofing", source="Ads", city="Reno", state="NV") == "Call from Roofing, source Ads, caller in Reno, NV."
    assert dec.whisper_text("", campaign="", source="", city="", state="") == "Incoming call, caller in an unknown place."
    assert dec.whisper_text("{campaign} / {state}", campaign="R", source="", city="", state="TX") == "R / TX"


@pytest.mark.parametrize(
    ("number", "params", "expected"),
    [
        ("+14155550100", {}, ("San Francisco", "CA", "", "US")),
        ("+13035550123", {}, ("", "CO", "", "US")),
        ("+14155550100", {"state": "Nevada", "city": "Reno", "zip_code": "89501"}, ("Reno", "NV", "89501", "US")),
        ("anonymous", {}, ("", "", "", "")),
        ("+442071234567", {}, ("London", "", "", "GB")),
        ("+14155550100", {"country": "US", "state": "ny"}, ("San Francisco", "NY", "", "US")),
    ],
)
def test_caller_geo(number, params, expected):
    g = caller_geo(number=number, **params)
    assert (g.city, g.state, g.zip, g.country) == expected


def test_every_handler_option_field_is_declared_once_for_the_campaigns_read():
    from routing.services.config import OPTION_COLUMNS, OPTION_COMPUTED

    assert sorted([*OPTION_COLUMNS, *OPTION_COMPUTED]) == sorted(dec.OPTION_FIELDS)
    assert set(dec.DIAL_FIELDS) <= set(dec.OPTION_FIELDS) and set(dec.CAP_FIELDS) <= set(dec.DIAL_FIELDS)


def test_a_handler_option_round_trips_through_its_declared_fields():
    o = dec.HandlerOption(id=3, name="Acme", number="+13035550100", receiving_number_id=9, send_digits="ww12", ring_timeout=20,
                          timezone="America/Chicago", hourly_cap=4, total_cap=9, cap_counts="conversion", priority=2)
    assert dec.HandlerOption.from_row(o.asdict()) == o
    dialled = dec.HandlerOption.from_row({**o.asdict(dec.DIAL_FIELDS), "id": 3})
    assert dialled.asdict(dec.DIAL_FIELDS) == o.asdict(dec.DIAL_FIELDS) and dialled.priority == 1


def test_an_option_stored_by_a_call_before_the_declared_fields_is_still_read():
    from routing.services.plan import _option_from_json

    old = {"name": "Acme", "number": "+13035550100", "receiving_number": 9, "send_digits": "", "ring_timeout": 20,
           "timezone": "America/Chicago", "cap_counts": "connection", "caps": [2, None, 5, None, 9]}
    assert _option_from_json(3, old) == dec.HandlerOption(
        id=3, name="Acme", number="+13035550100", receiving_number_id=9, ring_timeout=20, timezone="America/Chicago",
        concurrency_cap=2, daily_cap=5, total_cap=9)


def test_a_planned_handlers_stored_fields_round_trip_without_their_defaults():
    from routing.decision import DIAL_FIELDS, HandlerOption

    plain = HandlerOption(id=1, name="Front desk", number="+13035550100")
    capped = HandlerOption(id=2, name="Buyer", number="+13035550101", receiving_number_id=7, send_digits="ww12", ring_timeout=20,
                           timezone="America/Denver", concurrency_cap=3, hourly_cap=0, daily_cap=None, total_cap=10, cap_counts="conversion")
    assert plain.dial_json() == {"name": "Front desk", "number": "+13035550100"}
    assert capped.dial_json()["hourly_cap"] == 0  # a cap of 0 is not the default None
    for option in (plain, capped):
        stored = option.dial_json()
        stored["name"] += ""  # a copy: the cached fields stay as they were
        rebuilt = HandlerOption.from_row({**stored, "id": option.id})
        assert rebuilt.asdict(DIAL_FIELDS) == option.asdict(DIAL_FIELDS)
