"""Admin building blocks shared by the apps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from unfold import admin as unfold_admin

from calltrack.scoping import scope_for


class ModelAdmin(unfold_admin.ModelAdmin):
    """The admin class every calltrack admin builds on: the theme (django-unfold), chosen here in one place, behind
    the gate (``calltrack/scoping.py``).

    - A collaborator sees no admin unless it is one of the scoped ones made for its kind
      (``calltrack.admin_scoping.CollaboratorScopedAdminMixin``: calls, and a source's numbers and sessions),
      whatever model permissions it was granted.
    - An action is declared with the permission it needs (``@admin.action(permissions=[...])``, a
      ``has_<name>_permission`` method asking :func:`calltrack.scoping.may`); one posted without it is refused with
      a 403, not quietly dropped, for staff and collaborators alike.
    """

    def has_module_permission(self, request) -> bool:
        return not scope_for(request.user).is_collaborator and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return not scope_for(request.user).is_collaborator and super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args) -> bool:
        return not scope_for(request.user).is_collaborator and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None) -> bool:
        return not scope_for(request.user).is_collaborator and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return not scope_for(request.user).is_collaborator and super().has_delete_permission(request, obj)

    def changelist_view(self, request, extra_context=None):
        # Checked before Django's own handling, which would show the list again ("No action selected") when the user
        # has no action at all, or the action is not one of its own.
        if request.method == "POST" and request.POST.get("action"):
            name = request.POST["action"]
            declared = {action_name for _, action_name, _ in self._get_base_actions()}
            if name in declared and name not in self.get_actions(request):
                raise PermissionDenied(f"You may not run the action {name!r}.")
        return super().changelist_view(request, extra_context)

TabularInline = unfold_admin.TabularInline
StackedInline = unfold_admin.StackedInline


class ReadOnlyLogInline(TabularInline):
    """A log shown on its parent's page (history, timeline, tries): every listed field read-only, no adding or deleting."""

    extra = 0
    max_num = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class BillingRecordsAdminMixin:
    """Calls and texts are billing records: nobody adds or edits one in the admin, only a superuser may delete one
    (one at a time, from its page: no bulk delete action)."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return bool(request.user.is_superuser) and super().has_delete_permission(request, obj)  # type: ignore[misc]

    def get_actions(self, request):
        actions = super().get_actions(request)  # type: ignore[misc]
        actions.pop("delete_selected", None)
        return actions


class ServiceWritesAdminMixin:
    """Saves and deletes rows through the app's services, the write path of the API and the commands, so
    the admin runs the same validation and side effects (a handler's campaigns reload their routing
    configuration, ...). ``write_services`` = (create, update, delete): ``create(fields=...)``,
    ``update(<service_arg>=obj, fields=...)``, ``delete(<service_arg>=obj)``.

    The form has already validated and applied its fields to ``obj``; the service validates the whole row
    again and saves it. A new row is created by the service, then copied onto the form's instance, which the
    admin goes on using for the inlines and the redirect.
    """

    write_services: tuple[Callable[..., Any], Callable[..., Any], Callable[..., None]]
    service_arg: str

    def save_model(self, request, obj, form, change) -> None:
        create, update, _ = self.write_services
        if change:
            # Only what the operator changed: a column the form merely showed (or a hot path moved since the
            # page was loaded) is not written back.
            update(**{self.service_arg: obj, "fields": form_changed_fields(obj, form)})
            return
        saved = create(fields=_form_fields(obj, form))
        for field in obj._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding, obj._state.db = False, saved._state.db

    def delete_model(self, request, obj) -> None:
        self.write_services[2](**{self.service_arg: obj})

    def delete_queryset(self, request, queryset) -> None:
        """The changelist's bulk delete: each row through the delete service, all or nothing."""
        with transaction.atomic():
            for obj in queryset:
                self.delete_model(request, obj)


def _form_fields(obj, form) -> dict[str, Any]:
    """The model fields the form edited, with the values it applied to ``obj`` (none without a form)."""
    data = getattr(form, "cleaned_data", None) or {}
    names = {f.name for f in obj._meta.concrete_fields if not f.primary_key}
    return {name: getattr(obj, name) for name in data if name in names}


def form_changed_fields(obj, form) -> dict[str, Any]:
    """The model fields the form changed (``form.changed_data``), with the values it applied to ``obj``."""
    changed = set(getattr(form, "changed_data", None) or ())
    return {name: value for name, value in _form_fields(obj, form).items() if name in changed}


def inline_rows_save(formset: Any, *, save: Callable[[Any, dict[str, Any]], None], delete: Callable[[Any], None]) -> None:
    """Write an inline formset one row at a time through a service instead of ``formset.save()``: ``delete(instance)``
    for each deleted row, ``save(instance, fields)`` for each added or changed one, with only the fields its form
    changed (an edit never writes back a column it did not show). Sets what the admin's change message reads."""
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    for row in formset.deleted_forms:
        if row.instance.pk is not None:
            delete(row.instance)
            formset.deleted_objects.append(row.instance)
    for row in formset.forms:
        if row in formset.deleted_forms or not row.has_changed():
            continue
        instance = row.instance
        adding = instance.pk is None
        save(instance, form_changed_fields(instance, row))
        if adding:
            formset.new_objects.append(instance)
        else:
            formset.changed_objects.append((instance, row.changed_data))

