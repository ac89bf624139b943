"""CALLTRACK_NOMENCLATURE=performance: the performance vocabulary, an English message catalog in LOCALE_PATHS,
says Publisher/Buyer wherever a label names a party (the admin's pages, the API documentation, simulate_call's
report). Operator and caller data are shown as stored, identifiers and migrations do not change."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html import unescape
from io import StringIO
from pathlib import Path

import polib
import pytest
from django.conf import settings as django_settings
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext, pgettext
from lxml import html

from calltrack import nomenclature
from calltrack.demo import demo_load
from tests.numbers.factories import TrackingNumberFactory
from tests.tracking.factories import (
    CallFactory,
    CampaignFactory,
    CampaignHandlerFactory,
    HandlerFactory,
    SourceFactory,
    WebhookFactory,
)
from tracking.models import CallEvent, Campaign, Handler, Source, WebhookDelivery

OLD_WORDS = re.compile(r"\b(source|handler)s?\b", re.IGNORECASE)
CATALOG = nomenclature.VOCABULARIES_DIR / "performance" / "en" / "LC_MESSAGES" / "django.po"


@pytest.fixture
def performance(settings):
    """The setting and what settings.py derives from it (LOCALE_PATHS); Django resets its catalogs on the change."""
    settings.CALLTRACK_NOMENCLATURE = "performance"
    settings.LOCALE_PATHS = nomenclature.locale_paths("performance")


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


# --- the catalog ---------------------------------------------------------------------------------------------


def test_the_committed_mo_is_the_po_compiled(tmp_path):
    compiled = tmp_path / "django.mo"
    polib.pofile(str(CATALOG)).save_as_mofile(str(compiled))
    assert compiled.read_bytes() == CATALOG.with_suffix(".mo").read_bytes()


def test_every_message_of_the_catalog_names_a_party_and_has_its_wording():
    po = polib.pofile(str(CATALOG))
    assert len(po) > 50 and po.percent_translated() == 100
    for entry in po:
        assert entry.msgctxt in (None, "party") and OLD_WORDS.search(entry.msgid), entry.msgid
        assert not entry.fuzzy and not entry.obsolete, entry.msgid
    words = {(e.msgctxt, e.msgid): e.msgstr for e in po}
    assert words[("party", "source")] == "publisher" and words[("party", "Handlers")] == "Buyers"


def test_the_performance_vocabulary_is_english_and_only_in_locale_paths_when_asked_for(settings):
    assert nomenclature.locale_paths("standard") == [] and nomenclature.locale_paths("nonsense") == []
    assert nomenclature.locale_paths("performance") == [CATALOG.parent.parent.parent]
    assert django_settings.LANGUAGE_CODE.startswith("en")
    assert pgettext("party", "source") == "source"  # the tests run with the standard words


def test_the_party_words_have_their_context_and_a_utm_source_keeps_its_words(performance):
    assert pgettext("party", "sources") == "publishers" and pgettext("party", "Handler") == "Buyer"
    assert gettext("UTM source") == "UTM source" and gettext("source") == "source" and pgettext("utm", "source") == "source"
    assert str(Source._meta.verbose_name_plural) == "publishers" and str(Handler._meta.verbose_name) == "buyer"


# --- migrations ----------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("nomenclature_name", ["standard", "performance"])
def test_migrations_are_the_same_in_both_modes(nomenclature_name):
    env = {**os.environ, "CALLTRACK_NOMENCLATURE": nomenclature_name, "DEBUG": "true"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        cwd=Path(django_settings.BASE_DIR), env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No changes detected" in done.stdout


# --- data is shown as stored ---------------------------------------------------------------------------------


def test_operator_and_caller_data_are_shown_as_stored(admin_client, db, performance):
    source = SourceFactory(name="Open Source Media")
    handler = HandlerFactory(name="Handler Hub")
    campaign = CampaignFactory(name="Plumbing")
    CampaignHandlerFactory(campaign=campaign, handler=handler)
    call = CallFactory(
        campaign=campaign, source=source, handler=handler, caller_city="Handler Springs", caller_state="CO",
        marketing_data={"utm_source": "Source Weekly"},
    )
    body = json.dumps({"source": "Open Source Media", "handler": "Handler Hub"})
    delivery = WebhookDelivery.objects.create(
        webhook=WebhookFactory(campaign=campaign), call=call, event="call.completed", body=body, url="https://example.com/hook",
        response_excerpt='{"source": "ok"}',
    )
    pages = {
        "sources": reverse("admin:tracking_source_changelist"),
        "source": reverse("admin:tracking_source_change", args=[source.pk]),
        "calls": reverse("admin:tracking_call_changelist"),
        "call": reverse("admin:tracking_call_change", args=[call.pk]),
        "delivery": reverse("admin:tracking_webhookdelivery_change", args=[delivery.pk]),
    }
    text = {name: admin_client.get(url).content.decode() for name, url in pages.items()}
    for name in ("sources", "source", "calls", "call"):
        assert "Open Source Media" in text[name] and "Open Publisher Media" not in text[name], name
    assert "Handler Springs" in text["call"] and "Buyer Springs" not in text["call"]
    assert "Source Weekly" in text["call"] and "Source (UTM)" in visible_text(text["call"].encode())  # not a party
    assert "UTM source" in visible_text(text["calls"].encode())  # the call log's filter: not a party
    delivery_page = unescape(text["delivery"])
    assert '{"source": "Open Source Media", "handler": "Handler Hub"}' in delivery_page and '"publisher"' not in delivery_page
    assert '{"source": "ok"}' in delivery_page
    # The labels around the data do say the performance words.
    assert "Publishers" in visible_text(text["sources"].encode())

    api = admin_client.get(f"/api/v1/sources/{source.pk}/").json()
    assert api["name"] == "Open Source Media"
    calls = admin_client.get("/api/v1/calls/").json()
    found = next(c for c in calls["results"] if c["id"] == call.pk)
    assert found["caller_city"] == "Handler Springs" and "source" in found and "publisher" not in found


# --- the words the admin says ------------------------------------------------------------------------------


def _sidebar_and_titles(admin_client) -> tuple[str, str]:
    index = visible_text(admin_client.get(reverse("admin:index")).content)
    campaign = Campaign.objects.order_by("pk").first()
    page = visible_text(admin_client.get(reverse("admin:tracking_campaign_change", args=[campaign.pk])).content)
    return index, page


def _dashboard_tabs(admin_client) -> dict[str, str]:
    """The dashboard's breakdown tabs: key (an identifier) -> what the tab says."""
    doc = html.fromstring(admin_client.get(reverse("admin:index")).content)
    return {a.get("data-by"): a.text_content().strip() for a in doc.xpath("//nav[@class='ct-tabs']/a")}


