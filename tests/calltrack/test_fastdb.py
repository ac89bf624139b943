"""calltrack.fastdb: the hand-written statements of the hot paths give what the ORM would, on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from calltrack import fastdb
from calltrack.numbers.models import TrackingNumber
from tests.numbers.factories import NumberPoolFactory, TrackingNumberFactory
from tests.tracking.factories import CallAttemptFactory, CallFactory, CampaignFactory, HandlerFactory
from tracking.models import Call, CallAttempt, CallEvent, Campaign, Handler

pytestmark = pytest.mark.django_db


def test_insert_sets_the_primary_key_and_stores_every_field_as_save_would():
    call = CallFactory()
    handler = HandlerFactory()
    at = timezone.now()
    attempt = fastdb.insert(CallAttempt(call=call, sequence=3, handler=handler, number_dialed="+13035550100", started_at=at,
                                        holds_slot=True, slot_expires_at=at + timedelta(seconds=40), counted=True))
    assert attempt.pk is not None and not attempt._state.adding
    stored = CallAttempt.objects.get(pk=attempt.pk)
    assert (stored.call_id, stored.sequence, stored.handler_id, stored.started_at, stored.holds_slot, stored.counted, stored.status) == (
        call.pk, 3, handler.pk, at, True, True, "dialing")


def test_insert_many_writes_every_row_in_one_statement(django_assert_num_queries):
    call = CallFactory()
    events = [CallEvent(call=call, kind=f"k{i}", message=f"step {i}", data={"i": i}) for i in range(3)]
    with django_assert_num_queries(1):
        fastdb.insert_many(events)
    assert list(CallEvent.objects.filter(call=call).order_by("kind").values_list("kind", "message", "data")) == [
        ("k0", "step 0", {"i": 0}), ("k1", "step 1", {"i": 1}), ("k2", "step 2", {"i": 2})]
    with django_assert_num_queries(0):
        fastdb.insert_many([])


def test_insert_many_returning_sets_each_rows_primary_key_in_order(django_assert_num_queries):
    call = CallFactory()
    handlers = [HandlerFactory() for _ in range(3)]
    at = timezone.now()
    attempts = [CallAttempt(call=call, sequence=1, handler=h, number_dialed=f"+1303555010{i}", started_at=at, holds_slot=True,
                            slot_expires_at=at + timedelta(seconds=40), counted=True) for i, h in enumerate(handlers)]
    with django_assert_num_queries(1 if connection.features.can_return_rows_from_bulk_insert else 3):
        fastdb.insert_many(attempts, returning=True)
    assert all(a.pk is not None and not a._state.adding for a in attempts)
    stored = {a.pk: (a.handler_id, a.number_dialed) for a in CallAttempt.objects.filter(call=call)}
    assert stored == {a.pk: (h.pk, f"+1303555010{i}") for i, (a, h) in enumerate(zip(attempts, handlers, strict=True))}


def _as_built(obj):
    return {k: v for k, v in vars(obj).items() if k != "_state"}, obj._state.adding, obj._state.db, dict(obj._state.fields_cache)


@pytest.mark.parametrize("build", [
    lambda call, handler: (Call, {"call_sid": "CA1", "caller_number": "+14155550100", "campaign": call.campaign, "source": None,
                                  "tags": {"a": "b"}, "decision": {"answers": {}}, "started_at": timezone.now()}),
    lambda call, handler: (CallAttempt, {"call": call, "sequence": 2, "handler_id": handler.pk, "receiving_number_id": None,
                                         "number_dialed": "+13035550100", "holds_slot": True, "counted": True}),
    lambda call, handler: (CallEvent, {"call": call, "kind": "call.started", "message": "m", "data": {}}),
    lambda call, handler: (CallEvent, {}),
])
def test_new_builds_what_the_models_constructor_builds(build):
    call, handler = CallFactory(campaign=CampaignFactory()), HandlerFactory()
    model, values = build(call, handler)
    with time_machine.travel(timezone.now(), tick=False):  # defaults such as ``timezone.now`` alike
        made, expected = fastdb.new(model, **values), model(**values)
    assert type(made) is model
    built, reference = _as_built(made), _as_built(expected)
    # Callable defaults give each instance its own value: compare them as values.
    assert built == reference
    assert [k for k in vars(made)] == [k for k in vars(expected)]
    for name, value in vars(made).items():
        if isinstance(value, dict | list) and name not in values:
            assert value is not getattr(expected, name)


def test_new_leaves_to_the_orm_what_it_does_not_build_itself():
    call = CallFactory()
    with pytest.raises(TypeError):
        fastdb.new(CallEvent, kind="x", no_such_field=1)
    with pytest.raises(ValueError):
        fastdb.new(CallEvent, call=HandlerFactory())  # not a call: the ORM's own error
    both = fastdb.new(CallEvent, call=call, call_id=call.pk)
    assert both.call_id == call.pk


def test_update_writes_only_the_fields_named():
    call = CallFactory(talk_time=5, duration=7)
    Call.objects.filter(pk=call.pk).update(duration=99)  # another writer moved a field not named below
    call.talk_time = 60
    assert fastdb.update(call, ["talk_time"]) == 1
    call.refresh_from_db()
    assert (call.talk_time, call.duration) == (60, 99)


def test_joined_loader_builds_the_row_and_its_joins_like_select_related():
    campaign = CampaignFactory()
    call = CallFactory(campaign=campaign, marketing_data={"utm": "x"})
    loader = fastdb.JoinedLoader(Call, {"campaign": Campaign}, where="call.id = %s")
    found, extra = loader.fetch([call.pk])
    expected = Call.objects.select_related("campaign").get(pk=call.pk)
    assert extra == ()
    assert [getattr(found, f.attname) for f in Call._meta.concrete_fields] == [getattr(expected, f.attname) for f in Call._meta.concrete_fields]
    assert Call.campaign.is_cached(found) and found.campaign == campaign and found.campaign.name == campaign.name
    assert loader.fetch([call.pk + 1000]) is None


def test_joined_loader_leaves_a_missing_join_empty_and_orders_by_its_own_parameter():
    call = CallFactory()
    first = CallAttemptFactory(call=call, sequence=1, handler=None, number_dialed="+13035550199")
    second = CallAttemptFactory(call=call, sequence=1)
    loader = fastdb.JoinedLoader(CallAttempt, {"handler": Handler}, where="callattempt.call_id = %s", order_by="callattempt.id DESC")
    rows = loader.fetch_all([call.pk])
    assert [a.pk for a, _ in rows] == [second.pk, first.pk]
    assert rows[1][0].handler is None and rows[0][0].handler.pk == second.handler_id
    assert "ORDER BY callattempt.id DESC" in loader.sql()


def test_joined_loader_names_tables_by_what_they_join_and_returns_extra_columns():
    pool = NumberPoolFactory()
    number = TrackingNumberFactory(number="+14155550142", kind="pool", pool=pool, campaign=None)
    loader = fastdb.JoinedLoader(
        TrackingNumber, {"pool": type(pool)}, where="trackingnumber.number = %s",
        extra="COALESCE(trackingnumber.campaign_id, pool.campaign_id)",
    )
    found, extra = loader.fetch([number.number])
    assert found.pk == number.pk and found.pool.pk == pool.pk
    assert extra == (pool.campaign_id,)


def test_a_join_may_not_take_the_models_own_name():
    with pytest.raises(ValueError, match="model's own name"):
        fastdb.JoinedLoader(Call, {"call": Call}, where="call.id = %s")


def test_a_locking_loader_locks_the_models_row_where_the_database_can():
    sql = fastdb.JoinedLoader(Call, {}, where="call.id = %s", lock=True).sql()
    assert sql.endswith(f"FOR UPDATE OF {connection.ops.quote_name('call')}") == connection.features.has_select_for_update


def test_values_of_other_types_still_go_through_the_fields_own_conversion():
    """The as-is shortcut takes only exact str/int/bool values of plain fields: a national number in a phone field
    is still stored in E.164, an int in a text field as text, a lazy string as its text."""
    from django.utils.functional import lazy

    from calltrack.numbers.models import BlockedCaller

    blocked = fastdb.insert(BlockedCaller(number="(303) 555-0100", reason="spam"))
    assert BlockedCaller.objects.get(pk=blocked.pk).number == "+13035550100"
    call = CallFactory()
    attempt = fastdb.insert(CallAttempt(call=call, sequence=1, number_dialed="+13035550100", started_at=timezone.now()))
    event = fastdb.insert(CallEvent(call=call, kind=lazy(lambda: "lazy-kind", str)(), message=12345, data={}))
    assert CallEvent.objects.filter(pk=event.pk).values_list("kind", "message").get() == ("lazy-kind", "12345")
    attempt.sequence = "7"  # a digit string in an integer field: int() as the ORM does
    fastdb.update(attempt, ["sequence"])
    assert CallAttempt.objects.get(pk=attempt.pk).sequence == 7


def test_joined_loader_instances_equal_the_orms():
    """The loader fills instances without Model.__init__: the same attribute values, saved state and related
    caches as the ORM's select_related."""
    call = CallFactory(campaign=CampaignFactory(), caller_city="Denver")
    loader = fastdb.JoinedLoader(Call, {"campaign": Campaign}, where="call.id = %s")
    loaded, _ = loader.fetch([call.pk])
    orm = Call.objects.select_related("campaign").get(pk=call.pk)
    fields = [f.attname for f in Call._meta.concrete_fields]
    assert [getattr(loaded, f) for f in fields] == [getattr(orm, f) for f in fields]
    assert (loaded._state.adding, loaded._state.db) == (False, orm._state.db)
    assert loaded.campaign == orm.campaign and loaded.campaign.name == orm.campaign.name
    assert loaded.get_status_display() == orm.get_status_display()
    loaded.caller_city = "Boulder"
    loaded.save(update_fields=["caller_city"])  # saves as an ORM instance would
    assert Call.objects.get(pk=call.pk).caller_city == "Boulder"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL arrays")
