"""The admin goes through the same gate as the API (calltrack/scoping.py), walked like tests/api/test_no_leaks.py.

Every registered admin (its changelist, add page, change pages and every declared action) is opened as a
superuser, a staff user with only the view permissions, a source collaborator and a handler collaborator. What
each may see and do is asserted from the gate's own tables, so an admin added later is walked too.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from calltrack.scoping import HIDDEN_CALL_FIELDS
from tests.api.conftest import grant, token_client
from tests.tracking.factories import UserFactory
from tracking.models import Call, Collaborator, Handler, Source, WebhookDelivery

MARKERS = {"source": "Src-Gate-91", "other_source": "Src-Else-91", "handler": "Hdl-Gate-91", "other_handler": "Hdl-Else-91",
           "campaign": "Cmp-Gate-91", "revenue": "8765.43", "payout": "2345.67"}
FORBIDDEN = {
    "source": {"other_source", "handler", "other_handler", "campaign", "revenue"},
    "handler": {"source", "other_source", "other_handler", "campaign", "payout"},
}
#: The admins each kind of collaborator may open (everything else is a 403, whatever it was granted).
# Alerts: a collaborator reads those about its own source or handler (calltrack.scoping.visible_alerts).
COLLABORATOR_ADMINS = {
    "source": {"tracking.call", "numbers.trackingnumber", "numbers.numbersession", "tracking.alert", "tracking.textmessage"},
    "handler": {"tracking.call", "tracking.alert", "tracking.textmessage"},
}
#: Lookups an attacker would bisect a hidden value with.
LOOKUPS = ["exact", "gte", "lt", "isnull", "in", "range"]


def _login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def users(world):
    superuser = UserFactory(username="root-gate", is_staff=True, is_superuser=True)
    viewer = UserFactory(username="viewer-gate", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    src = UserFactory(username="src-gate", is_staff=True)
    Collaborator.objects.create(user=src, source=world.source)
    hdl = UserFactory(username="hdl-gate", is_staff=True)
    Collaborator.objects.create(user=hdl, handler=world.handler)
    # Collaborators granted every permission by mistake: the gate still holds.
    for user in (src, hdl):
        grant(user, "all")
    return {"superuser": superuser, "viewer": viewer, "source": src, "handler": hdl}


@pytest.fixture
def marked(world):
    Source.objects.filter(pk=world.source.pk).update(name=MARKERS["source"])
    Source.objects.filter(pk=world.other_source.pk).update(name=MARKERS["other_source"])
    Handler.objects.filter(pk=world.handler.pk).update(name=MARKERS["handler"])
    Handler.objects.filter(pk=world.other_handler.pk).update(name=MARKERS["other_handler"])
    world.campaign.__class__.objects.filter(pk=world.campaign.pk).update(name=MARKERS["campaign"])
    Call.objects.filter(pk=world.call_mine.pk).update(
        revenue=Decimal(MARKERS["revenue"]), payout=Decimal(MARKERS["payout"]), status="completed", conversion_status="pending",
    )
    return world


def _admin_pages(world) -> list[tuple[str, str]]:
    """(model label, url) of every registered admin's changelist, add page and change pages."""
    pages = []
    for model, _model_admin in admin.site._registry.items():
        label = model._meta.label_lower
        info = (model._meta.app_label, model._meta.model_name)
        pages.append((label, reverse("admin:{}_{}_changelist".format(*info))))
        pages.append((label, reverse("admin:{}_{}_add".format(*info))))
        for pk in model.objects.order_by("pk").values_list("pk", flat=True)[:3]:
            pages.append((label, reverse("admin:{}_{}_change".format(*info), args=[pk])))
    return pages


def _declared_actions() -> list[tuple[type, object, str]]:
    out = []
    for model, model_admin in admin.site._registry.items():
        for _, name, _ in model_admin._get_base_actions():
            out.append((model, model_admin, name))
    return out


@pytest.mark.parametrize("who", ["viewer", "source", "handler"])
def test_every_admin_page_answers_each_user_within_the_gate(who, users, marked):
    client = _login(users[who])
    answers = [(label, url, client.get(url)) for label, url in _admin_pages(marked)]

    assert [(url, r.status_code) for _, url, r in answers if r.status_code >= 500] == []
    if who == "viewer":
        # Reads what it may view, adds nothing.
        assert [url for label, url, r in answers if url.endswith("/add/") and r.status_code == 200] == []
        return
    opened = {label for label, url, r in answers if r.status_code == 200}
    assert opened <= COLLABORATOR_ADMINS[who]
    assert "tracking.call" in opened
    bodies = "".join(r.content.decode() for _, _, r in answers if r.status_code == 200)
    assert [name for name in FORBIDDEN[who] if MARKERS[name] in bodies] == []
    assert MARKERS[who] in bodies or who == "source"  # the handler's own name is on its calls; a source sees no party column


