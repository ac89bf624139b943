"""Custom parameters from landing pages: declared per pool, validated and size-limited at /dni/v1/assign,
kept on the visitor's session (the rest dropped and counted), managed in the admin and the API."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from calltrack.numbers.models import NumberPool, NumberSession, PoolParameter
from calltrack.numbers.services import records
from tests.numbers.factories import NumberPoolFactory, TrackingNumberFactory

pytestmark = pytest.mark.django_db
ASSIGN = "/dni/v1/assign"


@pytest.fixture
def pool():
    pool = NumberPoolFactory(key="main")
    TrackingNumberFactory(number="+14152000001", kind="pool", pool=pool, campaign=pool.campaign)
    records.pool_parameters_set(pool=pool, entries=[
        {"name": "plan", "kind": "text", "max_length": 10},
        {"name": "lead_score", "kind": "integer", "max_length": 5},
        {"name": "premium", "kind": "boolean", "max_length": 5},
        {"name": "budget", "kind": "decimal", "max_length": 12},
    ])
    return pool


def assign(client, custom, **extra):
    body = {"pool": "main", "visitor_id": "v-0123456789", "page_url": "https://www.acme.example/?utm_source=google",
            "params": {"utm_source": "google"}, "custom": custom, **extra}
    return client.post(ASSIGN, data=json.dumps(body), content_type="text/plain", HTTP_ORIGIN="http://testserver")


def dropped(pool) -> int:
    return NumberPool.objects.values_list("dropped_parameter_count", flat=True).get(pk=pool.pk)


def test_declared_parameters_are_kept_normalised_on_the_session_and_the_others_dropped_and_counted(client, pool):
    response = assign(client, {
        "plan": " gold ", "lead_score": "+080", "premium": "Yes", "budget": 1250.5,
        "ref": "newsletter", "lead_score_x": "1",
    })
    assert response.status_code == 200, response.content
    session = NumberSession.objects.get()
    assert session.marketing_data == {
        "utm_source": "google", "plan": "gold", "lead_score": "80", "premium": "true", "budget": "1250.5",
    }
    assert dropped(pool) == 2  # 'ref' and 'lead_score_x' are not declared


@pytest.mark.parametrize("name, value", [
    ("plan", "platinum-plus"),  # longer than its 10 characters
    ("lead_score", "12.5"),  # not a whole number
    ("lead_score", "123456"),  # longer than 5
    ("premium", "maybe"),  # not yes/no
    ("budget", "NaN"),  # not a finite number
    ("plan", "   "),  # empty once stripped
])
def test_a_value_that_does_not_fit_its_declaration_is_dropped_and_counted_not_refused(client, pool, name, value):
    response = assign(client, {name: value})
    assert response.status_code == 200, response.content
    assert name not in NumberSession.objects.get().marketing_data
    assert dropped(pool) == 1


@pytest.mark.parametrize("custom, field", [
    (["plan", "gold"], "custom"),
    ({f"p{i}": "x" for i in range(31)}, "custom"),
    ({"plan": {"nested": 1}}, "custom.plan"),
    ({"plan": None}, "custom.plan"),
    ({"plan": "go\x00ld"}, "custom.plan"),
    ({"plan": "x" * 2001}, "custom.plan"),
])
def test_a_malformed_custom_object_is_a_400_naming_the_field(client, pool, custom, field):
    response = assign(client, custom)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert not NumberSession.objects.exists()


def test_a_lone_surrogate_in_a_custom_value_is_a_400(client, pool):
    body = '{"pool": "main", "visitor_id": "v-0123456789", "custom": {"plan": "\\ud800"}}'
    response = client.post(ASSIGN, data=body, content_type="text/plain", HTTP_ORIGIN="http://testserver")
    assert response.status_code == 400
    assert response.json()["field"] == "custom.plan"


def test_a_request_without_custom_parameters_reads_no_declarations(client, pool):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert assign(client, None).status_code == 200
    assert not [q for q in queries.captured_queries if "poolparameter" in q["sql"].lower()]


@pytest.mark.parametrize("name, reason", [
    ("Plan", "is not a parameter name"),
    ("utm_source", "is set by calltrack itself"),
    ("caller_state", "is set by calltrack itself"),
    ("9lives", "is not a parameter name"),
])
def test_a_parameter_name_that_would_clash_or_is_malformed_is_refused(pool, name, reason):
    with pytest.raises(ValidationError) as exc:
        records.pool_parameters_set(pool=pool, entries=[{"name": name, "kind": "text", "max_length": 10}])
    assert any(reason in m for m in exc.value.message_dict["parameters"])
    assert PoolParameter.objects.filter(pool=pool).count() == 4  # nothing changed


def test_the_api_shows_and_replaces_a_pools_parameters(admin_client, pool):
    url = f"/api/v1/pools/{pool.pk}/"
    data = admin_client.get(url).json()
    assert {"name": "plan", "kind": "text", "max_length": 10} in data["parameters"]
    assert data["dropped_parameter_count"] == 0
    response = admin_client.patch(url, {"parameters": [{"name": "plan", "kind": "text", "max_length": 20}]}, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["parameters"] == [{"name": "plan", "kind": "text", "max_length": 20}]
    response = admin_client.patch(url, {"parameters": [{"name": "source", "kind": "text", "max_length": 20}]}, content_type="application/json")
    assert response.status_code == 400
    assert "set by calltrack itself" in json.dumps(response.json())


def test_the_pool_admin_declares_a_parameter_through_the_service(admin_client, pool):
    from lxml import html

    url = reverse("admin:numbers_numberpool_change", args=[pool.pk])
    page = admin_client.get(url)
    form = html.fromstring(page.content).forms[-1]
    data = dict(form.form_values())
    prefix = "parameters"
    total = int(data[f"{prefix}-TOTAL_FORMS"])
    data.update({f"{prefix}-TOTAL_FORMS": str(total + 1), f"{prefix}-{total}-name": "zip_hint",
                 f"{prefix}-{total}-kind": "text", f"{prefix}-{total}-max_length": "10"})
    response = admin_client.post(url, data)
    assert response.status_code == 302, [str(e) for e in response.context["inline_admin_formsets"][0].formset.errors]
    assert PoolParameter.objects.get(pool=pool, name="zip_hint").max_length == 10
    assert "custom parameters accepted from landing pages" in admin_client.get(url).content.decode().lower()
