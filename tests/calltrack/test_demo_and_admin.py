"""The demo data set loads, is valid, and every admin page renders for a superuser."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from calltrack.demo import demo_load
from tracking.models import Call


@pytest.fixture
def demo(db):
    return demo_load(calls=20)


def test_demo_load_is_idempotent(demo):
    again = demo_load(calls=20)
    assert again == demo
    # 20 historical calls plus the postback campaign's six examples.
    assert demo["calls"] == 26 and demo["campaigns"] == 3 and demo["pools"] == 1


def test_every_demo_object_passes_model_validation(demo):
    for model in apps.get_models():
        if model._meta.app_label not in ("tracking", "numbers"):
            continue
        for obj in model._default_manager.all():
            obj.full_clean()


def test_demo_has_converting_and_non_converting_calls(demo):
    assert Call.objects.filter(converted=True).exists()
    assert Call.objects.filter(converted=False).exclude(conversion_reason="").exists()


@pytest.mark.parametrize("model", [m for m in admin.site._registry], ids=lambda m: m._meta.label)
def test_admin_changelist_add_and_change_pages_render(admin_client, demo, model):
    opts = model._meta
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    assert admin_client.get(changelist).status_code == 200
    model_admin = admin.site._registry[model]
    if model_admin.has_add_permission(_request(admin_client)):
        assert admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add")).status_code == 200
    obj = model._default_manager.first()
    if obj is not None:
        assert admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])).status_code == 200


def _request(client):
    from django.contrib.auth import get_user_model
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = get_user_model().objects.get(username="admin")
    return request


def test_campaign_page_shows_the_coverage_picture(admin_client, demo):
    from tracking.models import Campaign

    campaign = Campaign.objects.get(campaign_id="auto-insurance")
    page = admin_client.get(reverse("admin:tracking_campaign_change", args=[campaign.pk])).content.decode()
    assert "<svg" in page and "Handlers open per hour" in page
    assert "CA, NV, OR, WA" in page


def test_call_list_shows_the_columns_an_operator_scans_first(admin_client, demo):
    # The calls-per-day chart moved to the dashboard; the log is rows.
    page = admin_client.get(reverse("admin:tracking_call_changelist")).content.decode()
    for column in ("when", "caller", "number", "source", "campaign", "handler", "status_label", "talk", "converted", "revenue", "payout"):
        assert f"column-{column}" in page


def test_handler_business_hours_are_edited_as_a_weekly_grid(admin_client, demo):
    from tracking.models import Handler

    handler = Handler.objects.get(buyer_id="BUY-100")
    url = reverse("admin:tracking_handler_change", args=[handler.pk])
    page = admin_client.get(url).content.decode()
    assert 'name="business_hours_mon"' in page and 'value="09:00-17:00"' in page
    form = _form_data(admin_client, url)
    form.update({f"business_hours_{d}": "" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})
    form.update({"business_hours_mon": "08:00-12:00, 13:00-18:00", "business_hours_fri": "22:00-02:00+1", "always_open": ""})
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:3000]
    handler.refresh_from_db()
    assert handler.business_hours == {"mon": ["08:00-12:00", "13:00-18:00"], "fri": ["22:00-02:00+1"]}

    form["business_hours_tue"] = "17:00-09:00"
    response = admin_client.post(url, form)
    assert response.status_code == 200
    assert "closes before it opens" in response.content.decode()


def test_a_wrong_phone_number_in_the_admin_is_reported_with_the_value_and_why(admin_client, demo):
    url = reverse("admin:numbers_receivingnumber_add")
    response = admin_client.post(url, {"number": "555-12", "label": "Bad", "ring_timeout": 30, "digits_delay": 0, "no_answer_action": "hangup"})
    assert response.status_code == 200
    assert "&#x27;555-12&#x27; is not a valid phone number: too short." in response.content.decode()


def test_performance_nomenclature_says_publisher_and_buyer(admin_client, demo, settings):
    from calltrack.nomenclature import locale_paths

    settings.CALLTRACK_NOMENCLATURE = "performance"
    settings.LOCALE_PATHS = locale_paths("performance")
    page = admin_client.get(reverse("admin:index")).content.decode()
    assert "Publishers" in page and "Buyers" in page


def _form_data(client, url):
    """The change form's current values, as the browser would post them (inline management forms included)."""
    from lxml import html

    doc = html.fromstring(client.get(url).content)
    form = doc.forms[-1] if len(doc.forms) > 1 else doc.forms[0]
    data = {}
    for name, value in form.form_values():
        data[name] = value
    return data


@pytest.mark.parametrize(
    "model", [m for m in admin.site._registry if m._meta.app_label in ("tracking", "numbers")], ids=lambda m: m._meta.label
)
def test_every_field_an_operator_fills_has_help_text(model):
    model_admin = admin.site._registry[model]
    readonly = set(model_admin.readonly_fields)
    missing = [
        f.name for f in model._meta.fields
        if f.editable and not f.auto_created and f.name not in readonly and not f.help_text
    ]
    assert missing == []
