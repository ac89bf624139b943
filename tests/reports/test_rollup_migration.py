"""Migration 0018 keeps the rollups made before it: keys get their hash, a day with a key of exactly 200
characters (perhaps a cut one) is dropped and marked for the next refresh, the zones rolled up are registered
and the pending change markers copied to each of them."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tracking.models import rollup_key_hash

BEFORE = [("tracking", "0017_money_history")]
AFTER = [("tracking", "0018_rollup_whole_keys_per_zone_marks")]


def _apps(target):
    executor = MigrationExecutor(connection)
    executor.migrate(target)
    return MigrationExecutor(connection).loader.project_state(target).apps


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_rollups_rehashes_keys_remarks_cut_days_and_marks_every_zone():
    apps = _apps(BEFORE)
    rollup, dirty = apps.get_model("tracking", "CallDayRollup"), apps.get_model("tracking", "CallRollupDirty")
    for tz in ("America/Chicago", "Asia/Tokyo"):
        rollup.objects.create(day=date(2026, 11, 2), tz=tz, dim="total", key="", calls=1)
        rollup.objects.create(day=date(2026, 11, 2), tz=tz, dim="utm_source", key="google", calls=1)
    rollup.objects.create(day=date(2026, 11, 1), tz="America/Chicago", dim="total", key="", calls=3)
    rollup.objects.create(day=date(2026, 11, 1), tz="America/Chicago", dim="utm_campaign", key="x" * 200, calls=2)
    pending = datetime(2026, 11, 3, 12, tzinfo=ZoneInfo("UTC"))
    dirty.objects.create(at=pending)
    try:
        apps = _apps(AFTER)
        rollup, dirty = apps.get_model("tracking", "CallDayRollup"), apps.get_model("tracking", "CallRollupDirty")
        zone = apps.get_model("tracking", "CallRollupZone")
        assert set(zone.objects.values_list("tz", flat=True)) == {"America/Chicago", "Asia/Tokyo"}
        assert not rollup.objects.filter(day=date(2026, 11, 1)).exists()
        kept = rollup.objects.get(tz="Asia/Tokyo", dim="utm_source")
        assert kept.key_hash == rollup_key_hash("google") and rollup.objects.count() == 4
        marks = set(dirty.objects.values_list("tz", "at"))
        assert marks == {
            ("America/Chicago", pending), ("Asia/Tokyo", pending),
            ("America/Chicago", datetime(2026, 11, 1, tzinfo=ZoneInfo("America/Chicago"))),
        }
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


MARKS_CHANGES_ONLY = ("tracking", "0023_rollup_marks_changes_only")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_migration_0023_marks_routing_writes_no_more_and_reversed_puts_back_0018s_function():
    """Forwards: a write of the routing state (the decision's dials, a stored answer) marks no day, a changed figure
    does. Reversed: 0018's function and 0016's trigger again (every write to the decision marked)."""
    from django.utils import timezone

    from tests.tracking.factories import CallFactory
    from tracking.models import Call, CallRollupDirty, CallRollupZone

    def marks_of(**values) -> int:
        CallRollupDirty.objects.all().delete()
        Call.objects.filter(pk=call.pk).update(**values)
        return CallRollupDirty.objects.count()

    executor = MigrationExecutor(connection)
    before = [p for p in executor.loader.graph.node_map[MARKS_CHANGES_ONLY].parents if p[0] == "tracking"]
    CallRollupZone.objects.create(tz="America/Chicago", refreshed_at=timezone.now())
    call = CallFactory(decision={"dials": 1})
    try:
        assert marks_of(decision={"dials": 2, "answers": {"dial:1": "<Response/>"}}) == 0
        assert marks_of(status="completed") == 1
        _apps([(p[0], p[1]) for p in before])
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_proc WHERE proname = 'tracking_call_rollup_inputs'")
            assert cursor.fetchone()[0] == 0
        assert marks_of(decision={"dials": 3}) == 1
        assert marks_of(fallback_step="company_phone") == 0  # not in 0016's column list
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    assert marks_of(decision={"dials": 4}) == 0
