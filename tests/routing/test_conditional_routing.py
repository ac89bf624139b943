"""Conditional routing with branches (issue 24): criteria groups with OR between them, the campaign's else route,
lookup tables keyed on several values, and what a lookup table does when its handler cannot take the call. Played
through the signed webhooks."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from lxml import etree

from calltrack import tags as tag_rules
from calltrack.widgets import TagRulesField, TagRulesWidget
from tests.numbers.factories import TrackingNumberFactory
from tests.routing.test_voice_flow import Flow, dialled, handler
from tests.tracking.factories import CampaignFactory, SourceFactory
from tracking.models import Call, RoutingTable, RoutingTableRow, WhenUnavailable
from tracking.services.lookup import RowsError, routing_table_create, routing_table_rows_import
from tracking.timeline import call_route_story

pytestmark = pytest.mark.django_db

COLORADO_OR_GOOGLE = [
    {"key": "caller_state", "op": "equals", "value": "CO"},
    {"key": "utm_source", "op": "equals", "value": "google", "group": 2},
    {"key": "utm_medium", "op": "equals", "value": "cpc", "group": 2},
]


@pytest.fixture
def campaign():
    return CampaignFactory(name="Insurance", company_phone="+13035550190")


def start(twilio, campaign, *, state="CA", marketing=None, sid="CA300", assert_valid_twiml=None):
    tn = TrackingNumberFactory(campaign=campaign, source=SourceFactory(), marketing_data=marketing or {})
    doc = Flow(twilio, tn, sid=sid).start(FromState=state)
    if assert_valid_twiml is not None:
        assert_valid_twiml(etree.tostring(doc))
    return doc, Call.objects.get(call_sid=sid)


def test_a_call_matching_one_group_of_a_handlers_rules_is_routed_to_it(twilio, campaign, assert_valid_twiml):
    broker = handler(campaign, 1, name="Broker", tag_criteria=tag_rules.validate(COLORADO_OR_GOOGLE))
    backup = handler(campaign, 2, name="Backup")
    doc, _ = start(twilio, campaign, state="CA", marketing={"utm_source": "google", "utm_medium": "cpc"}, assert_valid_twiml=assert_valid_twiml)
    assert dialled(doc) == [broker.receiving_number.number]  # group 2 matched
    doc, _ = start(twilio, campaign, state="CO", sid="CA301")
    assert dialled(doc) == [broker.receiving_number.number]  # group 1 matched
    doc, call = start(twilio, campaign, state="CA", marketing={"utm_source": "google", "utm_medium": "email"}, sid="CA302")
    assert dialled(doc) == [backup.receiving_number.number]  # group 2 half-matched: no group holds
    (skip,) = call.state.skipped
    assert skip.reason == "tag_mismatch" and "; or " in skip.detail and "utm_medium" in skip.detail


def test_the_else_route_takes_only_calls_no_other_handlers_rules_match(twilio, campaign, assert_valid_twiml):
    colorado = handler(campaign, 1, name="Colorado desk", tag_criteria=[{"key": "caller_state", "op": "equals", "value": "CO"}])
    other = handler(campaign, 2, name="Everyone else", tag_criteria=tag_rules.validate([{"op": "else"}]))
    doc, call = start(twilio, campaign, state="CO", assert_valid_twiml=assert_valid_twiml)
    assert dialled(doc) == [colorado.receiving_number.number]
    (skip,) = call.state.skipped
    assert (skip.name, skip.reason) == ("Everyone else", "tag_mismatch") and "Colorado desk's rules match" in skip.detail
    assert any("Everyone else did not match" in line and "else route" in line for line in call_route_story(call))
    doc, call = start(twilio, campaign, state="TX", sid="CA303", assert_valid_twiml=assert_valid_twiml)
    assert dialled(doc) == [other.receiving_number.number]


def test_the_else_route_stands_aside_even_when_the_matching_handler_is_busy(twilio, campaign):
    """"Else" is about the rules, not availability: a Colorado caller whose desk is closed goes down the fallback
    chain, not to the else route."""
    handler(campaign, 1, name="Colorado desk", always_open=False, business_hours={},
            tag_criteria=[{"key": "caller_state", "op": "equals", "value": "CO"}])
    handler(campaign, 2, name="Everyone else", tag_criteria=[{"op": "else"}])
    doc, _ = start(twilio, campaign, state="CO")
    assert dialled(doc) == ["+13035550190"]  # the company phone


def test_criteria_with_else_or_groups_are_validated():
    with pytest.raises(tag_rules.TagRuleError, match="else"):
        tag_rules.validate([{"op": "else"}, {"key": "caller_state", "op": "equals", "value": "CO"}])
    with pytest.raises(tag_rules.TagRuleError, match="group must be a whole number"):
        tag_rules.validate([{"key": "caller_state", "op": "equals", "value": "CO", "group": 99}])
    assert tag_rules.validate([{"key": "a", "op": "present", "group": "2"}]) == [{"key": "a", "op": "present", "group": 2}]
    assert tag_rules.validate([{"key": "a", "op": "present", "group": 1}]) == [{"key": "a", "op": "present"}]
    with pytest.raises(tag_rules.TagRuleError, match="no 'else'"):
        tag_rules.validate_filters([{"action": "reject", "op": "else"}])
    assert tag_rules.coverage([{"op": "else"}]) == (["calls no other handler takes"], ["the else route"])
    states, others = tag_rules.coverage(tag_rules.validate(COLORADO_OR_GOOGLE))
    assert states == ["all"] and others[0] == "group 1: caller_state: CO" and "utm_source: google" in others[1]


def test_the_rules_editor_posts_groups_and_the_else_rule():
    post = {"c_key": ["caller_state", "utm_source", ""], "c_op": ["equals", "equals", "equals"], "c_value": ["CO", "google", ""],
            "c_group": ["", "2", ""]}
    from django.http import QueryDict

    data = QueryDict(mutable=True)
    for name, values in post.items():
        data.setlist(name, values)
    rows = TagRulesWidget().value_from_datadict(data, {}, "c")
    assert TagRulesField().clean(rows) == [{"key": "caller_state", "op": "equals", "value": "CO"},
                                          {"key": "utm_source", "op": "equals", "value": "google", "group": 2}]
    data = QueryDict(mutable=True)
    data.setlist("c_key", ["", ""])
    data.setlist("c_op", ["else", "equals"])
    data.setlist("c_value", ["", ""])
    assert TagRulesField().clean(TagRulesWidget().value_from_datadict(data, {}, "c")) == [{"op": "else"}]
    assert "else" not in dict(TagRulesWidget(with_action=True).get_context("f", [], {})["widget"]["ops"])


def _table(campaign, **fields):
    return routing_table_create(fields={"campaign": campaign, "name": "State and source", **fields})


def test_a_lookup_table_keyed_on_two_values_routes_their_combination(twilio, campaign, assert_valid_twiml):
    handler(campaign, 1, name="Anyone")
    google_co = handler(campaign, 2, name="Google Colorado")
    table = _table(campaign, tag_key="caller_state, utm_source")
    assert table.tag_key == "caller_state,utm_source"
    routing_table_rows_import(table=table, lines=[(2, {"value": "CO|Google", "handler": str(google_co.pk)})])
    assert RoutingTableRow.objects.get().value == "co|google"
    doc, call = start(twilio, campaign, state="CO", marketing={"utm_source": "google"}, assert_valid_twiml=assert_valid_twiml)
    assert dialled(doc) == [google_co.receiving_number.number]
    assert "state co and utm source google" in call.state.skipped[0].detail
    doc, _ = start(twilio, campaign, state="CO", marketing={"utm_source": "bing"}, sid="CA304")
    assert dialled(doc) != [google_co.receiving_number.number]  # no row for co|bing: the campaign's routing


def test_a_multi_key_row_needs_one_value_per_key(campaign):
    table = _table(campaign, tag_key="caller_state,utm_source")
    with pytest.raises(RowsError) as caught:
        routing_table_rows_import(table=table, lines=[(4, {"value": "co", "number": "+13035550111"})])
    assert caught.value.problems == [(4, "value", "give 2 values, | between (e.g. co|google)")]
    row = RoutingTableRow(table=table, value="co", number="+13035550111")
    with pytest.raises(ValidationError, match="Give 2 values"):
        row.full_clean()
    with pytest.raises(ValidationError):
        RoutingTable(campaign=campaign, name="x", tag_key="a,b,c,d").full_clean()


@pytest.mark.parametrize("when, expected", [(WhenUnavailable.FALLBACK, "company phone"), (WhenUnavailable.OTHERS, "the others")])
def test_a_lookup_tables_handler_that_cannot_take_the_call_goes_where_the_operator_chose(twilio, campaign, when, expected):
    anyone = handler(campaign, 1, name="Anyone")
    closed = handler(campaign, 2, name="Closed store", always_open=False, business_hours={})
    table = _table(campaign, tag_key="caller_state", when_unavailable=when)
    routing_table_rows_import(table=table, lines=[(2, {"value": "CO", "handler": str(closed.pk)})])
    doc, call = start(twilio, campaign, state="CO")
    if expected == "company phone":
        assert dialled(doc) == ["+13035550190"]
        assert {s.name: s.reason for s in call.state.skipped} == {"Closed store": "closed", "Anyone": "lookup_table"}
    else:
        assert dialled(doc) == [anyone.receiving_number.number]
        assert {s.name: s.reason for s in call.state.skipped} == {"Closed store": "closed"}
        assert "then the campaign's other handlers" in call.events.get(kind="routing.direct").message


def test_a_lookup_tables_handler_goes_first_then_the_others_when_it_does_not_answer(twilio, campaign):
    anyone = handler(campaign, 1, name="Anyone")
    store = handler(campaign, 2, name="Store")
    table = _table(campaign, tag_key="caller_state", when_unavailable=WhenUnavailable.OTHERS)
    routing_table_rows_import(table=table, lines=[(2, {"value": "CO", "handler": str(store.pk)})])
    tn = TrackingNumberFactory(campaign=campaign, source=SourceFactory())
    flow = Flow(twilio, tn, sid="CA310")
    doc = flow.start(FromState="CO")
    assert dialled(doc) == [store.receiving_number.number]
    assert dialled(flow.dial_result(doc, "no-answer")) == [anyone.receiving_number.number]
    assert Call.objects.get(call_sid="CA310").state.sticky_handler is None  # not a sticky caller: the table chose


def test_the_api_shows_and_sets_when_unavailable(admin_user, campaign):
    from rest_framework.test import APIClient

    admin_api = APIClient()
    admin_api.force_authenticate(admin_user)
    response = admin_api.post("/api/v1/routing-tables/", {"campaign": campaign.pk, "name": "By state", "tag_key": "caller_state",
                                                           "when_unavailable": "others"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["when_unavailable"] == "others"
    assert RoutingTable.objects.get().when_unavailable == "others"
