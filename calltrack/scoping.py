"""The gate: who may see which rows and fields, filter or group by what, and do which action.

Staff see everything their Django model permissions allow; a collaborator (a user linked to one source or one
handler, ``tracking.Collaborator``) sees only its own rows, without the other side's parties and money, and
changes nothing but what its own channel allows (a handler confirms its sales through the API's conversion
endpoint, as its postback does). The admin (``calltrack/admin_scoping.py``: every changelist, change page,
filter, search, action and export), the dashboard and the reports, and the API (viewsets, serializers,
filters, totals) all ask this module, so "what a source collaborator sees" is written once.

Why not a permissions library such as ``rules``: its authentication backend can only *add* permissions (Django
asks every backend and any "yes" wins), while this gate must *take away* what a collaborator was granted by
mistake, hide fields and refuse lookups. These are plain functions over querysets and names.

What each kind of collaborator sees of a call (the README's "Who sees what" states the same):

- a source (publisher): the calls credited to it, its tracking numbers, pools and visitor sessions; of a call,
  everything but the campaign, the handler, the revenue side (revenue, the revenue conversion and its reason),
  the margin and the routing decision; "converted" means its own side (``payout_converted``).
- a handler (buyer): the calls routed to it and its own legs; of a call, the caller (number and place), what the
  caller chose in the menus, times and durations, the status and its own side of the money (revenue,
  ``revenue_converted`` shown as "converted"); not the campaign, the source, the tracking number dialled, the
  visitor (session, visitor id, landing page, referrer, marketing data and the tags that came from it), the
  payout, the margin or the routing decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Q, QuerySet


@dataclass(frozen=True)
class Scope:
    """The rows a user is limited to: the account it acts in (``account_id``; None only for the install's own work,
    a task or a command, which sees every account) and, for a collaborator, its source or handler (both None: not a
    collaborator). ``role``: its role in the account (``calltrack.models.AccountRole``; "" for a collaborator)."""

    source_id: int | None = None
    handler_id: int | None = None
    account_id: int | None = None
    role: str = ""

    @property
    def reads_only(self) -> bool:
        """An analyst reads everything and changes nothing; a billing user reads the usage only."""
        return self.role in ("analyst", "billing")

    @property
    def usage_only(self) -> bool:
        return self.role == "billing"

    @property
    def is_collaborator(self) -> bool:
        return self.source_id is not None or self.handler_id is not None

    @property
    def kind(self) -> str | None:
        if self.source_id is not None:
            return "source"
        if self.handler_id is not None:
            return "handler"
        return None


UNSCOPED = Scope()
#: The account of a user who may act in none: no row has it, so every account filter finds nothing.
NO_ACCOUNT = 0

#: What a collaborator of each kind may not see of a call, or of anything computed from calls (totals, a conversion's
#: answer): the other side's parties and money, and the routing decision. The one list the calls API, the conversion
#: totals and answers, and the calls' filters read; grouping or filtering by a hidden party is ignored or refused.
HIDDEN_CALL_FIELDS: dict[str, frozenset[str]] = {
    "source": frozenset({
        "campaign", "handler", "revenue", "revenue_converted", "conversion_reason", "margin", "decision", "plan_index",
        "converted",
    }),
    "handler": frozenset({
        "campaign", "source", "source_public_id", "tracking_number", "called_number", "payout", "payout_converted",
        "payout_reason", "margin", "session", "visitor_id", "landing_page", "referrer", "marketing_data", "decision",
        "plan_index", "converted",
    }),
}

#: What the API shows of a call to staff only (the operator's own business, e.g. its ad platforms' uploads): empty for
#: every collaborator.
STAFF_ONLY_CALL_FIELDS: frozenset[str] = frozenset({"conversion_uploads"})

#: A collaborator's own side of a shared flag: "converted" reads (and filters) its side's conversion.
SIDE_FIELDS: dict[str, dict[str, str]] = {
    "source": {"converted": "payout_converted"},
    "handler": {"converted": "revenue_converted"},
}

#: Tags a handler never sees (they name the source or the visitor's marketing data); every tag that came from the
#: call's marketing data is hidden from it as well (:func:`tag_visible`).
_HANDLER_HIDDEN_TAGS = frozenset({"source", "gclid", "gbraid", "wbraid", "fbclid", "msclkid", "visitor_id"})


def hidden_call_fields(scope: Scope) -> frozenset[str]:
    """The call fields ``scope`` may not see (none for staff)."""
    return HIDDEN_CALL_FIELDS.get(scope.kind or "", frozenset())


def side_field(scope: Scope, name: str) -> str:
    """The field ``scope`` reads for ``name`` ("converted" -> its own side's flag); ``name`` itself otherwise."""
    return SIDE_FIELDS.get(scope.kind or "", {}).get(name, name)


def tag_name_hidden(scope: Scope, name: str) -> bool:
    """Whether a tag of this name is always hidden from ``scope`` (a handler: the source and the visitor's marketing)."""
    return scope.handler_id is not None and (name in _HANDLER_HIDDEN_TAGS or name.startswith("utm_"))


def visible_tags(scope: Scope, tags: dict[str, Any] | None, marketing_data: dict[str, Any] | None) -> dict[str, Any]:
    """The call's tags that ``scope`` may read: a handler loses the source and every tag from the marketing data."""
    tags = tags if isinstance(tags, dict) else {}
    if scope.handler_id is None:
        return tags
    marketing = marketing_data if isinstance(marketing_data, dict) else {}
    return {k: v for k, v in tags.items() if not tag_name_hidden(scope, k) and k not in marketing}


def calls_with_visible_tag(qs: QuerySet, scope: Scope, name: str) -> QuerySet | None:
    """``qs`` narrowed to calls where tag ``name`` is one ``scope`` may read; None when the tag is hidden outright
    (the caller then ignores the filter: it would tell which of its calls came from where)."""
    if tag_name_hidden(scope, name):
        return None
    if scope.handler_id is not None:
        return qs.exclude(marketing_data__has_key=name)
    return qs


def lookup_hidden(scope: Scope, lookup: str, hidden: frozenset[str] | set[str] | None = None) -> bool:
    """Whether a query lookup (``revenue__gte``, ``handler__id__exact``, ``tracking_number__pool``) reads a field
    ``scope`` may not see, so that filtering by it would narrow the rows and tell the hidden value. For a
    collaborator, a lookup through a relation is allowed only as the related row's id (``source__id__exact``,
    ``tracking_number__in``, ``campaign__isnull``): a deeper one (``tracking_number__campaign__id``) could read
    a hidden party through a visible one."""
    if not scope.is_collaborator:
        return False
    hidden = hidden_call_fields(scope) if hidden is None else hidden
    parts = lookup.split("__")
    if parts[0] in hidden:
        return True
    if parts[0] == "marketing_data":  # a visible JSON column: any key (a handler never sees it, caught above)
        return False
    if parts[0] == "tracking_number" and parts[1:2] == ["pool"]:  # the pool of a number it sees (its own pools)
        parts = parts[1:]
    rest = parts[1:]
    if rest and rest[0] in ("id", "pk"):
        rest = rest[1:]
    return len(rest) > 1 or (len(rest) == 1 and rest[0] not in _PLAIN_LOOKUPS)


#: Lookups that compare a field's own value (for a relation: the related row's id).
_PLAIN_LOOKUPS = frozenset({
    "exact", "iexact", "in", "isnull", "gt", "gte", "lt", "lte", "range", "contains", "icontains", "startswith",
    "istartswith", "endswith", "iendswith", "date", "year", "month", "day", "week_day", "hour", "minute", "regex",
    "iregex", "has_key", "has_keys", "has_any_keys",
})


# --- Actions: who may do what ------------------------------------------------------------------------------------

#: The Django permissions staff need for each action, in the admin as in the API. Collaborators never write in the
#: admin; through the API a handler may confirm a sale on its own calls (``COLLABORATOR_ACTIONS``), as its postback does.
ACTION_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "call.convert": ("tracking.view_call", "tracking.change_call"),
    "call.restate": ("tracking.view_call", "tracking.change_call"),  # change a converted call's value (staff only)
    "call.resend_webhooks": ("tracking.view_call", "tracking.change_webhookdelivery"),
    "call.test": ("tracking.add_call",),
    "call.export": ("tracking.view_call",),
    "delivery.resend": ("tracking.change_webhookdelivery",),
    "handler.postback_url": ("tracking.change_handler",),
    "trackingnumber.export": ("numbers.view_trackingnumber",),
    "recording.listen": ("tracking.view_call", "tracking.listen_recording"),
    "source.pause": ("tracking.view_source", "tracking.change_source"),
    "source.resume": ("tracking.view_source", "tracking.change_source"),
    "alert.acknowledge": ("tracking.view_alert", "tracking.change_alert"),
    "alert.view": ("tracking.view_alert",),
    # /metrics (calltrack/metrics_view.py): any active staff member; a scraper uses the bearer token instead.
    "metrics.view": (),
    "text.export": ("tracking.view_textmessage",),
    "text.reply": ("tracking.view_textmessage", "tracking.add_textmessage"),
    "text.convert": ("tracking.view_textmessage", "tracking.change_textmessage"),
    # The account's usage for rebilling (calltrack/usage.py): every member of the account, billing users included.
    "usage.view": (),
}
COLLABORATOR_ACTIONS: dict[str, frozenset[str]] = {
    "source": frozenset({"call.export", "recording.listen", "alert.view", "text.export"}),
    "handler": frozenset({"call.export", "recording.listen", "call.convert", "alert.view", "text.export"}),
}


