"""API permissions: staff by Django model permissions, collaborators read-only on their scoped resources."""

from __future__ import annotations

from typing import Any

from rest_framework import permissions

from calltrack.scoping import Scope, may, scope_for


class ScopedModelPermissions(permissions.DjangoModelPermissions):
    """Who may use an endpoint.

    - Anonymous: refused (401 through the authenticators' challenge).
    - Collaborators (a user linked to a source or handler): read-only, and only on views whose
      ``collaborator_kinds`` lists their kind ("source", "handler"); rows are filtered by the view.
      Refused elsewhere with the same 403 whatever the id, so nothing is confirmed to exist.
    - Staff: the view's model permissions, including ``view_<model>`` for reads. A view may
      require other permissions for an action with ``action_permissions = {action: [perm, ...]}``.
    - Anyone else: refused.
    """

    perms_map = {
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": [],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "POST": ["%(app_label)s.add_%(model_name)s"],
        "PUT": ["%(app_label)s.change_%(model_name)s"],
        "PATCH": ["%(app_label)s.change_%(model_name)s"],
        "DELETE": ["%(app_label)s.delete_%(model_name)s"],
    }

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        scope = scope_for(user)
        if scope.is_collaborator:
            return request.method in permissions.SAFE_METHODS and scope.kind in getattr(view, "collaborator_kinds", ())
        if not user.is_staff or not _role_allows(scope, request, view):
            return False
        extra = getattr(view, "action_permissions", {}).get(getattr(view, "action", None))
        if extra is not None:
            return user.has_perms(extra)
        return super().has_permission(request, view)


class StaffPermissionsOrCollaborator(permissions.BasePermission):
    """For views without a model queryset: staff need the view's ``staff_permissions[method]``
    (e.g. ``{"POST": ["tracking.change_call"]}``); a collaborator of a kind in
    ``collaborator_kinds`` may use it (the view filters the rows); anyone else is refused."""

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        scope = scope_for(user)
        if scope.is_collaborator:
            return scope.kind in getattr(view, "collaborator_kinds", ())
        if not user.is_staff or not _role_allows(scope, request, view):
            return False
        return user.has_perms(getattr(view, "staff_permissions", {}).get(request.method, []))


def _role_allows(scope: Scope, request: Any, view: Any) -> bool:
    """The member's role in the account: a billing user reads the usage only (views marked ``usage_view``), an
    analyst reads (GET, HEAD, OPTIONS) and writes nothing."""
    if scope.usage_only:
        return bool(getattr(view, "usage_view", False)) and request.method in permissions.SAFE_METHODS
    if scope.reads_only:
        return request.method in permissions.SAFE_METHODS
    return True


class GateActionPermission(permissions.BasePermission):
    """For views guarded by one action of the gate (``view.gate_action``, asked of
    :func:`calltrack.scoping.may`, the same answer the admin gets), within the member's role (a billing user:
    views marked ``usage_view``, reads only)."""

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        scope = scope_for(user)
        if not scope.is_collaborator and not _role_allows(scope, request, view):
            return False
        return may(user, view.gate_action)
