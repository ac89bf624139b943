"""Issue 30's proof: two accounts with the same names and public ids, and nothing of one ever shows in the other.

Account A (the install's first) and account B hold one row of every kind, built by the same function with the same
names, source ids and campaign ids; only B's markers differ: its phone numbers (area code 917, A's are 415), the
string ``zqbmark`` in every free-text field (labels, notes, emails, URLs, call sids, usernames) where A has
``zqamark``. Then, as A's owner, analyst, billing user, source collaborator and handler collaborator, the walk opens
every admin page (the dashboard, each registered model's list, with each of its list filters' choices and with B's
ids as filter values, its add page, the change page of A's objects and of B's, the custom views, each action's
answer) and every GET endpoint of the API schema (lists, details with A's and B's ids, each integer filter with B's
ids), and finds no B marker in any answer. A's pages are also compared with the same pages opened before B
existed: a figure counting B's rows would change them. Last, a call to B's number is routed by B's campaign.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db import transaction
from django.test import Client
from django.urls import NoReverseMatch, Resolver404, resolve, reverse
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from calltrack.accounts import acting_in
from calltrack.models import Account, AccountToken, Membership
from calltrack.numbers.models import (
    BlockedCaller,
    NumberEvent,
    PoolSample,
)
from tests.numbers.factories import (
    NumberPoolFactory,
    NumberSessionFactory,
    PortRequestFactory,
    ReceivingNumberFactory,
    TrackingNumberFactory,
)
from tests.tracking.factories import (
    CallAttemptFactory,
    CallFactory,
    CampaignFactory,
    CampaignHandlerFactory,
    ContactFactory,
    ConversionRuleFactory,
    HandlerFactory,
    SourceFactory,
    UserFactory,
    WebhookFactory,
)
from tracking.models import (
    Alert,
    AlertRecipient,
    Call,
    CallEvent,
    Collaborator,
    ConversionDestination,
    ConversionUpload,
    FraudMonitor,
    IVRMenu,
    IVROption,
    RoutingTable,
    RoutingTableRow,
    TaggingHours,
    TextMessage,
    TextOptOut,
    TextRoute,
    WebhookAttempt,
    WebhookDelivery,
)

#: A caller of both accounts.
SHARED_CALLER = "+13125550199"
ROLES = ("owner", "analyst", "billing", "source", "handler")

#: B's markers: its free text, and its phone numbers (area code 917) however a page formats them.
B_TEXT = "zqbmark"
B_PHONE = re.compile(r"(?:\+1|(?<![\d]))\W{0,2}917\W{0,2}555\W?\d{4}")


def b_markers(body: str) -> list[str]:
    found = [B_TEXT] if B_TEXT in body.lower() else []
    return found + B_PHONE.findall(body)[:3]


# --- The two accounts ------------------------------------------------------------------------------------------


def build(account: Account, tag: str, area: str) -> dict[str, Any]:
    """One row of every kind in ``account``: the same names and public ids whichever account, ``zq<tag>mark`` in
    each free-text field and phone numbers in ``area``."""
    m = f"zq{tag}mark"

    def n(i: int) -> str:
        return f"+1{area}555{i:04d}"

    now = timezone.now()
    w: dict[str, Any] = {"account": account, "marker": m}
    with acting_in(account.pk):
        w["receiving"] = rn = ReceivingNumberFactory(number=n(101), label=f"Line {m}", account=account)
        w["handler"] = handler = HandlerFactory(name="Acme Buyer", buyer_id="acme", receiving_number=rn, account=account)
        w["source"] = source = SourceFactory(name="Google", source_id="google", notes=f"notes {m}", company=f"Co {m}", account=account)
        w["campaign"] = campaign = CampaignFactory(name="Main", campaign_id="main", greeting_text=f"Hello {m}", account=account)
        w["campaign_handler"] = CampaignHandlerFactory(campaign=campaign, handler=handler)
        w["menu"] = menu = IVRMenu.objects.create(campaign=campaign, name="Menu", prompt=f"Press one {m}")
        w["option"] = IVROption.objects.create(campaign=campaign, menu=menu, digit="1", label=f"Sales {m}", tag_key="dept", tag_value=f"sales-{m}")
        w["rule"] = ConversionRuleFactory(campaign=campaign)
        w["webhook"] = hook = WebhookFactory(campaign=campaign, name=f"Hook {m}", url=f"https://{m}.example.com/hook")
        w["pool"] = pool = NumberPoolFactory(name="Site pool", key=f"site-{tag}", campaign=campaign, source=source, account=account,
                                             allowed_origins=f"https://{m}.example.com")
        w["number"] = tn = TrackingNumberFactory(number=n(1), label=f"Static {m}", campaign=campaign, source=source, account=account)
        w["pool_number"] = tn_pool = TrackingNumberFactory(number=n(2), label=f"Pool {m}", campaign=campaign, pool=pool, account=account)
        w["session"] = session = NumberSessionFactory(pool=pool, tracking_number=tn_pool, visitor_id=f"v-{m}",
                                                      landing_page=f"https://{m}.example.com/land")
        PoolSample.objects.create(pool=pool, live_sessions=1, size=1)
        NumberEvent.objects.create(tracking_number=tn, reason=f"bought {m}")
        started = now - timedelta(hours=2)
        w["call"] = call = CallFactory(
            call_sid=f"CA{m}0001", caller_number=n(150), called_number=n(1), campaign=campaign, source=source, handler=handler,
            tracking_number=tn, account=account, status="completed", started_at=started, answered_at=started,
            ended_at=started + timedelta(minutes=3), talk_time=180, revenue=Decimal("40.00"), payout=Decimal("10.00"),
            recording_url=f"https://api.twilio.com/2010-04-01/Recordings/RE{m}", recording_sid=f"RE{m}",
            landing_page=f"https://{m}.example.com/page", visitor_id=f"v-{m}", caller_city=f"City{m}",
            marketing_data={"utm_source": f"utm-{m}"}, tags={"dept": f"sales-{m}"},
        )
        w["pool_call"] = CallFactory(
            call_sid=f"CA{m}0002", caller_number=n(151), called_number=n(2), campaign=campaign, source=source,
            tracking_number=tn_pool, session=session, account=account, status="no-answer", started_at=started,
        )
        # A caller who called (and texted) both accounts: each account sees its own call, text and contact of it.
        w["shared_call"] = CallFactory(
            call_sid=f"CA{m}0003", caller_number=SHARED_CALLER, called_number=n(1), campaign=campaign, source=source,
            tracking_number=tn, account=account, status="completed", started_at=started - timedelta(hours=1),
        )
        w["shared_text"] = TextMessage.objects.create(
            message_sid=f"SM{m}0002", from_number=SHARED_CALLER, to_number=n(1), contact_number=SHARED_CALLER,
            body=f"again {m}", tracking_number=tn, campaign=campaign, source=source, account=account,
        )
        w["shared_contact"] = ContactFactory(phone_number=SHARED_CALLER, name="Sam Both", notes=f"both {m}", account=account)
        w["attempt"] = CallAttemptFactory(call=call, handler=handler, number_dialed=rn.number)
        w["event"] = CallEvent.objects.create(call=call, kind="note", message=f"event {m}")
        w["delivery"] = delivery = WebhookDelivery.objects.create(webhook=hook, call=call, event="call.completed", url=hook.url,
                                                                  body=f'{{"m": "{m}"}}', status="failed", last_error=f"refused {m}")
        WebhookAttempt.objects.create(delivery=delivery, number=1, outcome="failed", error=f"refused {m}")
        w["text"] = TextMessage.objects.create(
            message_sid=f"SM{m}0001", from_number=n(150), to_number=n(1), contact_number=n(150), body=f"hello {m}",
            tracking_number=tn, campaign=campaign, source=source, account=account,
        )
        w["text_route"] = TextRoute.objects.create(campaign=campaign, forward_email=f"{m}@example.com", auto_reply=f"thanks {m}")
        w["opt_out"] = TextOptOut.objects.create(contact_number=n(152), our_number=n(1), account=account)
        w["contact"] = ContactFactory(phone_number=n(150), name="Pat Caller", notes=f"notes {m}", account=account)
        w["monitor"] = monitor = FraudMonitor.objects.create(name="Short calls", kind="short_calls", source=source, account=account)
        w["alert"] = Alert.objects.create(kind="pool_overflow", key=f"pool-{m}", message=f"Pool ran out {m}", source=source,
                                          monitor=monitor, account=account)
        w["recipient"] = AlertRecipient.objects.create(name="Ops", email=f"ops-{m}@example.com", account=account)
        w["tagging"] = TaggingHours.objects.create(name="After hours", campaign=campaign, tag_key="shift", tag_value=f"late-{m}",
                                                   account=account)
        w["table"] = table = RoutingTable.objects.create(campaign=campaign, name="Zips")
        w["table_row"] = RoutingTableRow.objects.create(table=table, value="90210", number=n(160))
        w["blocked"] = BlockedCaller.objects.create(number=n(170), campaign=campaign, reason=f"spam {m}", account=account)
        w["port"] = PortRequestFactory(numbers=[n(180)], loa_name=f"Jane {m}", campaign=campaign, account=account)
        w["destination"] = destination = ConversionDestination.objects.create(
            campaign=campaign, name="Ads", conversion_action=f"action-{m}")
        w["upload"] = ConversionUpload.objects.create(call=call, destination=destination, reason=f"sent {m}")
        w["users"] = users = {}
        for role in ("owner", "analyst", "billing"):
            users[role] = user = UserFactory(username=f"{role}-{m}", email=f"{role}@{m}.example.com", is_staff=True)
            user.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=["tracking", "numbers", "calltrack"]))
            Membership.objects.create(user=user, account=account, role=role)
        AccountToken.objects.create(user=users["owner"], account=account, name=f"CRM {m}")
        for kind, party in (("source", source), ("handler", handler)):
            users[kind] = user = UserFactory(username=f"{kind}-{m}", email=f"{kind}@{m}.example.com", is_staff=True)
            user.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=["tracking", "numbers"]))
            w[f"{kind}_collaborator"] = Collaborator.objects.create(user=user, account=account, **{kind: party})
    return w


def _objects(w: dict[str, Any]) -> list[Any]:
    return [o for o in w.values() if hasattr(o, "_meta") and hasattr(o, "pk")]


# --- The walks -------------------------------------------------------------------------------------------------


def _admin_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _api_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def _change_url(obj) -> str | None:
    try:
        return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return None


def admin_pages(client: Client, a: dict[str, Any], b: dict[str, Any] | None, *, filters: bool = True) -> dict[str, tuple[int, str]]:
    """Every admin page the user may open, with its answer: url -> (status, body). ``filters``: each list filter's
    choices too (and B's ids as the value of each relation filter)."""
    answers: dict[str, tuple[int, str]] = {}

    def get(url: str) -> Any:
        if url in answers:
            return None
        response = client.get(url)
        body = b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()
        answers[url] = (response.status_code, body)
        return response

    get("/admin/")
    for by in ("source", "campaign", "handler", "tracking_number", "pool", "utm_source", "caller_state"):
        get(f"/admin/?by={by}&period=30d")
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        changelist = reverse("admin:{}_{}_changelist".format(*info))
        response = get(changelist)
        if response is None or response.status_code != 200:
            continue
        get(reverse("admin:{}_{}_add".format(*info)))
        cl = response.context["cl"] if response.context and "cl" in response.context else None
        if cl is not None and filters:
            for spec in cl.filter_specs:
                for choice in spec.choices(cl):
                    query = choice.get("query_string")
                    if query and query != "?":
                        get(changelist + query)
            # B's ids as the value of each relation filter.
            for spec in cl.filter_specs:
                parameter = getattr(spec, "lookup_kwarg", None)
                if parameter and b is not None and getattr(getattr(spec, "field", None), "related_model", None) is not None:
                    for obj in _objects(b):
                        if isinstance(obj, spec.field.related_model):
                            get(f"{changelist}?{parameter}={obj.pk}")
        for obj in _objects(a):
            if isinstance(obj, model):
                get(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]))
                try:
                    get(reverse("admin:{}_{}_history".format(*info), args=[obj.pk]))
                except NoReverseMatch:
                    pass
    # Custom views: exports, the conversation page, the port-in form; autocompletes of every form.
    get(reverse("admin:tracking_call_export"))
    get(reverse("admin:tracking_textmessage_export"))
    get(reverse("admin:tracking_textmessage_conversation", args=[a["contact"].phone_number]))
    get(reverse("admin:tracking_textmessage_conversation", args=[SHARED_CALLER]))
    get(reverse("admin:numbers_trackingnumber_port_in"))
    for model, model_admin in admin.site._registry.items():
        for field_name in getattr(model_admin, "autocomplete_fields", ()):
            get(f"/admin/autocomplete/?app_label={model._meta.app_label}&model_name={model._meta.model_name}&field_name={field_name}&term=")
    if b is not None:
        get(reverse("admin:tracking_textmessage_conversation", args=[b["contact"].phone_number]))
        for obj in _objects(b):
            url = _change_url(obj)
            if url:
                get(url)
    return answers