def may(user: Any, action: str, *, admin: bool = False) -> bool:
    """Whether ``user`` may do ``action`` (a key of ``ACTION_PERMISSIONS``). Staff: its permissions. A collaborator:
    only what ``COLLABORATOR_ACTIONS`` lists for its kind, and nothing that writes from the admin (``admin=True``),
    which is read-only for collaborators; which rows is :func:`visible_calls`' business."""
    if action not in ACTION_PERMISSIONS:
        raise KeyError(f"unknown action {action!r}: declare it in calltrack.scoping.ACTION_PERMISSIONS")
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", True):
        return False
    scope = scope_for(user)
    if scope.is_collaborator:
        if action not in COLLABORATOR_ACTIONS.get(scope.kind or "", frozenset()):
            return False
        return not (admin and action in _WRITES)
    if scope.usage_only:
        return action in BILLING_ACTIONS
    if scope.reads_only and (action in _WRITES or action in _ACCOUNT_WRITES):
        return False
    if action in BILLING_ACTIONS:
        return bool(user.is_staff)  # every member of the account, whatever its model permissions
    return bool(user.is_staff and user.has_perms(ACTION_PERMISSIONS[action]))


#: What a billing user may do: the account's usage (and nothing else of it).
BILLING_ACTIONS = frozenset({"usage.view"})
#: Writes that are not about calls or texts (an analyst does none: it reads everything and changes nothing).
_ACCOUNT_WRITES = frozenset({"source.pause", "source.resume", "alert.acknowledge", "handler.postback_url"})

