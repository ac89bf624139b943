"""Admin of the conversion destinations (credentials write-only) and of the uploads to the ad platforms."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.widgets import UnfoldAdminSelectWidget

from calltrack.admin_base import ModelAdmin, ServiceWritesAdminMixin, _form_fields, form_changed_fields
from tracking.models import ConversionDestination, ConversionUpload
from tracking.services import ad_uploads
from tracking.services.ad_platforms import CREDENTIALS


def _credentials_help() -> str:
    lines = [f"{kind}: {', '.join(names) or 'none'}" for kind, names in CREDENTIALS.items()]
    return (
        'A JSON object, e.g. {"api_secret": "..."}. Stored on the server and never shown again: leave blank to keep the '
        'stored ones; the names you give replace those names only; a name set to "" removes it. Needed: '
        + "; ".join(lines) + " (Google Ads also takes login_customer_id, and a developer_token if you still have one: Google sunset them on 2026-09-09; Microsoft takes client_secret)."
    )


class ConversionDestinationForm(forms.ModelForm):
    new_credentials = forms.CharField(
        label=_("credentials"), required=False, strip=True, help_text=_credentials_help(),
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off", "spellcheck": "false"}),
    )

    class Meta:
        model = ConversionDestination
        fields = [
            "campaign", "source", "name", "kind", "enabled", "trigger", "min_talk_time", "value_from", "fixed_value", "currency",
            "delay_minutes", "consent_required", "hashed_phone_allowed", "account_id", "conversion_action", "account_timezone",
        ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.conversion_actions_problem = ""
        if self.instance.pk and self.instance.kind == "google_ads" and "conversion_action" in self.fields:
            self._conversion_action_picker()

    def _conversion_action_picker(self) -> None:
        """A saved Google Ads destination picks its conversion action from the account's list (fetched through the
        Google Ads library, cached ten minutes); when it cannot be listed, the field stays a text box and says why."""
        from tracking.services.google_ads import GoogleAdsUnavailable, google_ads_conversion_actions

        field = self.fields["conversion_action"]
        try:
            actions = google_ads_conversion_actions(account_id=self.instance.account_id, credentials=dict(self.instance.credentials or {}))
        except GoogleAdsUnavailable as exc:
            self.conversion_actions_problem = str(exc)
            field.help_text = format_html(
                '<span class="text-red-600" role="alert">{}</span> {}',
                _("Could not list the account's conversion actions: {reason}.").format(reason=exc), _("Type the conversion action's id."))
            return
        current = (self.instance.conversion_action or "").strip()
        choices = [("", "---------")] + [(action.id, action.label) for action in actions]
        if current and current not in {a.id for a in actions}:
            choices.append((current, _("{id} (not among the account's enabled conversion actions)").format(id=current)))
        field.widget = UnfoldAdminSelectWidget(choices=choices)
        field.help_text = _("The account's enabled conversion actions, as Google Ads lists them: clicks need an 'upload clicks' "
                            "action, call asset calls an 'upload calls' one.")

    def clean_new_credentials(self) -> dict[str, str]:
        text = self.cleaned_data.get("new_credentials") or ""
        if not text:
            return {}
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from None
        if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) and len(v) <= 4000 for k, v in data.items()):
            raise forms.ValidationError('A JSON object of names to strings, like {"access_token": "..."}.')
        return data


@admin.register(ConversionDestination)
class ConversionDestinationAdmin(ServiceWritesAdminMixin, ModelAdmin):
    """Where a campaign's converting calls are sent. The credentials are write-only: the page lists their names, never
    their values."""

    form = ConversionDestinationForm
    list_display = ["name", "campaign", "source", "kind", "trigger", "enabled", "sent_count"]
    list_filter = ["kind", "enabled", "trigger"]
    search_fields = ["name", "campaign__name", "account_id"]
    autocomplete_fields = ["campaign", "source"]
    list_select_related = ["campaign", "source"]
    readonly_fields = ["stored_credentials"]
    fieldsets = [
        (None, {"fields": ["name", "campaign", "source", "kind", "enabled"]}),
        (_("When and what"), {"fields": ["trigger", "min_talk_time", ("value_from", "fixed_value", "currency"), "delay_minutes"]}),
        (_("Privacy"), {"fields": ["consent_required", "hashed_phone_allowed"]}),
        (_("Platform account"), {"fields": ["account_id", "conversion_action", "account_timezone", "stored_credentials", "new_credentials"]}),
    ]
    write_services = (
        lambda *, fields: ad_uploads.conversion_destination_save(destination=ConversionDestination(), fields=fields),
        ad_uploads.conversion_destination_save,
        ad_uploads.conversion_destination_delete,
    )
    service_arg = "destination"

    def save_model(self, request, obj, form, change) -> None:
        credentials = form.cleaned_data.get("new_credentials") or {}
        if change:
            ad_uploads.conversion_destination_save(destination=obj, fields=form_changed_fields(obj, form), credentials=credentials)
            return
        saved = ad_uploads.conversion_destination_save(destination=ConversionDestination(), fields=_form_fields(obj, form), credentials=credentials)
        for field in obj._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding, obj._state.db = False, saved._state.db

    @admin.display(description=_("stored credentials"))
    def stored_credentials(self, obj: ConversionDestination) -> str:
        names = obj.credential_names if obj.pk else []
        return ", ".join(f"{name}: ••••••" for name in names) or "none"

    @admin.display(description=_("sent"))
    def sent_count(self, obj: ConversionDestination) -> str:
        link = reverse("admin:tracking_conversionupload_changelist") + f"?destination__id__exact={obj.pk}"
        return format_html('<a href="{}">uploads</a>', link)


@admin.register(ConversionUpload)
class ConversionUploadAdmin(ModelAdmin):
    """The uploads, read-only: their status and why, what was sent (hashed, without credentials), the answer."""

    list_display = ["created_at", "call_link", "destination", "status", "reason", "attempts", "sent_at"]
    list_filter = ["status", "destination"]
    search_fields = ["call__call_sid", "platform_id"]
    list_select_related = ["destination", "call"]
    show_full_result_count = False
    readonly_fields = [f.name for f in ConversionUpload._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("call"))
    def call_link(self, obj: ConversionUpload) -> str:
        return format_html('<a href="{}">#{}</a>', reverse("admin:tracking_call_change", args=[obj.call_id]), obj.call_id)
