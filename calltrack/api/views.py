"""Base viewset: permissions, the requester's scope in the serializer context."""

from __future__ import annotations

from typing import Any

from rest_framework import viewsets

from calltrack.api.permissions import ScopedModelPermissions
from calltrack.scoping import Scope, scope_for

# Ids are BigAutoField: an id longer than 18 digits cannot exist, so the URL does not match (404).
ID_REGEX = r"[0-9]{1,18}"


class ScopedViewSetMixin:
    """Adds ``scope`` (the requester's collaborator scope) and passes it to the serializers."""

    permission_classes = [ScopedModelPermissions]
    lookup_value_regex = ID_REGEX
    #: Collaborator kinds ("source", "handler") allowed to read this resource (rows filtered by get_queryset).
    collaborator_kinds: tuple[str, ...] = ()

    @property
    def scope(self) -> Scope:
        return scope_for(self.request.user)  # type: ignore[attr-defined]

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()  # type: ignore[misc]
        context["scope"] = self.scope
        return context


class ScopedModelViewSet(ScopedViewSetMixin, viewsets.ModelViewSet):
    pass


class ScopedReadOnlyModelViewSet(ScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    pass
