"""Routing to the detected destination and by lookup table, played through the signed webhooks; the CSV commands."""

from __future__ import annotations

import csv
import html
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from lxml import etree

from calltrack.numbers.models import NumberSession, TrackingNumber
from routing import lookup
from tests.numbers.factories import NumberPoolFactory, NumberSessionFactory, ReceivingNumberFactory, TrackingNumberFactory
from tests.routing.test_voice_flow import Flow, dialled, handler
from tests.tracking.factories import CampaignFactory, SourceFactory
from tracking.models import AttemptKind, Call, CallAttempt, IVROption, RoutingTable, RoutingTableRow
from tracking.services.lookup import routing_table_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign():
    return CampaignFactory(name="Stores", company_phone="+13035550190")


def pool_flow(twilio, campaign, destination, sid="CA200"):
    pool = NumberPoolFactory(campaign=campaign, source=SourceFactory(name="Site"))
    number = TrackingNumberFactory(kind="pool", pool=pool, campaign=None)
    NumberSessionFactory(pool=pool, tracking_number=number, destination_number=destination)
    return Flow(twilio, number, sid=sid)


def test_a_pool_call_goes_to_the_handler_owning_the_detected_destination(twilio, campaign, assert_valid_twiml):
    campaign.route_to_destination = True
    campaign.save()
    handler(campaign, 1, name="Boulder store")
    denver = handler(campaign, 2, name="Denver store")
    flow = pool_flow(twilio, campaign, destination=denver.receiving_number.number)
    doc = flow.start()
    assert_valid_twiml(etree.tostring(doc))
    assert dialled(doc) == [denver.receiving_number.number]
    call = Call.objects.get()
    assert call.tags["destination"] == denver.receiving_number.number
    assert call.events.get(kind="routing.direct").message == f"detected destination {denver.receiving_number.number}: handler Denver store"


def _store_pool(campaign, size=3):
    """Denver and Boulder stores of a campaign routing to the detected destination, sharing one pool."""
    campaign.route_to_destination = True
    campaign.save()
    boulder = handler(campaign, 1, name="Boulder store")
    denver = handler(campaign, 2, name="Denver store")
    pool = NumberPoolFactory(key="stores", campaign=campaign, source=SourceFactory(name="Site"),
                             allowed_origins="https://stores.example")
    for i in range(size):
        TrackingNumberFactory(number=f"+1720555{i:04d}", kind="pool", pool=pool, campaign=campaign)
    return denver, boulder


def _shown(client, page, destination, visitor="v-0123456789"):
    """The number the DNI tag shows this visitor for ``destination`` on ``page``."""
    body = {"pool": "stores", "visitor_id": visitor, "page_url": f"https://stores.example/{page}", "destination": destination}
    response = client.post("/dni/v1/assign", data=json.dumps(body), content_type="text/plain", HTTP_ORIGIN="https://stores.example")
    assert response.status_code == 200, response.content
    return response.json()["number"]


def _call(twilio, number, sid, assert_valid_twiml):
    doc = Flow(twilio, TrackingNumber.objects.get(number=number), sid=sid).start()
    assert_valid_twiml(etree.tostring(doc))
    return dialled(doc)


def test_a_visitor_moving_to_another_stores_page_calls_the_store_it_was_shown_for(client, twilio, campaign, assert_valid_twiml):
    denver, boulder = _store_pool(campaign)
    on_denver = _shown(client, "denver", denver.receiving_number.number)
    on_boulder = _shown(client, "boulder", boulder.receiving_number.number)
    assert on_boulder != on_denver
    assert _call(twilio, on_boulder, "CA1", assert_valid_twiml) == [boulder.receiving_number.number]
    assert _call(twilio, on_denver, "CA2", assert_valid_twiml) == [denver.receiving_number.number]
    # Back on the Denver page: the Denver number again, still routed to Denver; a page naming no destination shows
    # the number of the visitor's latest session.
    assert _shown(client, "denver", denver.receiving_number.number) == on_denver
    assert _shown(client, "about", "") == on_boulder
    assert _call(twilio, on_denver, "CA3", assert_valid_twiml) == [denver.receiving_number.number]
    assert NumberSession.objects.filter(visitor_id="v-0123456789").count() == 2


