"""The reporting selector's figures equal counts made from the rows the test created."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from calltrack import reports
from calltrack.scoping import Scope
from tests.numbers.factories import NumberSessionFactory
from tests.reports.fixtures import expected, make_world
from tests.tracking.factories import WebhookFactory
from tracking.models import WebhookDelivery

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 20, 15, 30, tzinfo=ZoneInfo("UTC"))
STAFF = Scope()


@pytest.fixture
def world(settings):
    settings.TIME_ZONE = "America/New_York"
    return make_world(now=NOW)


def test_summary_counts_each_outcome_revenue_and_talk_time_from_the_rows(world):
    period = reports.period_for("7d", now=NOW)
    summary = reports.report_summary(scope=STAFF, period=period)
    want = expected(world.calls, period.start, period.end)
    got = summary.current
    assert (got.calls, got.answered, got.missed, got.blocked, got.live) == (want["calls"], want["answered"], want["missed"], want["blocked"], want["live"])
    assert got.calls == got.answered + got.missed + got.blocked + got.live
    assert (got.converted, got.failsafe, got.talk_time) == (want["converted"], want["failsafe"], want["talk_time"])
    assert (got.revenue, got.payout, got.margin) == (want["revenue"], want["payout"], want["revenue"] - want["payout"])
    assert got.answer_rate == pytest.approx(want["answered"] / (want["calls"] - want["blocked"]))
    assert got.average_talk_time == pytest.approx(want["talk_time"] / want["answered"])


def test_previous_period_is_the_same_number_of_days_just_before(world):
    period = reports.period_for("7d", now=NOW)
    summary = reports.report_summary(scope=STAFF, period=period)
    prev = summary.previous_period
    assert prev.end == period.start and prev.days == 7
    want = expected(world.calls, prev.start, prev.end)
    assert summary.previous.calls == want["calls"] and summary.previous.revenue == want["revenue"]
    if want["calls"]:
        assert summary.change("calls") == pytest.approx((summary.current.calls - want["calls"]) / want["calls"])


def test_days_begin_at_midnight_in_the_operator_time_zone(world):
    period = reports.period_for("today", now=NOW)
    assert period.start == datetime(2026, 3, 20, tzinfo=ZoneInfo("America/New_York"))
    assert period.start.astimezone(ZoneInfo("UTC")).hour == 4  # EDT
    yesterday = reports.period_for("yesterday", now=NOW)
    assert yesterday.end == period.start and yesterday.first_day == date(2026, 3, 19)


def test_range_choices_cover_the_expected_days(settings):
    settings.TIME_ZONE = "UTC"
    assert reports.period_for("30d", now=NOW).days == 30
    assert reports.period_for("this_month", now=NOW).first_day == date(2026, 3, 1)
    last = reports.period_for("last_month", now=NOW)
    assert (last.first_day, last.last_day) == (date(2026, 2, 1), date(2026, 2, 28))
    custom = reports.period_for("custom", now=NOW, first_day=date(2026, 1, 5), last_day=date(2026, 1, 9))
    assert custom.days == 5 and custom.previous().last_day == date(2026, 1, 4)


@pytest.mark.parametrize(
    "key,first,last",
    [("custom", date(2026, 1, 9), date(2026, 1, 5)), ("custom", None, None), ("nope", None, None),
     ("custom", date(2020, 1, 1), date(2026, 1, 1)), ("custom", date(1, 1, 1), date(1, 1, 2))],
)
def test_bad_ranges_are_refused_with_a_report_error(key, first, last):
    with pytest.raises(reports.ReportError):
        reports.period_for(key, now=NOW, first_day=first, last_day=last)


def test_time_series_by_day_sums_to_the_summary_and_has_every_day(world):
    period = reports.period_for("30d", now=NOW)
    buckets = reports.report_timeseries(scope=STAFF, period=period)
    summary = reports.report_summary(scope=STAFF, period=period).current
    assert len(buckets) == 30
    assert sum(b.calls for b in buckets) == summary.calls
    assert sum(b.answered for b in buckets) == summary.answered
    assert sum(b.converted for b in buckets) == summary.converted
    for bucket in buckets:
        end = bucket.start + timedelta(days=1)
        want = expected(world.calls, bucket.start, end)
        assert (bucket.answered, bucket.missed, bucket.blocked) == (want["answered"], want["missed"], want["blocked"])


def test_time_series_of_one_day_is_by_local_hour(world):
    period = reports.period_for("yesterday", now=NOW)
    buckets = reports.report_timeseries(scope=STAFF, period=period)
    assert [b.label for b in buckets][:2] == ["00:00", "01:00"] and len(buckets) == 24
    for bucket in buckets:
        want = expected(world.calls, bucket.start, bucket.start + timedelta(hours=1))
        assert bucket.calls == want["calls"]


@pytest.mark.parametrize("by", list(reports.DIMENSIONS))
def test_each_breakdown_adds_up_to_the_summary(world, by):
    period = reports.period_for("30d", now=NOW)
    rows = reports.report_breakdown(scope=STAFF, period=period, by=by)
    summary = reports.report_summary(scope=STAFF, period=period).current
    assert sum(r.totals.calls for r in rows) == summary.calls
    assert sum(r.totals.revenue for r in rows) == summary.revenue
    assert [r.totals.calls for r in rows] == sorted((r.totals.calls for r in rows), reverse=True)
    assert len({r.key for r in rows}) == len(rows)


def test_breakdown_by_source_matches_rows_and_links_to_the_call_log(world):
    period = reports.period_for("30d", now=NOW)
    rows = {r.label: r for r in reports.report_breakdown(scope=STAFF, period=period, by="source")}
    google = world.sources[0]
    want = expected([c for c in world.calls if c.source_id == google.pk], period.start, period.end)
    assert rows["Google Ads"].totals.calls == want["calls"]
    assert rows["Google Ads"].totals.revenue == want["revenue"]
    assert rows["Google Ads"].log_filter == {"source__id__exact": str(google.pk)}


def test_utm_breakdown_puts_missing_and_empty_values_in_one_row(world):
    period = reports.period_for("30d", now=NOW)
    rows = reports.report_breakdown(scope=STAFF, period=period, by="utm_source")
    labels = [r.label for r in rows]
    assert labels.count("(none)") == 1
    rows_by = {r.label: r for r in rows}
    want = expected([c for c in world.calls if c.marketing_data.get("utm_source") == "google"], period.start, period.end)
    assert rows_by["google"].totals.calls == want["calls"]
    assert rows_by["google"].log_filter == {"utm_source": "google"}


def test_source_collaborator_gets_its_calls_and_payout_side_only(world):
    google = world.sources[0]
    scope = Scope(source_id=google.pk)
    period = reports.period_for("30d", now=NOW)
    summary = reports.report_summary(scope=scope, period=period).current
    mine = [c for c in world.calls if c.source_id == google.pk]
    want = expected(mine, period.start, period.end, side="payout")
    assert summary.calls == want["calls"] and summary.converted == want["converted"]
    assert summary.payout == want["payout"]
    assert summary.revenue is None and summary.margin is None
    assert "handler" not in [d for d in reports.DIMENSIONS if d in reports.report_dimensions(scope)]
    with pytest.raises(reports.ReportError):
        reports.report_breakdown(scope=scope, period=period, by="handler")
    rows = reports.report_breakdown(scope=scope, period=period, by="tracking_number")
    assert all(r.totals.revenue is None for r in rows)


def test_handler_collaborator_gets_its_calls_and_revenue_side_only(world):
    denver = world.handlers[0]
    scope = Scope(handler_id=denver.pk)
    period = reports.period_for("30d", now=NOW)
    summary = reports.report_summary(scope=scope, period=period).current
    want = expected([c for c in world.calls if c.handler_id == denver.pk], period.start, period.end, side="revenue")
    assert (summary.calls, summary.converted, summary.revenue) == (want["calls"], want["converted"], want["revenue"])
    assert summary.payout is None and summary.margin is None
    # Not the tracking numbers (their labels name the source) nor the visitor's UTM values.
    assert set(reports.report_dimensions(scope)) == {"handler", "caller_state"}


def test_alerts_name_overflowing_pools_capped_handlers_failing_webhooks_and_quarantined_numbers(world):
    period = reports.period_for("30d", now=NOW)
    NumberSessionFactory(pool=world.pool, tracking_number=None, is_overflow=True, started_at=NOW - timedelta(days=1))
    NumberSessionFactory(pool=world.pool, tracking_number=None, is_overflow=True, started_at=NOW - timedelta(days=2))
    NumberSessionFactory(pool=world.pool, tracking_number=None, is_overflow=True, started_at=NOW - timedelta(days=60))
    hook = WebhookFactory(campaign=world.campaigns[0], name="CRM")
    WebhookDelivery.objects.create(webhook=hook, call=world.calls[0], event="call.completed", status="failed", created_at=NOW - timedelta(days=1))
    world.numbers[1].status = "quarantined"
    world.numbers[1].save(update_fields=["status"])
    alerts = reports.report_alerts(scope=STAFF, period=period)
    by_kind = {a.kind: a for a in alerts}
    assert by_kind["pool_overflow"].count == 2
    assert "size 1" in by_kind["pool_overflow"].message
    capped = sum(1 for i, c in enumerate(world.calls) if i % 17 == 0 and period.start <= c.started_at < period.end)
    assert by_kind["handler_cap"].count == capped and "Denver" in by_kind["handler_cap"].message
    assert by_kind["webhook_failing"].count == 1 and "CRM" in by_kind["webhook_failing"].message
    assert by_kind["number_status"].count == 1 and "quarantined" in by_kind["number_status"].message
    # A handler collaborator is told about none of the operator's pools, webhooks or numbers.
    assert reports.report_alerts(scope=Scope(handler_id=world.handlers[0].pk), period=period) == []


def test_a_period_without_calls_has_zero_figures_and_no_rates(db, settings):
    settings.TIME_ZONE = "UTC"
    summary = reports.report_summary(scope=STAFF, period=reports.period_for("today", now=NOW))
    assert summary.current.calls == 0 and summary.current.answer_rate is None and summary.change("calls") is None
    assert summary.current.revenue == Decimal("0.00")
