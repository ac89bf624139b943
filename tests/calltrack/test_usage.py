"""Usage for rebilling (issue 30): each figure equals a count of the account's records in its month (its own time
zone), never another account's; the admin page, its CSV and the API as each role."""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from calltrack import usage
from calltrack.admin_nav import sidebar_navigation
from calltrack.dashboard import may_see_dashboard
from calltrack.models import Account, AccountRole, Membership
from calltrack.numbers.models import NumberEvent
from tests.numbers.factories import TrackingNumberFactory
from tests.tracking.factories import CallFactory, CampaignFactory, SourceFactory, UserFactory
from tracking.models import CallEvent, Collaborator, ConversionUpload, TextMessage
from tracking.models.ad_platforms import ConversionDestination

pytestmark = pytest.mark.django_db

MARCH = usage.Month(2025, 3)
NY = ZoneInfo("America/New_York")
# Well after March 2025: the month is over, so its days are all counted.
NOW = datetime(2026, 12, 1, tzinfo=ZoneInfo("UTC"))
PAGE, EXPORT = "/admin/calltrack/account/usage/", "/admin/calltrack/account/usage/export.csv"


def at(tz: ZoneInfo, month: int, day: int, hour: int = 12, minute: int = 0, year: int = 2025) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz)


def number(account, tz, created: tuple, status: str = "active", events: tuple = (), **kwargs):
    """A tracking number of ``account`` created at ``created`` (month, day, hour[, minute]) in ``tz``, with its status
    changes ``events``: ((month, day, hour[, minute]), from_status, to_status)."""
    campaign = CampaignFactory(account=account)
    tn = TrackingNumberFactory(account=account, campaign=campaign, status=status, created_at=at(tz, *created), **kwargs)
    for when, from_status, to_status in events:
        NumberEvent.objects.create(tracking_number=tn, at=at(tz, *when), from_status=from_status, to_status=to_status)
    return tn


_texts = iter(range(10**6))


def text(account, when: datetime, direction: str, status: str = "", is_test: bool = False) -> TextMessage:
    return TextMessage.objects.create(
        account=account, message_sid=f"SM{next(_texts):032x}", direction=direction, from_number="+13035550100",
        to_number="+14155550100", contact_number="+13035550100", created_at=when, is_test=is_test,
        status=status or ("received" if direction == "inbound" else "sent"),
    )


