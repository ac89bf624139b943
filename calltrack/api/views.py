"""Base viewset: permissions, the requester's scope in the serializer context."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rest_framework import viewsets

from calltrack.api.permissions import ScopedModelPermissions
from calltrack.scoping import Scope, account_attname, in_account, scope_for

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

    def filter_queryset(self, queryset):
        # Every list, page, change and delete (``get_object`` filters through here): the account's rows only.
        return super().filter_queryset(in_account(queryset, self.scope))  # type: ignore[misc]

    def perform_create(self, serializer) -> None:
        serializer.save(**account_of(serializer, self.scope))


class ScopedModelViewSet(ScopedViewSetMixin, viewsets.ModelViewSet):
    pass


class ScopedReadOnlyModelViewSet(ScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    pass


class ServiceWritesViewSetMixin:
    """Creates, changes and deletes through the app's services (as the admin's ``ServiceWritesAdminMixin``
    does): ``write_services`` = (create, update, delete), called as ``create(fields=...)``,
    ``update(<service_arg>=instance, fields=...)`` and ``delete(<service_arg>=instance)``. ``written(obj)``
    gives what the response shows (override to re-read annotations)."""

    write_services: tuple[Callable[..., Any], Callable[..., Any], Callable[..., None]]
    service_arg: str

    def written(self, obj: Any) -> Any:
        return obj

    def perform_create(self, serializer) -> None:
        fields = {**serializer.validated_data, **account_of(serializer, self.scope)}  # type: ignore[attr-defined]
        serializer.instance = self.written(self.write_services[0](fields=fields))

    def perform_update(self, serializer) -> None:
        updated = self.write_services[1](**{self.service_arg: serializer.instance, "fields": serializer.validated_data})
        serializer.instance = self.written(updated)

    def perform_destroy(self, instance) -> None:
        self.write_services[2](**{self.service_arg: instance})


def account_of(serializer: Any, scope: Scope) -> dict[str, Any]:
    """What a new row gets for its account: the requester's (for a model with its own account column)."""
    model = getattr(getattr(serializer, "Meta", None), "model", None)
    attname = account_attname(model) if model is not None else None
    return {attname: scope.account_id} if attname and scope.account_id is not None else {}
