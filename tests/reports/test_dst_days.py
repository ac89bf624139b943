"""Days when the clock changes: the hourly series of an autumn day counts its repeated hour once per offset
(never one group read by both buckets), every series adds up to the day's calls, in zones whose DST moves an
hour (America/New_York), half an hour (Australia/Lord_Howe) or that sit on the half hour (Asia/Kolkata), on
both databases and from the rollups on PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse

from calltrack import reports
from calltrack.scoping import Scope
from tests.tracking.factories import CallFactory, UserFactory
from tracking.models import CallStatus
from tracking.services.reports import report_rollups_refresh

pytestmark = pytest.mark.django_db
STAFF = Scope()
UTC = ZoneInfo("UTC")

# (zone, the autumn day (clock goes back), the spring day (clock goes forward))
ZONES = [
    ("America/New_York", date(2026, 11, 1), date(2026, 3, 8)),
    ("Australia/Lord_Howe", date(2026, 4, 5), date(2026, 10, 4)),
    ("Asia/Kolkata", date(2026, 11, 1), date(2026, 3, 8)),
]


def _calls_every_20_minutes(day: date, zone: str) -> list:
    """A call every 20 minutes of real time across the local day, and one just outside each end."""
    tz = ZoneInfo(zone)
    start = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz).astimezone(UTC)
    CallFactory(started_at=start - timedelta(seconds=1), status=CallStatus.COMPLETED)
    CallFactory(started_at=end, status=CallStatus.COMPLETED)
    calls, at = [], start
    while at < end:
        calls.append(CallFactory(started_at=at, status=CallStatus.NO_ANSWER))
        at += timedelta(minutes=20)
    return calls


def test_the_autumn_day_in_new_york_counts_each_call_once_and_names_both_one_oclock_hours(settings):
    settings.TIME_ZONE = "America/New_York"
    eastern = ZoneInfo("America/New_York")
    for at in (datetime(2026, 11, 1, 0, 30, tzinfo=eastern), datetime(2026, 11, 1, 1, 30, tzinfo=eastern),
               datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=eastern)):
        CallFactory(started_at=at.astimezone(UTC), status=CallStatus.NO_ANSWER)
    period = reports.period_for("custom", first_day=date(2026, 11, 1), last_day=date(2026, 11, 1))
    buckets = reports.report_timeseries(scope=STAFF, period=period)
    assert len(buckets) == 25
    assert sum(b.calls for b in buckets) == 3
    assert [(b.label, b.calls) for b in buckets[:4]] == [("00:00", 1), ("01:00 EDT", 1), ("01:00 EST", 1), ("02:00", 0)]


@pytest.mark.parametrize("zone,autumn,spring", ZONES)
@pytest.mark.parametrize("which", ["autumn", "spring"])
def test_the_hourly_and_daily_series_of_a_clock_change_day_add_up_to_its_calls(settings, zone, autumn, spring, which):
    settings.TIME_ZONE = zone
    day = autumn if which == "autumn" else spring
    calls = _calls_every_20_minutes(day, zone)
    period = reports.period_for("custom", first_day=day, last_day=day)
    hours = reports.report_timeseries(scope=STAFF, period=period)
    assert sum(b.calls for b in hours) == len(calls)
    assert hours[0].start == period.start and hours[-1].end == period.end
    assert all(a.end == b.start for a, b in zip(hours, hours[1:]))
    for bucket in hours:
        assert bucket.calls == sum(1 for c in calls if bucket.start <= c.started_at < bucket.end), bucket.label
    assert len(set(b.label for b in hours)) == len(hours)  # each bucket named distinctly
    week = reports.period_for("custom", first_day=day - timedelta(days=3), last_day=day + timedelta(days=3))
    days = {b.start.date(): b.calls for b in reports.report_timeseries(scope=STAFF, period=week)}
    assert days[day] == len(calls) and sum(days.values()) == len(calls) + 2
    assert reports.report_summary(scope=STAFF, period=period).current.calls == len(calls)


def test_the_half_hour_zone_change_in_lord_howe_gets_half_hour_buckets_named_by_offset(settings):
    settings.TIME_ZONE = "Australia/Lord_Howe"
    period = reports.period_for("custom", first_day=date(2026, 4, 5), last_day=date(2026, 4, 5))
    buckets = reports.report_timeseries(scope=STAFF, period=period)
    assert [b.label for b in buckets[1:4]] == ["01:00 UTC+11:00", "01:30 UTC+10:30", "02:00"]
    assert buckets[2].end.astimezone(UTC) - buckets[2].start.astimezone(UTC) == timedelta(minutes=30)
    assert period.end.astimezone(UTC) - period.start.astimezone(UTC) == timedelta(hours=24, minutes=30)


def test_kolkata_hours_start_on_the_half_hour_of_utc(settings):
    settings.TIME_ZONE = "Asia/Kolkata"
    period = reports.period_for("custom", first_day=date(2026, 11, 1), last_day=date(2026, 11, 1))
    buckets = reports.report_timeseries(scope=STAFF, period=period)
    assert len(buckets) == 24 and buckets[1].label == "01:00"
    assert buckets[1].start.astimezone(UTC) == datetime(2026, 10, 31, 19, 30, tzinfo=UTC)


def test_the_dashboard_chart_of_the_autumn_day_draws_each_call_once(settings):
    settings.TIME_ZONE = "America/New_York"
    settings.AXES_ENABLED = False
    eastern = ZoneInfo("America/New_York")
    for at in (datetime(2026, 11, 1, 0, 30, tzinfo=eastern), datetime(2026, 11, 1, 1, 30, tzinfo=eastern),
               datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=eastern)):
        CallFactory(started_at=at.astimezone(UTC), status=CallStatus.NO_ANSWER)
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:index"), {"range": "custom", "from": "2026-11-01", "to": "2026-11-01"})
    chart = json.loads(page.context["chart_data"])
    missed = next(d for d in chart["datasets"] if d["label"] == "Missed")["data"]
    assert sum(missed) == 3
    assert chart["labels"][1:3] == ["01:00 EDT", "01:00 EST"]


@pytest.mark.postgres
@pytest.mark.parametrize("zone,autumn,spring", ZONES)
def test_the_rolled_up_days_around_a_clock_change_add_up_to_their_calls(settings, zone, autumn, spring):
    settings.TIME_ZONE = zone
    counts = {}
    for day in (autumn, spring):
        counts[day] = len(_calls_every_20_minutes(day, zone))
    assert report_rollups_refresh(all_days=True) > 0
    for day, n in counts.items():
        week = reports.period_for("custom", first_day=day - timedelta(days=3), last_day=day + timedelta(days=3))
        assert day in reports.split_days(STAFF, week)[0]
        days = {b.start.date(): b.calls for b in reports.report_timeseries(scope=STAFF, period=week)}
        assert days[day] == n and sum(days.values()) == n + 2
        one = reports.period_for("custom", first_day=day, last_day=day)
        assert reports.report_summary(scope=STAFF, period=one).current.calls == n
        assert sum(b.calls for b in reports.report_timeseries(scope=STAFF, period=one)) == n
