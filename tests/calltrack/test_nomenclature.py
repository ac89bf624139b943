"""CALLTRACK_NOMENCLATURE=performance: no page of the admin and no description of the API documentation says
Source or Handler; the campaign's inlines, help texts, the dashboard and simulate_call say Publisher/Buyer."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.urls import NoReverseMatch, reverse
from lxml import html

from calltrack.demo import demo_load
from calltrack.nomenclature import apply_to_models, html_say, say
from tracking.models import Campaign, Handler

OLD_WORDS = re.compile(r"\b(source|handler)s?\b", re.IGNORECASE)


@pytest.fixture
def performance(settings):
    settings.CALLTRACK_NOMENCLATURE = "performance"
    apply_to_models()
    yield
    settings.CALLTRACK_NOMENCLATURE = "standard"
    apply_to_models()


def visible_text(content: bytes) -> str:
    doc = html.fromstring(content)
    for node in doc.xpath("//script|//style|//textarea"):
        node.drop_tree()
    return doc.text_content()


def admin_urls() -> list[str]:
    urls = [reverse("admin:index")]
    for model in admin.site._registry:
        meta = model._meta
        urls.append(reverse("admin:app_list", args=[meta.app_label]))
        urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        try:
            urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_add"))
        except NoReverseMatch:
            pass
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[first.pk]))
    return sorted(set(urls))


def test_say_keeps_case_and_leaves_identifiers_alone(settings):
    settings.CALLTRACK_NOMENCLATURE = "performance"
    assert say("Sources and their Handlers; a handler's SOURCE") == "Publishers and their Buyers; a buyer's PUBLISHER"
    assert say("source_id, utm_source, [source_name], resources") == "source_id, utm_source, [source_name], resources"
    page = '<a href="/admin/tracking/source/" title="x">Sources</a><script>var handler = 1;</script><textarea>handler</textarea>'
    assert html_say(page) == '<a href="/admin/tracking/source/" title="x">Publishers</a><script>var handler = 1;</script><textarea>handler</textarea>'


@pytest.mark.slow
def test_no_admin_page_says_source_or_handler_in_performance_mode(admin_client, db, performance):
    demo_load(calls=5)
    offenders = {}
    for url in admin_urls():
        response = admin_client.get(url)
        assert response.status_code in (200, 403), url  # 403: an add page the admin offers nobody (django-q's logs)
        found = sorted({m.group(0) for m in OLD_WORDS.finditer(visible_text(response.content))})
        if found:
            offenders[url] = found
    assert offenders == {}


def test_the_campaign_page_shows_buyers_in_its_inline_and_help_texts(admin_client, db, performance):
    demo_load(calls=2)
    campaign = Campaign.objects.order_by("pk").first()
    page = visible_text(admin_client.get(reverse("admin:tracking_campaign_change", args=[campaign.pk])).content)
    assert "Campaign buyers" in page
    assert Handler._meta.get_field("priority").help_text and not OLD_WORDS.search(Handler._meta.get_field("priority").help_text)
    dashboard = visible_text(admin_client.get(reverse("admin:index")).content)
    assert "Publishers" in dashboard and "Buyers" in dashboard


def test_the_api_documentation_descriptions_say_publisher_and_buyer(admin_client, db, performance):
    schema = admin_client.get("/api/schema/", {"format": "json"}).json()
    texts: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("description", "summary", "title") and isinstance(value, str):
                    texts.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    assert texts and [t for t in texts if OLD_WORDS.search(t)] == []
    assert any("publisher" in t.lower() for t in texts) and any("buyer" in t.lower() for t in texts)
    assert visible_text(admin_client.get("/api/docs/").content).strip()  # the page itself renders


def test_the_standard_words_come_back_when_the_setting_does(admin_client, db, settings):
    settings.CALLTRACK_NOMENCLATURE = "performance"
    apply_to_models()
    settings.CALLTRACK_NOMENCLATURE = "standard"
    apply_to_models()
    assert Handler._meta.verbose_name_plural == "handlers"
    assert "Handlers" in visible_text(admin_client.get(reverse("admin:index")).content)


def test_simulate_call_reports_in_the_chosen_words(db, performance):
    from tests.numbers.factories import TrackingNumberFactory
    from tests.tracking.factories import CampaignFactory, CampaignHandlerFactory, HandlerFactory, SourceFactory

    campaign = CampaignFactory(name="Plumbing")
    CampaignHandlerFactory(campaign=campaign, handler=HandlerFactory(name="First desk"))
    tn = TrackingNumberFactory(campaign=campaign, source=SourceFactory(name="Google Ads"))
    out = StringIO()
    call_command("simulate_call", "--to", tn.number, "--from", "+14155550100", stdout=out)
    report = out.getvalue().split("\nCall ", 1)[1]
    assert "buyer: First desk" in report and "publisher: Google Ads" in report
    assert not OLD_WORDS.search(report)
