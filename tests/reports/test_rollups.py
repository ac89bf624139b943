"""Report rollups stay exact: after any write to a call (a late status callback, a conversion, a deletion) the
selector's figures equal counts made from the rows, before and after the rollups are recomputed."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from calltrack import reports
from calltrack.scoping import Scope
from tests.reports.fixtures import expected, make_world
from tracking.models import Call, CallDayRollup, CallRollupDirty
from tracking.services.reports import report_rollups_refresh

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
STAFF = Scope()


@pytest.fixture
def world(settings):
    settings.TIME_ZONE = "America/Chicago"
    world = make_world(now=timezone.now(), days=20, count=100)
    assert report_rollups_refresh(all_days=True) >= 20
    return world


def assert_exact(calls: list[Call], period: reports.Period) -> None:
    summary = reports.report_summary(scope=STAFF, period=period).current
    want = expected(calls, period.start, period.end)
    assert (summary.calls, summary.answered, summary.missed, summary.blocked, summary.live) == (
        want["calls"], want["answered"], want["missed"], want["blocked"], want["live"])
    assert (summary.converted, summary.failsafe, summary.talk_time) == (want["converted"], want["failsafe"], want["talk_time"])
    assert (summary.revenue, summary.payout) == (want["revenue"], want["payout"])
    buckets = reports.report_timeseries(scope=STAFF, period=period)
    for bucket in buckets:
        day = expected(calls, bucket.start, reports._midnight(bucket.start.date() + timedelta(days=1), period.tz))
        assert (bucket.answered, bucket.missed, bucket.blocked) == (day["answered"], day["missed"], day["blocked"]), bucket.label
    for by in reports.ROLLUP_DIMS:
        rows = reports.report_breakdown(scope=STAFF, period=period, by=by)
        assert sum(r.totals.calls for r in rows) == want["calls"], by
        assert sum(r.totals.revenue for r in rows) == want["revenue"], by
    by_source = {r.key: r.totals.calls for r in reports.report_breakdown(scope=STAFF, period=period, by="source")}
    for key, n in by_source.items():
        assert n == expected([c for c in calls if str(c.source_id) == str(key) or (key is None and c.source_id is None)], period.start, period.end)["calls"]


def fresh(world) -> list[Call]:
    return list(Call.objects.filter(pk__in=[c.pk for c in world.calls]))


def test_rolled_up_days_give_the_same_figures_as_the_rows(world):
    period = reports.period_for("30d")
    rolled, raw = reports.split_days(STAFF, period)
    assert len(rolled) >= 19 and CallRollupDirty.objects.count() == 0
    assert_exact(fresh(world), period)


def test_a_late_status_callback_marks_its_day_and_the_figures_follow(world):
    call = next(c for c in world.calls if c.status == "ringing" and c.started_at < timezone.now() - timedelta(days=2))
    Call.objects.filter(pk=call.pk).update(status="completed", answered_at=call.started_at + timedelta(seconds=9), talk_time=77)
    period = reports.period_for("30d")
    day = call.started_at.astimezone(period.tz).date()
    assert day in reports.split_days(STAFF, period)[1]
    assert_exact(fresh(world), period)
    report_rollups_refresh()
    assert day in reports.split_days(STAFF, period)[0]
    assert_exact(fresh(world), period)


def test_a_postback_conversion_and_a_deleted_call_are_counted_exactly(world):
    call = next(c for c in world.calls if c.answered_at and not c.converted and c.started_at < timezone.now() - timedelta(days=3))
    call.converted = call.revenue_converted = True
    call.revenue = Decimal("60.00")
    call.save(update_fields=["converted", "revenue_converted", "revenue"])
    gone = world.calls[5]
    gone.delete()
    period = reports.period_for("30d")
    calls = fresh(world)
    assert_exact(calls, period)
    report_rollups_refresh()
    assert_exact(calls, period)


def test_writes_to_unreported_columns_leave_the_day_rolled_up(world):
    call = world.calls[0]
    call.tags = {"language": "es"}
    call.plan_index = 1
    call.save(update_fields=["tags", "plan_index"])
    assert CallRollupDirty.objects.count() == 0


def test_rollups_are_kept_per_time_zone(world, settings):
    settings.TIME_ZONE = "Asia/Tokyo"
    period = reports.period_for("30d")
    assert reports.split_days(STAFF, period)[0] == []  # nothing rolled up for Tokyo days yet: read from the calls
    assert_exact(fresh(world), period)
    report_rollups_refresh(all_days=True)
    assert CallDayRollup.objects.filter(tz="Asia/Tokyo").exists()
    assert_exact(fresh(world), period)


def test_collaborators_figures_come_from_their_calls(world):
    scope = Scope(source_id=world.sources[0].pk)
    assert reports.split_days(scope, reports.period_for("30d"))[0] == []


def test_capped_handler_alert_is_the_same_from_rollups_and_after_a_new_skip(world):
    period = reports.period_for("30d")
    denver = world.handlers[0]
    capped = sum(1 for i, c in enumerate(world.calls) if i % 17 == 0 and period.start <= c.started_at < period.end)
    alert = next(a for a in reports.report_alerts(scope=STAFF, period=period) if a.kind == "handler_cap")
    assert alert.count == capped
    call = next(c for i, c in enumerate(world.calls) if i % 17 and c.started_at < timezone.now() - timedelta(days=2))
    Call.objects.filter(pk=call.pk).update(decision={"skipped": [{"handler_id": denver.pk, "name": "Denver", "reason": "capped", "detail": ""}]})
    alert = next(a for a in reports.report_alerts(scope=STAFF, period=period) if a.kind == "handler_cap")
    assert alert.count == capped + 1
    report_rollups_refresh()
    alert = next(a for a in reports.report_alerts(scope=STAFF, period=period) if a.kind == "handler_cap")
    assert alert.count == capped + 1


def test_a_call_marked_as_a_test_leaves_the_figures_and_a_test_calls_writes_mark_no_day(world):
    call = next(c for c in world.calls if c.answered_at and c.started_at < timezone.now() - timedelta(days=2))
    Call.objects.filter(pk=call.pk).update(is_test=True)
    period = reports.period_for("30d")
    assert call.started_at.astimezone(period.tz).date() in reports.split_days(STAFF, period)[1]
    calls = [c for c in fresh(world) if not c.is_test]
    assert_exact(calls, period)
    report_rollups_refresh()
    assert_exact(calls, period)
    Call.objects.filter(pk=call.pk).update(talk_time=999, status="completed")  # a test call's writes: no day marked
    assert CallRollupDirty.objects.count() == 0
    Call.objects.filter(pk=call.pk).update(is_test=False)  # back in the figures: its day is marked again
    assert CallRollupDirty.objects.count() == 1
    assert_exact(fresh(world), period)


def _late_answer(world) -> Call:
    """A call still ringing (as stored: an earlier late answer changed one) answered late, by a write to its row."""
    call = next(c for c in fresh(world) if c.status == "ringing" and c.started_at < timezone.now() - timedelta(days=2))
    Call.objects.filter(pk=call.pk).update(status="completed", answered_at=call.started_at + timedelta(seconds=9), talk_time=77)
    return call


def test_a_refresh_under_another_time_zone_leaves_this_zones_days_marked_and_the_figures_exact(world, settings):
    call = _late_answer(world)
    settings.TIME_ZONE = "Asia/Tokyo"  # a task worker configured differently, or the setting changed ...
    report_rollups_refresh()
    settings.TIME_ZONE = "America/Chicago"  # ... and changed back
    period = reports.period_for("30d")
    assert call.started_at.astimezone(period.tz).date() in reports.split_days(STAFF, period)[1]
    assert_exact(fresh(world), period)
    report_rollups_refresh()
    assert_exact(fresh(world), period)
    assert reports.split_days(STAFF, period)[1] == [] or len(reports.split_days(STAFF, period)[0]) >= 19


def test_two_zones_rolled_up_each_see_every_change(world, settings):
    settings.TIME_ZONE = "Asia/Tokyo"
    report_rollups_refresh(all_days=True)
    tokyo = reports.period_for("30d")
    _late_answer(world)
    gone = world.calls[7]
    gone.delete()
    report_rollups_refresh()  # Tokyo's markers consumed; Chicago's kept
    assert_exact(fresh(world), tokyo)
    settings.TIME_ZONE = "America/Chicago"
    chicago = reports.period_for("30d")
    assert_exact(fresh(world), chicago)
    report_rollups_refresh()
    assert_exact(fresh(world), chicago)
    assert CallRollupDirty.objects.count() == 0


def test_a_zone_idle_for_a_week_is_retired_and_read_from_the_calls(world, settings):
    from tracking.models import CallRollupZone
    from tracking.services.reports import ZONE_IDLE

    settings.TIME_ZONE = "Asia/Tokyo"
    report_rollups_refresh(all_days=True)
    CallRollupZone.objects.filter(tz="Asia/Tokyo").update(refreshed_at=timezone.now() - ZONE_IDLE - timedelta(hours=1))
    settings.TIME_ZONE = "America/Chicago"
    _late_answer(world)
    report_rollups_refresh()
    assert not CallDayRollup.objects.filter(tz="Asia/Tokyo").exists()
    assert not CallRollupDirty.objects.filter(tz="Asia/Tokyo").exists()
    _late_answer(world)  # no zone left to mark for Tokyo but Chicago
    assert set(CallRollupDirty.objects.values_list("tz", flat=True)) == {"America/Chicago"}
    settings.TIME_ZONE = "Asia/Tokyo"
    assert reports.split_days(STAFF, reports.period_for("30d"))[0] == []
    assert_exact(fresh(world), reports.period_for("30d"))
