"""The call log's CSV export written by PostgreSQL (COPY): the same bytes as the Python path for the same calls
(formula cells, quoting, time zones, NULLs, tags), the changelist's filters and a collaborator's hidden columns
kept, and a download abandoned half-way leaves the connection idle and usable."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from calltrack import csv_export
from tests.tracking.factories import CallFactory, CampaignFactory, HandlerFactory, SourceFactory, UserFactory
from tracking import admin_call_log as call_log
from tracking import call_tags
from tracking.models import Call, Collaborator

pytestmark = pytest.mark.django_db
EXPORT = "admin:tracking_call_export"

# Cells a spreadsheet would run, plain numbers it must not touch, and what CSV has to quote.
NASTY = ["=cmd|calc", "+14155550138", "-12.50", "@x", "\tx", "\rx", "+1415 555", "-", "+", "+١٢٣", "１２", "a,b",
         'say "hi"', "two\nlines", "cr\r\nlf", "", " ", "ünïcødé 😀 Ω≈ç", "\\.", '"', "'=already", "=", "1.", ".5", "-0", "+123\n", "-1e5", "100%"]


def _utc(*args) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo("UTC"))


@pytest.fixture
def nasty_calls():
    """Calls whose every text column, UTM value and tag holds the values above, and NULLs where they can be."""
    calls = []
    for i, value in enumerate(NASTY):
        source = SourceFactory(name=value or "s") if i % 3 else None  # NULL joined names too
        calls.append(CallFactory(
            caller_number=value, called_number=NASTY[-1 - i], caller_city=value, caller_state=NASTY[(i + 3) % len(NASTY)],
            source=source, campaign=CampaignFactory(name=NASTY[(i + 5) % len(NASTY)] or "c") if i % 4 else None,
            handler=HandlerFactory(name=value or "h") if i % 2 else None,
            status="completed", duration=i * 7, talk_time=i, converted=bool(i % 2), is_test=i % 3 == 0,
            revenue=Decimal("-5.00") if i % 5 == 0 else Decimal(i) / 4, payout=Decimal("0"),
            marketing_data={"utm_source": value, "utm_medium": NASTY[(i + 1) % len(NASTY)], **({"utm_campaign": 7} if i % 2 else {})},
            landing_page=f"https://example.com/?q={value}", visitor_id=value,
            tags={"plan": value, "score": i - 10, "flag": bool(i % 2), "nested": {"a": [value]}, "none": None,
                  **({"empty": ""} if i % 2 else {"odd-one": NASTY[(i + 7) % len(NASTY)]})},
            # microseconds (cut, not rounded), both sides of DST changes, year boundaries
            started_at=_utc(2026, 3 + i % 9, 1 + i, (i * 5) % 24, i, 59, 999_999 if i % 2 else 0),
        ))
    calls.append(CallFactory(call_sid="CA-old", started_at=_utc(1971, 6, 1, 12, 0, 1)))  # Monrovia: -00:44:30 then
    return calls


def _export(*, copy: bool, queryset=None, hidden: frozenset[str] = frozenset()) -> bytes:
    queryset = Call.objects.all() if queryset is None else queryset
    columns = call_log.call_export_columns(hidden=set(hidden))
    queryset, tag_columns = call_tags.tag_columns_annotate(queryset=queryset, exclude={lookup.rsplit("__", 1)[-1] for _, lookup in columns})
    pieces = list(call_log.call_export_chunks(queryset=queryset, columns=[*columns, *tag_columns], copy=copy))
    return b"".join(p if isinstance(p, bytes) else p.encode() for p in pieces)


@pytest.mark.postgres
@pytest.mark.parametrize("zone", ["Asia/Kolkata", "America/St_Johns", "America/Denver", "Asia/Kathmandu", "UTC", "Africa/Monrovia"])
def test_copy_writes_the_same_bytes_as_the_python_path(nasty_calls, zone):
    with timezone.override(ZoneInfo(zone)):
        with mock.patch.object(csv_export, "csv_copy_chunks", wraps=csv_export.csv_copy_chunks) as copied:
            by_copy = _export(copy=True)
        assert copied.called  # the COPY path, not the fallback
        by_python = _export(copy=False)
    assert by_copy == by_python
    rows = list(csv.DictReader(io.StringIO(by_copy.decode(), newline="")))
    assert len(rows) == len(nasty_calls) and "tag:plan" in rows[0] and "tag:nested" in rows[0]
    cells = {(r["call_sid"], k): v for r in rows for k, v in r.items()}
    first = nasty_calls[0]  # "=cmd|calc" everywhere
    assert cells[(first.call_sid, "caller_city")] == cells[(first.call_sid, "utm_source")] == cells[(first.call_sid, "tag:plan")] == "'=cmd|calc"
    assert cells[(nasty_calls[1].call_sid, "caller")] == "+14155550138" and cells[(nasty_calls[2].call_sid, "caller")] == "-12.50"
    assert cells[(nasty_calls[9].call_sid, "caller")] == "'+١٢٣"  # not ASCII digits: not a plain number
    assert cells[(first.call_sid, "revenue")] == "-5.00" and cells[(first.call_sid, "converted")] == "False"
    assert cells[(first.call_sid, "test_call")] == "True" and cells[(nasty_calls[1].call_sid, "test_call")] == "False"
    if zone == "Asia/Kolkata":
        assert cells[(first.call_sid, "started_at")] == "2026-03-01T05:30:59+05:30"
    if zone == "America/St_Johns":
        assert cells[(first.call_sid, "started_at")] == "2026-02-28T20:30:59-03:30"
    if zone == "Africa/Monrovia":
        assert cells[("CA-old", "started_at")] == "1971-06-01T11:15:31-00:44:30"


@pytest.mark.postgres
def test_the_admin_view_keeps_the_changelists_filters_and_search_on_the_copy_path(admin_client, nasty_calls, settings):
    settings.TIME_ZONE = "America/St_Johns"
    source = nasty_calls[1].source
    CallFactory(source=source, caller_number="+13035550111", started_at=_utc(2026, 5, 1))
    rows = {}  # a search for a value finds it as a city and as the next call's UTM medium: 2 calls
    for name, params in {"source": {"source__id__exact": source.pk}, "number": {"q": "555-0111"}, "formula": {"q": "=cmd|calc"},
                         "percent": {"q": "100%"}, "converted since": {"converted__exact": "1", "started_at_from": "2026-04-01"},
                         "all": {}}.items():
        by_copy = b"".join(admin_client.get(reverse(EXPORT), params).streaming_content)
        with mock.patch.object(csv_export, "csv_copy_supported", return_value=False):
            by_python = b"".join(admin_client.get(reverse(EXPORT), params).streaming_content)
        assert by_copy == by_python, name
        rows[name] = len(list(csv.DictReader(io.StringIO(by_copy.decode(), newline=""))))
    assert rows == {"source": 2, "number": 1, "formula": 2, "percent": 2, "all": len(nasty_calls) + 1,
                    "converted since": Call.objects.filter(converted=True, started_at__gte=_utc(2026, 4, 1, 2, 30)).count()}


@pytest.mark.postgres
def test_a_collaborators_export_by_copy_has_no_revenue_or_other_hidden_column(nasty_calls):
    user = UserFactory(username="src-collab", is_staff=True)
    source = nasty_calls[1].source
    Collaborator.objects.create(user=user, source=source)
    client = Client()
    client.force_login(user)
    with mock.patch.object(csv_export, "csv_copy_chunks", wraps=csv_export.csv_copy_chunks) as copied:
        body = b"".join(client.get(reverse(EXPORT)).streaming_content).decode()
    assert copied.called
    rows = list(csv.DictReader(io.StringIO(body, newline="")))
    assert {r["call_sid"] for r in rows} == set(Call.objects.filter(source=source).values_list("call_sid", flat=True))
    assert not {"revenue", "handler", "campaign"} & set(rows[0]) and "payout" in rows[0]
    with mock.patch.object(csv_export, "csv_copy_supported", return_value=False):
        assert b"".join(client.get(reverse(EXPORT)).streaming_content).decode() == body


@pytest.mark.postgres
def test_copy_pieces_are_whole_rows_of_about_the_piece_size():
    CallFactory.create_batch(300, landing_page="https://example.com/" + "x" * 200)
    values = call_log.call_export_values(queryset=Call.objects.all(), columns=call_log.call_export_columns(hidden=set()))
    pieces = list(csv_export.csv_copy_chunks(header=["a"] * 21, queryset=values, tz=ZoneInfo("UTC"), size=8192))
    assert len(pieces) > 3 and all(p.endswith(b"\r\n") and 8192 <= len(p) < 8192 + 600 for p in pieces[:-1])
    assert b"".join(pieces).count(b"\r\n") == 301


def _pg_transaction_status() -> str:
    return connection.connection.info.transaction_status.name


def _abandon(pieces) -> None:
    """Read one piece of a long export, then drop the rest, as a client that goes away does."""
    next(pieces)
    assert connection.in_atomic_block and _pg_transaction_status() in ("ACTIVE", "INTRANS")  # the COPY is under way
    pieces.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_abandoned_copy_is_cancelled_and_leaves_the_connection_idle_and_usable(admin_client):
    CallFactory.create_batch(700, landing_page="https://example.com/" + "x" * 200)  # > 64 KB: more than one piece
    values = call_log.call_export_values(queryset=Call.objects.all(), columns=call_log.call_export_columns(hidden=set()))
    _abandon(csv_export.csv_copy_chunks(header=["h"], queryset=values, tz=ZoneInfo("UTC"), size=1024))
    assert not connection.in_atomic_block and _pg_transaction_status() == "IDLE"
    assert Call.objects.count() == 700  # the connection answers
    # Through the view, as the server does when the client goes away (request_finished closes nothing healthy).
    # A connection older than CONN_MAX_AGE (60 s on PostgreSQL) is closed at the end of any request, healthy or not:
    # the worker's connection may be that old by now, so it is made persistent for this check.
    connection.close_at = None
    response = admin_client.get(reverse(EXPORT))
    raw = connection.connection
    next(iter(response.streaming_content))
    assert _pg_transaction_status() in ("ACTIVE", "INTRANS")
    response.close()
    assert connection.connection is raw and not connection.in_atomic_block and _pg_transaction_status() == "IDLE"
    assert Call.objects.count() == 700
    # And read to the end: the transaction is closed too.
    assert len(b"".join(csv_export.csv_copy_chunks(header=["h"], queryset=values, tz=ZoneInfo("UTC")))) > 700 * 200
    assert not connection.in_atomic_block and _pg_transaction_status() == "IDLE"


@pytest.mark.postgres
def test_an_abandoned_export_inside_a_transaction_leaves_that_transaction_usable():
    CallFactory.create_batch(700, landing_page="https://example.com/" + "x" * 200)
    columns = call_log.call_export_columns(hidden=set())
    _abandon(iter(call_log.call_export_chunks(queryset=Call.objects.all(), columns=columns)))  # a 64 KB piece, of ~170 KB
    assert Call.objects.count() == 700  # not "current transaction is aborted": the COPY's savepoint was rolled back
    assert connection.in_atomic_block and _pg_transaction_status() == "INTRANS"  # the test's own transaction, still open


def _session_zone() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('TimeZone')")
        return cursor.fetchone()[0]


@pytest.mark.postgres
def test_an_export_inside_a_transaction_writes_its_zones_times_and_leaves_the_sessions_zone_as_it_was():
    CallFactory.create_batch(700, landing_page="https://example.com/" + "x" * 200, started_at=_utc(2026, 5, 1, 12))
    values = call_log.call_export_values(queryset=Call.objects.all(), columns=call_log.call_export_columns(hidden=set()))
    before = _session_zone()
    assert before != "Asia/Kathmandu" and connection.in_atomic_block  # the test's transaction: the COPY's is a savepoint
    body = b"".join(csv_export.csv_copy_chunks(header=["h"], queryset=values, tz=ZoneInfo("Asia/Kathmandu")))
    assert body.count(b",2026-05-01T17:45:00+05:45,") == 700
    assert _session_zone() == before  # read to the end: the caller's zone set back
    _abandon(csv_export.csv_copy_chunks(header=["h"], queryset=values, tz=ZoneInfo("Asia/Kathmandu"), size=1024))
    assert _session_zone() == before  # abandoned: the savepoint's rollback undid it
    assert Call.objects.filter(started_at=_utc(2026, 5, 1, 12)).count() == 700


@pytest.mark.postgres
def test_a_column_without_an_sql_twin_is_refused_before_the_download_starts():
    with pytest.raises(TypeError, match="tags"):
        csv_export.csv_copy_chunks(header=["tags"], queryset=Call.objects.values_list("tags"), tz=ZoneInfo("UTC"))


def test_sqlite_and_offset_only_zones_take_the_python_path(settings):
    CallFactory(caller_city="=x")
    with timezone.override(timezone.get_fixed_timezone(330)):
        assert all(isinstance(p, str) for p in call_log.call_export_chunks(queryset=Call.objects.all(), columns=call_log.call_export_columns(hidden=set())))
    chunks = list(call_log.call_export_chunks(queryset=Call.objects.all(), columns=call_log.call_export_columns(hidden=set())))
    assert all(isinstance(p, bytes if connection.vendor == "postgresql" else str) for p in chunks)


@pytest.mark.postgres
def test_a_filter_no_call_can_match_exports_the_header_alone():
    """``pk__in=[]``: Django sends no query at all (EmptyResultSet); the COPY path answers the header, as the
    portable path does for no rows."""
    CallFactory()
    columns = call_log.call_export_columns(hidden=set())
    values = call_log.call_export_values(queryset=Call.objects.filter(pk__in=[]), columns=columns)
    out = b"".join(csv_export.csv_copy_chunks(header=["id", "caller"], queryset=values, tz=ZoneInfo("UTC")))
    assert out == b"id,caller\r\n"