def test_two_destinations_on_one_page_sharing_a_pool_each_route_to_their_store(client, twilio, campaign, assert_valid_twiml):
    denver, boulder = _store_pool(campaign)
    numbers = {store: _shown(client, "both", store.receiving_number.number) for store in (denver, boulder)}
    assert numbers[denver] != numbers[boulder]
    for i, store in enumerate((denver, boulder)):
        assert _shown(client, "both", store.receiving_number.number) == numbers[store]  # the next page view
        assert _call(twilio, numbers[store], f"CA{i}", assert_valid_twiml) == [store.receiving_number.number]


def test_a_destination_that_is_only_a_receiving_number_is_dialled_then_the_fallback(twilio, campaign, assert_valid_twiml):
    campaign.route_to_destination = True
    campaign.save()
    handler(campaign)
    line = ReceivingNumberFactory()
    flow = pool_flow(twilio, campaign, destination=line.number)
    doc = flow.start()
    assert dialled(doc) == [line.number]
    assert CallAttempt.objects.get().kind == AttemptKind.NUMBER
    nxt = flow.dial_result(doc, "no-answer")
    assert_valid_twiml(etree.tostring(nxt))
    assert dialled(nxt) == ["+13035550190"]


def test_without_the_switch_the_destination_is_only_a_tag(twilio, campaign):
    first = handler(campaign, 1)
    second = handler(campaign, 2)
    flow = pool_flow(twilio, campaign, destination=second.receiving_number.number)
    assert dialled(flow.start()) == [first.receiving_number.number]


def test_a_lookup_table_sends_a_zip_to_its_handler_or_number(twilio, campaign, assert_valid_twiml):
    handler(campaign, 1, name="Anywhere")
    downtown = handler(campaign, 5, name="Downtown")
    table = routing_table_create(fields={"campaign": campaign, "name": "Stores by zip", "tag_key": "caller_zip"})
    RoutingTableRow.objects.create(table=table, value="80202", handler=downtown)
    RoutingTableRow.objects.create(table=table, value="80301", number="+13035550177")
    tn = TrackingNumberFactory(campaign=campaign)
    doc = Flow(twilio, tn, sid="CA1").start(FromZip="80202")
    assert_valid_twiml(etree.tostring(doc))
    assert dialled(doc) == [downtown.receiving_number.number]
    assert Call.objects.get(call_sid="CA1").events.get(kind="routing.direct").message == "lookup table 'Stores by zip': caller_zip 80202"
    assert dialled(Flow(twilio, tn, sid="CA2").start(FromZip="80301")) == ["+13035550177"]
    assert dialled(Flow(twilio, tn, sid="CA3").start(FromZip="10001")) != [downtown.receiving_number.number]


def test_a_lookup_table_route_without_a_menu_says_the_table_chose_not_a_key(twilio, campaign, admin_client, assert_valid_twiml):
    handler(campaign, 1, name="Anywhere")
    downtown = handler(campaign, 5, name="Downtown")
    table = routing_table_create(fields={"campaign": campaign, "name": "Stores", "tag_key": "caller_zip"})
    RoutingTableRow.objects.create(table=table, value="80202", handler=downtown)
    doc = Flow(twilio, TrackingNumberFactory(campaign=campaign)).start(FromZip="80202")
    assert_valid_twiml(etree.tostring(doc))
    assert dialled(doc) == [downtown.receiving_number.number]
    call = Call.objects.get()
    why = "the lookup table 'Stores' for zip 80202 chose Downtown"
    assert [(s["name"], s["reason"], s["detail"]) for s in call.decision["skipped"]] == [("Anywhere", "lookup_table", why)]
    page = admin_client.get(reverse("admin:tracking_call_change", args=[call.pk])).content.decode()
    assert f"Anywhere was not chosen ({why})" in html.unescape(page) and "key chose" not in page
    api = admin_client.get(f"/api/v1/calls/{call.pk}/").json()
    assert api["decision"]["skipped"] == [{"handler_id": call.decision["skipped"][0]["handler_id"], "name": "Anywhere",
                                           "reason": "lookup_table", "detail": why}]


