"""Tag criteria and a tracking number's accept/reject rules are edited as rows of a table, not as JSON."""

from __future__ import annotations

from collections import defaultdict

import pytest
from django.urls import reverse
from lxml import html

from calltrack.widgets import TagRulesField
from tests.numbers.factories import TrackingNumberFactory
from tests.tracking.factories import HandlerFactory

pytestmark = pytest.mark.django_db


def form_lists(client, url) -> dict[str, list[str]]:
    """The change form as the browser posts it, repeated fields kept in order."""
    doc = html.fromstring(client.get(url).content)
    data: dict[str, list[str]] = defaultdict(list)
    for name, value in doc.forms[-1].form_values():
        data[name].append(value)
    return data


def rows(data, name, *rules):
    """Replace the rule rows of field ``name`` by ``rules`` (tuples of the row's cells) plus one blank row."""
    cells = ["action", "key", "op", "value"] if len(rules[0]) == 4 else ["key", "op", "value"]
    for i, cell in enumerate(cells):
        data[f"{name}_{cell}"] = [r[i] for r in rules] + ["" if cell in ("key", "value") else ("reject" if cell == "action" else "equals")]
    return data


def test_handler_tag_criteria_rows_are_saved_as_rules(admin_client):
    handler = HandlerFactory(tag_criteria=[{"key": "caller_state", "op": "one_of", "value": ["CA", "NV"]}])
    url = reverse("admin:tracking_handler_change", args=[handler.pk])
    page = admin_client.get(url).content.decode()
    assert 'name="tag_criteria_key"' in page and 'value="CA, NV"' in page and "is between (inclusive)" in page
    data = rows(form_lists(admin_client, url), "tag_criteria", ("age", "between", "18, 64"), ("utm_campaign", "contains", "roof"),
                ("gclid", "present", "ignored"))
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    handler.refresh_from_db()
    assert handler.tag_criteria == [
        {"key": "age", "op": "between", "value": ["18", "64"]},
        {"key": "utm_campaign", "op": "contains", "value": "roof"},
        {"key": "gclid", "op": "present"},
    ]


def test_a_bad_row_is_reported_and_nothing_is_saved(admin_client):
    handler = HandlerFactory(tag_criteria=[])
    url = reverse("admin:tracking_handler_change", args=[handler.pk])
    data = rows(form_lists(admin_client, url), "tag_criteria", ("age", "less_than", "sixty"))
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "needs a number" in response.content.decode()
    handler.refresh_from_db()
    assert handler.tag_criteria == []


def test_tracking_number_accept_reject_rules_are_rows_with_an_action(admin_client):
    tn = TrackingNumberFactory()
    url = reverse("admin:numbers_trackingnumber_change", args=[tn.pk])
    page = admin_client.get(url).content.decode()
    assert 'name="filters_action"' in page and 'name="filters_after_ivr"' in page
    data = rows(form_lists(admin_client, url), "filters", ("reject", "caller_state", "one_of", "AK, HI"),
                ("accept", "age", "greater_than", "17"))
    data["filters_after_ivr"] = ["on"]
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    tn.refresh_from_db()
    assert tn.filters == [
        {"action": "reject", "key": "caller_state", "op": "one_of", "value": ["AK", "HI"]},
        {"action": "accept", "key": "age", "op": "greater_than", "value": "17"},
    ]
    assert tn.filters_after_ivr is True


def test_rows_without_a_tag_are_ignored():
    from django.http import QueryDict

    field = TagRulesField(required=False, with_action=True)
    posted = QueryDict("filters_action=reject&filters_key=&filters_op=equals&filters_value=x"
                       "&filters_action=accept&filters_key=source&filters_op=equals&filters_value=7")
    assert field.clean(field.widget.value_from_datadict(posted, {}, "filters")) == [
        {"action": "accept", "key": "source", "op": "equals", "value": "7"}
    ]
    assert field.clean(field.widget.value_from_datadict(QueryDict("filters_key="), {}, "filters")) == []