def test_pg_array_round_trips_every_value_as_a_typed_array():
    texts = ['plain', 'a "quoted" word', "back\\slash", "comma,brace{}", "NULL", "", " spaced ", "ünïcødé ☎", None]
    at = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::text[], %s::bigint[], %s::timestamptz[], %s::boolean[]",
                       [fastdb.pg_array(texts), fastdb.pg_array([1, -2, 9007199254740993, None]),
                        fastdb.pg_array([at, at - timedelta(days=40)]), fastdb.pg_array([True, False, None])])
        assert cursor.fetchone() == (texts, [1, -2, 9007199254740993, None], [at, at - timedelta(days=40)], [True, False, None])
        cursor.execute("SELECT cardinality(%s::bigint[])", [fastdb.pg_array([])])
        assert cursor.fetchone() == (0,)


def test_writes_run_together_in_one_statement_on_postgresql(django_assert_num_queries):
    call = CallFactory(caller_city="Denver")
    call.caller_city = "Boulder"
    events = [CallEvent(call=call, kind=f"k{i}", message="m", data={}) for i in range(2)]
    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 2):
        fastdb.run_together([fastdb.update_statement(call, ["caller_city"]), fastdb.insert_rows_statement(events)])
    assert Call.objects.get(pk=call.pk).caller_city == "Boulder"
    assert CallEvent.objects.filter(call=call).count() == 2