_WRITES = frozenset({"call.convert", "call.restate", "call.resend_webhooks", "call.test", "delivery.resend", "text.reply", "text.convert"})


def scope_for(user: Any) -> Scope:
    """The user's scope, cached on the user object (a query or two per request at most): the account it acts in
    (``calltrack.accounts``: the admin's switcher, the API's token or account parameter, else its first) and, for a
    collaborator, its source or handler, inside that party's account."""
    if user is None or not getattr(user, "is_authenticated", False):
        return UNSCOPED
    cached = getattr(user, "_calltrack_scope", None)
    if cached is not None:
        return cached
    # Through the user's reverse one-to-one (``tracking.Collaborator.user``, related_name "collaborator"), so
    # this shared module imports no app: the layers above depend on it, never the other way round.
    try:
        link = user.collaborator
    except ObjectDoesNotExist:
        link = None
    if link is not None:
        scope = Scope(source_id=link.source_id, handler_id=link.handler_id, account_id=link.account_id)
    else:
        from calltrack import accounts

        place = getattr(user, "_calltrack_place", None) or accounts.choose(user, None)
        # No account to act in (a staff user of a several-account install who belongs to none): it sees nothing.
        scope = Scope(account_id=place.account_id, role=place.role) if place is not None else Scope(account_id=NO_ACCOUNT)
    user._calltrack_scope = scope
    return scope