@pytest.mark.parametrize("who", ["viewer", "source", "handler"])
def test_no_declared_admin_action_runs_without_its_permission(who, users, marked):
    client = _login(users[who])
    refused = []
    for model, _model_admin, name in _declared_actions():
        pk = model.objects.order_by("pk").values_list("pk", flat=True).first()
        if pk is None:
            continue
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        response = client.post(url, {"action": name, "_selected_action": [pk], "index": 0})
        assert response.status_code < 500, (url, name)
        refused.append((model._meta.label_lower, name, response.status_code))
    # Nothing an admin action does is open to a read-only user or a collaborator (the export is a read; it needs
    # the view permission, and a collaborator does not get it).
    allowed_reads = {("numbers.trackingnumber", "export_numbers")} if who == "viewer" else set()
    assert [(label, name, status) for label, name, status in refused if status != 403 and (label, name) not in allowed_reads] == []
    call = Call.objects.get(pk=marked.call_mine.pk)
    assert not call.converted and not call.revenue_converted and not call.payout_converted
    assert call.payout == Decimal(MARKERS["payout"])


def test_a_superuser_runs_the_conversion_action_and_is_refused_the_bulk_delete_of_calls(users, marked):
    client = _login(users["superuser"])
    url = reverse("admin:tracking_call_changelist")
    refused = client.post(url, {"action": "delete_selected", "_selected_action": [marked.call_mine.pk], "index": 0})
    assert refused.status_code == 403
    done = client.post(url, {"action": "convert_by_postback", "_selected_action": [marked.call_mine.pk], "index": 0})
    assert done.status_code == 302


def test_the_deliveries_resend_needs_the_change_permission(users, marked):
    from tests.tracking.factories import WebhookFactory

    hook = WebhookFactory(campaign=marked.campaign)
    delivery = WebhookDelivery.objects.create(webhook=hook, call=marked.call_mine, event="call.completed", url=hook.url,
                                              status="failed")
    url = reverse("admin:tracking_webhookdelivery_changelist")
    viewer = _login(users["viewer"])
    assert viewer.post(url, {"action": "resend", "_selected_action": [delivery.pk], "index": 0}).status_code == 403
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == "failed"
    grant(users["viewer"], "tracking.change_webhookdelivery")
    viewer = _login(users["viewer"])
    assert viewer.post(url, {"action": "resend", "_selected_action": [delivery.pk], "index": 0}).status_code == 302


def _hidden_lookups(kind: str, world) -> list[str]:
    fields = {f.name: f for f in Call._meta.get_fields() if getattr(f, "concrete", False)}
    values = {"exact": "1", "gte": "1", "lt": "100000", "isnull": "True", "in": "1,2", "range": "0,100000"}
    out = []
    for name in sorted(HIDDEN_CALL_FIELDS[kind]):
        if name not in fields:
            continue
        column = f"{name}__id" if fields[name].is_relation else name
        out += [f"{column}__{lookup}={values[lookup]}" for lookup in LOOKUPS]
    return out


@pytest.mark.parametrize("kind", ["source", "handler"])
def test_a_lookup_on_a_hidden_field_is_refused_in_the_admin_and_its_export(kind, users, marked):
    client = _login(users[kind])
    lookups = _hidden_lookups(kind, marked)
    assert len(lookups) >= 30
    log, export = reverse("admin:tracking_call_changelist"), reverse("admin:tracking_call_export")
    for query in lookups:
        assert client.get(f"{log}?{query}").status_code == 400, query
        assert client.get(f"{export}?{query}").status_code == 400, query
    # A deeper path through a visible relation is refused too (the tracking number's campaign).
    assert client.get(f"{log}?tracking_number__campaign__id__exact={marked.campaign.pk}").status_code == 400
    # Its own fields still filter.
    assert client.get(f"{log}?status__exact=completed").status_code == 200


@pytest.mark.parametrize("kind", ["source", "handler"])
def test_a_filter_on_a_hidden_field_is_ignored_by_the_calls_api(kind, users, marked):
    api = token_client(users[kind])
    everything = {c["id"] for c in api.get("/api/v1/calls/").json()["results"]}
    for name in ("handler", "source", "campaign"):
        if name in HIDDEN_CALL_FIELDS[kind]:
            for value in (marked.handler.pk, marked.other_handler.pk, marked.source.pk, marked.other_source.pk):
                assert {c["id"] for c in api.get("/api/v1/calls/", {name: value}).json()["results"]} == everything