@pytest.fixture
def world(settings):
    """Account A (the first, no time zone: the install's, Paris here) and B (New York), with numbers held across the
    month's boundaries, calls, texts, recordings and uploads on both sides of each boundary, and test records."""
    settings.TIME_ZONE = "Europe/Paris"
    paris = ZoneInfo("Europe/Paris")
    a = Account.objects.get_or_create(slug="default", defaults={"name": "Default"})[0]
    b = Account.objects.create(name="Bravo Roofing", slug="bravo", time_zone="America/New_York")

    # --- A's numbers: 5 held, 89 days -------------------------------------------------------------------------
    number(a, paris, (2, 20))  # no history, active since February: 31 days
    number(a, paris, (3, 10, 10), events=(((3, 10, 10), "", "active"), ((3, 20, 9), "active", "quarantined"),
                                          ((4, 5, 9), "quarantined", "released")), status="released")  # 10-31: 22 days
    number(a, paris, (1, 1), events=(((1, 1, 9), "", "active"), ((2, 1, 9), "active", "quarantined"),
                                     ((2, 15, 9), "quarantined", "released")), status="released")  # gone before March
    # Ported in on the 12th (porting from the 5th is not held), released at midnight starting the 16th: 12-15, 4 days.
    number(a, paris, (3, 5, 8), events=(((3, 5, 8), "", "porting_in"), ((3, 12, 9), "porting_in", "active"),
                                        ((3, 14, 23, 30), "active", "quarantined"), ((3, 16, 0), "quarantined", "released")),
           status="released")
    # Released on the 3rd and bought again the same evening: every day, the 3rd once: 31 days.
    number(a, paris, (1, 1), events=(((1, 1, 9), "", "active"), ((3, 2, 9), "active", "quarantined"),
                                     ((3, 3, 8), "quarantined", "released"), ((3, 3, 20), "released", "active")))
    number(a, paris, (4, 2))  # bought after March
    number(a, paris, (3, 31, 23, 30))  # bought half an hour before March ends: 1 day
    # --- B's numbers (New York): 2 held, 32 days --------------------------------------------------------------
    number(b, NY, (2, 1))
    number(b, NY, (3, 31, 23, 30))  # 04:30 on 1 April in Paris, still March in New York: 1 day

    # --- Calls ---------------------------------------------------------------------------------------------------
    src_a = SourceFactory(account=a)
    c1 = CallFactory(account=a, source=src_a, started_at=at(paris, 3, 3), duration=61, recording_status="completed", recording_sid="RE1")
    c2 = CallFactory(account=a, started_at=at(paris, 3, 15), duration=60, voicemail_url="https://api.twilio.com/vm/RE2")  # a voicemail, kept
    CallFactory(account=a, started_at=at(paris, 3, 31, 23, 59), duration=0, status="rejected")
    c4 = CallFactory(account=a, started_at=at(paris, 3, 20), duration=125, is_test=True, recording_status="completed", recording_sid="RE4")
    CallFactory(account=a, started_at=at(paris, 2, 28, 23, 59), duration=600, recording_status="completed", recording_sid="RE5")
    CallFactory(account=a, started_at=at(paris, 4, 1, 0, 0), duration=600)
    c7 = CallFactory(account=a, started_at=at(paris, 3, 10), duration=30, recording_status="deleted")
    CallEvent.objects.create(call=c7, kind="call.recording_deleted", message="retention", at=at(paris, 4, 10))
    CallEvent.objects.create(call=c7, kind="call.voicemail_deleted", message="retention", at=at(paris, 4, 10))  # and its voicemail
    c8 = CallFactory(account=a, started_at=at(paris, 2, 10), duration=30, recording_status="deleted")
    CallEvent.objects.create(call=c8, kind="call.recording_deleted", message="retention", at=at(paris, 3, 20))
    CallEvent.objects.create(call=c8, kind="call.voicemail_deleted", message="retention", at=at(paris, 3, 20))
    CallFactory(account=a, started_at=at(paris, 3, 12), duration=45, recording_status="failed")
    CallFactory(account=None, started_at=at(paris, 3, 12), duration=300)  # a number no account holds
    b1 = CallFactory(account=b, started_at=at(NY, 3, 5), duration=3600, recording_status="completed", recording_sid="RE9")
    CallFactory(account=b, started_at=at(NY, 3, 31, 23, 0), duration=59)
    CallFactory(account=b, started_at=at(NY, 2, 28, 23, 0), duration=59,  # 05:00 on 1 March in Paris: February in New York
                voicemail_url="https://api.twilio.com/vm/RE10")  # left in February, stored in March

    # --- Texts ---------------------------------------------------------------------------------------------------
    for direction, status in (("inbound", ""), ("inbound", ""), ("outbound", "sent"), ("outbound", "failed")):
        text(a, at(paris, 3, 2), direction, status)
    text(a, at(paris, 3, 2), "inbound", is_test=True)
    text(a, at(paris, 2, 28, 23), "inbound")
    text(None, at(paris, 3, 2), "inbound")
    text(b, at(NY, 3, 9), "inbound")
    text(b, at(NY, 3, 9), "outbound", "delivered")
    text(b, at(NY, 3, 31, 22), "outbound", "undelivered")

    # --- Uploads to ad platforms -------------------------------------------------------------------------------
    dest_a = ConversionDestination.objects.create(campaign=c1.campaign, name="Google A")
    dest_b = ConversionDestination.objects.create(campaign=b1.campaign, name="Google B")
    ConversionUpload.objects.create(call=c1, destination=dest_a, status="sent", sent_at=at(paris, 3, 5))
    ConversionUpload.objects.create(call=c2, destination=dest_a, status="sent", sent_at=at(paris, 4, 2))
    ConversionUpload.objects.create(call=c7, destination=dest_a, status="refused")
    ConversionUpload.objects.create(call=c4, destination=dest_a, status="sent", sent_at=at(paris, 3, 6))
    ConversionUpload.objects.create(call=b1, destination=dest_b, status="sent", sent_at=at(NY, 3, 8))
    return {"a": a, "b": b, "src_a": src_a}


EXPECTED_A = {"numbers": 5, "number_days": 89, "calls": 5, "minutes": 5, "texts_in": 2, "texts_out": 1, "recordings": 4,
              "recordings_stored": 5, "ad_uploads": 1}
EXPECTED_B = {"numbers": 2, "number_days": 32, "calls": 2, "minutes": 61, "texts_in": 1, "texts_out": 2, "recordings": 1,
              "recordings_stored": 2, "ad_uploads": 1}


