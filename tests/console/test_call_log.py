"""The call log: filters the dashboard links to, search as people type, no COUNT(*), no bulk delete, a
read-only call page with the route in words, and a CSV export streamed and safe for spreadsheets."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.http import StreamingHttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from calltrack.csv_export import csv_chunks, csv_lines, csv_safe, csv_safe_row
from tests.numbers.factories import NumberPoolFactory, TrackingNumberFactory
from tests.tracking.factories import CallAttemptFactory, CallFactory, HandlerFactory, SourceFactory, UserFactory
from tracking.models import Call, CallEvent

pytestmark = pytest.mark.django_db
LOG = "admin:tracking_call_changelist"


def _shown(response) -> set[int]:
    return {call.pk for call in response.context["cl"].result_list}


@pytest.fixture
def calls():
    web, radio = SourceFactory(name="Web"), SourceFactory(name="Radio")
    at = timezone.make_aware(datetime(2026, 11, 20, 15, 0))
    return {
        "sf": CallFactory(caller_number="+14155550138", caller_city="SAN FRANCISCO", source=web, started_at=at,
                          marketing_data={"utm_source": "google", "utm_campaign": "spring"}),
        "den": CallFactory(caller_number="+13035550111", caller_city="DENVER", source=radio, started_at=at - timedelta(days=3),
                           marketing_data={"utm_source": "facebook"}),
        "old": CallFactory(caller_number="+12125550199", caller_city="NEW YORK", source=web, started_at=at - timedelta(days=40)),
    }


@pytest.mark.parametrize("typed", ["(415) 555-0138", "415-555-0138", "4155550138", "+1 415 555 0138", "555-0138"])
def test_search_finds_a_caller_however_the_number_is_typed(admin_client, calls, typed):
    assert _shown(admin_client.get(reverse(LOG), {"q": typed})) == {calls["sf"].pk}


@pytest.mark.parametrize("typed", ["555-0138", "(415) 055-0138"])
def test_search_by_the_end_of_a_number_or_an_invalid_whole_one_matches_the_last_digits(admin_client, typed):
    hit = CallFactory(caller_number="+14150550138" if "055" in typed else "+14155550138")
    CallFactory(caller_number="+14155550139", called_number="+13035550100")
    assert _shown(admin_client.get(reverse(LOG), {"q": typed})) == {hit.pk}


@pytest.mark.postgres
def test_search_by_the_end_of_a_number_is_answered_by_the_reversed_number_indexes(admin_client):
    from tracking.admin_call_log import call_search_q

    CallFactory(caller_number="+14155550138")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = Call.objects.filter(call_search_q("555-0138")).order_by().query.sql_with_params()
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "call_caller_number_rev" in plan and "call_called_number_rev" in plan


@pytest.mark.parametrize("typed,key", [("san francisco", "sf"), ("Denver", "den"), ("facebook", "den"), ("spring", "sf")])
def test_search_finds_a_city_or_a_utm_value(admin_client, calls, typed, key):
    assert _shown(admin_client.get(reverse(LOG), {"q": typed})) == {calls[key].pk}


def test_the_dashboards_plain_lookups_filter_the_log(admin_client, calls):
    web = calls["sf"].source
    response = admin_client.get(reverse(LOG), {
        "source__id__exact": web.pk, "started_at__gte": "2026-11-01T00:00:00Z", "started_at__lt": "2026-12-01T00:00:00Z",
    })
    assert response.status_code == 200 and _shown(response) == {calls["sf"].pk}


def test_the_date_range_filter_includes_the_whole_last_day(admin_client, calls):
    response = admin_client.get(reverse(LOG), {"started_at_from": "2026-11-17", "started_at_to": "2026-11-20"})
    assert _shown(response) == {calls["sf"].pk, calls["den"].pk}


def test_filters_by_handler_status_converted_pool_number_and_utm_source(admin_client, calls):
    handler = HandlerFactory()
    pool = NumberPoolFactory()
    number = TrackingNumberFactory(kind="pool", pool=pool, campaign=pool.campaign)
    Call.objects.filter(pk=calls["den"].pk).update(handler=handler, status="completed", converted=True, tracking_number=number)
    for params in ({"handler__id__exact": handler.pk}, {"status__exact": "completed"}, {"converted__exact": "1"},
                   {"tracking_number__pool__id__exact": pool.pk}, {"tracking_number__id__exact": number.pk},
                   {"utm_source": "facebook"}):
        assert _shown(admin_client.get(reverse(LOG), params)) == {calls["den"].pk}, params


def test_the_log_never_counts_the_whole_table_only_up_to_a_bound(admin_client, calls):
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(reverse(LOG))
    assert response.status_code == 200
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper() and "tracking_call" in q["sql"]]
    # One count, of a LIMITed subquery: "N matching calls", or "more than 10,000" past the bound.
    assert len(counts) == 1 and "LIMIT 10001" in counts[0].upper(), counts
    assert f"<strong>{Call.objects.count()}</strong> matching calls" in response.content.decode()


def test_operators_get_no_delete_selected_and_cannot_delete_calls(calls):
    operator = UserFactory(username="operator", is_staff=True)
    operator.user_permissions.add(*Permission.objects.filter(codename__in=["view_call", "change_call", "delete_call"]))
    client = Client()
    client.force_login(operator)
    response = client.get(reverse(LOG))
    assert response.status_code == 200
    assert "delete_selected" not in response.content.decode()
    page = client.get(reverse("admin:tracking_call_change", args=[calls["sf"].pk])).content.decode()
    assert "Delete call" not in page and 'name="_save"' not in page
    assert client.post(reverse("admin:tracking_call_delete", args=[calls["sf"].pk]), {"post": "yes"}).status_code == 403


def test_the_call_page_is_a_summary_with_the_route_in_words(admin_client):
    denver = HandlerFactory(name="Denver call center", always_open=False, timezone="America/Denver")
    chicago = HandlerFactory(name="Chicago overflow")
    call = CallFactory(
        status="completed", caller_city="AUSTIN", caller_state="TX", visitor_id="v-123", landing_page="https://example.com/roofs",
        marketing_data={"utm_source": "google", "utm_medium": "cpc"}, conversion_status="converted", converted=True,
        conversion_reason="connected 95 s, over the 90 s timer", revenue=Decimal("40"), payout=Decimal("15"),
        decision={"strategy": "priority_weight", "steps": [[chicago.pk]], "options": {},
                  "skipped": [{"handler_id": denver.pk, "name": "Denver call center", "reason": "closed",
                               "detail": "closed at Sun 07:00 America/Denver"}]},
    )
    start = timezone.now()
    CallAttemptFactory(call=call, handler=chicago, sequence=0, status="no_answer", started_at=start, ended_at=start + timedelta(seconds=20))
    CallAttemptFactory(call=call, handler=None, kind="fallback", number_dialed="+13035550177", sequence=1, status="completed", duration=95)
    call.decision["tail"] = [{"kind": "fallback", "label": "tracking number's agent", "number": "+13035550177", "step": "number_agent"}]
    call.save(update_fields=["decision"])
    CallEvent.objects.create(call=call, kind="call.started", message="Call from Austin")
    page = admin_client.get(reverse("admin:tracking_call_change", args=[call.pk])).content.decode()
    assert "Denver call center was closed (closed at Sun 07:00 America/Denver)" in page
    assert "Chicago overflow did not answer in 20 s" in page
    assert "The tracking number&#x27;s agent answered (talked 1:35)" in page
    assert "Austin, TX" in page and "v-123" in page and "https://example.com/roofs" in page and "cpc" in page
    assert "connected 95 s, over the 90 s timer" in page
    assert page.count('id="call-timeline"') == 1
    assert "Priority, then weight" in page and "priority_weight" not in page and "number_agent" not in page
    assert 'name="_save"' not in page


def test_csv_export_streams_the_filtered_log_with_formula_cells_neutralised(admin_client, calls):
    Call.objects.filter(pk=calls["sf"].pk).update(caller_city="=HYPERLINK(\"http://evil\")", revenue=Decimal("-5.00"))
    response = admin_client.get(reverse("admin:tracking_call_export"), {"source__id__exact": calls["sf"].source_id})
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["call_id"] for r in rows] == [str(calls["sf"].pk), str(calls["old"].pk)]  # the filter applied, newest first
    first = rows[0]
    assert first["caller_city"] == "'=HYPERLINK(\"http://evil\")"
    assert first["caller"] == "+14155550138" and first["revenue"] == "-5.00"  # plain numbers stay numbers
    assert first["utm_source"] == "google" and first["source"] == "Web"


def test_a_source_collaborators_export_leaves_out_the_other_side(calls):
    from tracking.models import Collaborator

    user = UserFactory(username="web-src", is_staff=True)
    Collaborator.objects.create(user=user, source=calls["sf"].source)
    client = Client()
    client.force_login(user)
    response = client.get(reverse("admin:tracking_call_export"))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {r["call_id"] for r in rows} == {str(calls["sf"].pk), str(calls["old"].pk)}
    assert "revenue" not in rows[0] and "handler" not in rows[0] and "campaign" not in rows[0] and "payout" in rows[0]


@pytest.mark.parametrize("value,safe", [
    ("=1+2", "'=1+2"), ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("+14155550138", "+14155550138"), ("-12.50", "-12.50"), ("Denver", "Denver"), (None, ""), (7, 7),
    ("+١٢٣", "'+١٢٣"),  # digits of another script: no spreadsheet reads them as a number
])
def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(value, safe):
    assert csv_safe(value) == safe


_CELLS = ["=1+2", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx", "+14155550138", "-12.50", "Denver", "", None, 7, Decimal("-5.00"), True]


def test_a_rows_fast_path_neutralises_exactly_as_each_cell_would_be():
    assert csv_safe_row(_CELLS) == [csv_safe(v) for v in _CELLS]


def test_the_streamed_csv_comes_in_large_pieces_of_whole_lines_with_the_same_text():
    rows = [[i, f"=cell {i}", "Denver, CO", None, "say \"hi\""] for i in range(3000)]
    pieces = list(csv_chunks(["id", "a", "b", "c", "d"], rows, size=8192))
    assert "".join(pieces) == "".join(csv_lines(["id", "a", "b", "c", "d"], rows))
    assert len(pieces) > 5 and all(p.endswith("\r\n") and 8192 <= len(p) < 8192 + 200 for p in pieces[:-1])
    assert list(csv_chunks(["id"], [])) == ["id\r\n"]


def test_the_export_gives_times_in_the_operators_zone_and_one_piece_per_64_kb(admin_client, settings):
    settings.TIME_ZONE = "America/Denver"
    source = SourceFactory(name="Web")
    at = datetime(2026, 7, 1, 18, 30, 5, tzinfo=timezone.get_fixed_timezone(0))
    CallFactory.create_batch(700, source=source, started_at=at, landing_page="https://example.com/" + "x" * 100)
    response = admin_client.get(reverse("admin:tracking_call_export"))
    pieces = list(response.streaming_content)
    rows = list(csv.DictReader(io.StringIO(b"".join(pieces).decode())))
    assert len(rows) == 700 and 1 < len(pieces) < 10  # not one piece per row
    assert rows[0]["started_at"] == "2026-07-01T12:30:05-06:00"


def test_numbers_export_neutralises_formulas_and_re_imports_them_unchanged(tmp_path):
    from calltrack.numbers.models import TrackingNumber
    from calltrack.numbers.services.importing import numbers_export, numbers_import

    number = TrackingNumberFactory(label="=HYPERLINK(\"http://evil\")")
    out = io.StringIO()
    numbers_export(out=out)
    row = next(r for r in csv.DictReader(io.StringIO(out.getvalue())) if r["number"] == number.number)
    assert row["label"] == "'=HYPERLINK(\"http://evil\")" and row["number"] == number.number
    TrackingNumber.objects.filter(pk=number.pk).update(label="changed")
    numbers_import(file=io.StringIO(out.getvalue()), update=True)
    assert TrackingNumber.objects.get(pk=number.pk).label == "=HYPERLINK(\"http://evil\")"


def test_the_logs_row_checkbox_and_sort_links_are_the_themes_own_rendered_once(admin_client, calls):
    from django.contrib import admin as django_admin

    from calltrack.admin_base import ModelAdmin

    call_admin = django_admin.site._registry[Call]
    for call in calls.values():
        assert call_admin.action_checkbox(call) == ModelAdmin.action_checkbox(call_admin, call)
    page = admin_client.get(reverse(LOG), {"o": "-2"}).content.decode()
    for call in calls.values():
        assert f'value="{call.pk}"' in page
    cl = admin_client.get(reverse(LOG), {"o": "-2"}).context["cl"]
    assert cl.get_query_string({"o": "1"}) == "?o=1" and cl.get_query_string(remove=["o"]) == "?"
    assert cl.get_ordering_field_columns() == {2: "desc"}