def test_a_source_sees_its_own_side_of_converted_in_the_log_and_the_export(users, marked):
    # Converted only on the revenue side: a source must not see it as converted.
    Call.objects.filter(pk=marked.call_mine.pk).update(converted=True, revenue_converted=True, payout_converted=False)
    Call.objects.filter(pk=marked.call_source_only.pk).update(converted=True, revenue_converted=False, payout_converted=True)
    client = _login(users["source"])
    listed = client.get(reverse("admin:tracking_call_changelist"), {"payout_converted__exact": "1"})
    assert {c.pk for c in listed.context["cl"].result_list} == {marked.call_source_only.pk}
    rows = list(csv.DictReader(io.StringIO(b"".join(client.get(reverse("admin:tracking_call_export")).streaming_content).decode())))
    assert {int(r["call_id"]): r["converted"] for r in rows} == {marked.call_mine.pk: "False", marked.call_source_only.pk: "True"}
    assert "revenue" not in rows[0] and "handler" not in rows[0]
    api = token_client(users["source"]).get(f"/api/v1/calls/{marked.call_mine.pk}/").json()
    assert api["converted"] is False


def test_a_handler_never_reads_the_source_or_the_visitor_in_the_export(users, marked):
    Call.objects.filter(pk=marked.call_mine.pk).update(
        tags={"source": "mine", "utm_source": "google", "language": "es"}, marketing_data={"utm_source": "google"},
        visitor_id="v-secret-1", landing_page="https://example.com/secret-page",
    )
    client = _login(users["handler"])
    body = b"".join(client.get(reverse("admin:tracking_call_export")).streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert rows and "tag:language" in rows[0]
    for secret in ("google", "v-secret-1", "secret-page", "tag:source", "tag:utm_source", "tracking_number", "visitor_id"):
        assert secret not in body, secret
    page = client.get(reverse("admin:tracking_call_change", args=[marked.call_mine.pk])).content.decode()
    assert "v-secret-1" not in page and "secret-page" not in page
    api = token_client(users["handler"]).get(f"/api/v1/calls/{marked.call_mine.pk}/").json()
    assert api["tags"] == {"language": "es"}
    # Tag filters on what a handler may not see are refused in the admin and ignored by the API.
    assert client.get(reverse("admin:tracking_call_changelist"), {"tag": "source:mine"}).status_code == 403
    calls = token_client(users["handler"]).get("/api/v1/calls/", {"tag": "utm_source:nothing"}).json()["results"]
    assert {c["id"] for c in calls} == {marked.call_mine.pk}


def test_the_postback_url_shows_only_to_who_may_change_handlers(users, marked):
    url = reverse("admin:tracking_handler_change", args=[marked.handler.pk])
    assert "/postback/" not in _login(users["viewer"]).get(url).content.decode()
    assert "/postback/" in _login(users["superuser"]).get(url).content.decode()


def test_the_voicemail_is_only_for_who_may_listen(users, marked):
    Call.objects.filter(pk=marked.call_mine.pk).update(voicemail_url="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1")
    viewer = users["viewer"]
    page = _login(viewer).get(reverse("admin:tracking_call_change", args=[marked.call_mine.pk])).content.decode()
    assert "RE1" not in page
    assert token_client(viewer).get(f"/api/v1/calls/{marked.call_mine.pk}/").json()["voicemail_url"] == ""
    grant(viewer, "tracking.listen_recording")
    viewer.refresh_from_db()
    assert token_client(viewer).get(f"/api/v1/calls/{marked.call_mine.pk}/").json()["voicemail_url"].endswith("RE1")


def test_a_handler_breakdown_shows_no_tracking_number_labels(users, marked):
    marked.static_mine.__class__.objects.filter(pk=marked.static_mine.pk).update(label="Sourcealpha billboard I-95")
    Call.objects.filter(pk=marked.call_mine.pk).update(tracking_number=marked.static_mine)
    page = _login(users["handler"]).get("/admin/", {"range": "7d"}).content.decode()
    assert "Sourcealpha billboard" not in page
    report = token_client(users["handler"]).get("/api/v1/reports/breakdown", {"by": "tracking_number", "range": "7d"})
    assert report.status_code in (400, 403)