def admin_actions(client: Client, a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, int, str]]:
    """Each declared action run on A's row and on B's (each rolled back): its answer (a confirmation page, a
    download, a redirect)."""
    out = []
    for model, model_admin in admin.site._registry.items():
        names = [name for _, name, _ in model_admin._get_base_actions()]
        if not names:
            continue
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        mine = [o.pk for o in _objects(a) if isinstance(o, model)]
        theirs = [o.pk for o in _objects(b) if isinstance(o, model)]
        for name in names:
            for selected in (mine, theirs, mine + theirs):
                if not selected:
                    continue
                sid = transaction.savepoint()
                response = client.post(url, {"action": name, "_selected_action": selected, "index": 0})
                body = b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()
                out.append((f"{url} {name} {selected}", response.status_code, body))
                transaction.savepoint_rollback(sid)
    return out


def _operations():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            yield path, method, operation


def _path_model(path: str):
    try:
        match = resolve(path.replace("{id}", "1"))
    except Resolver404:
        return None
    queryset = getattr(getattr(match.func, "cls", None), "queryset", None)
    return queryset.model if queryset is not None else None


#: The rows whose ids the API's integer filters are given (A's and B's).
PARTIES = ("source", "campaign", "handler", "pool", "number", "pool_number", "call", "text", "contact", "alert", "monitor", "session")