def test_the_admin_says_publishers_and_buyers_with_the_performance_vocabulary(admin_client, db, performance):
    demo_load(calls=2)
    index, campaign_page = _sidebar_and_titles(admin_client)
    assert "Publishers" in index and "Buyers" in index
    assert not re.search(r"\b(Sources|Handlers)\b", index)
    assert "Campaign buyers" in campaign_page and "Campaign handlers" not in campaign_page
    tabs = _dashboard_tabs(admin_client)
    assert tabs["source"] == "Publisher" and tabs["handler"] == "Buyer" and tabs["utm_source"] == "UTM source"
    handlers_page = visible_text(admin_client.get(reverse("admin:tracking_handler_changelist")).content)
    assert "Select buyer to change" in handlers_page or "Buyers" in handlers_page
    assert Handler._meta.get_field("priority").help_text and not OLD_WORDS.search(str(Handler._meta.get_field("weight").help_text))


def test_the_admin_says_sources_and_handlers_without_it(admin_client, db):
    demo_load(calls=2)
    index, campaign_page = _sidebar_and_titles(admin_client)
    assert "Sources" in index and "Handlers" in index
    assert not re.search(r"\b(Publishers|Buyers)\b", index)
    assert "Campaign handlers" in campaign_page and "Campaign buyers" not in campaign_page
    tabs = _dashboard_tabs(admin_client)
    assert tabs["source"] == "Source" and tabs["handler"] == "Handler"


# Not a party: identifiers (tag keys, whisper tokens, query values, JSON keys, enum values) and the UTM source.
NOT_A_PARTY = re.compile(r'UTM source|Source \(UTM\)|utm_source|\{source\}|key_pressed(?: \(IVR\))?, source|caller_zip, source|\{value, handler|by=source\|handler|`handler`|"(source|handler)"')


def labels_only(text: str, stored: set[str] = frozenset()) -> str:  # type: ignore[assignment]
    for value in sorted(stored, key=len, reverse=True):
        text = text.replace(value, "")
    return NOT_A_PARTY.sub("", text)


@pytest.mark.slow
def test_no_admin_label_says_source_or_handler_in_performance_mode(admin_client, db, performance):
    """Every admin page: what is left once the data is taken out (names, stored event messages, permission names,
    which the database keeps as the standard words wrote them) and the identifiers is labels."""
    demo_load(calls=5)
    stored = set(CallEvent.objects.values_list("message", flat=True)) | set(Permission.objects.values_list("name", flat=True))
    stored |= {name for model in (Source, Handler, Campaign) for name in model.objects.values_list("name", flat=True)}
    offenders = {}
    for url in admin_urls():
        response = admin_client.get(url)
        assert response.status_code in (200, 403), url  # 403: an add page the admin offers nobody (django-q's logs)
        text = labels_only(re.sub(r"\s+", " ", visible_text(response.content)), stored)
        found = sorted({m.group(0) for m in OLD_WORDS.finditer(text)})
        if found:
            offenders[url] = found
    assert offenders == {}


# --- the API documentation and simulate_call ---------------------------------------------------------------


def _schema_texts(admin_client) -> list[str]:
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
    return texts


def test_the_api_documentation_descriptions_say_publisher_and_buyer(admin_client, db, performance):
    texts = _schema_texts(admin_client)
    offenders = [t for t in texts if OLD_WORDS.search(labels_only(t))]
    assert texts and offenders == [], "\n".join(offenders)
    assert any("publisher" in t.lower() for t in texts) and any("buyer" in t.lower() for t in texts)
    assert visible_text(admin_client.get("/api/docs/").content).strip()  # the page itself renders


def test_the_api_documentation_says_source_and_handler_without_it(admin_client, db):
    texts = _schema_texts(admin_client)
    assert any("handlers" in t for t in texts) and not any(re.search(r"\bpublishers?\b|\bbuyers\b", t, re.I) for t in texts)


def test_simulate_call_reports_in_the_chosen_words_and_the_names_as_stored(db, performance):
    campaign = CampaignFactory(name="Plumbing")
    CampaignHandlerFactory(campaign=campaign, handler=HandlerFactory(name="Handler Hub"))
    tn = TrackingNumberFactory(campaign=campaign, source=SourceFactory(name="Open Source Media"))
    out = StringIO()
    call_command("simulate_call", "--to", tn.number, "--from", "+14155550100", stdout=out)
    report = out.getvalue().split("\nCall ", 1)[1]
    assert "buyer: Handler Hub" in report and "publisher: Open Source Media" in report
    assert "handler:" not in report and "source:" not in report
