"""Admin building blocks shared by the apps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib.admin import RelatedFieldListFilter, RelatedOnlyFieldListFilter
from django.contrib.admin.utils import NotRelationField, get_fields_from_path
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.db import models, router, transaction
from unfold import admin as unfold_admin

from calltrack.scoping import account_attname, account_choices_limited, account_path, in_account, scope_for


class AccountChoicesMixin:
    """A form's choices of related rows (a campaign's handlers, a number's pool) come from the account the
    operator acts in: a row of another account can be neither seen in a list nor chosen by id."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]
        return _choices_limited(formfield, request)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        formfield = super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]
        return _choices_limited(formfield, request)


def account_form(form, request):
    """``form`` (a plain form of an admin view or action: "move numbers", "port in") with every choice of related rows
    limited to the account acted in, before it validates: another account's pool can be neither offered nor posted."""
    for field in form.fields.values():
        _choices_limited(field, request)
    return form


class AccountUniqueFormMixin:
    """A model form of a row with an account column checks the constraints that name ``account`` (a source id, a
    campaign id, a pool key unique per account) against the account the operator acts in, as form errors: Django
    leaves out every constraint on a field the form does not show, and ``account`` is never shown."""

    account_acting: int | None = None

    def _post_clean(self) -> None:
        instance = self.instance  # type: ignore[attr-defined]
        attname = account_attname(type(instance))
        if attname and instance._state.adding and self.account_acting is not None:
            setattr(instance, attname, self.account_acting)
        super()._post_clean()  # type: ignore[misc]
        if not attname or getattr(instance, attname) is None:
            return
        exclude = self._get_validation_exclusions() - {"account"}  # type: ignore[attr-defined]
        for constraint in type(instance)._meta.constraints:
            named = set(getattr(constraint, "fields", ()) or ())
            if not isinstance(constraint, models.UniqueConstraint) or "account" not in named or named & exclude:
                continue
            try:
                constraint.validate(type(instance), instance, exclude=exclude, using=router.db_for_write(type(instance)))
            except ValidationError as exc:
                shown = [name for name in constraint.fields if name != "account" and name in self.fields]  # type: ignore[attr-defined]
                if len(shown) == 1:
                    field = type(instance)._meta.get_field(shown[0])
                    self.add_error(shown[0], f"Another {type(instance)._meta.verbose_name} of this account has this {field.verbose_name}.")  # type: ignore[attr-defined]
                else:
                    self.add_error(None, exc)  # type: ignore[attr-defined]


def _choices_limited(formfield, request):
    if formfield is not None and getattr(formfield, "queryset", None) is not None:
        formfield.queryset = account_choices_limited(formfield.queryset, scope_for(request.user))
    return formfield


class ModelAdmin(AccountChoicesMixin, unfold_admin.ModelAdmin):
    """The admin class every calltrack admin builds on: the theme (django-unfold), chosen here in one place, behind
    the gate (``calltrack/scoping.py``).

    - A collaborator sees no admin unless it is one of the scoped ones made for its kind
      (``calltrack.admin_scoping.CollaboratorScopedAdminMixin``: calls, and a source's numbers and sessions),
      whatever model permissions it was granted.
    - An action is declared with the permission it needs (``@admin.action(permissions=[...])``, a
      ``has_<name>_permission`` method asking :func:`calltrack.scoping.may`); one posted without it is refused with
      a 403, not quietly dropped, for staff and collaborators alike.
    - Every list, page, filter, choice and export shows the rows of the account the operator acts in
      (``calltrack.scoping.in_account``); the install's own tables (caches, the task queue, users) are shown to
      superusers only. An analyst reads and changes nothing; a billing user sees the usage page only.
    """

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if account_path(self.model) is None and not request.user.is_superuser:
            return qs.none()  # an install table, even where an admin opened its own permissions wider
        return in_account(qs, scope_for(request.user))

    def get_search_results(self, request, queryset, search_term):
        qs, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if not qs.ordered:
            # An aggregate a subclass adds (GROUP BY) drops the model's default ordering, and the autocomplete pages
            # through this queryset: named here. A list the model's ordering still sorts is left alone (the changelist
            # appends the queryset's ordering to the operator's sort, which would change what its indexes serve).
            qs = qs.order_by(*(self.ordering or self.model._meta.ordering or ()), "pk")
        return qs, may_have_duplicates

    def _shown(self, request) -> bool:
        """Whether this admin exists for the user at all (before its model permissions)."""
        scope = scope_for(request.user)
        if scope.is_collaborator or scope.usage_only:
            return False
        return account_path(self.model) is not None or bool(request.user.is_superuser)

    def _writes(self, request) -> bool:
        return self._shown(request) and not scope_for(request.user).reads_only

    def has_module_permission(self, request) -> bool:
        return self._shown(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return self._shown(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args) -> bool:
        return self._writes(request) and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._writes(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._writes(request) and super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change) -> None:
        account_set(obj, request)
        super().save_model(request, obj, form, change)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        if account_attname(self.model) is None:
            return form
        return type(form.__name__, (AccountUniqueFormMixin, form), {"account_acting": scope_for(request.user).account_id})

    def get_list_filter(self, request):
        return [_account_list_filter(self.model, entry) for entry in super().get_list_filter(request)]

    def changelist_view(self, request, extra_context=None):
        # Checked before Django's own handling, which would show the list again ("No action selected") when the user
        # has no action at all, or the action is not one of its own.
        if request.method == "POST" and request.POST.get("action"):
            name = request.POST["action"]
            declared = {action_name for _, action_name, _ in self._get_base_actions()}
            if name in declared and name not in self.get_actions(request):
                raise PermissionDenied(f"You may not run the action {name!r}.")
        return super().changelist_view(request, extra_context)

class AccountFilterChoicesMixin:
    """A list filter drawn as a form (django-unfold's autocomplete and dropdown filters) offers, and names as the
    chosen value, rows of the account acted in only: a form field's queryset of related rows is limited like a
    change form's (the autocomplete filter's form reads the related model's every row, so the id of another
    account's number in the address would show that number)."""

    def choices(self, changelist):
        scope = scope_for(self.request.user)  # type: ignore[attr-defined]  # ListFilter keeps its request
        for choice in super().choices(changelist):  # type: ignore[misc]
            form = choice.get("form") if isinstance(choice, dict) else None
            for field in getattr(form, "fields", {}).values():
                if getattr(field, "queryset", None) is not None:
                    field.queryset = account_choices_limited(field.queryset.all(), scope)
            yield choice


class AccountRelatedFieldListFilter(AccountFilterChoicesMixin, RelatedFieldListFilter):
    """A list filter on a relation (``campaign``, ``pool``) offers the related rows of the account acted in only."""

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin)
        scope = scope_for(request.user)
        try:
            path = account_path(field.related_model)
        except KeyError:
            return []
        if path is None or scope.account_id is None:
            return field.get_choices(include_blank=False, ordering=ordering)
        return field.get_choices(include_blank=False, ordering=ordering,
                                 limit_choices_to={"pk" if path == "pk" else f"{path}_id": scope.account_id})