# --- Accounts: every row belongs to one (issue 30) ---------------------------------------------------------------

#: How each model's rows reach their account: its own ``account`` column, or through the row it belongs to. The one
#: table the admin, the API, the forms' choices and the list filters read (``in_account``); a model in neither this
#: table nor ``INSTALL_MODELS`` is refused by the admin and the API (a test walks every registered model).
ACCOUNT_PATHS: dict[str, str] = {
    **{label: "account" for label in (
        "tracking.source", "tracking.handler", "tracking.campaign", "tracking.contact", "tracking.collaborator",
        "tracking.call", "tracking.textmessage", "tracking.textoptout", "tracking.fraudmonitor", "tracking.alert",
        "tracking.alertrecipient", "tracking.tagginghours", "numbers.receivingnumber", "numbers.trackingnumber",
        "numbers.numberpool", "numbers.blockedcaller", "numbers.portrequest", "calltrack.membership",
        "calltrack.accounttoken",
    )},
    "calltrack.account": "pk",
    **{label: "campaign__account" for label in (
        "tracking.campaignhandler", "tracking.ivrmenu", "tracking.ivroption", "tracking.conversionrule", "tracking.webhook",
        "tracking.routingtable", "tracking.textroute", "tracking.conversiondestination",
    )},
    "tracking.routingtablerow": "table__campaign__account",
    "tracking.conversionupload": "call__account",
    "tracking.textemailforward": "text__account",
    "tracking.capcounter": "handler__account",
    **{label: "call__account" for label in ("tracking.callattempt", "tracking.queuedcall", "tracking.callevent")},
    "tracking.webhookdelivery": "webhook__campaign__account",
    "tracking.webhookattempt": "delivery__webhook__campaign__account",
    "numbers.numberevent": "tracking_number__account",
    **{label: "pool__account" for label in ("numbers.numbersession", "numbers.poolparameter", "numbers.poolresize", "numbers.poolsample")},
}

#: The install's own tables, in no account (caches, counters, the simulated carrier, the rollups' bookkeeping, the
#: task queue, users): the admin shows them to superusers only, the API not at all.
INSTALL_MODELS = frozenset({
    "calltrack.ratecounter", "tracking.capdelta", "tracking.callerlookup", "tracking.calldayrollup", "tracking.callrollupzone",
    "tracking.callrollupdirty", "tracking.moneychange", "numbers.localcarriernumber", "numbers.localcarriermessage",
    "auth.user", "auth.group", "authtoken.token", "authtoken.tokenproxy", "django_q.schedule", "django_q.task",
    "django_q.success", "django_q.failure", "django_q.ormq", "axes.accessattempt", "axes.accessattemptexpiration", "axes.accesslog",
    "axes.accessfailurelog", "admin.logentry", "sessions.session", "contenttypes.contenttype", "auth.permission",
})


def account_path(model: Any) -> str | None:
    """How ``model``'s rows reach their account (``ACCOUNT_PATHS``); None for an install table. Raises KeyError for
    a model nobody declared: a new model must say where its rows belong before any page or endpoint shows it."""
    label = model._meta.label_lower
    if label in ACCOUNT_PATHS:
        return ACCOUNT_PATHS[label]
    if label in INSTALL_MODELS:
        return None
    raise KeyError(f"{label}: declare it in calltrack.scoping.ACCOUNT_PATHS (rows of an account) or INSTALL_MODELS")


