"""Who sees which rows: staff see everything their permissions allow; collaborators only their own.

A collaborator is a user linked to one source or one handler (``tracking.Collaborator``).
The API and the admin both filter through these functions, so "what a source
collaborator sees" is written once. They are plain functions over querysets
rather than QuerySet methods because they span both apps' models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Q, QuerySet


@dataclass(frozen=True)
class Scope:
    """The rows a user is limited to. Both ids None: not a collaborator (no row filter)."""

    source_id: int | None = None
    handler_id: int | None = None

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

#: What a collaborator of each kind may not see of a call, or of anything computed from calls (totals, a conversion's
#: answer): the other side's parties and money, and the routing decision. The one list the calls API, the conversion
#: totals and answers, and the calls' filters read; grouping or filtering by a hidden party is ignored or refused.
HIDDEN_CALL_FIELDS: dict[str, frozenset[str]] = {
    "source": frozenset({"campaign", "handler", "revenue", "revenue_converted", "conversion_reason", "margin", "decision"}),
    "handler": frozenset({"campaign", "source", "payout", "payout_converted", "payout_reason", "margin", "session", "decision"}),
}


def hidden_call_fields(scope: Scope) -> frozenset[str]:
    """The call fields ``scope`` may not see (none for staff)."""
    return HIDDEN_CALL_FIELDS.get(scope.kind or "", frozenset())


def scope_for(user: Any) -> Scope:
    """The user's scope, cached on the user object (one query per request at most)."""
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
    scope = Scope(source_id=link.source_id, handler_id=link.handler_id) if link else UNSCOPED
    user._calltrack_scope = scope
    return scope


def visible_calls(qs: QuerySet, scope: Scope) -> QuerySet:
    """Source collaborators: calls credited to their source. Handler collaborators: calls routed to their handler."""
    if scope.source_id is not None:
        return qs.filter(source_id=scope.source_id)
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
    """Whether ``user`` may play call recordings at all (which ones: :func:`visible_recordings`)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if scope_for(user).is_collaborator:
        return True
    return bool(user.is_staff and user.has_perms(["tracking.view_call", "tracking.listen_recording"]))


def visible_attempts(qs: QuerySet, scope: Scope) -> QuerySet:
    """Handler collaborators see only their own legs; source collaborators see none (they name other handlers)."""
    if scope.source_id is not None:
        return qs.none()
    if scope.handler_id is not None:
        return qs.filter(handler_id=scope.handler_id)
    return qs


def visible_tracking_numbers(qs: QuerySet, scope: Scope) -> QuerySet:
    """Source collaborators: their static numbers and their pools' numbers. Handler collaborators: none."""
    if scope.source_id is not None:
        return qs.filter(Q(source_id=scope.source_id) | Q(pool__source_id=scope.source_id))
    if scope.handler_id is not None:
        return qs.none()
    return qs


def visible_pools(qs: QuerySet, scope: Scope) -> QuerySet:
    if scope.source_id is not None:
        return qs.filter(source_id=scope.source_id)
    if scope.handler_id is not None:
        return qs.none()
    return qs


def visible_sessions(qs: QuerySet, scope: Scope) -> QuerySet:
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


def report_hidden(scope: Scope) -> frozenset[str]:
    """Call fields left out of the reports for this scope (e.g. a source collaborator gets no revenue or margin)."""
    return HIDDEN_CALL_FIELDS.get(scope.kind or "", frozenset())


def report_dimensions(scope: Scope) -> tuple[str, ...]:
    """The breakdowns this scope may see: none that would name a field the calls API hides from it."""
    hidden = report_hidden(scope)
    return tuple(dim for dim, name in _REPORT_DIMENSION_FIELDS.items() if name not in hidden)