def recount(account: Account) -> dict[str, int]:
    """The figures counted again from the records one by one, in Python, for the account's March."""
    from tracking.models import Call

    start, end = MARCH.bounds(usage.account_tz(account.time_zone))
    calls = [c for c in Call.objects.filter(account=account, is_test=False) if start <= c.started_at < end]
    texts = [t for t in TextMessage.objects.filter(account=account, is_test=False) if start <= t.created_at < end]
    uploads = [u for u in ConversionUpload.objects.filter(call__account=account, call__is_test=False, status="sent")
               if start <= u.sent_at < end]
    return {
        "calls": len(calls),
        "minutes": sum(math.ceil(c.duration / 60) for c in calls),
        "texts_in": sum(t.direction == "inbound" for t in texts),
        "texts_out": sum(t.direction == "outbound" and t.status != "failed" for t in texts),
        # A voicemail is a recording too: left on the call, or deleted since by retention.
        "recordings": sum(c.recording_status in ("completed", "deleted") for c in calls)
        + sum(bool(c.voicemail_url) or c.events.filter(kind="call.voicemail_deleted").exists() for c in calls),
        "ad_uploads": len(uploads),
    }


def test_each_accounts_figures_equal_a_count_of_its_records(world):
    found = {u.account_slug: u for u in usage.accounts_usage(MARCH, now=NOW)}
    assert found["default"].figures() == EXPECTED_A
    assert found["bravo"].figures() == EXPECTED_B
    for slug, account in (("default", world["a"]), ("bravo", world["b"])):
        counted = recount(account)
        assert {k: found[slug].figures()[k] for k in counted} == counted
    # One account at a time reads the same, and nothing of the other.
    assert usage.account_usage(world["b"].pk, MARCH, now=NOW).figures() == EXPECTED_B
    assert found["bravo"].time_zone == "America/New_York" and found["default"].time_zone == "Europe/Paris"
    assert found["bravo"].start == datetime(2025, 3, 1, tzinfo=NY)


def test_every_account_costs_seven_statements(world, django_assert_num_queries):
    # The accounts; the numbers with their status at the month's start; the numbers' changes in the month; the calls
    # (count, minutes, recordings made); the recordings stored; the texts; the uploads.
    with django_assert_num_queries(7):
        assert len(usage.accounts_usage(MARCH, now=NOW)) == 2


def test_the_current_month_counts_the_days_held_up_to_now(world):
    mid_march = at(ZoneInfo("Europe/Paris"), 3, 10, 15)
    found = usage.account_usage(world["a"].pk, MARCH, now=mid_march)
    # 1-10, 1-10 (re-bought), and the one bought on the 10th at 10:00: its first day.
    assert (found.numbers, found.number_days) == (3, 21)
    future = usage.account_usage(world["a"].pk, usage.Month(2025, 4), now=mid_march)
    assert future.number_days == 0


@pytest.mark.parametrize("text, reason", [
    ("2025-13", "no month 13"), ("0000-01", "year"), ("2025-00", "no month 0"), ("2025-3", "YYYY-MM"),
    ("2025-03\x00", "YYYY-MM"), ("\ud800", "YYYY-MM"), ("march", "YYYY-MM"), ("9999-12", "year"), ("1" * 100, "YYYY-MM"),
])
def test_a_month_that_cannot_be_read_says_why(text, reason):
    with pytest.raises(usage.UsageError, match=reason):
        usage.Month.parse(text)


def test_months_step_over_years():
    assert usage.Month.parse("2025-12").next() == usage.Month(2026, 1)
    assert usage.Month(2026, 1).previous() == usage.Month(2025, 12)
    months = usage.recent_months(ZoneInfo("UTC"), now=datetime(2026, 2, 3, tzinfo=ZoneInfo("UTC")))
    assert [str(m) for m in months[:3]] == ["2026-02", "2026-01", "2025-12"] and len(months) == 13


# --- Who sees it: the admin page, the CSV and the API --------------------------------------------------------------


def member(account, role, username=None):
    user = UserFactory(username=username or f"{role}-{account.slug}", is_staff=True)
    if role != AccountRole.BILLING:
        user.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=["tracking", "numbers", "calltrack"]))
    else:  # a billing user given every permission by mistake still sees the usage only
        user.user_permissions.add(*Permission.objects.filter(content_type__app_label="tracking"))
    Membership.objects.create(user=user, account=account, role=role)
    return user


def collaborator(world):
    user = UserFactory(username="publisher", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="tracking"))
    Collaborator.objects.create(user=user, source=world["src_a"], account=world["a"])
    return user


def api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def rows_of(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode())))