def test_a_destination_route_says_the_landing_page_chose(twilio, campaign, admin_client, assert_valid_twiml):
    campaign.route_to_destination = True
    campaign.save()
    handler(campaign, 1, name="Boulder store")
    denver = handler(campaign, 2, name="Denver store")
    doc = pool_flow(twilio, campaign, destination=denver.receiving_number.number).start()
    assert_valid_twiml(etree.tostring(doc))
    call = Call.objects.get()
    why = f"the landing page's destination {denver.receiving_number.number} chose Denver store"
    assert [(s["name"], s["reason"], s["detail"]) for s in call.decision["skipped"]] == [("Boulder store", "destination", why)]
    page = admin_client.get(reverse("admin:tracking_call_change", args=[call.pk])).content.decode()
    assert "Boulder store was not chosen" in page and "key chose" not in page
    assert admin_client.get(f"/api/v1/calls/{call.pk}/").json()["decision"]["skipped"][0]["reason"] == "destination"


def test_a_lookup_table_can_read_a_menu_tag(twilio, campaign):
    campaign.ivr_prompt = "Spanish 2."
    campaign.save()
    IVROption.objects.create(campaign=campaign, digit="2", tag_key="language", tag_value="ES")
    handler(campaign, 1)
    spanish = handler(campaign, 9)
    table = routing_table_create(fields={"campaign": campaign, "name": "Language desks", "tag_key": "language"})
    RoutingTableRow.objects.create(table=table, value="es", handler=spanish)
    flow = Flow(twilio, TrackingNumberFactory(campaign=campaign))
    assert dialled(flow.press(flow.start(), "2")) == [spanish.receiving_number.number]


def test_table_keys_are_case_insensitive_and_destinations_read_as_numbers():
    tables = [lookup.Table(1, "z", "caller_zip"), lookup.Table(2, "d", "destination"), lookup.Table(3, "s", "utm_source")]
    found = lookup.table_keys(tables, {"caller_zip": " 80202 ", "destination": "(303) 555-0100", "UTM_SOURCE": "Google"})
    assert [(t.id, v) for t, v in found] == [(1, "80202"), (2, "+13035550100"), (3, "google")]


def test_csv_import_checks_every_line_then_writes_and_export_reads_it_back(campaign, tmp_path):
    downtown = handler(campaign, name="Downtown", buyer_id="B-7")
    table = routing_table_create(fields={"campaign": campaign, "name": "Stores", "tag_key": "caller_zip"})
    bad = tmp_path / "bad.csv"
    bad.write_text("value,handler,number\n80202,B-7,\n80203,nobody,\n80204,,555-12\n")
    err = StringIO()
    with pytest.raises(CommandError, match="2 bad lines; nothing was imported"):
        call_command("routing_table_import", str(bad), "--table", str(table.pk), stderr=err)
    assert "line 3, handler: no handler with id, buyer id or name 'nobody'" in err.getvalue()
    assert "line 4, number:" in err.getvalue()
    assert not RoutingTableRow.objects.exists()

    good = tmp_path / "good.csv"
    good.write_text("value,handler,number\n" + "".join(f"{60000 + i},,+1303555{i:04d}\n" for i in range(2500)) + "80202,downtown,\n")
    out = StringIO()
    call_command("routing_table_import", str(good), "--table", str(table.pk), stdout=out)
    assert "1000 rows written" in out.getvalue() and "2501 rows written to 'Stores'" in out.getvalue()
    assert RoutingTableRow.objects.get(value="80202").handler == downtown
    call_command("routing_table_import", str(good), "--table", str(table.pk), stdout=StringIO())  # idempotent
    assert RoutingTableRow.objects.count() == 2501

    exported = tmp_path / "out.csv"
    call_command("routing_table_export", "--table", str(table.pk), "-o", str(exported), stdout=StringIO())
    lines = exported.read_text().splitlines()
    assert lines[0] == "value,handler,number" and len(lines) == 2502
    assert f"80202,{downtown.pk}," in lines
    call_command("routing_table_import", str(exported), "--table", str(table.pk), "--replace", stdout=StringIO())
    assert RoutingTableRow.objects.count() == 2501
    with pytest.raises(CommandError, match="no lookup table"):
        call_command("routing_table_export", "--table", "999999")


