"""Every endpoint of the OpenAPI schema, for each kind of user: a collaborator never reads what scoping hides.

The walk is driven by the schema itself, so an endpoint added later is walked too, with no test to write: its
answers must not carry the other side's names or money, nor a non-empty field that calltrack.scoping hides.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from calltrack.scoping import HIDDEN_CALL_FIELDS, SIDE_FIELDS
from tests.tracking.factories import CallFactory, ConversionRuleFactory
from tracking.models import Call, CallStatus, Campaign, Handler, Source

MARKERS = {
    "source": "Src-Mine-7f", "other_source": "Src-Other-7f", "handler": "Hdl-Mine-7f", "other_handler": "Hdl-Other-7f",
    "campaign": "Cmp-7f", "revenue": "4321.17", "payout": "1234.71", "margin": "3086.46",
}
# What each kind of user must never read (staff reads everything: the walk must find every marker there).
FORBIDDEN = {
    "source": {"other_source", "handler", "other_handler", "campaign", "revenue", "margin"},
    "handler": {"source", "other_source", "other_handler", "campaign", "payout", "margin"},
}


@pytest.fixture
def marked(world):
    Source.objects.filter(pk=world.source.pk).update(name=MARKERS["source"])
    Source.objects.filter(pk=world.other_source.pk).update(name=MARKERS["other_source"])
    Handler.objects.filter(pk=world.handler.pk).update(name=MARKERS["handler"])
    Handler.objects.filter(pk=world.other_handler.pk).update(name=MARKERS["other_handler"])
    Campaign.objects.filter(pk=world.campaign.pk).update(name=MARKERS["campaign"])
    Call.objects.filter(pk=world.call_mine.pk).update(
        revenue=Decimal(MARKERS["revenue"]), payout=Decimal(MARKERS["payout"]), converted=True, revenue_converted=True,
        payout_converted=True, conversion_status="converted", converted_at=timezone.now(),
    )
    # A call the handler collaborator may convert, to walk the conversion endpoint's success answer too.
    ConversionRuleFactory(campaign=world.campaign, kind="postback", revenue=Decimal(MARKERS["revenue"]),
                          payout=Decimal(MARKERS["payout"]), postback_window=600)
    started = timezone.now() - timedelta(minutes=20)
    world.call_convertible = CallFactory(
        campaign=world.campaign, source=world.source, handler=world.handler, status=CallStatus.COMPLETED, started_at=started,
        answered_at=started, ended_at=started + timedelta(minutes=3), talk_time=180, conversion_status="pending",
    )
    return world


def _operations():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            yield path, method, operation


def _urls(path: str, operation: dict, world) -> list[tuple[str, dict]]:
    """The path with each id the world has, and its query parameters (each enum value, each id)."""
    ids = sorted({o.pk for o in vars(world).values() if hasattr(o, "pk")})
    paths = [re.sub(r"\{id\}", str(i), path) for i in ids] if "{id}" in path else [path]
    queries: list[dict] = [{}]
    for parameter in operation.get("parameters", []):
        if parameter["in"] != "query" or parameter["name"] in ("cursor", "page", "page_size", "ordering"):
            continue
        schema = parameter.get("schema", {})
        values = schema.get("enum") or schema.get("items", {}).get("enum") or (ids if schema.get("type") == "integer" else [])
        queries += [{parameter["name"]: value} for value in values]
        if parameter.get("required"):
            queries = [q for q in queries if parameter["name"] in q]
    return [(p, q) for p in paths for q in queries]


def _hidden_fields_with_values(data, hidden: frozenset[str], where: str = "") -> list[str]:
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key in hidden and value not in (None, "", {}, [], False):
                found.append(f"{where}.{key}={value!r}")
            found += _hidden_fields_with_values(value, hidden, f"{where}.{key}")
    elif isinstance(data, list):
        for i, item in enumerate(data):
            found += _hidden_fields_with_values(item, hidden, f"{where}[{i}]")
    return found


def _walk(client, world) -> list[tuple[str, int, str]]:
    answers = []
    for path, method, operation in _operations():
        if method == "get":
            for url, query in _urls(path, operation, world):
                response = client.get(url, query)
                answers.append((f"GET {url} {query}", response.status_code, response.content.decode()))
        elif path.endswith("/conversion"):
            for call in (world.call_mine, world.call_other, world.call_convertible):
                response = client.post(path.replace("{id}", str(call.pk)))
                answers.append((f"POST {path} {call.pk}", response.status_code, response.content.decode()))
    return answers


@pytest.mark.parametrize("kind", ["source", "handler"])
def test_no_endpoint_shows_a_collaborator_what_scoping_hides(kind, request, marked):
    client = request.getfixturevalue(f"{kind}_collaborator")
    answers = _walk(client, marked)

    assert all(status < 500 for _, status, _ in answers), [a[:2] for a in answers if a[1] >= 500]
    leaks = [(what, MARKERS[name]) for what, _, body in answers for name in FORBIDDEN[kind] if MARKERS[name] in body]
    assert leaks == []
    hidden = HIDDEN_CALL_FIELDS[kind] - set(SIDE_FIELDS[kind])  # "converted" reads the collaborator's own side
    fields = [(what, found) for what, status, body in answers if status == 200
              for found in _hidden_fields_with_values(json.loads(body), hidden)]
    assert fields == []
    # The walk did reach the collaborator's own data (a broken walk would pass the checks above).
    assert any(MARKERS[kind] in body for _, status, body in answers if status == 200)


def test_the_walk_finds_every_marker_as_staff(staff, marked):
    bodies = "".join(body for _, status, body in _walk(staff, marked) if status == 200)
    assert {name for name, marker in MARKERS.items() if marker not in bodies} == set()


def test_filters_on_hidden_parties_are_ignored(source_collaborator, handler_collaborator, marked):
    w = marked
    everything = source_collaborator.get("/api/v1/calls/").json()["results"]
    filtered = source_collaborator.get("/api/v1/calls/", {"handler": w.other_handler.pk}).json()["results"]
    assert [c["id"] for c in filtered] == [c["id"] for c in everything]
    everything = handler_collaborator.get("/api/v1/calls/").json()["results"]
    for name, value in (("source", w.other_source.pk), ("campaign", w.campaign.pk + 1000)):
        filtered = handler_collaborator.get("/api/v1/calls/", {name: value}).json()["results"]
        assert [c["id"] for c in filtered] == [c["id"] for c in everything], name


def test_totals_grouped_by_a_hidden_party_are_refused_and_hidden_money_is_null(source_collaborator, handler_collaborator, marked):
    assert source_collaborator.get("/api/v1/conversions/totals", {"by": "handler"}).status_code == 403
    assert source_collaborator.get("/api/v1/conversions/totals", {"by": "campaign"}).status_code == 403
    assert handler_collaborator.get("/api/v1/conversions/totals", {"by": "source"}).status_code == 403
    (row,) = source_collaborator.get("/api/v1/conversions/totals", {"by": "source"}).json()
    assert row["payout"] == MARKERS["payout"] and row["revenue"] is None and row["margin"] is None
    (row,) = handler_collaborator.get("/api/v1/conversions/totals", {"by": "handler"}).json()
    assert row["revenue"] == MARKERS["revenue"] and row["payout"] is None and row["margin"] is None


def test_the_conversion_answer_hides_the_payout_from_the_handler(handler_collaborator, marked):
    response = handler_collaborator.post(f"/api/v1/calls/{marked.call_convertible.pk}/conversion")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["revenue"] == MARKERS["revenue"]
    assert body["payout"] is None and body["margin"] is None and body["payout_converted"] is None
