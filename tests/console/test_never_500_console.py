"""The call log, its export and the dashboard answer a clear message (a 400 page saying what is wrong, a 200 page
with the message, or Django's own redirect for a malformed lookup), never a 500: for dates no database can use
and for random query parameters, as a superuser, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.tracking.factories import CallFactory, HandlerFactory, UserFactory

pytestmark = pytest.mark.django_db

LOG, EXPORT = "admin:tracking_call_changelist", "admin:tracking_call_export"
BAD_DATES = [
    "started_at__gte=2026-01-01T00:00:00-16:53", "started_at__lt=2026-01-01T00:00:00%2B16:00",
    "started_at_to=9999-12-31", "started_at_from=2026-02-30", "started_at_from=0001-01-01",
    "started_at__gte=%00", "started_at__gte=0001-01-01T00:00:00%2B05:00", "started_at__lt=9999-12-31T23:59:59-10:00",
    "started_at__year=99999", "started_at__year=0", "started_at__date=2026-02-30", "answered_at__lt=9999-12-31T23:59:59-10:00",
    "started_at__range=2026-01-01T00:00:00Z,9999-12-31T23:59:59-10:00", "started_at__in=2026-01-01T00:00:00-16:53",
    "started_at__gte=2026-01-01", "started_at_to=abc", "handler__id__exact=99999999999999999999999",
    "tracking_number__pool__id__exact=-99999999999999999999999", "started_at__range=2026-01-01T00:00:00Z", "id__range=1,2,3",
]


def _get(client: Client, url: str):
    response = client.get(url)
    if hasattr(response, "streaming_content"):
        b"".join(response.streaming_content)
    return response


@pytest.fixture
def boss(settings) -> Client:
    settings.AXES_ENABLED = False
    settings.TIME_ZONE = "Asia/Kolkata"  # east of UTC: the first day of year 1 begins in year 0 in UTC
    client = Client()
    client.force_login(UserFactory(username="boss", is_staff=True, is_superuser=True))
    CallFactory(started_at=datetime(2026, 11, 1, 5, 30, tzinfo=ZoneInfo("UTC")), handler=HandlerFactory(),
                marketing_data={"utm_source": "google"})
    return client


@pytest.mark.parametrize("query", BAD_DATES)
@pytest.mark.parametrize("view", [LOG, EXPORT])
def test_dates_no_database_can_use_get_a_400_saying_which_not_a_500(boss, view, query):
    response = _get(boss, reverse(view) + "?" + query)
    assert response.status_code == 400, (query, response.status_code)
    assert "cannot use this filter" in response.content.decode()
    assert query.split("=")[0] in response.content.decode() or "NUL" in response.content.decode()


@pytest.mark.parametrize("view", [LOG, EXPORT])
def test_the_dashboards_own_date_links_and_the_date_range_still_work(boss, view):
    for query in ("started_at__gte=2026-11-01T00:00:00%2B00:00&started_at__lt=2026-11-02T00:00:00%2B00:00",
                  "started_at_from=2026-11-01&started_at_to=2026-11-01", "started_at__gte=2026-01-01T00:00:00%2B15:59"):
        assert _get(boss, reverse(view) + "?" + query).status_code == 200, query


@pytest.mark.parametrize("query", ["tags__plan__range=a", "marketing_data__utm_source__range=a,b", "caller_state__regex=(",
                                   "tags__plan__iregex=%5B%5D"])
@pytest.mark.parametrize("view", [LOG, EXPORT])
def test_lookups_the_database_would_fail_on_get_a_400_not_a_500(boss, view, query):
    # Found on PostgreSQL by the random test below: a regex PostgreSQL cannot read, a range on a JSON key.
    response = _get(boss, reverse(view) + "?" + query)
    assert response.status_code == 400, (query, response.status_code)
    assert query.split("=")[0] in response.content.decode()


@pytest.mark.parametrize("query", ["tags__contains=x", "tags__plan__contains=x", "marketing_data__contained_by=x",
                                   "tags__plan__tier__contains=%7B%7D"])
@pytest.mark.parametrize("view", [LOG, EXPORT])
def test_json_containment_is_a_filter_where_the_database_has_it_and_a_400_elsewhere(boss, view, query):
    # Found on SQLite by the random test below: SQLite has no JSON containment (Django raised NotSupportedError).
    from django.db import connection

    response = _get(boss, reverse(view) + "?" + query)
    if connection.features.supports_json_field_contains:
        assert response.status_code == 200, (query, response.status_code)
    else:
        assert response.status_code == 400, (query, response.status_code)
        assert query.split("=")[0] in response.content.decode() and "contains" in response.content.decode()


def test_the_export_answers_a_malformed_lookup_with_a_400_not_a_500(boss):
    for query in ("p=-1", "p=99999999999999999999", "nonsense__field=1", "handler__id__exact=abc"):
        response = _get(boss, reverse(EXPORT) + "?" + query)
        assert response.status_code == 400, query
        assert "does not know" in response.content.decode()


def test_the_dashboard_answers_bad_dates_with_its_default_range_and_a_message(boss):
    for query in ("range=custom&from=2026-02-30&to=9999-12-31", "range=custom&from=%00&to=-16:53", "range=custom&from=9999-12-31&to=9999-12-31"):
        response = boss.get(reverse("admin:index") + "?" + query)
        assert response.status_code == 200 and response.context["dashboard_error"]


# Keys an operator or a hand-edited link could send: the log's filters, plain lookups on dates, numbers, texts,
# relations and JSON, with the suffixes Django accepts, and random ones.
FIELDS = ["started_at", "answered_at", "ended_at", "created_at", "duration", "talk_time", "revenue", "payout", "status",
          "caller_state", "caller_number", "handler", "handler__id", "source__id", "campaign__id", "tracking_number__id",
          "tracking_number__pool__id", "marketing_data__utm_source", "tags__plan", "converted", "id", "call_sid"]
SUFFIXES = ["", "__exact", "__gte", "__lt", "__in", "__range", "__isnull", "__year", "__date", "__hour", "__contains",
            "__iexact", "__startswith", "__regex", "_from", "_to"]
SPECIAL = ["q", "o", "p", "e", "_popup", "_to_field", "range", "by", "sort", "from", "to", "utm_source", "started_at_from",
           "started_at_to", "all"]
VALUES = st.one_of(
    st.sampled_from(["", "0", "-1", "1", "True", "false", "2026-02-30", "9999-12-31", "0001-01-01", "2026-11-01T01:30:00-16:53",
                     "2026-11-01T01:30:00+05:30", "99999999999999999999", "1e999", "NaN", "%00", "\x00", ",", "1,2,3",
                     "2026-01-01,2026-02-01", "²", "١٢", "custom", "-calls", "label", "source", "null", "[]", "{}", "a" * 600]),
    st.text(max_size=40),
    st.integers().map(str),
    st.datetimes(timezones=st.sampled_from([ZoneInfo("UTC"), ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata")])).map(
        lambda d: d.isoformat()),
    st.dates().map(lambda d: d.isoformat()),
)
KEYS = st.one_of(
    st.builds(lambda f, s: f + s, st.sampled_from(FIELDS), st.sampled_from(SUFFIXES)),
    st.sampled_from(SPECIAL),
    st.text(min_size=1, max_size=20),
)
QUERIES = st.lists(st.tuples(KEYS, VALUES), min_size=1, max_size=4)


def _query(pairs) -> str:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(pairs=QUERIES, view=st.sampled_from([LOG, EXPORT, "admin:index"]))
def test_random_query_parameters_never_get_a_500_from_the_log_the_export_or_the_dashboard(boss, pairs, view):
    url = reverse(view) + "?" + _query(pairs)
    response = _get(boss, url)
    assert response.status_code in (200, 302, 400), (url, response.status_code)
    if response.status_code == 400:
        assert response.content  # a page that says why
