"""The money audit trail: who changed a call's value or a party's terms, when, from where, before and after."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from calltrack.audit import audit_context
from tests.console.helpers import admin_post_data
from tests.tracking.factories import (
    CampaignHandlerFactory,
    ConversionRuleFactory,
    HandlerFactory,
    UserFactory,
    WebhookFactory,
)
from tracking import tasks
from tracking.models import Call, Collaborator, Handler, MoneyChange, Webhook
from tracking.models.audit import AUDITED_COLUMNS
from tracking.services.conversions import postback_url

pytestmark = pytest.mark.django_db

SQL = Path(__file__).resolve().parents[2] / "tracking" / "sql"


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def changed(change: MoneyChange) -> dict[str, tuple[object, object]]:
    return {column: (before, after) for column, before, after in change.changes()}


def amount(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def test_the_conversion_rules_at_the_calls_end_are_recorded_as_the_rules(call):
    change = MoneyChange.objects.of("call", call.pk).get()
    assert (change.origin, change.op, change.user_id, change.actor) == ("rule", "update", None, "")
    values = changed(change)
    assert set(values) == {"conversion_reason", "payout_reason"}  # still pending: waiting for the handler's postback
    assert values["conversion_reason"][0] == "" and "postback" in values["conversion_reason"][1]


def test_a_postback_records_its_origin_the_handler_and_the_money_before_and_after(call, client):
    response = client.post(postback_url(handler_id=call.handler_id), {"call_id": call.pk})
    assert response.status_code == 200, response.content
    change = MoneyChange.objects.of("call", call.pk).first()
    assert (change.origin, change.actor, change.user_id, change.handler_id) == (
        "postback", f"handler #{call.handler_id}'s postback", None, call.handler_id)
    values = changed(change)
    assert (amount(values["revenue"][0]), amount(values["revenue"][1])) == (Decimal("0.00"), Decimal("50.00"))
    assert (amount(values["payout"][0]), amount(values["payout"][1])) == (Decimal("0.00"), Decimal("20.00"))
    assert change.at <= timezone.now()


def test_an_api_conversion_records_the_user_who_made_it(call):
    user = UserFactory(is_staff=True, is_superuser=True)
    assert token_client(user).post(f"/api/v1/calls/{call.pk}/conversion").status_code == 200
    change = MoneyChange.objects.of("call", call.pk).first()
    assert (change.origin, change.user_id, change.actor) == ("api", user.pk, user.username)


def test_a_queryset_update_of_revenue_is_recorded_too(call):
    Call.objects.filter(pk=call.pk).update(revenue=Decimal("12.34"))
    change = MoneyChange.objects.of("call", call.pk).first()
    assert (change.origin, change.op, change.actor) == ("", "update", "")
    assert [(c, amount(b), amount(a)) for c, b, a in change.changes()] == [("revenue", Decimal("0.00"), Decimal("12.34"))]


def test_raw_sql_and_a_task_context_are_recorded_with_their_origin(call):
    with audit_context(origin="task", actor="nightly fix"), connection.cursor() as cursor:
        cursor.execute("UPDATE tracking_call SET payout = %s WHERE id = %s", [Decimal("7.50"), call.pk])
    change = MoneyChange.objects.of("call", call.pk).first()
    assert (change.origin, change.actor) == ("task", "nightly fix")
    assert amount(changed(change)["payout"][1]) == Decimal("7.50")


def test_writes_that_leave_the_money_as_it_was_record_nothing(call):
    before = MoneyChange.objects.count()
    Call.objects.filter(pk=call.pk).update(duration=99, revenue=call.revenue)
    Handler.objects.filter(pk=call.handler_id).update(name="Renamed")
    assert MoneyChange.objects.count() == before


def test_the_expiry_task_is_recorded_as_a_task(call):
    Call.objects.filter(pk=call.pk).update(ended_at=timezone.now() - timedelta(days=2))
    assert tasks.conversions_expire() == 1
    change = MoneyChange.objects.of("call", call.pk).first()
    assert (change.origin, change.actor) == ("task", "conversions_expire")
    assert changed(change)["conversion_status"] == ("pending", "not_converted")


def test_an_admin_edit_of_a_handlers_terms_is_recorded_with_the_user_and_shown_on_its_page(admin_client, admin_user):
    handler = HandlerFactory(priority=1, daily_cap=None)
    url = reverse("admin:tracking_handler_change", args=[handler.pk])
    data = admin_post_data(admin_client.get(url))
    data.update(priority="3", daily_cap="40")
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    change = MoneyChange.objects.of("handler", handler.pk).first()
    assert (change.origin, change.user_id, change.actor, change.op) == ("admin", admin_user.pk, admin_user.username, "update")
    assert changed(change) == {"priority": (1, 3), "daily_cap": (None, 40)}
    page = admin_client.get(url).content.decode()
    assert "money and terms history" in page.lower()
    assert re.search(r"daily cap:</span>\s*–\s*&rarr;\s*40", page), page[page.find("ct-money-history"):][:2000]


def test_an_api_patch_of_a_handler_is_recorded_and_its_history_is_in_the_api():
    user = UserFactory(is_staff=True, is_superuser=True)
    handler = HandlerFactory(weight=1)
    api = token_client(user)
    assert api.patch(f"/api/v1/handlers/{handler.pk}/", {"weight": 5, "enabled": False}, format="json").status_code == 200
    history = api.get(f"/api/v1/handlers/{handler.pk}/history/")
    assert history.status_code == 200, history.content
    latest = history.json()[0]
    assert (latest["origin"], latest["user"], latest["actor"], latest["table"], latest["op"]) == ("api", user.pk, user.username, "handler", "update")
    assert {c["field"]: (c["before"], c["after"]) for c in latest["changes"]} == {"enabled": (True, False), "weight": (1, 5)}
    assert history.json()[-1]["op"] == "insert"  # the handler's creation, with its first terms


def test_a_handlers_history_includes_its_places_in_campaigns_and_its_own_conversion_rules():
    handler = HandlerFactory()
    place = CampaignHandlerFactory(handler=handler)
    rule = ConversionRuleFactory(campaign=place.campaign, handler=handler, revenue=Decimal("30"))
    ConversionRuleFactory(campaign=place.campaign, revenue=Decimal("99"))  # the campaign's: not this handler's terms
    rule.revenue = Decimal("35")
    rule.save(update_fields=["revenue"])
    tables = [e.table for e in MoneyChange.objects.of_handler_terms(handler.pk)]
    assert sorted(tables) == ["campaignhandler", "conversionrule", "conversionrule", "handler"]


def test_a_webhooks_secret_change_is_recorded_as_a_fingerprint_never_the_secret(admin_client):
    hook = WebhookFactory()
    old = hook.secret
    Webhook.objects.filter(pk=hook.pk).update(secret="s3cret-new-value", url="http://127.0.0.1:9/other")
    change = MoneyChange.objects.of("webhook", hook.pk).first()
    values = changed(change)
    assert set(values) == {"url", "secret"}
    assert "s3cret" not in str(change.before) + str(change.after) and old not in str(change.before)
    assert len(values["secret"][1]) == 8 and values["secret"][0] != values["secret"][1]
    page = admin_client.get(reverse("admin:tracking_webhook_change", args=[hook.pk])).content.decode()
    assert "fingerprint" in page and "s3cret" not in page


def test_the_call_page_in_the_admin_shows_the_money_history(call, admin_client):
    Call.objects.filter(pk=call.pk).update(revenue=Decimal("12.34"))
    page = admin_client.get(reverse("admin:tracking_call_change", args=[call.pk])).content.decode()
    assert 'id="call-money-history"' in page
    assert re.search(r"revenue:</span>\s*0.00\s*&rarr;\s*12.34", page, re.IGNORECASE)
    assert "Conversion rule (status callback)" in page


def test_the_call_history_api_hides_the_other_sides_money_from_collaborators(call, client):
    client.post(postback_url(handler_id=call.handler_id), {"call_id": call.pk})
    source_user, handler_user, stranger, staff = UserFactory(), UserFactory(), UserFactory(), UserFactory(is_staff=True, is_superuser=True)
    Collaborator.objects.create(user=source_user, source=call.source)
    Collaborator.objects.create(user=handler_user, handler=call.handler)
    Collaborator.objects.create(user=stranger, handler=HandlerFactory())
    url = f"/api/v1/calls/{call.pk}/history/"

    def fields(user) -> set[str]:
        response = token_client(user).get(url)
        assert response.status_code == 200, response.content
        return {c["field"] for entry in response.json() for c in entry["changes"]}

    assert {"revenue", "payout", "revenue_converted", "payout_converted"} <= fields(staff)
    seen_by_source = fields(source_user)
    assert "payout" in seen_by_source and not {"revenue", "revenue_converted", "conversion_reason"} & seen_by_source
    seen_by_handler = fields(handler_user)
    assert "revenue" in seen_by_handler and not {"payout", "payout_converted", "payout_reason"} & seen_by_handler
    assert token_client(stranger).get(url).status_code == 404
    assert token_client(source_user).get(f"/api/v1/handlers/{call.handler_id}/history/").status_code == 403


def test_a_source_collaborator_sees_no_change_that_touched_only_revenue(call):
    Call.objects.filter(pk=call.pk).update(revenue=Decimal("99"))
    source_user = UserFactory()
    Collaborator.objects.create(user=source_user, source=call.source)
    body = token_client(source_user).get(f"/api/v1/calls/{call.pk}/history/").json()
    assert all("revenue" not in str(entry) for entry in body)
    assert len(body) == 1  # the rules' change (payout reason), not the revenue-only one


def test_the_history_is_read_only_in_the_admin(call, admin_client):
    change = MoneyChange.objects.of("call", call.pk).get()
    assert admin_client.get(reverse("admin:tracking_moneychange_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:tracking_moneychange_add")).status_code == 403
    assert admin_client.post(reverse("admin:tracking_moneychange_delete", args=[change.pk]), {"post": "yes"}).status_code == 403
    page = admin_client.get(reverse("admin:tracking_moneychange_change", args=[change.pk]))
    assert page.status_code == 200 and b'name="origin"' not in page.content  # shown, not editable
    admin_client.post(reverse("admin:tracking_moneychange_change", args=[change.pk]), {"origin": "admin", "actor": "forged"})
    response = admin_client.post(reverse("admin:tracking_moneychange_changelist"), {"action": "delete_selected", "_selected_action": [change.pk]})
    assert response.status_code == 403  # an action it may not run is refused (calltrack.admin_base.ModelAdmin)
    change.refresh_from_db()
    assert (change.origin, change.actor) == ("rule", "")


def test_the_trigger_files_record_the_columns_the_application_reads():
    pg = (SQL / "money_history.postgresql.sql").read_text()
    lite = (SQL / "money_history.sqlite.sql").read_text()
    for column in AUDITED_COLUMNS["call"]:
        assert f"'{column}', OLD.{column}" in pg and f"'{column}', OLD.{column}" in lite
    for table, columns in AUDITED_COLUMNS.items():
        if table == "call":
            continue
        trigger = re.search(rf"ON tracking_{table}\s+FOR EACH ROW\s+EXECUTE FUNCTION tracking_money_history_terms\((.*?)\);", pg, re.S)
        assert trigger is not None, table
        argv = [a.strip().strip("'").lstrip("*") for a in trigger.group(1).split(",")][1:]
        assert tuple(argv) == columns, table
        for column in columns:
            assert f"'{column}', NEW.{column}" in lite or f"'{column}', calltrack_fingerprint(NEW.{column})" in lite, (table, column)


def test_a_source_collaborators_call_page_shows_the_payout_history_but_never_the_revenue(call):
    from django.test import Client

    Call.objects.filter(pk=call.pk).update(revenue=Decimal("41.00"), payout=Decimal("17.00"))
    user = UserFactory(is_staff=True)
    Collaborator.objects.create(user=user, source=call.source)
    browser = Client()
    browser.force_login(user)
    response = browser.get(reverse("admin:tracking_call_change", args=[call.pk]))
    assert response.status_code == 200
    history = response.content.decode().split('id="call-money-history"')[1].split("</section>")[0]
    assert "17.00" in history and "41.00" not in history and "Revenue" not in history


def test_the_history_endpoints_are_in_the_openapi_schema():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path in ("/api/v1/calls/{id}/history/", "/api/v1/handlers/{id}/history/", "/api/v1/sources/{id}/history/"):
        answer = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert answer == {"type": "array", "items": {"$ref": "#/components/schemas/MoneyChange"}}, path
    assert {"origin", "actor", "changes", "at"} <= set(schema["components"]["schemas"]["MoneyChange"]["properties"])


def test_every_trigger_of_the_trail_is_installed_after_all_migrations():
    """A later migration that rebuilds an audited table on SQLite (Django copies it to a new table) drops its
    triggers: such a migration must install tracking/sql/money_history.sqlite.sql again."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            expected = set(re.findall(r"CREATE TRIGGER (\w+)", (SQL / "money_history.sqlite.sql").read_text()))
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'tracking_money_history%'")
        else:
            expected = set(re.findall(r"CREATE TRIGGER (\w+)", (SQL / "money_history.postgresql.sql").read_text()))
            cursor.execute("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'tracking_money_history%'")
        assert {name for (name,) in cursor.fetchall()} == expected
    assert len(expected) == (16 if connection.vendor == "sqlite" else 6)