def test_rows_inserted_from_json_are_what_save_stores(django_assert_num_queries):
    """PostgreSQL takes the rows as one JSON parameter: every type a call has (dates, decimals, JSON with odd Unicode,
    NULLs, booleans) comes back as ``save`` stores it; elsewhere the same rows as VALUES."""
    tn = TrackingNumberFactory()
    at = timezone.now()
    values = dict(
        account_id=tn.account_id, tracking_number=tn, campaign=tn.campaign, caller_number="+14155550100", called_number=tn.number,
        caller_city="Zürich \"north\" \\ 東京", started_at=at, ended_at=at + timedelta(seconds=75), duration=75, revenue="12.345",
        tags={"a": "b\u2028c", "emoji": "📞", "nested": {"n": [1, 2.5, None, True]}}, marketing_data={}, decision={"plan": []},
        answers=None, is_test=True, converted=False,
    )
    saved = Call.objects.create(call_sid="CAsaved", **values)
    fast = fastdb.new(Call, call_sid="CAfast", **values)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT nextval(pg_get_serial_sequence('tracking_call', 'id'))")
            fast.pk = cursor.fetchone()[0]
    else:
        fast.pk = saved.pk + 1000
    with django_assert_num_queries(1):
        fastdb.run_together([fastdb.insert_rows_statement([fast], with_pk=True)])
    columns = [f.attname for f in Call._meta.concrete_fields if f.attname not in ("id", "call_sid")]
    assert Call.objects.filter(pk=fast.pk).values(*columns).get() == Call.objects.filter(pk=saved.pk).values(*columns).get()
    # Timeline steps (an aware datetime in another zone, JSON data) and an empty JSON list, as save() stores them.
    from zoneinfo import ZoneInfo

    when = at.astimezone(ZoneInfo("America/Denver"))
    events = [fastdb.new(CallEvent, call_id=saved.pk, at=when, kind=f"k{i}", message="ü\t\"q\"", data=data)
              for i, data in enumerate(({"x": [1, {"y": None}]}, [], {"s": "\u0001"}))]
    with django_assert_num_queries(1):
        fastdb.run_together([fastdb.insert_rows_statement(events)])
    stored = list(CallEvent.objects.filter(call_id=saved.pk).order_by("kind").values_list("at", "kind", "message", "data"))
    assert stored == [(at, f"k{i}", "ü\t\"q\"", e.data) for i, e in enumerate(events)]