@pytest.mark.parametrize("role", [AccountRole.OWNER, AccountRole.ANALYST, AccountRole.BILLING])
def test_members_see_their_accounts_usage_only(world, client, role):
    user = member(world["b"], role)
    client.force_login(user)
    page = client.get(PAGE, {"month": "2025-03"})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-account="bravo"' in html and 'data-account="default"' not in html
    assert "<td>61</td>" in html  # B's minutes
    assert '<option value="2025-03" selected>' in html  # the month asked for, chosen in the picker
    export = client.get(EXPORT, {"month": "2025-03"})
    assert export.status_code == 200 and export["Content-Type"].startswith("text/csv")
    rows = rows_of(b"".join(export.streaming_content))
    assert rows[0] == list(usage.CSV_HEADER)
    assert len(rows) == 2 and rows[1][:4] == ["Bravo Roofing", "bravo", "2025-03", "America/New_York"]
    assert [int(v) for v in rows[1][6:]] == list(EXPECTED_B.values())
    answer = api(user).get("/api/v1/usage/", {"month": "2025-03"})
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["month"] == "2025-03" and len(body["accounts"]) == 1
    assert body["accounts"][0]["account_slug"] == "bravo"
    assert {k: body["accounts"][0][k] for k in EXPECTED_B} == EXPECTED_B
    # Every account is a superuser's question.
    assert api(user).get("/api/v1/usage/", {"month": "2025-03", "all": "true"}).status_code == 400
    # The sidebar lists Usage.
    titles = [i["title"] for g in sidebar_navigation(page.wsgi_request) for i in g["items"]]
    assert "Usage" in titles


def test_a_billing_user_sees_the_usage_and_nothing_else(world, client):
    user = member(world["b"], AccountRole.BILLING)
    client.force_login(user)
    home = client.get("/admin/")
    assert home.status_code == 302 and home["Location"] == PAGE
    page = client.get(PAGE)
    groups = sidebar_navigation(page.wsgi_request)
    assert [i["title"] for g in groups for i in g["items"]] == ["Usage"]
    assert not may_see_dashboard(page.wsgi_request.user)
    assert client.get("/admin/tracking/call/").status_code == 403
    assert api(user).get("/api/v1/calls/").status_code == 403
    assert api(user).post("/api/v1/usage/").status_code in (403, 405)


def test_an_owner_still_gets_the_dashboard(world, client):
    client.force_login(member(world["a"], AccountRole.OWNER))
    home = client.get("/admin/")
    assert home.status_code == 200 and home.context["dashboard"] is True


def test_a_collaborator_is_refused(world, client):
    user = collaborator(world)
    client.force_login(user)
    assert client.get(PAGE).status_code == 403
    assert client.get(EXPORT).status_code == 403
    assert api(user).get("/api/v1/usage/").status_code == 403
    page = client.get("/admin/")
    assert "Usage" not in [i["title"] for g in sidebar_navigation(page.wsgi_request) for i in g["items"]]


def test_anonymous_is_refused(client):
    assert client.get(PAGE).status_code == 302  # to the login
    assert reverse("admin:calltrack_account_usage") == PAGE and reverse("admin:calltrack_account_usage_export") == EXPORT
    assert APIClient().get("/api/v1/usage/").status_code in (401, 403)


def test_a_superuser_sees_every_account_in_one_table(world, client):
    world["b"].name = "=HYPERLINK(\"http://x\")"
    world["b"].save()
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    html = client.get(PAGE, {"month": "2025-03"}).content.decode()
    assert 'data-account="bravo"' in html and 'data-account="default"' in html
    rows = rows_of(b"".join(client.get(EXPORT, {"month": "2025-03"}).streaming_content))
    assert [r[1] for r in rows[1:]] == ["default", "bravo"]
    assert rows[2][0].startswith("'=")  # formula-safe
    assert [int(v) for v in rows[1][6:]] == list(EXPECTED_A.values())
    body = api(root).get("/api/v1/usage/", {"month": "2025-03", "all": "true"}).json()
    assert [(a["account_slug"], a["minutes"]) for a in body["accounts"]] == [("default", 5), ("bravo", 61)]
    # Without all=true: the account it acts in.
    assert [a["account_slug"] for a in api(root).get("/api/v1/usage/", {"month": "2025-03"}).json()["accounts"]] == ["default"]


# As sent in the query string: NUL, a lone surrogate (invalid UTF-8), year 0, month 13...
@pytest.mark.parametrize("month", ["2025-13", "0000-01", "2025-03%00", "abc", "2025-00", "10000-01", "%ED%A0%80", "%FF", "2025-03" * 5])
def test_a_bad_month_is_a_400_never_a_500(world, client, month):
    user = member(world["a"], AccountRole.OWNER)
    answer = api(user).get(f"/api/v1/usage/?month={month}")
    assert answer.status_code == 400
    assert "month" in answer.json()
    client.force_login(user)
    assert client.get(f"{EXPORT}?month={month}").status_code == 400
    page = client.get(f"{PAGE}?month={month}")
    assert page.status_code == 200 and 'role="alert"' in page.content.decode()


def test_the_default_month_is_the_current_one(world):
    user = member(world["b"], AccountRole.BILLING)
    body = api(user).get("/api/v1/usage/").json()
    assert body["month"] == str(usage.current_month(NY))