_ACCOUNT_FILTERS: dict[type, type] = {}


def _account_filter_class(cls: type) -> type:
    """``cls`` made to offer and name the account's rows only (its form's choices; a relation filter's list)."""
    if issubclass(cls, AccountFilterChoicesMixin):
        return cls
    if cls not in _ACCOUNT_FILTERS:
        attrs: dict[str, Any] = {}
        if (issubclass(cls, RelatedFieldListFilter) and not issubclass(cls, RelatedOnlyFieldListFilter)
                and cls.field_choices is RelatedFieldListFilter.field_choices):
            attrs["field_choices"] = AccountRelatedFieldListFilter.field_choices
        _ACCOUNT_FILTERS[cls] = type(f"Account{cls.__name__}", (AccountFilterChoicesMixin, cls), attrs)
    return _ACCOUNT_FILTERS[cls]


def _account_list_filter(model: Any, entry: Any) -> Any:
    """A list filter entry whose choices are related rows, made to offer the account's only (a filter listing the
    values in the account's own rows, ``RelatedOnlyFieldListFilter``, already does)."""
    if isinstance(entry, str):
        try:
            field = get_fields_from_path(model, entry)[-1]
        except (FieldDoesNotExist, NotRelationField):
            return entry
        if getattr(field, "remote_field", None) is not None and not getattr(field, "choices", None):
            return (entry, AccountRelatedFieldListFilter)
        return entry
    if isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[1], type):
        name, cls = entry
        return (name, _account_filter_class(cls))
    if isinstance(entry, type):
        return _account_filter_class(entry)
    return entry


def account_set(obj: Any, request: Any) -> None:
    """A new row of a model with its own account column goes to the account the operator acts in."""
    attname = account_attname(type(obj))
    account_id = scope_for(request.user).account_id
    if attname and obj._state.adding and account_id is not None:
        setattr(obj, attname, account_id)


class AccountFormSetMixin(AccountChoicesMixin):
    """An inline's rows, besides its choices: the hidden id of each row names a row of the account only (Django's
    formset accepts any row's id of the model there; the row edited is still the parent's, but a form must not take
    what the operator could not have been shown)."""

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)  # type: ignore[misc]
        scope = scope_for(request.user)

        class AccountFormSet(formset):  # type: ignore[valid-type, misc]
            def add_fields(self, form, index):
                super().add_fields(form, index)
                field = form.fields.get(self.model._meta.pk.name)
                if field is not None and getattr(field, "queryset", None) is not None:
                    field.queryset = account_choices_limited(field.queryset, scope)

        AccountFormSet.__name__ = formset.__name__
        return AccountFormSet


class TabularInline(AccountFormSetMixin, unfold_admin.TabularInline):
    pass


class StackedInline(AccountFormSetMixin, unfold_admin.StackedInline):
    pass


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
        account_set(obj, request)
        if change:
            # Only what the operator changed: a column the form merely showed (or a hot path moved since the
            # page was loaded) is not written back.
            update(**{self.service_arg: obj, "fields": form_changed_fields(obj, form)})
            return
        fields = _form_fields(obj, form)
        attname = account_attname(type(obj))
        if attname:
            fields[attname] = getattr(obj, attname)
        saved = create(fields=fields)
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



class LoginByNameForm(forms.ModelForm):
    """A form that links a row to an existing login named by username (a member, a collaborator): the install's user
    list, other accounts' people, is never offered. Fixed once the row exists. ``login_refused(user)`` says why a
    login may not be linked (None: it may)."""

    username = forms.CharField(max_length=150, help_text="The login of an existing user.")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["username"].initial = self.instance.user.get_username()
            self.fields["username"].disabled = True

    def login_refused(self, user: Any) -> str | None:
        return None

    def clean_username(self) -> str:
        from django.contrib.auth import get_user_model

        name = self.cleaned_data["username"]
        if self.instance.pk:
            return name
        user = get_user_model().objects.filter(username=name, is_active=True).first()
        if user is None:
            raise forms.ValidationError("No active user has this login.")
        refused = self.login_refused(user)
        if refused:
            raise forms.ValidationError(refused)
        self.instance.user = user
        return name