def test_a_turns_call_fields_and_steps_are_written_when_it_is_flushed(django_assert_num_queries):
    from django.db import connection

    from routing.services import Links, Turn

    call = CallFactory(caller_city="Denver", plan_index=0)
    turn = Turn(links=Links("https://calls.example.com")).bind(call)
    call.caller_city, call.plan_index = "Boulder", 2
    turn.save("caller_city")
    turn.save("plan_index")  # fields gather; values are read at the flush
    turn.step("k", "m")
    assert Call.objects.get(pk=call.pk).caller_city == "Denver"
    call.caller_city = "Golden"
    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 2):
        turn.flush()
    assert Call.objects.filter(pk=call.pk).values_list("caller_city", "plan_index").get() == ("Golden", 2)
    assert CallEvent.objects.filter(call=call, kind="k").count() == 1
    with django_assert_num_queries(0):
        turn.flush()  # nothing gathered since


def test_amounts_are_added_in_sql_so_an_increment_made_in_between_is_kept():
    from routing.services import Links, Turn

    call = CallFactory(talk_time=10, caller_city="Denver")
    Call.objects.filter(pk=call.pk).update(talk_time=15)  # another callback added 5 s since this instance was read
    call.caller_city = "Boulder"
    fastdb.update(call, ["caller_city"], add={"talk_time": 20})
    assert Call.objects.filter(pk=call.pk).values_list("caller_city", "talk_time").get() == ("Boulder", 35)
    turn = Turn(links=Links("https://calls.example.com")).bind(call)
    turn.save("caller_city", add={"talk_time": 1})
    turn.save("plan_index", add={"talk_time": 2})
    turn.flush()
    assert Call.objects.get(pk=call.pk).talk_time == 38


def test_a_deferred_field_is_left_out_of_the_select_and_read_on_first_access(django_assert_num_queries):
    """``defer``: the column is not selected; the instance has it deferred as the ORM's ``defer()`` leaves it, and
    reading it costs one query (the status callback never reads a call's stored answers)."""
    call = CallFactory(campaign=CampaignFactory(), answers={"incoming": "<Response/>"})
    loader = fastdb.JoinedLoader(Call, {"campaign": Campaign}, where="call.id = %s", defer=("answers",))
    assert "answers" not in loader.sql()
    with django_assert_num_queries(1):
        loaded, _ = loader.fetch([call.pk])
    assert loaded.get_deferred_fields() == {"answers"} and loaded.campaign.pk == call.campaign_id
    assert loaded.call_sid == call.call_sid
    with django_assert_num_queries(1):
        assert loaded.answers == {"incoming": "<Response/>"}


def test_only_a_models_own_non_key_fields_may_be_deferred():
    with pytest.raises(ValueError, match="no field id, nonsense to defer"):
        fastdb.JoinedLoader(Call, {}, where="call.id = %s", defer=("nonsense", "id")).sql()
