"""Texts over the API (issue 29): read-only list and detail, the filters, the trust gate's scoping (a source
collaborator sees its source's texts, a handler collaborator the texts forwarded to it), bad input a 400."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tracking.models import TextMessage

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
CONTACT = "+14155550111"


def make(sid: str, at: datetime, **fields) -> TextMessage:
    defaults = {"from_number": CONTACT, "to_number": "+14155550999", "contact_number": CONTACT, "body": sid, "created_at": at}
    return TextMessage.objects.create(message_sid=sid, **{**defaults, **fields})


def sids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["message_sid"] for row in response.json()["results"]]


@pytest.fixture
def texts(world):
    """SMa: the source's inbound text, converted and forwarded to the handler; SMb: the forward itself (to the handler's
    line); SMc: the other source's text; SMd: the source's auto-reply (outbound, delivered); SMe: a test text."""
    mine = dict(campaign=world.campaign, source=world.source, tracking_number=world.static_mine)
    return {
        "a": make("SMa", T0, handler=world.handler, converted=True, revenue=Decimal("20"), payout=Decimal("5"),
                  marketing_data={"utm_source": "google"}, tags={"utm_source": "google", "caller_state": "CA"}, **mine),
        "b": make("SMb", T0 + timedelta(minutes=1), direction="outbound", purpose="forward", status="delivered", handler=world.handler,
                  from_number=world.static_mine.number, to_number="+14155550777", **mine),
        "c": make("SMc", T0 + timedelta(hours=1), campaign=world.campaign, source=world.other_source, tracking_number=world.static_other),
        "d": make("SMd", T0 + timedelta(hours=2), direction="outbound", purpose="auto_reply", status="delivered", **mine),
        "e": make("SMe", T0 + timedelta(days=1), is_test=True, **mine),
    }


def test_texts_are_listed_newest_first_and_cursor_paginated(staff, texts):
    assert sids(staff.get("/api/v1/texts/")) == ["SMe", "SMd", "SMc", "SMb", "SMa"]
    first = staff.get("/api/v1/texts/", {"page_size": 3}).json()
    assert [r["message_sid"] for r in first["results"]] == ["SMe", "SMd", "SMc"] and "count" not in first
    assert [r["message_sid"] for r in staff.get(first["next"]).json()["results"]] == ["SMb", "SMa"]


def test_a_text_shows_its_credit_conversion_and_marketing_data(staff, texts, world):
    data = staff.get(f"/api/v1/texts/{texts['a'].pk}/").json()
    assert (data["campaign"], data["source"], data["handler"], data["tracking_number"]) == (
        world.campaign.pk, world.source.pk, world.handler.pk, world.static_mine.pk)
    assert (data["converted"], data["revenue"], data["payout"], data["margin"]) == (True, "20.00", "5.00", "15.00")
    assert data["marketing_data"] == {"utm_source": "google"} and data["direction"] == "inbound"


def test_texts_filter_by_date_range(staff, texts):
    params = {"created_after": T0.isoformat(), "created_before": (T0 + timedelta(hours=1)).isoformat()}
    assert sids(staff.get("/api/v1/texts/", params)) == ["SMb", "SMa"]
    assert sids(staff.get("/api/v1/texts/", {"created_after": "2026-03-02T17:00:00+01:00"})) == ["SMe", "SMd", "SMc"]


def test_texts_filter_by_direction_status_source_campaign_converted_and_test(staff, texts, world):
    assert sids(staff.get("/api/v1/texts/", {"direction": "outbound"})) == ["SMd", "SMb"]
    assert sids(staff.get("/api/v1/texts/?status=delivered&status=failed")) == ["SMd", "SMb"]
    assert sids(staff.get("/api/v1/texts/", {"source": world.other_source.pk})) == ["SMc"]
    assert sids(staff.get("/api/v1/texts/", {"campaign": world.campaign.pk, "purpose": "contact"})) == ["SMe", "SMc", "SMa"]
    assert sids(staff.get("/api/v1/texts/", {"converted": "true"})) == ["SMa"]
    assert sids(staff.get("/api/v1/texts/", {"is_test": "false", "direction": "inbound"})) == ["SMc", "SMa"]
    assert sids(staff.get("/api/v1/texts/", {"handler": world.handler.pk})) == ["SMb", "SMa"]


def test_a_source_collaborator_sees_its_sources_texts_without_the_forwards_nor_the_other_side(source_collaborator, texts, world):
    assert sids(source_collaborator.get("/api/v1/texts/")) == ["SMe", "SMd", "SMa"]
    assert source_collaborator.get(f"/api/v1/texts/{texts['c'].pk}/").status_code == 404
    assert source_collaborator.get(f"/api/v1/texts/{texts['b'].pk}/").status_code == 404
    data = source_collaborator.get(f"/api/v1/texts/{texts['a'].pk}/").json()
    assert (data["campaign"], data["handler"], data["revenue"], data["margin"]) == (None, None, None, None)
    assert (data["source"], data["payout"]) == (world.source.pk, "5.00")
    # A filter on a party it may not see is ignored (it would tell which of its texts were forwarded where).
    assert sids(source_collaborator.get("/api/v1/texts/", {"handler": world.other_handler.pk})) == ["SMe", "SMd", "SMa"]
    assert sids(source_collaborator.get("/api/v1/texts/", {"source": world.other_source.pk})) == []


def test_a_handler_collaborator_sees_only_the_texts_forwarded_to_it_without_the_source(handler_collaborator, texts, world):
    assert sids(handler_collaborator.get("/api/v1/texts/")) == ["SMb", "SMa"]
    assert handler_collaborator.get(f"/api/v1/texts/{texts['d'].pk}/").status_code == 404
    data = handler_collaborator.get(f"/api/v1/texts/{texts['a'].pk}/").json()
    assert (data["source"], data["campaign"], data["revenue"], data["payout"], data["tracking_number"]) == (None,) * 5
    assert data["marketing_data"] == {} and data["tags"] == {"caller_state": "CA"}
    assert sids(handler_collaborator.get("/api/v1/texts/", {"source": world.other_source.pk})) == ["SMb", "SMa"]


def test_texts_are_read_only_for_everyone(staff, source_collaborator, texts):
    assert staff.post("/api/v1/texts/", {"message_sid": "SMx"}, format="json").status_code == 405
    assert staff.delete(f"/api/v1/texts/{texts['a'].pk}/").status_code == 405
    assert source_collaborator.patch(f"/api/v1/texts/{texts['a'].pk}/", {"body": "x"}, format="json").status_code == 403


def test_texts_need_credentials_and_the_view_permission(client, texts):
    from rest_framework.test import APIClient

    from tests.api.conftest import token_client
    from tests.tracking.factories import UserFactory

    assert APIClient().get("/api/v1/texts/").status_code == 401
    assert token_client(UserFactory(username="bare", is_staff=True)).get("/api/v1/texts/").status_code == 403


@pytest.mark.parametrize("params", [
    {"created_after": "yesterday\x00"},
    {"created_after": "9999-12-31T23:59:59-15:00"},
    {"created_before": "0001-01-01T00:00:00+01:00"},
    {"created_after": "2026-03-02T15:00:00-16:53"},
    {"created_after": "99999-01-01"},
    {"source": "\x00"},
    {"campaign": str(2**63)},
    {"status": "lost\x00"},
    {"direction": "sideways"},
    {"purpose": "contact\u202e\U0001f600"},
    # Values the filters used to drop silently (every text listed instead):
    {"converted": "maybe"},
    {"is_test": "2"},
    {"converted": "\x00"},
    {"source": "\u0661"},  # ARABIC-INDIC DIGIT ONE: Python's int() reads 1
    {"campaign": "\uff11"},  # FULLWIDTH DIGIT ONE
    {"handler": "1.0"},
    {"tracking_number": "\U0001d7cf"},  # MATHEMATICAL BOLD DIGIT ONE
    {"created_after": "\u0662\u0660\u0662\u0666-03-02T00:00:00Z"},
    {"created_before": "2026-03-02T15:00:00+99:00"},
    {"ordering": "body"},
    {"ordering": "-created_at\x00"},
    {"page_size": "0"},
    {"page_size": "501"},
    {"page_size": "99999999999999999999"},
    {"page_size": "ten"},
    {"campain": "1"},  # a misspelt filter
    {"\x00": "1"},
])
def test_bad_filter_values_are_a_400_naming_the_parameter_never_a_500(staff, texts, params):
    response = staff.get("/api/v1/texts/", params)
    assert response.status_code == 400, response.content
    assert set(response.json()) == set(params)


def test_the_strict_values_still_filter_as_asked(staff, texts):
    assert sids(staff.get("/api/v1/texts/", {"converted": "TRUE"})) == ["SMa"]
    assert sids(staff.get("/api/v1/texts/", {"is_test": "1"})) == ["SMe"]
    assert sids(staff.get("/api/v1/texts/", {"ordering": "created_at", "page_size": "2"})) == ["SMa", "SMb"]


def test_bytes_that_are_no_utf_8_in_a_filter_are_a_400(staff, texts):
    # A lone surrogate's UTF-8 bytes (ED A0 80) and a stray continuation byte: Django reads them as U+FFFD.
    for query in ("converted=%ED%A0%80", "source=%80", "created_after=2026-03-02T15%ED%A0%80", "ordering=%FF"):
        response = staff.get(f"/api/v1/texts/?{query}")
        assert response.status_code == 400 and list(response.json()) == [query.split("=")[0]], query


@pytest.mark.parametrize(("query", "name"), [
    ("start=2026-03-01", "start"),  # without range=custom the default range was reported instead
    ("range=7d&start=2026-03-01&end=2026-03-02", "start"),
    ("range=custom&start=%D9%A2%D9%A0%D9%A2%D9%A6-03-01&end=2026-03-02", "start"),
    ("range=custom&start=2026-03-01&end=2026-03-02%00", "end"),
    ("range=custom&start=2026-02-30&end=2026-03-02", "start"),
    ("range=custom&start=0001-01-01&end=0001-01-02", "range"),
    ("range=custom&start=9999-12-31&end=9999-12-31", "range"),
    ("range=custom&start=2026-03-05&end=2026-03-01", "range"),
    ("range=%ED%A0%80", "range"),
    ("by=source", "by"),  # the calls' breakdown parameter: not this report's
    ("rnage=custom", "rnage"),
])
def test_the_text_reports_bad_parameters_are_a_400_naming_them(staff, texts, query, name):
    response = staff.get(f"/api/v1/reports/texts?{query}")
    assert response.status_code == 400, response.content
    assert name in response.json()


def test_the_text_report_reads_a_custom_range(staff, texts):
    response = staff.get("/api/v1/reports/texts", {"range": "custom", "start": "2026-03-02", "end": "2026-03-02"})
    assert response.status_code == 200 and response.json()["period"]["first_day"] == "2026-03-02"


def test_bad_ids_and_cursors_are_404s(staff, texts):
    assert staff.get("/api/v1/texts/9999999999999999999/").status_code == 404
    assert staff.get("/api/v1/texts/0/").status_code == 404
    assert staff.get("/api/v1/texts/", {"cursor": "garbage\x00"}).status_code == 404