def test_the_csv_export_neutralises_formulas_and_the_import_reads_them_back_unchanged(campaign, tmp_path):
    downtown = handler(campaign, name="Downtown", buyer_id="B-7")
    table = routing_table_create(fields={"campaign": campaign, "name": "Sources", "tag_key": "utm_source"})
    formulas = ['=hyperlink("http://evil.example","x")', "+cmd|' /c calc'!a0", "@sum(1+1)", "-2+3"]
    RoutingTableRow.objects.bulk_create(
        [RoutingTableRow(table=table, value=value, handler=downtown) for value in formulas]
        + [RoutingTableRow(table=table, value="google", number="+13035550100")]
    )
    exported = tmp_path / "out.csv"

    call_command("routing_table_export", "--table", str(table.pk), "-o", str(exported), stdout=StringIO())

    with exported.open(newline="") as handle:
        cells = {row["value"]: row for row in csv.DictReader(handle)}
    assert set(cells) == {"'" + value for value in formulas} | {"google"}  # a spreadsheet shows them as text
    assert cells["google"]["number"] == "+13035550100"  # a plain number is left as it is
    RoutingTableRow.objects.filter(table=table).update(handler=None, number="+13035550199")
    call_command("routing_table_import", str(exported), "--table", str(table.pk), "--replace", stdout=StringIO())
    rows = dict(RoutingTableRow.objects.filter(table=table).values_list("value", "handler_id"))
    assert rows == {**{value: downtown.pk for value in formulas}, "google": None}


def test_csv_import_names_the_file_line_after_a_blank_line_and_a_multi_line_cell(campaign, tmp_path):
    handler(campaign, name="Downtown", buyer_id="B-7")
    table = routing_table_create(fields={"campaign": campaign, "name": "Stores", "tag_key": "caller_zip"})
    bad = tmp_path / "bad.csv"
    bad.write_text('value,handler,number\n80202,B-7,\n\n"80203\n",nobody,\n80204,,555-12\n')
    err = StringIO()
    with pytest.raises(CommandError, match="2 bad lines"):
        call_command("routing_table_import", str(bad), "--table", str(table.pk), stderr=err)
    # line 3 is blank; the record on lines 4-5 has a bad handler; line 6 a bad number
    assert "line 4, handler: no handler with id, buyer id or name 'nobody'" in err.getvalue()
    assert "line 6, number:" in err.getvalue()


def test_the_admin_edits_a_table_and_its_rows(admin_client, campaign):
    downtown = handler(campaign, name="Downtown")
    url = reverse("admin:tracking_routingtable_add")
    data = {"campaign": campaign.pk, "name": "Stores", "tag_key": "caller_zip", "when_unavailable": "fallback", "enabled": "on", "position": 0,
            "rows-TOTAL_FORMS": 2, "rows-INITIAL_FORMS": 0, "rows-MIN_NUM_FORMS": 0, "rows-MAX_NUM_FORMS": 1000,
            "rows-0-value": " 80202 ", "rows-0-handler": downtown.pk, "rows-0-number": "",
            "rows-1-value": "80301", "rows-1-handler": "", "rows-1-number": "(303) 555-0177"}
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    table = RoutingTable.objects.get()
    assert sorted(table.rows.values_list("value", "number")) == [("80202", ""), ("80301", "+13035550177")]
    bad = admin_client.post(url, {**data, "name": "Other", "rows-1-handler": downtown.pk})
    assert bad.status_code == 200 and "Choose a handler or give a number" in bad.content.decode()


def test_the_api_writes_a_table_and_its_rows_all_or_nothing(admin_user, campaign):
    from rest_framework.test import APIClient

    downtown = handler(campaign, name="Downtown")
    api = APIClient()
    api.force_authenticate(admin_user)
    created = api.post("/api/v1/routing-tables/", {"campaign": campaign.pk, "name": "By state", "tag_key": "caller_state"}, format="json")
    assert created.status_code == 201, created.content
    url = f"/api/v1/routing-tables/{created.json()['id']}/rows/"
    bad = api.post(url + "import/", {"rows": [{"value": "CO", "handler": str(downtown.pk)}, {"value": "NY", "handler": "ghost"}]}, format="json")
    assert bad.status_code == 400 and "row 2, handler" in bad.json()["rows"][0]
    assert api.post(url + "import/", {"rows": [{"value": "x\x00", "number": ""}]}, format="json").status_code == 400
    ok = api.post(url + "import/", {"rows": [{"value": "CO", "handler": str(downtown.pk)}, {"value": "NY", "number": "+12125550100"}]},
                  format="json")
    assert ok.status_code == 200 and ok.json() == {"written": 2, "deleted": 0}
    listed = api.get(url).json()
    assert [(r["value"], r["handler"], r["number"]) for r in listed["results"]] == [("co", downtown.pk, ""), ("ny", None, "+12125550100")]
    assert api.get(f"/api/v1/routing-tables/{created.json()['id']}/").json()["row_count"] == 2
