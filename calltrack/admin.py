from django import forms
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group, User
from django.urls import path
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm
from unfold.widgets import UnfoldAdminPasswordWidget

from calltrack import admin_usage
from calltrack.admin_base import LoginByNameForm, ModelAdmin
from calltrack.models import Account, AccountRole, AccountToken, Membership, mask_secret
from calltrack.scoping import scope_for
from routing.services.accounts import CARRIER_FIELDS, account_save, carrier_numbers_held

admin.site.site_header = "calltrack"
admin.site.site_title = "calltrack"
admin.site.index_title = "Operator console"

# Users and groups in the admin theme too (django.contrib.auth registers them with Django's own classes).
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class UserAdmin(BaseUserAdmin, ModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm


@admin.register(Group)
class GroupAdmin(BaseGroupAdmin, ModelAdmin):
    pass


# The framework's other tables (API tokens, background tasks, login lockouts) in the theme and behind the gate too: their own admin classes, on
# calltrack's ModelAdmin (these apps come before calltrack in INSTALLED_APPS, so they are registered by now).
for _model, _admin in list(admin.site._registry.items()):
    if _model._meta.app_label in ("authtoken", "django_q", "axes") and not isinstance(_admin, ModelAdmin):
        admin.site.unregister(_model)
        admin.site.register(_model, type(type(_admin).__name__, (type(_admin), ModelAdmin), {}))


# --- Accounts (issue 30): the clients of an agency's install, their members and their API tokens ---------------


def _role(request) -> str:
    return scope_for(request.user).role


class AccountForm(forms.ModelForm):
    """The account's settings. Its Twilio subaccount's auth token is write-only: the form shows its last four
    characters, a blank field keeps it, and it never comes back in a page."""

    twilio_clear = forms.BooleanField(
        required=False, label="Use the install's Twilio account",
        help_text="Forget the subaccount's SID and token: the account's numbers, texts and webhooks use TWILIO_* again.")
    numbers_moved = forms.BooleanField(
        required=False, label="Its numbers are in the new Twilio account",
        help_text="The account holds Twilio numbers: they stay in the Twilio account they were bought in. Tick this once "
                  "they have been moved to the new one at Twilio (else releasing them would release nothing).")

    class Meta:
        model = Account
        fields = ["name", "slug", "time_zone", "currency", "nomenclature", "failsafe_number", "twilio_account_sid",
                  "twilio_auth_token"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "twilio_auth_token" in self.fields:
            current = self.instance.twilio_auth_token if self.instance.pk else ""
            self.fields["twilio_auth_token"] = forms.CharField(
                required=False, max_length=64, label="Twilio subaccount auth token",
                widget=UnfoldAdminPasswordWidget(render_value=False, attrs={"autocomplete": "new-password"}),
                help_text=(f"The current token ends in {mask_secret(current)}. Leave blank to keep it; type a new one to replace it."
                           if current else "The subaccount's auth token (Twilio console, the subaccount's API keys & tokens)."),
            )

    def clean_twilio_auth_token(self) -> str:
        value = (self.cleaned_data.get("twilio_auth_token") or "").strip()
        return value or (self.instance.twilio_auth_token if self.instance.pk else "")

    def clean(self):
        data = super().clean()
        if "twilio_account_sid" not in self.fields:
            return data
        if data.get("twilio_clear"):
            data["twilio_account_sid"], data["twilio_auth_token"] = "", ""
        before = Account.objects.filter(pk=self.instance.pk).values_list("twilio_account_sid", flat=True).first() if self.instance.pk else ""
        held = carrier_numbers_held(self.instance) if (data.get("twilio_account_sid") or "") != (before or "") else 0
        if held and not data.get("numbers_moved"):
            raise forms.ValidationError(
                f"This account holds {held} Twilio numbers, which stay in the Twilio account they are in: move them to the "
                "new one at Twilio first, then tick 'Its numbers are in the new Twilio account'.")
        return data


@admin.register(Account)
class AccountAdmin(ModelAdmin):
    """The accounts: a superuser creates them and sees them all; an account's owner changes its settings; every other
    member sees the account it acts in. The carrier (a Twilio subaccount) is the install operator's: superusers
    set it, owners see whether there is one."""

    form = AccountForm
    list_display = ["name", "slug", "time_zone", "currency", "nomenclature", "carrier_shown", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ("name",)}

    def get_urls(self):
        # The accounts' usage for rebilling (calltrack/admin_usage.py): its own gate ("usage.view"), billing users
        # included, whoever may open the accounts' list.
        return [
            path("usage/", self.admin_site.admin_view(admin_usage.usage_page), name="calltrack_account_usage"),
            path("usage/export.csv", self.admin_site.admin_view(admin_usage.usage_export), name="calltrack_account_usage_export"),
            *super().get_urls(),
        ]

    def get_fieldsets(self, request, obj=None):
        carrier = (["twilio_account_sid", "twilio_auth_token", "twilio_clear", "numbers_moved"] if request.user.is_superuser
                   else ["carrier_shown"])
        return [
            (None, {"fields": ["name", "slug"]}),
            ("Console", {"fields": ["time_zone", "currency", "nomenclature"]}),
            ("Calls", {"fields": ["failsafe_number"]}),
            ("Carrier", {"fields": carrier, "description": "Blank: the install's Twilio account (TWILIO_ACCOUNT_SID)."}),
        ]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "carrier_shown"]

    @admin.display(description="Carrier account")
    def carrier_shown(self, obj) -> str:
        if obj is None or not obj.twilio_account_sid:
            return "The install's Twilio account"
        return f"Twilio subaccount {obj.twilio_account_sid} (token {mask_secret(obj.twilio_auth_token)})"

    def save_model(self, request, obj, form, change) -> None:
        columns = {f.name for f in Account._meta.concrete_fields}
        changed = {name for name in form.changed_data if name in columns}
        if form.cleaned_data.get("twilio_clear"):
            changed |= set(CARRIER_FIELDS)
        account_save(account=obj, changed=changed if change else ())
        if not change and not Membership.objects.filter(user=request.user, account=obj).exists():
            Membership.objects.create(user=request.user, account=obj, role=AccountRole.OWNER)  # its creator owns it

    def get_queryset(self, request):
        qs = Account.objects.all()
        return qs if request.user.is_superuser else qs.filter(pk=scope_for(request.user).account_id)

    def has_module_permission(self, request) -> bool:
        return self._shown(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return self._shown(request)

    def has_add_permission(self, request) -> bool:
        return bool(request.user.is_superuser)

    def has_change_permission(self, request, obj=None) -> bool:
        return bool(request.user.is_superuser) or (self._shown(request) and _role(request) == AccountRole.OWNER)

    def has_delete_permission(self, request, obj=None) -> bool:
        return bool(request.user.is_superuser)



class MembershipForm(LoginByNameForm):
    """A member is named by login: the install's user list is not shown to an account's owner."""

    account_id: int | None = None  # the account acted in (MembershipAdmin.get_form)

    class Meta:
        model = Membership
        fields = ["role"]

    def login_refused(self, user) -> str | None:
        if Membership.objects.filter(user=user, account_id=self.account_id).exists():
            return "This user is already a member of the account."
        return None


@admin.register(Membership)
class MembershipAdmin(ModelAdmin):
    """Who works in the account and as what: its owners add, change and remove members."""

    form = MembershipForm
    list_display = ["user", "role"]
    list_filter = ["role"]
    search_fields = ["user__username", "user__email"]

    def has_module_permission(self, request) -> bool:
        return self._shown(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return self._shown(request)

    def _owner(self, request) -> bool:
        return bool(request.user.is_superuser) or (self._shown(request) and _role(request) == AccountRole.OWNER)

    def has_add_permission(self, request) -> bool:
        return self._owner(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._owner(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._owner(request)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"account_id": scope_for(request.user).account_id})

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.account_id = scope_for(request.user).account_id
        super().save_model(request, obj, form, change)


class AccountTokenForm(forms.ModelForm):
    class Meta:
        model = AccountToken
        fields = ["name"]


@admin.register(AccountToken)
class AccountTokenAdmin(ModelAdmin):
    """API tokens bound to the account: a member makes its own (its key is shown to it on the token's page); an
    owner sees and revokes the account's, without their keys."""

    form = AccountTokenForm
    list_display = ["name", "user", "created"]
    readonly_fields = ["key_shown"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if self._owner(request) else qs.filter(user=request.user)

    def _owner(self, request) -> bool:
        return bool(request.user.is_superuser) or _role(request) == AccountRole.OWNER

    # Module, view, add and delete: the Django permissions on account tokens, within the member's role (an analyst
    # or a billing user makes none: ModelAdmin's gate).
    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name"]
        return ["name", "key_shown"] if obj.user_id == request.user.pk else ["name", "user"]

    @admin.display(description="Key")
    def key_shown(self, obj) -> str:
        return obj.key

    def save_model(self, request, obj, form, change) -> None:
        obj.user = request.user
        super().save_model(request, obj, form, change)
