"""The admin for collaborators: the same gate as the API (calltrack.scoping), read-only.

A collaborator (a user linked to a source or a handler, marked staff so that
it can log in) sees its own calls (and, for a source, its numbers and visitor
sessions), without the fields about the other side, and nothing else: every
other admin refuses it even if someone granted it model permissions
(``calltrack.admin_base.ModelAdmin``). A filter, a plain lookup in the query
string or a search on a field it may not see is refused (400), never applied.
Staff who are not collaborators are unaffected.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.contrib.admin.exceptions import DisallowedModelAdminLookup
from django.db.models import QuerySet

from calltrack.scoping import (
    HIDDEN_CALL_FIELDS,
    SIDE_FIELDS,
    Scope,
    lookup_hidden,
    scope_for,
    visible_calls,
    visible_sessions,
    visible_tracking_numbers,
)


def _scope(request: Any) -> Scope:
    return scope_for(request.user)


class CollaboratorScopedAdminMixin:
    """Put before ``ModelAdmin``. Subclasses set the scope function and what collaborators do not see."""

    collaborator_kinds: tuple[str, ...] = ()
    collaborator_queryset: Callable[[QuerySet, Scope], QuerySet] = staticmethod(lambda qs, scope: qs.none())
    #: Fields hidden from each kind of collaborator (columns, form fields).
    collaborator_hidden: dict[str, tuple[str, ...]] = {}
    #: Columns shown under another name than the field they read ("revenue_money" reads "revenue"): hidden with it.
    collaborator_column_fields: dict[str, str] = {}
    #: The list filters each kind of collaborator gets (no filters listing other parties' objects).
    collaborator_list_filter: dict[str, Sequence[Any]] = {}

    def _allowed(self, request: Any) -> bool:
        return _scope(request).kind in self.collaborator_kinds

    def get_queryset(self, request):
        qs = super().get_queryset(request)  # type: ignore[misc]
        scope = _scope(request)
        return self.collaborator_queryset(qs, scope) if scope.is_collaborator else qs

    def has_module_permission(self, request) -> bool:
        if _scope(request).is_collaborator:
            return self._allowed(request)
        return super().has_module_permission(request)  # type: ignore[misc]

    def has_view_permission(self, request, obj=None) -> bool:
        if _scope(request).is_collaborator:
            return self._allowed(request)
        return super().has_view_permission(request, obj)  # type: ignore[misc]

    def has_add_permission(self, request, *args) -> bool:
        if _scope(request).is_collaborator:
            return False
        return super().has_add_permission(request, *args)  # type: ignore[misc]

    def has_change_permission(self, request, obj=None) -> bool:
        if _scope(request).is_collaborator:
            return False
        return super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request, obj=None) -> bool:
        if _scope(request).is_collaborator:
            return False
        return super().has_delete_permission(request, obj)  # type: ignore[misc]

    def _hidden(self, request) -> set[str]:
        scope = _scope(request)
        return set(self.collaborator_hidden.get(scope.kind or "", ()))

    def get_list_display(self, request):
        names = super().get_list_display(request)  # type: ignore[misc]
        hidden = self._hidden(request)
        columns = self.collaborator_column_fields
        return [n for n in names if columns.get(n, n) not in hidden] if hidden else names

    def get_list_filter(self, request):
        scope = _scope(request)
        if scope.is_collaborator:
            return list(self.collaborator_list_filter.get(scope.kind or "", ()))
        return super().get_list_filter(request)  # type: ignore[misc]

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        """A lookup in the query string on a field the collaborator may not see (``?revenue__gte=80``,
        ``?handler__id__exact=3``) is refused: applied, it would narrow the rows and tell the hidden value."""
        if request is not None and not self._own_parameter(request, lookup) and lookup_hidden(
            _scope(request), lookup, frozenset(self._hidden(request))
        ):
            return False
        return super().lookup_allowed(lookup, value, request)  # type: ignore[misc]

    def _own_parameter(self, request, name: str) -> bool:
        """A parameter one of the user's own list filters reads (``?pool=3``, ``?utm_source__none=1``): that filter
        decides what it means over the rows the user may see."""
        own = (getattr(f, "parameter_name", None) or getattr(f, "key", None) for f in self.get_list_filter(request))
        return any(isinstance(p, str) and (name == p or name.startswith(f"{p}__")) for p in own)

    def get_changelist_instance(self, request):
        # Django asks lookup_allowed only of the parameters no list filter took; a collaborator's list filters are
        # its own and read parameters of its own names, so every parameter is checked here (a refused one is a 400).
        for name in request.GET:
            if name in ("q", "o", "p", "e", "_changelist_filters", "_to_field", "_popup", "_facets") or name.startswith("_"):
                continue
            if self._own_parameter(request, name):
                continue
            if lookup_hidden(_scope(request), name, frozenset(self._hidden(request))):
                raise DisallowedModelAdminLookup(f"Filtering on {name.split('__')[0]} is not available to you.")
        return super().get_changelist_instance(request)  # type: ignore[misc]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)  # type: ignore[misc]
        hidden = self._hidden(request)
        if not hidden:
            return fieldsets
        out = []
        for title, options in fieldsets:
            fields = []
            for entry in options.get("fields", ()):
                if isinstance(entry, (list, tuple)):
                    kept = tuple(f for f in entry if f not in hidden)
                    if kept:
                        fields.append(kept)
                elif entry not in hidden:
                    fields.append(entry)
            if fields:
                out.append((title, {**options, "fields": fields}))
        return out

    def get_inlines(self, request, obj):
        # Legs and timelines name other handlers and the routing plan.
        if _scope(request).is_collaborator:
            return []
        return super().get_inlines(request, obj)  # type: ignore[misc]


class CallCollaboratorScope(CollaboratorScopedAdminMixin):
    collaborator_kinds = ("source", "handler")
    collaborator_queryset = staticmethod(visible_calls)
    collaborator_hidden = {kind: tuple(sorted(names)) for kind, names in HIDDEN_CALL_FIELDS.items()}
    collaborator_column_fields = {"revenue_money": "revenue", "payout_money": "payout", "number": "called_number"}
    # "converted" is the collaborator's own side (calltrack.scoping.SIDE_FIELDS).
    collaborator_list_filter = {
        kind: ("status", sides["converted"], "conversion_status") for kind, sides in SIDE_FIELDS.items()
    }


class TrackingNumberCollaboratorScope(CollaboratorScopedAdminMixin):
    collaborator_kinds = ("source",)
    collaborator_queryset = staticmethod(visible_tracking_numbers)
    collaborator_hidden = {
        "source": ("campaign", "assigned_agent", "forwarding_number", "failsafe_number", "whisper_message", "filters", "carrier_id"),
    }
    collaborator_list_filter = {"source": ("kind", "status", "number_type")}


class NumberSessionCollaboratorScope(CollaboratorScopedAdminMixin):
    collaborator_kinds = ("source",)
    collaborator_queryset = staticmethod(visible_sessions)
    collaborator_list_filter = {"source": ("is_overflow",)}