def api_answers(client: APIClient, a: dict[str, Any], b: dict[str, Any] | None) -> dict[str, tuple[int, str]]:
    answers: dict[str, tuple[int, str]] = {}
    ids = sorted({o.pk for o in _objects(a)} | ({o.pk for o in _objects(b)} if b else set()))
    party_ids = sorted({w[k].pk for w in (a, b) if w for k in PARTIES})
    for path, method, operation in _operations():
        if method != "get" or "{" in path.replace("{id}", ""):
            continue
        paths = [path]
        if "{id}" in path:
            model = _path_model(path)
            theirs = {id(o) for o in (_objects(b) if b else [])}
            own = [o for o in _objects(a) + (_objects(b) if b else []) if model is not None and isinstance(o, model)]
            # B's rows are marked in the answer's key: their pages must be refused.
            paths = ([path.replace("{id}", str(o.pk)) + (" [B]" if id(o) in theirs else "") for o in own]
                     or [path.replace("{id}", str(i)) for i in ids])
        queries: list[dict[str, Any]] = [{}]
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "query" or parameter["name"] in ("cursor", "page", "page_size", "ordering", "account"):
                continue
            schema = parameter.get("schema", {})
            values = schema.get("enum") or schema.get("items", {}).get("enum") or (party_ids if schema.get("type") == "integer" else [])
            if parameter["name"] in ("source_id", "campaign_id"):
                values = ["google", "main"]
            queries += [{parameter["name"]: value} for value in values]
            if parameter.get("required"):
                queries = [q for q in queries if parameter["name"] in q]
        for key in paths:
            url = key.removesuffix(" [B]")
            for query in queries:
                response = client.get(url, query)
                answers[f"{key} {query}"] = (response.status_code, response.content.decode())
    return answers