def account_attname(model: Any) -> str | None:
    """The model's own account column (``account_id``), None when its rows reach their account through another."""
    return "account_id" if ACCOUNT_PATHS.get(model._meta.label_lower) == "account" else None


def in_account(qs: QuerySet, scope: Scope) -> QuerySet:
    """``qs`` limited to the rows of the account ``scope`` acts in; an install table's rows to superusers (a scope
    with an account is a user's: ``install_visible`` decides). A scope without an account (a task, a command) is not
    limited."""
    if scope.account_id is None:
        return qs
    path = account_path(qs.model)
    if path is None:
        return qs
    return qs.filter(**{f"{path}_id" if path != "pk" else "pk": scope.account_id})


def account_choices_limited(qs: QuerySet, scope: Scope) -> QuerySet:
    """A form's or filter's choices of related rows: those of the account (install rows as they are)."""
    try:
        return in_account(qs, scope)
    except KeyError:
        return qs.none()


def visible_calls(qs: QuerySet, scope: Scope) -> QuerySet:
    """Source collaborators: calls credited to their source. Handler collaborators: calls routed to their handler.
    Everyone: the calls of the account it acts in."""
    qs = in_account(qs, scope)
    if scope.source_id is not None:
        return qs.filter(source_id=scope.source_id)
    if scope.handler_id is not None:
        return qs.filter(handler_id=scope.handler_id)
    return qs


#: What a collaborator of each kind may not see of a text (``tracking.TextMessage``): as of a call, the other side's
#: parties and money; and who on the operator's side wrote a reply. A text has one conversion (no sides): a source sees
#: its payout, a handler neither amount.
HIDDEN_TEXT_FIELDS: dict[str, frozenset[str]] = {
    "source": frozenset({"campaign", "handler", "revenue", "margin", "conversion_reason", "sent_by"}),
    "handler": frozenset({
        "campaign", "source", "tracking_number", "to_number", "payout", "revenue", "margin", "session", "visitor_id",
        "landing_page", "referrer", "marketing_data", "sent_by",
    }),
}


def hidden_text_fields(scope: Scope) -> frozenset[str]:
    return HIDDEN_TEXT_FIELDS.get(scope.kind or "", frozenset())


def visible_texts(qs: QuerySet, scope: Scope) -> QuerySet:
    """Source collaborators: the texts credited to their source (and the answers in those conversations, which copy
    the credit). Handler collaborators: the texts forwarded to them. Staff: every text."""
    qs = in_account(qs, scope)
    if scope.source_id is not None:
        return qs.filter(source_id=scope.source_id).exclude(purpose="forward")  # a forward names the handler's line
    if scope.handler_id is not None:
        return qs.filter(handler_id=scope.handler_id)
    return qs


def visible_money_changes(qs: QuerySet, calls: QuerySet, scope: Scope) -> QuerySet:
    """The money audit trail (``tracking.MoneyChange``) a user may read. Collaborators: the changes of the calls
    they see (``calls``, a Call queryset), never the terms of handlers, sources or webhooks; and of each change, not
    the columns ``hidden_call_fields`` names (the readers leave them out). Staff: every change."""
    if scope.is_collaborator:
        return qs.filter(table="call", object_id__in=visible_calls(calls, scope).values("pk"))
    return qs


def visible_recordings(qs: QuerySet, scope: Scope) -> QuerySet:
    """The calls whose recording a user may play: a collaborator, those of the calls it sees (a source hears
    the calls it sent, a handler the calls it took); staff, every call, given the ``tracking.listen_recording``
    permission (checked by the views)."""
    return visible_calls(qs, scope)


def can_play_recordings(user: Any) -> bool:
    """Whether ``user`` may play call recordings and voicemails at all (which ones: :func:`visible_recordings`)."""
    return may(user, "recording.listen")


