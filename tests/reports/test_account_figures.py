"""The console's figures per account (issue 30): each account's dashboard, reports API and alerts count its own calls
only, the install's (no account) their sum; days are read in the account's time zone and money is shown in its
currency. On SQLite the figures come from the calls; on PostgreSQL from the per-account rollups as well (before and
after a refresh, and after a late change in one account)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from calltrack import reports
from calltrack.accounts import acting_in
from calltrack.formats import money
from calltrack.models import Account, AccountRole
from calltrack.scoping import Scope
from tests.calltrack.test_accounts import member
from tests.numbers.factories import TrackingNumberFactory
from tests.reports.fixtures import expected, make_world
from tests.tracking.factories import CallFactory
from tracking.models import Call, CallDayRollup
from tracking.services.reports import report_rollups_refresh

pytestmark = pytest.mark.django_db
INSTALL = Scope()


@pytest.fixture
def accounts(settings):
    """Accounts A (the install's first) and B, each with its own parties and calls on the same 20 days."""
    settings.TIME_ZONE = "America/Chicago"
    a = Account.objects.get_or_create(slug="default", defaults={"name": "Default"})[0]
    b = Account.objects.create(name="Bravo Roofing", slug="bravo")
    now = timezone.now()
    with acting_in(a.pk):
        world_a = make_world(now=now, days=20, count=60, seed=3)
    with acting_in(b.pk):
        world_b = make_world(now=now, days=20, count=45, seed=5)
    assert {c.account_id for c in world_a.calls} == {a.pk} and {c.account_id for c in world_b.calls} == {b.pk}
    return {"a": a, "b": b, "world_a": world_a, "world_b": world_b}


def fresh(calls: list[Call]) -> list[Call]:
    return list(Call.objects.filter(pk__in=[c.pk for c in calls]))


def assert_counts(scope: Scope, calls: list[Call], period: reports.Period) -> None:
    """Every figure of ``scope`` equals a count of ``calls`` (the rows it may see)."""
    want = expected(calls, period.start, period.end)
    got = reports.report_summary(scope=scope, period=period).current
    assert (got.calls, got.answered, got.missed, got.blocked, got.live, got.converted, got.failsafe, got.talk_time) == (
        want["calls"], want["answered"], want["missed"], want["blocked"], want["live"], want["converted"], want["failsafe"],
        want["talk_time"])
    assert (got.revenue, got.payout) == (want["revenue"], want["payout"])
    for bucket in reports.report_timeseries(scope=scope, period=period):
        day = expected(calls, bucket.start, bucket.end)
        assert (bucket.calls, bucket.answered, bucket.missed) == (day["calls"], day["answered"], day["missed"]), bucket.label
    for by in (*reports.ROLLUP_DIMS, "pool"):
        rows = reports.report_breakdown(scope=scope, period=period, by=by)
        assert sum(r.totals.calls for r in rows) == want["calls"], by
        assert sum(r.totals.revenue for r in rows) == want["revenue"], by
    by_source = {r.key: r.totals.calls for r in reports.report_breakdown(scope=scope, period=period, by="source")}
    for key, n in by_source.items():
        assert n == expected([c for c in calls if str(c.source_id) == str(key)], period.start, period.end)["calls"]
    capped = {a.url_args[0]: a.count for a in reports.report_alerts(scope=scope, period=period) if a.kind == "handler_cap"}
    in_period = [c for c in calls if period.start <= c.started_at < period.end]
    want_capped: dict[int, int] = {}
    for c in in_period:
        for skip in (c.decision or {}).get("skipped", []):
            want_capped[skip["handler_id"]] = want_capped.get(skip["handler_id"], 0) + 1
    assert capped == want_capped


def assert_every_scope(accounts) -> None:
    period = reports.period_for("30d")
    calls_a, calls_b = fresh(accounts["world_a"].calls), fresh(accounts["world_b"].calls)
    assert_counts(Scope(account_id=accounts["a"].pk), calls_a, period)
    assert_counts(Scope(account_id=accounts["b"].pk), calls_b, period)
    assert_counts(INSTALL, calls_a + calls_b, period)
    totals = [reports.report_summary(scope=s, period=period).current for s in (Scope(account_id=accounts["a"].pk), Scope(account_id=accounts["b"].pk), INSTALL)]
    assert totals[0].calls + totals[1].calls == totals[2].calls
    assert totals[0].revenue + totals[1].revenue == totals[2].revenue


def test_each_accounts_figures_count_its_own_calls_and_the_install_sums_them(accounts):
    assert_every_scope(accounts)


@pytest.mark.postgres
def test_per_account_rollups_give_each_account_its_own_figures(accounts):
    assert report_rollups_refresh(all_days=True) >= 20
    assert CallDayRollup.objects.filter(account=accounts["a"]).exists() and CallDayRollup.objects.filter(account=accounts["b"]).exists()
    period = reports.period_for("30d")
    for scope in (Scope(account_id=accounts["a"].pk), Scope(account_id=accounts["b"].pk), INSTALL):
        rolled, _ = reports.split_days(scope, period)
        assert len(rolled) >= 19
    assert_every_scope(accounts)


@pytest.mark.postgres
def test_a_late_change_in_one_account_leaves_the_others_days_rolled_up_and_every_figure_exact(accounts):
    report_rollups_refresh(all_days=True)
    call = next(c for c in accounts["world_b"].calls if c.answered_at and not c.converted and c.started_at < timezone.now() - timedelta(days=3))
    Call.objects.filter(pk=call.pk).update(converted=True, revenue_converted=True, revenue=Decimal("70.00"))
    period = reports.period_for("30d")
    day = call.started_at.astimezone(period.tz).date()
    assert day in reports.split_days(Scope(account_id=accounts["b"].pk), period)[1]  # B's day is read from its calls
    assert day in reports.split_days(Scope(account_id=accounts["a"].pk), period)[0]  # A's stays rolled up
    assert day in reports.split_days(INSTALL, period)[1]
    assert_every_scope(accounts)
    report_rollups_refresh()
    assert day in reports.split_days(Scope(account_id=accounts["b"].pk), period)[0]
    assert_every_scope(accounts)


@pytest.mark.postgres
def test_a_call_moved_to_another_account_marks_its_day_for_both(accounts):
    report_rollups_refresh(all_days=True)
    call = next(c for c in accounts["world_a"].calls if c.started_at < timezone.now() - timedelta(days=3))
    Call.objects.filter(pk=call.pk).update(account=accounts["b"])
    period = reports.period_for("30d")
    day = call.started_at.astimezone(period.tz).date()
    for account in ("a", "b"):
        assert day in reports.split_days(Scope(account_id=accounts[account].pk), period)[1]
    moved = fresh([call])
    accounts["world_a"].calls.remove(call)
    accounts["world_b"].calls.extend(moved)
    assert_every_scope(accounts)
    report_rollups_refresh()
    assert_every_scope(accounts)


# --- The account's time zone -------------------------------------------------------------------------------------


@pytest.fixture
def zones(settings):
    """A UTC account and a Tokyo account, each with a call at 2026-03-01T20:00Z (03-02 05:00 in Tokyo)."""
    settings.TIME_ZONE = "UTC"
    utc = Account.objects.get_or_create(slug="default", defaults={"name": "Default"})[0]
    tokyo = Account.objects.create(name="Tokyo Dental", slug="tokyo", time_zone="Asia/Tokyo", currency="JPY")
    at = datetime(2026, 3, 1, 20, 0, tzinfo=ZoneInfo("UTC"))
    calls = {}
    for account in (utc, tokyo):
        with acting_in(account.pk):
            tn = TrackingNumberFactory()
            calls[account.slug] = CallFactory(tracking_number=tn, campaign=tn.campaign, source=tn.source, started_at=at, account=account)
    return {"utc": utc, "tokyo": tokyo, "calls": calls}


def day_counts(scope: Scope, first: date, last: date) -> dict[str, int]:
    tz = reports.operator_tz(scope)
    period = reports.period_for("custom", tz=tz, first_day=first, last_day=last)
    return {b.start.date().isoformat(): b.calls for b in reports.report_timeseries(scope=scope, period=period)}


def assert_zone_days(zones) -> None:
    utc, tokyo = Scope(account_id=zones["utc"].pk), Scope(account_id=zones["tokyo"].pk)
    assert reports.operator_tz(tokyo).key == "Asia/Tokyo" and reports.operator_tz(utc).key == "UTC"
    assert day_counts(tokyo, date(2026, 3, 1), date(2026, 3, 2)) == {"2026-03-01": 0, "2026-03-02": 1}
    assert day_counts(utc, date(2026, 3, 1), date(2026, 3, 2)) == {"2026-03-01": 1, "2026-03-02": 0}
    for scope, day, n in ((tokyo, date(2026, 3, 2), 1), (tokyo, date(2026, 3, 1), 0), (utc, date(2026, 3, 1), 1), (utc, date(2026, 3, 2), 0)):
        period = reports.period_for("custom", tz=reports.operator_tz(scope), first_day=day, last_day=day)
        assert reports.report_summary(scope=scope, period=period).current.calls == n, (scope, day)
        rows = reports.report_breakdown(scope=scope, period=period, by="source")
        assert sum(r.totals.calls for r in rows) == n
    # The install reads TIME_ZONE (UTC): both calls on 03-01.
    assert day_counts(INSTALL, date(2026, 3, 1), date(2026, 3, 2)) == {"2026-03-01": 2, "2026-03-02": 0}


def test_an_account_in_tokyo_counts_a_call_on_its_own_day(zones):
    assert_zone_days(zones)


@pytest.mark.postgres
def test_the_rollups_of_an_accounts_zone_are_exact(zones):
    report_rollups_refresh()  # a zone with no rollups yet rolls up every day with calls
    assert set(CallDayRollup.objects.values_list("tz", flat=True)) == {"UTC", "Asia/Tokyo"}
    tokyo = Scope(account_id=zones["tokyo"].pk)
    period = reports.period_for("custom", tz=ZoneInfo("Asia/Tokyo"), first_day=date(2026, 3, 2), last_day=date(2026, 3, 2))
    assert reports.split_days(tokyo, period)[0] == [date(2026, 3, 2)]
    assert_zone_days(zones)


def test_the_reports_api_reads_the_accounts_days_and_currency(zones):
    owner = member(zones["tokyo"], AccountRole.OWNER, "owner-tokyo")
    client = APIClient()
    client.force_authenticate(owner)
    query = {"range": "custom", "start": "2026-03-02", "end": "2026-03-02"}
    body = client.get("/api/v1/reports/summary", query).json()
    assert body["period"]["time_zone"] == "Asia/Tokyo" and body["current"]["calls"] == 1 and body["currency"] == "JPY"
    body = client.get("/api/v1/reports/breakdown", {**query, "by": "source"}).json()
    assert body["currency"] == "JPY" and sum(r["totals"]["calls"] for r in body["rows"]) == 1
    body = client.get("/api/v1/reports/summary", {"range": "custom", "start": "2026-03-01", "end": "2026-03-01"}).json()
    assert body["current"]["calls"] == 0  # the other account's call of that UTC day is not its own
    utc_owner = member(zones["utc"], AccountRole.OWNER, "owner-utc")
    client.force_authenticate(utc_owner)
    body = client.get("/api/v1/reports/summary", {"range": "custom", "start": "2026-03-01", "end": "2026-03-01"}).json()
    assert body["period"]["time_zone"] == "UTC" and body["current"]["calls"] == 1 and body["currency"] == "USD"


# --- The account's currency ----------------------------------------------------------------------------------------


def test_money_is_written_in_the_accounts_currency_else_the_installs(settings):
    assert money(Decimal("1690")) == "$1,690.00"
    assert money(Decimal("-12.5"), "EUR") == "-€12.50"
    assert money(Decimal("3"), "CHF") == "CHF\u00a03.00"
    settings.CURRENCY = "GBP"
    assert money(Decimal("3")) == "£3.00"


def test_the_dashboard_and_the_call_log_show_the_accounts_days_and_currency(zones, client):
    tokyo = zones["tokyo"]
    zones["calls"]["tokyo"].__class__.objects.filter(pk=zones["calls"]["tokyo"].pk).update(revenue=Decimal("4200"), converted=True)
    owner = member(tokyo, AccountRole.OWNER, "owner-tokyo")
    client.force_login(owner)
    page = client.get("/admin/", {"range": "custom", "from": "2026-03-02", "to": "2026-03-02"})
    assert page.status_code == 200
    figures = {f["key"]: f["value"] for f in page.context["figures"]}
    assert figures["calls"] == "1" and figures["revenue"] == "¥4,200.00"
    assert page.context["currency"] == "JPY"
    log = client.get("/admin/tracking/call/")
    assert log.status_code == 200
    body = log.content.decode()
    assert "¥4,200.00" in body and "$4,200.00" not in body
    # The log's dates are the account's: the call shows at 05:00 (Tokyo), not 20:00 (UTC).
    assert "05:00" in body
    summary = client.get(f"/admin/tracking/call/{zones['calls']['tokyo'].pk}/change/")
    assert summary.status_code == 200 and "¥4,200.00" in summary.content.decode()
    # The UTC account's owner: its own call, in dollars, on 03-01.
    other = member(zones["utc"], AccountRole.OWNER, "owner-utc")
    client.force_login(other)
    page = client.get("/admin/", {"range": "custom", "from": "2026-03-01", "to": "2026-03-01"})
    figures = {f["key"]: f["value"] for f in page.context["figures"]}
    assert figures["calls"] == "1" and figures["revenue"] == "$0.00" and page.context["currency"] == "USD"


# --- The alerts panel ------------------------------------------------------------------------------------------------


def test_each_accounts_alerts_count_its_own_numbers_and_its_dashboard_shows_no_other(client):
    from calltrack.alerts_check import report_conditions_sync
    from calltrack.numbers.models import NumberStatus
    from tracking.models import Alert

    a = Account.objects.get_or_create(slug="default", defaults={"name": "Default"})[0]
    b = Account.objects.create(name="Bravo Roofing", slug="bravo")
    for account, n in ((a, 1), (b, 3)):
        with acting_in(account.pk):
            for _ in range(n):
                TrackingNumberFactory(status=NumberStatus.QUARANTINED)
    opened = report_conditions_sync()
    assert sorted((x.account_id, x.message) for x in opened) == [
        (a.pk, "1 tracking number quarantined"), (b.pk, "3 tracking numbers quarantined")]
    assert report_conditions_sync() == []  # the same two episodes
    for account, shown, hidden in ((a, "1 tracking number quarantined", "3 tracking numbers"), (b, "3 tracking numbers quarantined", "1 tracking number ")):
        client.force_login(member(account, AccountRole.OWNER, f"owner-{account.slug}"))
        page = client.get("/admin/", {"range": "today"})
        body = page.content.decode()
        assert shown in body and hidden not in body
    assert Alert.objects.filter(cleared_at__isnull=True).count() == 2
