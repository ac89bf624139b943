"""The admin's sidebar (django-unfold's ``UNFOLD["SIDEBAR"]["navigation"]``), in the operator's order.

Dashboard, Calls, Campaigns, Sources, Handlers, Tracking numbers, Pools, Receiving numbers, Webhooks first; then the
rest of calltrack; the framework's tables (tokens, background tasks, users and groups) last. Each item shows only
to a user its admin lets in (``has_module_permission`` and view permission: collaborators see their calls, and
their numbers for a source, nothing else). Usage (the account's figures for rebilling) follows the operator's tables for
every member; a billing user's sidebar holds it alone. Titles are the models' plural names, through gettext: Publishers and Buyers
under the performance vocabulary (calltrack/nomenclature.py).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.urls import NoReverseMatch, reverse

from calltrack.scoping import may, scope_for

# (app_label.model_name, sidebar icon: a Material Symbols name, shipped with unfold)
OPERATOR_ORDER: tuple[tuple[str, str], ...] = (
    ("tracking.call", "call"),
    ("tracking.textmessage", "sms"),  # the texts log, the call log's sibling (issue 29)
    ("tracking.campaign", "campaign"),
    ("tracking.source", "storefront"),
    ("tracking.handler", "support_agent"),
    ("numbers.trackingnumber", "dialpad"),
    ("numbers.numberpool", "workspaces"),
    ("numbers.receivingnumber", "phone_forwarded"),
    ("tracking.webhook", "webhook"),
)
MORE_ICONS = {
    "tracking.webhookdelivery": "outbox", "tracking.conversionrule": "paid", "tracking.collaborator": "handshake",
    "tracking.contact": "contacts", "tracking.callattempt": "ring_volume", "tracking.callevent": "timeline",
    "numbers.numbersession": "travel_explore", "numbers.portrequest": "swap_horiz", "numbers.blockedcaller": "block",
    "numbers.numberevent": "history", "numbers.poolresize": "open_in_full", "numbers.poolsample": "monitoring",
    "numbers.localcarriernumber": "sim_card", "tracking.moneychange": "receipt_long",
    "tracking.callerlookup": "person_search", "tracking.textroute": "forum",
    "numbers.localcarriermessage": "outgoing_mail",
    "calltrack.account": "domain", "calltrack.membership": "group_add", "calltrack.accounttoken": "key",
    "tracking.alert": "notifications", "tracking.fraudmonitor": "policy", "tracking.alertrecipient": "contact_mail",
}
FRAMEWORK_APPS = ("auth", "authtoken", "django_q")
FRAMEWORK_ICONS = {
    "auth.user": "person", "auth.group": "group", "authtoken.tokenproxy": "key", "django_q.schedule": "schedule",
    "django_q.success": "task_alt", "django_q.failure": "error", "django_q.ormq": "queue",
}


def _label(model) -> str:
    return str(model._meta.verbose_name_plural).capitalize()


def _item(request, model, model_admin, icon: str) -> dict[str, Any] | None:
    if not (model_admin.has_module_permission(request) and model_admin.has_view_or_change_permission(request)):
        return None
    try:
        link = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    except NoReverseMatch:
        return None
    return {"title": _label(model), "icon": icon, "link": link}


def sidebar_navigation(request) -> list[dict[str, Any]]:
    """The sidebar's groups for ``request.user`` (unfold calls this on each admin page)."""
    registry = {f"{m._meta.app_label}.{m._meta.model_name}": (m, a) for m, a in admin.site._registry.items()}
    usage = [{"title": "Usage", "icon": "receipt", "link": reverse("admin:calltrack_account_usage")}] if may(request.user, "usage.view") else []
    if scope_for(request.user).usage_only:  # a billing user: the usage, nothing else of the account
        return [{"title": "Console", "separator": False, "items": usage}]

    main: list[dict[str, Any]] = [{"title": "Dashboard", "icon": "dashboard", "link": reverse("admin:index")}]
    for key, icon in OPERATOR_ORDER:
        if key in registry:
            item = _item(request, *registry[key], icon)
            if item:
                main.append(item)

    main += usage  # the account's usage for rebilling (calltrack/admin_usage.py): every member, no collaborator
    placed = {key for key, _ in OPERATOR_ORDER}
    more, framework = [], []
    for key in sorted(registry, key=lambda k: _label(registry[k][0])):
        if key in placed:
            continue
        model, model_admin = registry[key]
        if model._meta.app_label in FRAMEWORK_APPS:
            item = _item(request, model, model_admin, FRAMEWORK_ICONS.get(key, "settings"))
            if item:
                framework.append(item)
        else:
            item = _item(request, model, model_admin, MORE_ICONS.get(key, "table_rows"))
            if item:
                more.append(item)

    groups = [{"title": "Console", "separator": False, "items": main}]
    if more:
        groups.append({"title": "More", "separator": True, "collapsible": True, "items": more})
    if framework:
        groups.append({"title": "Framework", "separator": True, "collapsible": True, "items": framework})
    return groups
