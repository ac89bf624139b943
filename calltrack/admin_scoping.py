"""The admin for collaborators: the same scoping as the API (calltrack.scoping), read-only.

A collaborator (a user linked to a source or a handler, marked staff so that
it can log in) sees its own calls (and, for a source, its numbers and visitor
sessions), without the fields about the other side, and nothing else: the
sources, handlers and campaigns admins refuse it even if someone granted it
model permissions. Staff who are not collaborators are unaffected.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db.models import QuerySet

from calltrack.scoping import Scope, scope_for, visible_calls, visible_sessions, visible_tracking_numbers


def _scope(request: Any) -> Scope:
    return scope_for(request.user)


class CollaboratorScopedAdminMixin:
    """Put before ``ModelAdmin``. Subclasses set the scope function and what collaborators do not see."""

    collaborator_kinds: tuple[str, ...] = ()
    collaborator_queryset: Callable[[QuerySet, Scope], QuerySet] = staticmethod(lambda qs, scope: qs.none())
    #: Fields hidden from each kind of collaborator (columns, form fields).
    collaborator_hidden: dict[str, tuple[str, ...]] = {}
    #: The list filters a collaborator gets (no filters listing other parties' objects).
    collaborator_list_filter: Sequence[str] = ()

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
        return [n for n in names if n not in hidden] if hidden else names

    def get_list_filter(self, request):
        if _scope(request).is_collaborator:
            return list(self.collaborator_list_filter)
        return super().get_list_filter(request)  # type: ignore[misc]

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
    collaborator_hidden = {
        "source": ("campaign", "handler", "revenue", "margin", "decision", "plan_index"),
        "handler": ("campaign", "source", "payout", "payout_reason", "margin", "session", "decision", "plan_index"),
    }
    collaborator_list_filter = ("status", "converted", "conversion_status")


class TrackingNumberCollaboratorScope(CollaboratorScopedAdminMixin):
    collaborator_kinds = ("source",)
    collaborator_queryset = staticmethod(visible_tracking_numbers)
    collaborator_hidden = {
        "source": ("campaign", "assigned_agent", "forwarding_number", "failsafe_number", "whisper_message", "filters", "carrier_id"),
    }
    collaborator_list_filter = ("kind", "status", "number_type")


class NumberSessionCollaboratorScope(CollaboratorScopedAdminMixin):
    collaborator_kinds = ("source",)
    collaborator_queryset = staticmethod(visible_sessions)
    collaborator_list_filter = ("is_overflow",)


class HiddenFromCollaboratorsMixin:
    """For admins collaborators must never see (sources, handlers, campaigns), whatever their permissions."""

    def has_module_permission(self, request) -> bool:
        return not _scope(request).is_collaborator and super().has_module_permission(request)  # type: ignore[misc]

    def has_view_permission(self, request, obj=None) -> bool:
        return not _scope(request).is_collaborator and super().has_view_permission(request, obj)  # type: ignore[misc]

    def has_add_permission(self, request, *args) -> bool:
        return not _scope(request).is_collaborator and super().has_add_permission(request, *args)  # type: ignore[misc]

    def has_change_permission(self, request, obj=None) -> bool:
        return not _scope(request).is_collaborator and super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request, obj=None) -> bool:
        return not _scope(request).is_collaborator and super().has_delete_permission(request, obj)  # type: ignore[misc]