def api_writes_on_b(client: APIClient, a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, int]]:
    """Every write of the schema on one of B's rows (its id in the path), each rolled back: (what, status)."""
    out = []
    for path, method, _operation in _operations():
        if method not in ("post", "put", "patch", "delete") or "{id}" not in path:
            continue
        model = _path_model(path) or Call
        for obj in [o for o in _objects(b) if isinstance(o, model)][:2]:
            sid = transaction.savepoint()
            response = client.generic(method.upper(), path.replace("{id}", str(obj.pk)), "{}", content_type="application/json")
            transaction.savepoint_rollback(sid)
            out.append((f"{method.upper()} {path} {obj.pk}", response.status_code))
    return out


def _normalized(body: str) -> str:
    """Without what changes from one answer to the next: the CSRF token, a new secret's suggestion, the time."""
    body = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", body)
    body = re.sub(r'(name="[\w-]*secret" value=)"[^"]*"', r"\1", body)
    body = re.sub(r"\b[A-Z][a-z]{2}\.? \d{1,2}, \d{4},? \d{1,2}:\d{2}", "", body)
    body = re.sub(r'<svg[^>]*class="pool-chart".*?</svg>', "", body, flags=re.S)  # the pool's last hours, drawn up to now
    return body


def _difference(before: str, after: str) -> str:
    """The first lines that differ (for the failure message)."""
    import difflib

    lines = [line.strip()[:200] for line in difflib.unified_diff(_normalized(before).splitlines(), _normalized(after).splitlines(), n=0)
             if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    return " | ".join(lines[:6])


# --- The module's data: A, A's pages before B, then B ---------------------------------------------------------


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        a_account = Account.objects.order_by("pk").first() or Account.objects.create(name="Default", slug="default")
        a = build(a_account, "a", "415")
        before = {}
        for role in ("owner", "source", "handler"):
            before[role] = admin_pages(_admin_client(a["users"][role]), a, None, filters=role != "owner")
        before["api-owner"] = api_answers(_api_client(a["users"]["owner"]), a, None)
        b_account = Account.objects.create(name=a_account.name, slug="bravo")
        b = build(b_account, "b", "917")
        yield {"a": a, "b": b, "before": before}
        transaction.set_rollback(True)


pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", ROLES)
def test_no_admin_page_of_a_shows_anything_of_b(world, role):
    a, b = world["a"], world["b"]
    # The analyst's lists are the owner's (read-only): its filters' choices are walked as the owner's only.
    answers = admin_pages(_admin_client(a["users"][role]), a, b, filters=role != "analyst")
    problems = [f"{status}: {url}" for url, (status, _) in answers.items() if status >= 500]
    problems += [f"B's {found} in {url}" for url, (_, body) in answers.items() if (found := b_markers(body))]
    # B's objects' pages: refused or sent back to a list, never shown.
    problems += [f"B's page {url}: {answers[url][0]}" for obj in _objects(b) if (url := _change_url(obj)) and answers[url][0] not in (302, 403, 404)]
    # A's pages read the same as before B existed (no figure, filter choice or count of B's).
    problems += [f"changed by B: {url} {status}->{answers[url][0]} {_difference(body, answers[url][1])}"
                 for url, (status, body) in world["before"].get(role, {}).items()
                 if url in answers and (answers[url][0], _normalized(answers[url][1])) != (status, _normalized(body))]
    assert not problems, "\n".join(problems)
    # The walk reached A's own data (a broken walk would pass everything above).
    seen = "".join(body for status, body in answers.values() if status == 200)
    if role in ("owner", "analyst"):
        assert "zqamark" in seen and "(415) 555-0001" in seen


@pytest.mark.parametrize("role", ["owner", "source", "handler"])
def test_no_admin_action_reaches_b(world, role):
    a, b = world["a"], world["b"]
    answers = admin_actions(_admin_client(a["users"][role]), a, b)
    assert [(what, status) for what, status, _ in answers if status >= 500] == []
    leaks = [(what, found) for what, _, body in answers if (found := b_markers(body))]
    assert not leaks, "\n".join(map(str, leaks))


@pytest.mark.parametrize("role", ROLES)
def test_no_api_endpoint_of_a_shows_anything_of_b(world, role):
    a, b = world["a"], world["b"]
    answers = api_answers(_api_client(a["users"][role]), a, b)
    assert [url for url, (status, _) in answers.items() if status >= 500] == []
    leaks = [(url, found) for url, (_, body) in answers.items() if (found := b_markers(body))]
    assert not leaks, "\n".join(map(str, leaks))
    changed = [url for url, (status, body) in world["before"].get(f"api-{role}", {}).items()
               if url in answers and (answers[url][0], answers[url][1]) != (status, body)]
    assert not changed, "\n".join(changed)
    shown = [key for key, (status, _) in answers.items() if " [B] " in key and status not in (403, 404)]
    assert not shown, shown  # B's rows by id: refused, whatever the query
    assert any(" [B] " in key for key in answers)
    if role == "owner":
        assert any("zqamark" in body for status, body in answers.values() if status == 200)
    # No write reaches B's rows (a 2xx would have changed one; a 400 would have read it).
    reached = [(what, status) for what, status in api_writes_on_b(_api_client(a["users"][role]), a, b) if status not in (403, 404, 405)]
    assert not reached, reached


# --- The voice path: a call to B's number is B's ----------------------------------------------------------------


@pytest.fixture
def twilio(settings, client):
    from tests.routing.conftest import TOKEN, Twilio

    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.CALLTRACK_VALIDATE_TWILIO_SIGNATURE = True
    settings.CALLTRACK_PUBLIC_BASE_URL = ""
    settings.CALLTRACK_FAILSAFE_NUMBER = ""
    return Twilio(client)


def test_a_call_to_bs_number_is_routed_by_b_and_never_seen_in_a(world, twilio):
    a, b = world["a"], world["b"]
    # A blocks this caller everywhere: that is A's block list, not B's.
    BlockedCaller.objects.create(number=SHARED_CALLER, reason="A's nuisance", account=a["account"])
    response = twilio.post("/voice/incoming", {"CallSid": "CAzqbmarkvoice1", "From": SHARED_CALLER, "To": b["number"].number,
                                               "CallStatus": "ringing"})
    assert response.status_code == 200
    twiml = response.content.decode()
    assert b["receiving"].number in twiml and a["receiving"].number not in twiml  # B's campaign dialled B's handler
    call = Call.objects.get(call_sid="CAzqbmarkvoice1")
    assert (call.account_id, call.campaign_id, call.source_id) == (b["account"].pk, b["campaign"].pk, b["source"].pk)
    assert not Call.objects.filter(call_sid="CAzqbmarkvoice1", account=a["account"]).exists()
    # Not in A's lists, totals or searches; B's id is a 404 there.
    owner = _api_client(a["users"]["owner"])
    assert all(c["id"] != call.pk for c in owner.get("/api/v1/calls/", {"page_size": 100}).json()["results"])
    assert owner.get(f"/api/v1/calls/{call.pk}/").status_code == 404
    admin_client = _admin_client(a["users"]["owner"])
    found = admin_client.get("/admin/tracking/call/", {"q": "CAzqbmarkvoice1"}).content.decode()  # the search echoes the sid
    assert reverse("admin:tracking_call_change", args=[call.pk]) not in found and "(312) 555-0199" not in found
    assert admin_client.get(reverse("admin:tracking_call_change", args=[call.pk])).status_code in (302, 404)
    # The same caller dialling A's number is blocked there (A's list), and the call is A's.
    twilio.post("/voice/incoming", {"CallSid": "CAzqamarkvoice2", "From": SHARED_CALLER, "To": a["number"].number, "CallStatus": "ringing"})
    mine = Call.objects.get(call_sid="CAzqamarkvoice2")
    assert mine.account_id == a["account"].pk and mine.status == "rejected" and "blocked" in mine.reject_reason
    assert call.status != "rejected" and not call.reject_reason


# --- Writes that name B's rows: forms, request bodies, the public endpoints ------------------------------------


def cross_account_links() -> list[str]:
    """Every stored link from a row of one account to a row of another (a call of A credited to B's source, a pool
    of A routing to B's campaign...): for each relation between two models that belong to accounts, the rows whose
    two accounts differ. An empty list: no write ever joined two accounts."""
    from django.apps import apps
    from django.db.models import F

    from calltrack.scoping import ACCOUNT_PATHS

    found = []
    for label, path in ACCOUNT_PATHS.items():
        if path in (None, "pk"):
            continue
        model = apps.get_model(label)
        for field in model._meta.get_fields():
            if not (field.is_relation and field.concrete) or field.related_model is None:
                continue
            theirs = ACCOUNT_PATHS.get(field.related_model._meta.label_lower)
            if theirs is None or field.related_model is Account:
                continue
            other = field.name if theirs == "pk" else f"{field.name}__{theirs}"
            mixed = (model._default_manager.filter(**{f"{path}__isnull": False, f"{other}__isnull": False})
                     .exclude(**{f"{path}__pk": F(f"{other}__pk")}))
            if count := mixed.count():
                found.append(f"{label}.{field.name}: {count}")
    return found


def test_the_cross_account_check_finds_a_link_when_there_is_one(world):
    a, b = world["a"], world["b"]
    assert cross_account_links() == []
    sid = transaction.savepoint()
    Call.objects.filter(pk=a["call"].pk).update(source=b["source"])
    assert cross_account_links() == ["tracking.call.source: 1"]
    transaction.savepoint_rollback(sid)


#: B's row standing for A's, by model: what a forged form or body would name.
def _counterpart(w_a: dict[str, Any], w_b: dict[str, Any], model) -> Any | None:
    for key, obj in w_a.items():
        if isinstance(obj, model) and hasattr(obj, "pk") and key in w_b:
            return w_b[key]
    return None


@pytest.mark.parametrize("role", ["owner", "source", "handler"])
def test_no_admin_form_of_a_offers_or_takes_bs_rows(world, role):
    """Every admin add and change form A's user may open (and each inline's): no choice of a relation offers B's
    row, so a posted id of B's is refused as "not one of the available choices" by the form itself."""
    a, b = world["a"], world["b"]
    client = _admin_client(a["users"][role])
    offered, opened = [], 0
    for model in admin.site._registry:
        urls = [reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_add")]
        urls += [u for o in _objects(a) if isinstance(o, model) and (u := _change_url(o))]
        for url in urls:
            response = client.get(url)
            if response.status_code != 200 or not response.context:
                continue
            forms = [response.context["adminform"].form] if "adminform" in response.context else []
            for inline in response.context.get("inline_admin_formsets", []) or []:
                forms += list(inline.formset.forms) + [inline.formset.empty_form]
            for form in forms:
                opened += 1
                for name, field in form.fields.items():
                    queryset = getattr(field, "queryset", None)
                    if queryset is None:
                        continue
                    theirs = [o.pk for o in _objects(b) if isinstance(o, queryset.model)]
                    if theirs and queryset.filter(pk__in=theirs).exists():
                        offered.append(f"{url} {type(form).__name__}.{name}")
    assert not offered, "\n".join(offered)
    if role == "owner":
        assert opened > 40  # the walk opened the forms (a broken walk would pass the check above)


def _writable_relations(view_class) -> list[tuple[str, Any, bool]]:
    """(field, related model, many) of each relation a request body may set on the view's serializer."""
    from rest_framework import relations

    serializer_class = getattr(view_class, "serializer_class", None)
    if serializer_class is None:
        return []
    out = []
    for name, field in serializer_class().fields.items():
        if field.read_only:
            continue
        many = isinstance(field, relations.ManyRelatedField)
        child = field.child_relation if many else field
        queryset = getattr(child, "queryset", None)
        if isinstance(child, relations.RelatedField) and queryset is not None:
            out.append((name, queryset.model, many))
    return out


def test_no_api_body_of_a_may_name_bs_rows(world):
    """Every write of the schema that takes a relation in its body (a call's source, a pool's campaign, a campaign's
    handlers...), sent by A's owner on A's row (PATCH) or as a new row (POST) with B's row in that field: refused
    with a 400 naming the field, and no row of one account ever links to the other's."""
    a, b = world["a"], world["b"]
    client = _api_client(a["users"]["owner"])
    results, tried = [], 0
    for path, method, _operation in _operations():
        if method not in ("post", "patch"):
            continue
        match = resolve(path.replace("{id}", "1"))
        view_class = getattr(match.func, "cls", None)
        model = _path_model(path)
        if view_class is None or model is None or ("{id}" not in path and method == "patch"):
            continue
        own = next((o for o in _objects(a) if isinstance(o, model)), None) if "{id}" in path else None
        if "{id}" in path and own is None:
            continue
        url = path.replace("{id}", str(own.pk)) if own is not None else path
        for name, related, many in _writable_relations(view_class):
            theirs = _counterpart(a, b, related)
            if theirs is None:
                continue
            sid = transaction.savepoint()
            response = client.generic(method.upper(), url, json.dumps({name: [theirs.pk] if many else theirs.pk}),
                                      content_type="application/json")
            links = cross_account_links()
            transaction.savepoint_rollback(sid)
            tried += 1
            body = response.content.decode()
            if response.status_code < 300 or response.status_code >= 500 or links:
                results.append(f"{method.upper()} {url} {name}={theirs.pk}: {response.status_code} {body[:120]} {links}")
            elif response.status_code == 400 and name not in body:
                # A POST may be refused for a required field first: then the relation was not tried; PATCH names it.
                if method == "patch":
                    results.append(f"PATCH {url} {name}: 400 without naming the field: {body[:120]}")
    assert not results, "\n".join(results)
    assert tried > 10


def test_the_public_endpoints_of_a_never_reach_bs_rows(world, client):
    """DNI: a tag naming B's pool by its key alone gets nothing (a bare key is the first account's); postbacks: A's
    handler's signed URL names no call of B's, by id, sid or caller."""
    from tracking.services.conversions import postback_token

    a, b = world["a"], world["b"]
    body = {"pool": b["pool"].key, "visitor_id": "v-0123456789", "page_url": "https://zqamark.example.com/", "destination": "+14155550100"}
    assert client.post("/dni/v1/assign", json.dumps(body), content_type="text/plain").status_code == 404
    handler = a["handler"]
    url = f"/postback/{handler.pk}/{postback_token(handler_id=handler.pk)}/"
    for query in ({"call_id": b["call"].pk}, {"call_sid": b["call"].call_sid}, {"caller_number": b["call"].caller_number}):
        response = client.get(url, query)
        assert response.status_code == 404, (query, response.content)
    b["call"].refresh_from_db()
    assert not b["call"].revenue_converted and not b["call"].payout_converted
    assert cross_account_links() == []