def visible_attempts(qs: QuerySet, scope: Scope) -> QuerySet:
    """Handler collaborators see only their own legs; source collaborators see none (they name other handlers)."""
    qs = in_account(qs, scope)
    if scope.source_id is not None:
        return qs.none()
    if scope.handler_id is not None:
        return qs.filter(handler_id=scope.handler_id)
    return qs


def visible_tracking_numbers(qs: QuerySet, scope: Scope) -> QuerySet:
    """Source collaborators: their static numbers and their pools' numbers. Handler collaborators: none."""
    qs = in_account(qs, scope)
    if scope.source_id is not None:
        return qs.filter(Q(source_id=scope.source_id) | Q(pool__source_id=scope.source_id))
    if scope.handler_id is not None:
        return qs.none()
    return qs


def visible_alerts(qs: QuerySet, scope: Scope) -> QuerySet:
    """Alerts (``tracking.Alert``): a collaborator, only those about its own source or handler (a fraud monitor on
    it, its pool running out of numbers); staff, every alert."""
    qs = in_account(qs, scope)
    if scope.source_id is not None:
        return qs.filter(source_id=scope.source_id)
    if scope.handler_id is not None:
        return qs.filter(handler_id=scope.handler_id)
    return qs


def alert_visible(alert: Any, scope: Scope) -> bool:
    """:func:`visible_alerts` for one alert already loaded (whom an alert is sent to)."""
    if scope.account_id is not None and alert.account_id != scope.account_id:
        return False
    if scope.source_id is not None:
        return alert.source_id == scope.source_id
    if scope.handler_id is not None:
        return alert.handler_id == scope.handler_id
    return True


def visible_sources(qs: QuerySet, scope: Scope) -> QuerySet:
    """Sources: a source collaborator its own (e.g. its pause on the dashboard); a handler none; staff all."""
    qs = in_account(qs, scope)
    if scope.source_id is not None:
        return qs.filter(pk=scope.source_id)
    if scope.handler_id is not None:
        return qs.none()
    return qs


def visible_pools(qs: QuerySet, scope: Scope) -> QuerySet:
    qs = in_account(qs, scope)
    if scope.source_id is not None:
        return qs.filter(source_id=scope.source_id)
    if scope.handler_id is not None:
        return qs.none()
    return qs


def visible_sessions(qs: QuerySet, scope: Scope) -> QuerySet:
    qs = in_account(qs, scope)
    if scope.source_id is not None:
        return qs.filter(pool__source_id=scope.source_id)
    if scope.handler_id is not None:
        return qs.none()
    return qs


#: Report breakdowns and the call field each reveals (pool: the visitor session's / number's pool).
_REPORT_DIMENSION_FIELDS = {
    "source": "source", "campaign": "campaign", "handler": "handler", "tracking_number": "tracking_number",
    "pool": "session", "utm_source": "marketing_data", "utm_medium": "marketing_data", "utm_campaign": "marketing_data",
    "caller_state": "caller_state",
}


def call_search_parts(scope: Scope) -> frozenset[str]:
    """What the call log's search may match for ``scope``: every part for staff and sources; a handler does not
    search what it may not see (the number dialled, the visitor, the marketing data)."""
    parts = {"caller", "called", "call_sid", "visitor", "city", "zip", "utm"}
    if scope.handler_id is not None:
        parts -= {"called", "visitor", "utm"}
    return frozenset(parts)


def report_hidden(scope: Scope) -> frozenset[str]:
    """Call fields left out of the reports for this scope (e.g. a source collaborator gets no revenue or margin); a
    figure such as "converted" counts the collaborator's own side instead (``SIDE_FIELDS``)."""
    return HIDDEN_CALL_FIELDS.get(scope.kind or "", frozenset()) - set(SIDE_FIELDS.get(scope.kind or "", {}))


def report_dimensions(scope: Scope) -> tuple[str, ...]:
    """The breakdowns this scope may see: none that would name a field the calls API hides from it."""
    hidden = report_hidden(scope)
    return tuple(dim for dim, name in _REPORT_DIMENSION_FIELDS.items() if name not in hidden)
