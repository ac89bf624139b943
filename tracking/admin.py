"""The operator's main screen for sources, handlers, campaigns and calls."""

from __future__ import annotations

import zoneinfo

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.functional import cached_property
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from unfold.contrib.filters.admin import (
    AutocompleteSelectFilter,
    BooleanRadioFilter,
    ChoicesDropdownFilter,
    RelatedDropdownFilter,
)
from unfold.decorators import action, display
from unfold.paginator import InfinitePaginator
from unfold.templatetags import unfold_list
from unfold.utils import display_for_label
from unfold.widgets import UnfoldAdminPasswordWidget, UnfoldAdminSelect2Widget

from calltrack import charts, phone
from calltrack.admin_base import (
    BillingRecordsAdminMixin,
    LoginByNameForm,
    ModelAdmin,
    ReadOnlyLogInline,
    ServiceWritesAdminMixin,
    StackedInline,
    TabularInline,
    inline_rows_save,
)
from calltrack.admin_scoping import CallCollaboratorScope
from calltrack.csv_export import csv_streaming_response
from calltrack.db_router import replica_iter, replica_reads
from calltrack.formats import money
from calltrack.scoping import (
    SIDE_FIELDS,
    calls_with_visible_tag,
    can_play_recordings,
    may,
    scope_for,
    side_field,
    visible_tags,
    visible_texts,
)
from calltrack.widgets import BusinessHoursField, TagRulesField
from tracking import admin_call_log as call_log
from tracking import call_tags, menu_tree, selectors
from tracking.admin_money_history import MoneyHistoryAdminMixin
from tracking.models import (
    Call,
    CallAttempt,
    CallerLookup,
    CallEvent,
    Campaign,
    CampaignHandler,
    Collaborator,
    Contact,
    ConversionRule,
    Handler,
    IVRMenu,
    IVROption,
    RoutingTable,
    RoutingTableRow,
    Source,
    TaggingHours,
    TextMessage,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
)
from tracking.money_history import call_history
from tracking.services import campaigns as campaign_services
from tracking.services import conversions as conversion_services
from tracking.services import lookup as lookup_services
from tracking.services import menus as menu_services
from tracking.services import monitors as monitor_services
from tracking.services import parties, tagging
from tracking.services import webhooks as webhook_services
from tracking.timeline import call_route_story, call_timeline


@admin.register(Source)
class SourceAdmin(MoneyHistoryAdminMixin, ServiceWritesAdminMixin, ModelAdmin):
    write_services = (parties.source_create, parties.source_update, parties.source_delete)
    service_arg = "source"
    list_display = ["name", "source_id", "company", "static_number_cap", "number_count", "paused", "created_at"]
    search_fields = ["name", "source_id", "company", "first_name", "last_name"]
    readonly_fields = ["created_at", "updated_at", "money_history", "paused_at", "paused_reason"]
    money_history_table = "source"
    actions = ["pause_sources", "resume_sources"]
    fieldsets = [
        (None, {"fields": ["name", "source_id"]}),
        (_("Pause"), {"fields": ["paused_at", "paused_reason"],
                      "description": _("A paused source's calls go to the campaign's fail-safe. Resume it with the action on the list.")}),
        ("Contact", {"fields": ["first_name", "last_name", "company"]}),
        ("Numbers", {"fields": ["static_number_cap", "google_call_asset"]}),
        ("Notes", {"fields": ["notes", "created_at", "updated_at"]}),
        ("Terms history", {"fields": ["money_history"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_numbers=Count("tracking_numbers", distinct=True))

    @admin.display(description="tracking numbers", ordering="_numbers")
    def number_count(self, obj: Source) -> int:
        return obj._numbers

    @admin.display(description=_("paused"), boolean=True, ordering="paused_at")
    def paused(self, obj: Source) -> bool:
        return obj.paused_at is not None

    # Declared with what they need (calltrack.scoping.ACTION_PERMISSIONS), as the API's pause and resume.

    def has_pause_permission(self, request) -> bool:
        return may(request.user, "source.pause", admin=True)

    def has_resume_permission(self, request) -> bool:
        return may(request.user, "source.resume", admin=True)

    @admin.action(description=_("Pause the selected sources (their calls go to the fail-safe)"), permissions=["pause"])
    def pause_sources(self, request, queryset) -> None:
        who = request.user.get_username()
        done = sum(monitor_services.source_pause(source=source, reason=f"paused by {who}") for source in queryset)
        self.message_user(request, _("{n} sources paused.").format(n=done), messages.SUCCESS)

    @admin.action(description=_("Resume the selected sources (route their calls again)"), permissions=["resume"])
    def resume_sources(self, request, queryset) -> None:
        done = sum(monitor_services.source_resume(source=source) for source in queryset)
        self.message_user(request, _("{n} sources resumed.").format(n=done), messages.SUCCESS)


def _timezone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones()) if "/" in name or name == "UTC"]


def campaign_parts_save(formset, *, parent: dict) -> None:
    """Write an inline formset of campaign rows (handler entries, IVR options, conversion rules, webhooks, a menu's
    keys) one row at a time through the campaign services, which validate each row and bump the campaign's routing
    configuration; ``parent`` (its campaign, its menu) goes with each row's changed fields."""
    inline_rows_save(
        formset, delete=lambda part: campaign_services.campaign_part_delete(part=part),
        save=lambda part, fields: campaign_services.campaign_part_save(part=part, fields={**fields, **parent}),
    )


class HandlerForm(forms.ModelForm):
    business_hours = BusinessHoursField(required=False, help_text=Handler._meta.get_field("business_hours").help_text)
    timezone = forms.ChoiceField(
        choices=_timezone_choices, widget=UnfoldAdminSelect2Widget, help_text=Handler._meta.get_field("timezone").help_text,
    )
    tag_criteria = TagRulesField(
        required=False, help_text=_("Each row is a rule on the call's tags; the handler takes a call only when every row matches. "
        "Tags: caller_state, caller_zip, caller_city, caller_country, key_pressed, source, IVR tags, tagging-hours tags, "
        "marketing data keys (utm_source ...)."),
    )

    class Meta:
        model = Handler
        fields = "__all__"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is None and not self.is_bound:
            # A new handler starts in the operator's time zone (not the first of the sorted list, nor a fixed one).
            self.initial["timezone"] = settings.TIME_ZONE

    def clean(self):
        """"Always open" and business hours together would save a handler open 24/7 whose hours are silently
        ignored (the trap of a default-ticked box): refuse it, saying which to change. (Typing hours or clicking
        a preset unticks the box in the browser, so this is only met without JavaScript or by ticking it back.)"""
        data = super().clean()
        if data.get("always_open") and data.get("business_hours"):
            raise ValidationError({"always_open": "'Always open' is ticked, so the business hours below would be ignored: "
                                                  "untick it to use the hours, or clear the hours to stay open 24/7."})
        return data


@admin.register(Handler)
class HandlerAdmin(MoneyHistoryAdminMixin, ServiceWritesAdminMixin, ModelAdmin):
    # The services bump the routing configuration of the campaigns using the handler.
    write_services = (parties.handler_create, parties.handler_update, parties.handler_delete)
    service_arg = "handler"
    form = HandlerForm
    list_display = ["name", "buyer_id", "receiving_number", "enabled", "priority", "weight", "concurrency_cap", "daily_cap", "timezone", "always_open"]
    list_editable = ["enabled", "priority", "weight"]
    list_filter = ["enabled", "always_open", "cap_counts", "timezone"]
    search_fields = ["name", "buyer_id", "receiving_number__number", "receiving_number__label"]
    autocomplete_fields = ["receiving_number"]
    list_select_related = ["receiving_number"]
    readonly_fields = ["in_campaigns", "postback_url", "postback_url_hidden", "created_at", "updated_at", "money_history"]
    money_history_table = "handler"

    fieldsets = [
        (None, {"fields": ["name", "buyer_id", "receiving_number", "enabled", "in_campaigns"]}),
        ("Routing", {"fields": ["priority", "weight", "ring_timeout", ("duplicate_days", "duplicate_on")]}),
        ("Caps", {"fields": [("concurrency_cap", "cap_counts"), ("hourly_cap", "daily_cap"), ("monthly_cap", "total_cap")]}),
        ("Business hours", {"fields": ["timezone", "always_open", "business_hours"]}),
        ("Location (for the 'nearest' strategy)", {"fields": ["location_zip", ("latitude", "longitude")]}),
        ("Tag criteria", {"fields": ["tag_criteria"]}),
        ("CRM postback", {"fields": ["postback_url"]}),
        (None, {"fields": ["created_at", "updated_at"]}),
        ("Terms history", {"fields": ["money_history"]}),
    ]

    @admin.display(description="campaigns")
    def in_campaigns(self, obj: Handler):
        if not obj.pk:
            return _("Add the handler to a campaign (on the campaign's page) once it is saved.")
        links = [
            (reverse("admin:tracking_campaign_change", args=[ch.campaign_id]), ch.campaign.name, "" if ch.enabled else " (off)")
            for ch in CampaignHandler.objects.filter(handler=obj).select_related("campaign").order_by("campaign__name")
        ]
        if not links:
            return format_html('<strong class="text-red-600">{}</strong>', _("In no campaign: this handler gets no calls until a campaign lists it."))
        return format_html_join(", ", '<a href="{}">{}</a>{}', links)

    @admin.display(description="postback URL")
    def postback_url_hidden(self, obj: Handler) -> str:
        return _("Hidden: its token converts calls, so only users who may change handlers see it.")

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if may(request.user, "handler.postback_url"):
            return fieldsets
        swap = {"postback_url": "postback_url_hidden"}
        return [(title, {**opts, "fields": [swap.get(f, f) if isinstance(f, str) else f for f in opts["fields"]]}) for title, opts in fieldsets]

    @admin.display(description="postback URL")
    def postback_url(self, obj: Handler):
        if not obj.pk:
            return _("Save the handler to get its postback URL.")
        url = conversion_services.postback_url(handler_id=obj.pk) + "?call_id=[call_id]"
        return render_to_string("admin/tracking/handler/postback_url.html", {"url": url, "absolute": not url.startswith("/")})


class CampaignHandlerForm(forms.ModelForm):
    class Meta:
        model = CampaignHandler
        fields = ["handler", "priority", "weight", "enabled", "position", "duplicate_days"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Blank priority/weight inherit the handler's own: show those values as placeholders, not an empty box.
        handler = self.instance.handler if self.instance.handler_id else None
        for name in ("priority", "weight"):
            widget = self.fields[name].widget
            widget.attrs["placeholder"] = _("{value} (handler's)").format(value=getattr(handler, name)) if handler else _("handler's")
            widget.attrs["style"] = "max-width: 9rem"
        self.fields["position"].widget.attrs["style"] = "max-width: 6rem"
        days = self.fields["duplicate_days"].widget
        days.attrs["placeholder"] = (_("{value} (handler's)").format(value=handler.duplicate_days or _("off")) if handler else _("handler's"))
        days.attrs["style"] = "max-width: 9rem"


class CampaignHandlerFormSet(forms.BaseInlineFormSet):
    """A handler added with "Add another" goes after the others: a new row whose position is already taken
    (the form's default 0, copied into every new row) gets the next free position."""

    def clean(self) -> None:
        super().clean()
        kept = [f for f in self.forms if getattr(f, "cleaned_data", None) and not f.cleaned_data.get("DELETE")]
        taken = {f.cleaned_data.get("position") for f in kept if f.instance.pk}
        for form in kept:
            if form.instance.pk:
                continue
            position = form.cleaned_data.get("position") or 0
            if position in taken:
                position = max(taken) + 1
                form.cleaned_data["position"] = form.instance.position = position
            taken.add(position)


class CampaignHandlerInline(TabularInline):
    model = CampaignHandler
    form = CampaignHandlerForm
    formset = CampaignHandlerFormSet
    extra = 0
    autocomplete_fields = ["handler"]
    fields = ["handler", "priority", "weight", "enabled", "position", "duplicate_days"]


class IVROptionInline(StackedInline):
    """The campaign's main menu keys (a sub-menu's keys are edited on the sub-menu's page). Stacked, two fields a
    row: as a 9-column table its selects and texts were cut ("Se...", "languag") and it scrolled sideways."""

    model = IVROption
    extra = 0
    autocomplete_fields = ["handler"]
    fieldsets = [(None, {"fields": [("digit", "label"), ("action", "response"), ("tag_key", "tag_value"), ("handler", "submenu"), "number"]})]
    verbose_name = "main menu key"
    verbose_name_plural = "main menu keys"

    def get_queryset(self, request):
        return super().get_queryset(request).filter(menu__isnull=True)

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        # Only this campaign's sub-menus may be opened.
        formset.form.base_fields["submenu"].queryset = IVRMenu.objects.filter(campaign_id=obj.pk if obj else None)
        return formset


class SubMenuOptionFormSet(forms.BaseInlineFormSet):
    """A sub-menu's keys belong to the sub-menu's campaign: set it before the keys are validated."""

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        form.instance.campaign_id = self.instance.campaign_id
        return form

    @property
    def empty_form(self):
        form = super().empty_form
        form.instance.campaign_id = self.instance.campaign_id
        return form


class SubMenuOptionInline(StackedInline):
    model = IVROption
    fk_name = "menu"
    formset = SubMenuOptionFormSet
    extra = 1
    autocomplete_fields = ["handler"]
    fieldsets = [(None, {"fields": [("digit", "label"), ("action", "response"), ("tag_key", "tag_value"), ("handler", "submenu"), "number"]})]
    verbose_name = "key"
    verbose_name_plural = "keys of this menu"

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        field = formset.form.base_fields["submenu"]
        field.queryset = IVRMenu.objects.filter(campaign_id=obj.campaign_id) if obj else IVRMenu.objects.none()
        return formset


def _menu_tree_html(campaign: Campaign, *, current: int = 0):
    return render_to_string("tracking/menu_tree.html", {
        "tree": menu_tree.campaign_menu_tree(campaign), "current": current,
        "add_url": reverse("admin:tracking_ivrmenu_add") + f"?campaign={campaign.pk}",
    })


@admin.register(IVRMenu)
class IVRMenuAdmin(ServiceWritesAdminMixin, ModelAdmin):
    """A sub-menu: its prompt and keys, with the campaign's whole menu tree for orientation."""

    write_services = (menu_services.ivr_menu_create, menu_services.ivr_menu_update, menu_services.ivr_menu_delete)
    service_arg = "ivr_menu"
    list_display = ["name", "campaign", "prompt"]
    list_filter = ["campaign"]
    search_fields = ["name", "prompt", "campaign__name"]
    list_select_related = ["campaign"]
    autocomplete_fields = ["campaign"]
    readonly_fields = ["menu_tree"]
    inlines = [SubMenuOptionInline]
    fieldsets = [
        (None, {"fields": ["campaign", "name", "prompt", ("timeout", "repeat", "default_digit")]}),
        ("The campaign's menus", {"fields": ["menu_tree"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        # The campaign is chosen once: moving a menu would strand the keys that open it.
        return ["campaign", "menu_tree"] if obj else ["menu_tree"]

    def save_formset(self, request, form, formset, change) -> None:
        """The menu's keys are written one by one through the campaign services (validated, the campaign's routing
        configuration bumped, a changed key saving only its changed fields), like the campaign's own inlines."""
        menu = form.instance
        campaign_parts_save(formset, parent={"campaign": menu.campaign, "menu": menu})

    @admin.display(description="menu tree")
    def menu_tree(self, obj: IVRMenu):
        if not obj.pk:
            return "Save the menu to see it in the campaign's tree."
        return _menu_tree_html(obj.campaign, current=obj.pk)


class ConversionRuleFormSet(forms.BaseInlineFormSet):
    """Refuses two kinds of rule deciding the same side for the same party (which one would pay?)."""

    def clean(self) -> None:
        super().clean()
        rules = []
        for i, form in enumerate(self.forms):
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE") or not data.get("kind"):
                continue
            handler = data.get("handler")
            rules.append(conversion_services.Rule(id=i, kind=data["kind"], side=data.get("side") or "both", handler_id=handler.pk if handler else None))
        names = {h.pk: h.name for h in Handler.objects.filter(pk__in=[r.handler_id for r in rules if r.handler_id])}
        try:
            conversion_services.rules_validate(rules, handler_names=names)
        except conversion_services.ConversionRuleError as exc:
            raise ValidationError(str(exc))


class ConversionRuleInline(StackedInline):
    """Stacked, not a 9-column table: the campaign page stays within a 1440 px screen. The postback window shows
    only for postback rules (admin.js hides it for the other kinds)."""

    model = ConversionRule
    formset = ConversionRuleFormSet
    extra = 0
    autocomplete_fields = ["handler"]
    fieldsets = [
        # Two fields a row at most: three left each select a third of the width, cut ("Timer (co...") and unlabelled.
        (None, {"fields": [("kind", "side"), "handler", ("min_duration", "postback_window"), ("revenue", "payout"), ("dedupe_window", "dedupe_scope"),
                           "dedupe_max_payable"]}),
    ]


class WebhookForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple, help_text=Webhook._meta.get_field("events").help_text
    )

    class Meta:
        model = Webhook
        fields = "__all__"
        labels = {"url": "URL", "body_template": "Body template"}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and "secret" in self.fields:
            # Shown in clear only when the webhook is created (to copy into the receiver); afterwards only its end.
            self.fields["secret"] = forms.CharField(
                required=False, max_length=100, label="New secret",
                widget=UnfoldAdminPasswordWidget(render_value=False, attrs={"autocomplete": "new-password"}),
                help_text=f"The current secret ends in …{self.instance.secret[-4:]}. Leave blank to keep it; type a new one "
                          "to replace it (then give it to the receiver).",
            )

    def clean_secret(self) -> str:
        value = (self.cleaned_data.get("secret") or "").strip()
        return value or (self.instance.secret if self.instance.pk else value)


class WebhookInline(StackedInline):
    model = Webhook
    form = WebhookForm
    extra = 0
    fields = ["name", "enabled", "events", "url", "method", "body_template", "secret"]
    show_change_link = True


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = "__all__"
        # Words, not Django's capitalised field names ("Ivr prompt", "Greeting url").
        labels = {
            "campaign_id": "Campaign ID", "ivr_prompt": "IVR prompt", "ivr_timeout": "IVR timeout (s)",
            "ivr_repeat": "IVR repeats", "ivr_default_digit": "IVR default key", "greeting_url": "Greeting URL",
            "failsafe_number": "Fail-safe number", "no_answer_message": "No-answer message",
            "queue_enabled": _("Queue callers when every handler is busy"), "queue_max_wait": "Maximum wait (seconds)",
            "queue_hold_music_url": "Hold music URL", "queue_message": "Queue message",
            "fallback_credit": _("Credit fallback answers to handlers"),
            "spam_action": "Above the spam threshold", "spam_threshold": "Spam threshold (points)", "spam_rules": "Spam rules (JSON)",
        }


@admin.register(Campaign)
class CampaignAdmin(ServiceWritesAdminMixin, ModelAdmin):
    form = CampaignForm
    # Greeting fields that do not apply to the chosen kind are hidden (django-unfold's conditional fields).
    conditional_fields = {
        "greeting_text": "greeting_kind == 'say'", "greeting_voice": "greeting_kind == 'say'",
        "greeting_language": "greeting_kind == 'say'", "greeting_url": "greeting_kind == 'play'",
    }
    write_services = (campaign_services.campaign_create, campaign_services.campaign_update, campaign_services.campaign_delete)
    service_arg = "campaign"
    list_display = ["name", "campaign_id", "enabled", "routing_strategy", "handler_count", "record_calls"]
    list_filter = ["enabled", "routing_strategy", "record_calls"]
    search_fields = ["name", "campaign_id"]
    readonly_fields = ["coverage", "menu_tree", "created_at", "updated_at"]
    inlines = [CampaignHandlerInline, IVROptionInline, ConversionRuleInline, WebhookInline]
    fieldsets = [
        (None, {"fields": ["name", "campaign_id", "enabled"]}),
        ("Routing", {"fields": ["routing_strategy", "nearest_fallback", "sticky_routing", "route_to_destination", "record_calls"]}),
        ("Greeting", {"fields": ["greeting_kind", "greeting_text", ("greeting_voice", "greeting_language"), "greeting_url"]}),
        ("IVR menu", {"fields": ["ivr_prompt", ("ivr_timeout", "ivr_repeat", "ivr_default_digit"), "menu_tree"]}),
        ("Call queue", {
            "fields": ["queue_enabled", "queue_max_wait", "queue_hold_music_url", "queue_message"],
            "description": _("When every handler is busy, callers wait here (hold music, their position) instead of going "
            "to the fallback; a handler whose call ends takes the next caller. After the maximum wait the call goes on "
            "to the fallback below."),
        }),
        ("When nobody answers", {"fields": ["no_answer_message", "failsafe_number", "company_phone", "fallback_credit"]}),
        ("Spam", {
            "fields": ["spam_action", "spam_threshold", "spam_rules"],
            "description": "Each call's spam score adds up the points of what looks wrong: the caller ID's STIR/SHAKEN "
            "verification failed (60) or only C (20) or none (10), a caller name with a spam label (60), a number that "
            "cannot exist (40), an anonymous caller (30), the block list (100), a repeat dialer (50: more than 3 calls in "
            "5 minutes from the number, any campaign), a number dialled that was never published (30: a pool number no "
            "visitor was shown, a static number naming nothing about where it is shown), a line type from the carrier "
            "lookup (20: nonFixedVoip). The carrier lookup is off unless the rules ask for it (\"lookup\"); with Twilio "
            "each uncached caller costs about US$0.008 (line type) and US$0.01 (caller name). The reasons are on the "
            "call's page and in its route.",
        }),
        ("Coverage", {"fields": ["coverage"]}),
        (None, {"fields": ["created_at", "updated_at"]}),
    ]

    def get_queryset(self, request):
        # Ordered again: a grouped query drops the model's ordering (the handlers' autocomplete pages through it).
        return super().get_queryset(request).annotate(_handlers=Count("campaign_handlers", distinct=True)).order_by("name", "pk")


    def save_formset(self, request, form, formset, change) -> None:
        """Inline rows (handler entries, IVR options, conversion rules, webhooks) are written one by one through
        the campaign services, which validate them and bump the routing configuration version; each changed row
        saves only the fields its form changed. Sets what the admin's change message reads."""
        campaign_parts_save(formset, parent={"campaign": form.instance})

    @admin.display(description="menu tree")
    def menu_tree(self, obj: Campaign):
        if not obj.pk:
            return "Save the campaign to build its menus."
        return _menu_tree_html(obj)

    @admin.display(description=_("handlers"), ordering="_handlers")
    def handler_count(self, obj: Campaign) -> int:
        return obj._handlers

    @admin.display(description="coverage")
    def coverage(self, obj: Campaign):
        if not obj.pk:
            return _("Save the campaign and add handlers to see when and where it is covered.")
        data = selectors.campaign_coverage(campaign=obj, tz_name=timezone.get_current_timezone_name())
        svg = charts.week_heatmap(
            data["grid"], row_labels=["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
            title=_("Handlers open per hour ({zone})").format(zone=data["tz"]), of=data["handlers"],
        )
        states = format_html_join("", "<li>{}: {}</li>", ((name, ", ".join(s)) for name, s in data["states"].items()))
        if not data["conditions"]:
            return format_html("{}<p>Caller states taken:</p><ul>{}</ul>", charts.figure(svg), states)
        others = format_html_join("", "<li>{}: {}</li>", ((name, "; ".join(c)) for name, c in data["conditions"].items()))
        return format_html("{}<p>Caller states taken:</p><ul>{}</ul><p>Other conditions:</p><ul>{}</ul>", charts.figure(svg), states, others)


def _resend(modeladmin, request, deliveries) -> None:
    sent = refused = 0
    for delivery in deliveries:
        try:
            webhook_services.webhook_delivery_resend(delivery=delivery)
            sent += 1
        except webhook_services.DeliveryNotResendable:
            refused += 1
    if sent:
        modeladmin.message_user(request, f"{sent} deliveries queued again.", messages.SUCCESS)
    if refused:
        modeladmin.message_user(request, f"{refused} deliveries are still being tried and were left alone.", messages.WARNING)


def recording_player_html(call: Call) -> str:
    """An ``<audio>`` player of ``call``'s recording, streamed by ``GET /api/v1/calls/<id>/recording/`` (which
    checks the viewer's permission and scope), or why there is none. Safe to place on any admin page of the call
    (``{% include "tracking/recording_player.html" with call=call %}`` does the same in a template)."""
    return render_to_string("tracking/recording_player.html", {"call": call})


class CallTagFilter(admin.SimpleListFilter):
    """Calls by tag: a name (calls that have it), then its values. Choices come from the latest calls; any
    ``?tag=name:value`` works (custom parameters from landing pages arrive as tags)."""

    title = "tag (custom parameters, IVR, marketing)"
    parameter_name = "tag"

    def lookups(self, request, model_admin):
        spec = self.value() or ""
        scope = scope_for(request.user)
        base = model_admin.get_queryset(request)
        names = [(n, n) for n in call_tags.recent_tag_values(queryset=base) if calls_with_visible_tag(base, scope, n) is not None]
        if spec:
            name = spec.partition(":")[0]
            visible = calls_with_visible_tag(base, scope, name)
            if visible is not None:
                names += [(f"{name}:{v}", f"{name} = {v}") for v in call_tags.recent_tag_values(queryset=visible, name=name)[:50]]
        return names

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            name, value = call_tags.tag_filter_parse(self.value())
        except call_tags.BadTagFilter as exc:
            raise IncorrectLookupParameters(str(exc))
        visible = calls_with_visible_tag(queryset, scope_for(request.user), name)
        if visible is None:  # a tag the user may not see: refused, as a lookup on a hidden field is
            raise PermissionDenied(f"The tag '{name}' is not available to you.")
        return call_tags.calls_with_tag(visible, name=name, value=value)


class RestateForm(forms.Form):
    revenue = forms.DecimalField(required=False, max_digits=10, decimal_places=2, min_value=0,
                                 help_text=_("The new revenue (blank: unchanged). Only a call converted on the revenue side changes."))
    payout = forms.DecimalField(required=False, max_digits=10, decimal_places=2, min_value=0,
                                help_text=_("The new payout (blank: unchanged). Only a call converted on the payout side changes."))

    def clean(self):
        data = super().clean()
        if data.get("revenue") is None and data.get("payout") is None:
            raise forms.ValidationError(_("Give a new revenue, a new payout, or both."))
        return data


@admin.register(Call)
class CallAdmin(CallCollaboratorScope, BillingRecordsAdminMixin, ModelAdmin):
    """The call log: one screen wide at 1440 px, filters an operator uses, a search that takes a number as typed,
    a streamed CSV export of what is filtered; each call opens on a read-only summary (calls are billing records)."""

    list_display = ["when", "caller", "number", "source", "campaign", "handler", "status_label", "talk", "converted", "revenue_money", "payout_money"]
    list_display_links = ["when"]
    list_filter = [
        ("started_at", call_log.LocalDateRangeFilter),
        ("handler", AutocompleteSelectFilter),
        ("status", ChoicesDropdownFilter),
        ("converted", BooleanRadioFilter),
        ("source", AutocompleteSelectFilter),
        ("campaign", AutocompleteSelectFilter),
        ("tracking_number", AutocompleteSelectFilter),
        ("tracking_number__pool", RelatedDropdownFilter),
        *call_log.MARKETING_FILTERS,
        CallTagFilter,
        ("attestation", ChoicesDropdownFilter),
        call_log.TestCallFilter,
        call_log.FallbackChainFilter,
        call_log.SpamFilter,
        call_log.AdUploadFilter,
    ]
    list_filter_submit = True
    search_fields = ["call_sid"]  # the real search is get_search_results (numbers as typed, cities, UTM values)
    search_help_text = "A number as you would type it ((415) 555-0138, 415-555-0138), a city, a UTM value or a CallSid."
    # The account: its currency, for the money columns (a join on a table of a few rows).
    list_select_related = ["campaign", "source", "handler", "account"]
    show_full_result_count = False
    paginator = InfinitePaginator  # no COUNT(*) of a million calls on every page
    list_per_page = 50
    actions = ["resend_failed_webhooks", "convert_by_postback", "revoke_conversion", "restate_conversion"]
    # A collaborator's filters: its own side's "converted" (calltrack.scoping.SIDE_FIELDS), and the tags it may see.
    collaborator_list_filter = {
        kind: [("started_at", call_log.LocalDateRangeFilter), ("status", ChoicesDropdownFilter),
               (sides["converted"], BooleanRadioFilter), ("attestation", ChoicesDropdownFilter), call_log.TestCallFilter, CallTagFilter]
        for kind, sides in SIDE_FIELDS.items()
    }
    change_form_template = "admin/tracking/call/summary.html"
    readonly_fields = [f.name for f in Call._meta.fields]

    # --- The log's columns (short headers, so that the table fits a 1440 px screen) ---------------------------

    @display(description="time", ordering="started_at")
    def when(self, obj: Call) -> str:
        return date_format(timezone.localtime(obj.started_at), "SHORT_DATETIME_FORMAT")

    # Money as the dashboard writes it ("$1,690.00"), in the call's account's currency.
    @display(description="revenue", ordering="revenue")
    def revenue_money(self, obj: Call) -> str:
        return money(obj.revenue, call_currency(obj))

    @display(description="payout", ordering="payout")
    def payout_money(self, obj: Call) -> str:
        return money(obj.payout, call_currency(obj))

    @display(description="caller")
    def caller(self, obj: Call):
        """One line: the number, then where from (cut with an ellipsis, whole in the tooltip)."""
        where = ", ".join(p for p in (obj.caller_city.title(), obj.caller_state) if p)
        if obj.caller_name:  # the carrier's caller name (CallerName), before the place
            where = f"{obj.caller_name} · {where}" if where else obj.caller_name
        if obj.is_test:
            where = f"TEST CALL · {where}" if where else "TEST CALL"
        return format_html('<span class="ct-number">{}</span> <span class="ct-where" title="{}">{}</span>',
                           _national(obj.caller_number), where, where)

    @display(description="number")
    def number(self, obj: Call) -> str:
        return _national(obj.called_number)

    @display(description="status", ordering="status")
    def status_label(self, obj: Call) -> str:
        """The status as the theme's coloured label, rendered once per status and language (a template per row was
        a tenth of the page's time)."""
        text = obj.get_status_display().lower()
        key = (translation.get_language(), text)
        html = _STATUS_LABEL_HTML.get(key)
        if html is None:
            html = _STATUS_LABEL_HTML[key] = display_for_label(text, "-", _STATUS_LABELS)
        return html

    @display(description="talk", ordering="talk_time")
    def talk(self, obj: Call) -> str:
        return f"{obj.talk_time // 60}:{obj.talk_time % 60:02d}" if obj.talk_time else "-"

    # A collaborator's "converted" column is its own side's (calltrack.scoping.SIDE_FIELDS).
    @display(description="converted", boolean=True, ordering="payout_converted")
    def payout_converted_flag(self, obj: Call) -> bool:
        return obj.payout_converted

    @display(description="converted", boolean=True, ordering="revenue_converted")
    def revenue_converted_flag(self, obj: Call) -> bool:
        return obj.revenue_converted

    def get_list_display(self, request):
        scope = scope_for(request.user)
        names = list(super().get_list_display(request))  # hidden columns already left out
        if scope.is_collaborator:
            at = self.list_display.index("converted")
            names.insert(min(at, len(names)), f"{side_field(scope, 'converted')}_flag")
        return names

    def get_list_filter(self, request):
        # Collaborators get their own short list; the filters the dashboard's rows link with join it where what they
        # read is not hidden from the user: the marketing ones (not for a handler), the pool one (not for a handler).
        filters = list(super().get_list_filter(request))
        hidden = self._hidden(request)
        links = [*([] if "marketing_data" in hidden else call_log.MARKETING_FILTERS),
                 *([] if "session" in hidden else [call_log.PoolLinkFilter])]
        return filters + [f for f in links if f not in filters]

    # --- Rendering 50 rows cheaply: the theme rebuilds every header for every row (sort links through
    # get_query_string) and renders each row's checkbox through a template; both give the same text each time.

    def get_changelist(self, request, **kwargs):
        return _memoized_changelist(super().get_changelist(request, **kwargs))

    @display(description=ModelAdmin.action_checkbox.short_description)
    def action_checkbox(self, obj: Call) -> str:
        """The row's checkbox, exactly as the theme renders it, rendered once per language instead of once per row."""
        key = translation.get_language()
        html = _ROW_CHECKBOX.get(key)
        if html is None:
            html = _ROW_CHECKBOX[key] = str(super().action_checkbox(_CheckboxPk()))
        return mark_safe(html.replace(_CheckboxPk.pk, escape(str(obj.pk))))

    def get_search_results(self, request, queryset, search_term):
        q = call_log.call_search_q(search_term, scope=scope_for(request.user))
        return (queryset.filter(q) if q is not None else queryset), False

    # --- Query parameters no database can use: a 400 that says which, never a 500 -----------------------------

    def _bad_query(self, request, problem: str) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "title": "The call log cannot use this filter",
            "problem": problem, "log_url": reverse("admin:tracking_call_changelist"),
        }
        return TemplateResponse(request, "admin/tracking/call/bad_query.html", context, status=400)

    def changelist_view(self, request, extra_context=None):
        """The log with the dashboard's date presets above it and how many calls match (counted up to a bound); a
        parameter it cannot read (a date that does not exist, an offset out of range) is a 400 naming it."""
        problem = self.has_view_permission(request) and call_log.call_log_query_problem(model=Call, params=request.GET)
        if problem:
            return self._bad_query(request, problem)
        context = {**(extra_context or {}), "date_presets": call_log.date_presets(request)}
        return super().changelist_view(request, extra_context=context)

    # Calls are billing records: nobody edits them here; only a superuser may delete one (BillingRecordsAdminMixin).

    # Actions are declared with what they need (calltrack.scoping.ACTION_PERMISSIONS); posted without it: 403.

    def has_resend_permission(self, request) -> bool:
        return may(request.user, "call.resend_webhooks", admin=True)

    def has_convert_permission(self, request) -> bool:
        return may(request.user, "call.convert", admin=True)

    @admin.action(description="Re-send the failed webhook deliveries of the selected calls", permissions=["resend"])
    def resend_failed_webhooks(self, request, queryset) -> None:
        _resend(self, request, WebhookDelivery.objects.filter(call__in=queryset, status="failed"))

    @admin.action(description=_("Convert the selected calls (as the handler's postback would)"), permissions=["convert"])
    def convert_by_postback(self, request, queryset) -> None:
        for call in queryset:
            try:
                conversion_services.call_convert(call=call, source="admin")
                self.message_user(request, f"Call #{call.pk} converted.", messages.SUCCESS)
            except conversion_services.ConversionRefused as exc:
                self.message_user(request, f"Call #{call.pk}: {exc}", messages.WARNING)

    @admin.action(description=_("Revoke the conversion of the selected calls (the ad platforms get a retraction)"), permissions=["convert"])
    def revoke_conversion(self, request, queryset) -> None:
        from tracking.services.conversion_changes import call_conversion_revoke

        for call in queryset:
            try:
                call_conversion_revoke(call=call, source="admin", reason=f"by {request.user}")
                self.message_user(request, f"Call #{call.pk}: conversion revoked.", messages.SUCCESS)
            except conversion_services.ConversionRefused as exc:
                self.message_user(request, f"Call #{call.pk}: {exc}", messages.WARNING)

    def has_restate_permission(self, request) -> bool:
        return may(request.user, "call.restate", admin=True)

    @admin.action(description=_("Restate the conversion value of the selected calls (the ad platforms get a restatement)"),
                  permissions=["restate"])
    def restate_conversion(self, request, queryset):
        """An intermediate page asks the new revenue and/or payout; applied, each converted call is restated (the ad
        platforms that got it are sent a restatement; a call that did not convert says so)."""
        from django.contrib.admin import helpers

        from tracking.services.conversion_changes import call_conversion_restate

        form = RestateForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            for call in queryset:
                try:
                    call_conversion_restate(call=call, source="admin", revenue=form.cleaned_data["revenue"],
                                            payout=form.cleaned_data["payout"])
                    self.message_user(request, f"Call #{call.pk}: conversion restated.", messages.SUCCESS)
                except conversion_services.ConversionRefused as exc:
                    self.message_user(request, f"Call #{call.pk}: {exc}", messages.WARNING)
            return None
        context = {
            **self.admin_site.each_context(request), "title": _("Restate the conversion value"), "form": form,
            "calls": list(queryset.select_related(None).only("pk", "caller_number", "revenue", "payout", "converted")[:100]),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME, "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/tracking/call/restate.html", context)

    # --- The CSV export of the filtered log -------------------------------------------------------------------

    def get_urls(self):
        export = self.admin_site.admin_view(self.export_csv_view)
        return [path("export.csv", export, name="tracking_call_export"), *super().get_urls()]

    def export_csv_view(self, request):
        """The log as filtered and searched on screen, streamed: constant memory for any number of calls. Read from
        the replica when there is one (DATABASE_REPLICA_URL): the rows while they stream too."""
        with replica_reads():
            return self._export_csv(request)

    def _export_csv(self, request):
        if not self.has_view_permission(request) or not may(request.user, "call.export"):
            raise PermissionDenied
        scope = scope_for(request.user)
        problem = call_log.call_log_query_problem(model=Call, params=request.GET)
        if problem:
            return self._bad_query(request, problem)
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:  # the log redirects to ?e=1; a download says so instead
            return self._bad_query(request, "The address has a filter, page or value the call log does not know.")
        columns = call_log.call_export_columns(hidden=self._hidden(request), scope=scope)
        # Then a ``tag:NAME`` column per tag of the latest filtered calls (custom parameters from landing pages,
        # IVR tags) the user may see, each read with a key transform: still one streamed query.
        queryset, tag_columns = call_tags.tag_columns_annotate(
            queryset=changelist.queryset, exclude={lookup.rsplit("__", 1)[-1] for _, lookup in columns}, scope=scope,
        )
        columns = [*columns, *tag_columns]
        # On PostgreSQL the database writes the CSV (COPY): a million calls in seconds, not minutes.
        return csv_streaming_response(
            filename=f"calls-{timezone.localtime():%Y%m%d-%H%M}.csv",
            chunks=replica_iter(call_log.call_export_chunks(queryset=queryset, columns=columns)),
        )

    # --- The call page: a read-only summary ------------------------------------------------------------------

    def get_inlines(self, request, obj):
        return []  # the summary shows the attempts, the timeline and the deliveries once

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if obj is not None and self.has_view_permission(request, obj):
            context.update(call_summary_context(
                call=obj, hidden=self._hidden(request), recordings=can_play_recordings(request.user), scope=scope_for(request.user),
            ))
            context["title"] = f"Call from {_national(obj.caller_number)}"
        return super().change_view(request, object_id, form_url, extra_context=context)


class _CheckboxPk:
    pk = "__calltrack_call_pk__"


_ROW_CHECKBOX: dict[str | None, str] = {}
_STATUS_LABELS = {
    "completed": "success", "in progress": "info", "ringing": "info", "no answer": "warning", "busy": "warning",
    "rejected": "danger", "failed": "danger", "canceled": "warning",
}
_STATUS_LABEL_HTML: dict[tuple[str | None, str], str] = {}
_CHANGELISTS: dict[type, type] = {}


def _headers_once(result_headers):
    """The theme's ``result_headers`` computed once per page for the call log's changelists (fixed once built, see
    :func:`_memoized_changelist`) instead of once per row: the theme's ``items_for_result`` asks for every row's
    headers again, which was a third of the log's rendering time. Other changelists are computed as before."""

    def headers(cl):
        if not getattr(cl, "headers_fixed", False):
            return result_headers(cl)
        memo = getattr(cl, "calltrack_result_headers", None)
        if memo is None:
            memo = cl.calltrack_result_headers = list(result_headers(cl))
        return iter(memo)

    headers.__wrapped__ = result_headers
    return headers


# The theme calls it by its module's global name from its own template tags: the one place it can be memoized.
if not hasattr(unfold_list.result_headers, "__wrapped__"):
    unfold_list.result_headers = _headers_once(unfold_list.result_headers)


def _memoized_changelist(base: type) -> type:
    """``base`` with its ordering columns and query strings computed once per page (its parameters are fixed once
    built) instead of once per header per row."""
    if base not in _CHANGELISTS:
        class MemoizedChangeList(base):
            headers_fixed = True  # see _headers_once

            @cached_property
            def matching_count(self) -> str:
                """How many calls the filters and search select: counted up to LOG_COUNT_CAP, never the whole table."""
                n = self.queryset.order_by()[: call_log.LOG_COUNT_CAP + 1].count()
                return f"{n:,}" if n <= call_log.LOG_COUNT_CAP else f"more than {call_log.LOG_COUNT_CAP:,}"

            def get_ordering(self, request, queryset):
                """The admin's order, its tie-break by id in the direction of the column sorted on: the admin adds
                ``-pk`` after an ascending sort too ("revenue, id DESC"), an order no one index reads in either
                direction; "revenue, id" is read forward by the ``(status, revenue, id)`` index (tracking 0038)."""
                ordering = super().get_ordering(request, queryset)
                if len(ordering) >= 2 and ordering[-1] == "-pk" and isinstance(ordering[-2], str) and not ordering[-2].startswith("-"):
                    ordering = [*ordering[:-1], "pk"]
                return ordering

            def get_ordering_field_columns(self):
                if not hasattr(self, "_ordering_columns"):
                    self._ordering_columns = super().get_ordering_field_columns()
                return self._ordering_columns

            def get_query_string(self, new_params=None, remove=None):
                memo = self.__dict__.setdefault("_query_strings", {})
                key = (repr(sorted((new_params or {}).items(), key=repr)), repr(remove))
                if key not in memo:
                    memo[key] = super().get_query_string(new_params, remove)
                return memo[key]

        _CHANGELISTS[base] = MemoizedChangeList
    return _CHANGELISTS[base]


def _national(number: str) -> str:
    if number.startswith("+1") and len(number) == 12:
        return phone.format_national(number)
    return number or "-"


def call_currency(call: Call) -> str | None:
    """The currency the call's money is shown in: its account's (None: the install's ``CURRENCY``)."""
    return call.account.currency or None if call.account_id is not None else None


def call_summary_context(*, call: Call, hidden: set[str], recordings: bool, scope=None) -> dict:
    """What the call page shows: the caller, the attribution, the route in words, the recording, the outcome,
    the webhooks and the timeline; fields ``hidden`` from a collaborator left out."""
    marketing = {} if "marketing_data" in hidden else (call.marketing_data or {})
    utm = {k: marketing[k] for k in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content") if marketing.get(k)}
    others = {k: v for k, v in marketing.items() if k not in utm}
    show_routing = not ({"decision", "campaign"} & hidden)
    return {
        "call": call,
        "caller_display": _national(call.caller_number),
        "number_display": _national(call.called_number),
        "where": ", ".join(p for p in (call.caller_city.title(), call.caller_state, call.caller_zip, call.caller_country) if p),
        "utm": utm,
        "other_marketing": others,
        "show": {name: name not in hidden for name in (
            "source", "campaign", "handler", "revenue", "payout", "margin", "called_number", "visitor_id", "landing_page", "referrer",
        )},
        "converted": bool(getattr(call, side_field(scope, "converted"))) if scope is not None else call.converted,
        "amounts": {name: money(getattr(call, name), call_currency(call)) for name in ("revenue", "payout", "margin")},
        "tags": visible_tags(scope, call.tags, call.marketing_data) if scope is not None else (call.tags or {}),
        "route": call_route_story(call) if show_routing else [],
        # The spam score and its reasons: what the caller's identity said, shown to whoever sees the caller.
        "spam": call.state_spam,
        "timeline": call_timeline(call) if show_routing else "",
        # The uploads to the ad platforms, with their status and why (the operator's, not a collaborator's, business).
        "uploads": (
            list(call.conversion_uploads.select_related("destination").order_by("destination__name", "pk"))
            if scope is None or not scope.is_collaborator else []
        ),
        "deliveries": (
            list(call.webhook_deliveries.select_related("webhook").prefetch_related("attempt_log").order_by("created_at"))
            if show_routing else []
        ),
        # The player streams through calltrack (GET /api/v1/calls/<id>/recording/); who may not play recordings
        # does not see it, nor the voicemail.
        "recording": recording_player_html(call) if recordings else "",
        "voicemail_url": call.voicemail_url if recordings else "",
        # Who changed what the call is worth, when and from where (its other side's money left out).
        "money_history": call_history(call.pk, hidden=frozenset(hidden)),
        # The caller's texts (issue 29), those the user may see, with a link to the whole conversation.
        "texts": caller_texts(call, scope),
    }


CALL_PAGE_TEXTS = 10


def caller_texts(call: Call, scope) -> list[TextMessage]:
    """The caller's latest texts (to or from our numbers) that ``scope`` may see, newest first."""
    if phone.to_e164_or_none(call.caller_number) != call.caller_number:
        return []
    texts = TextMessage.objects.conversation(call.caller_number)
    if scope is not None:
        texts = visible_texts(texts, scope)
    return list(texts.order_by("-created_at", "-pk")[:CALL_PAGE_TEXTS])


@admin.register(CallAttempt)
class CallAttemptAdmin(ModelAdmin):
    list_display = ["call", "sequence", "kind", "handler", "number_dialed", "status", "started_at", "duration", "holds_slot"]
    list_filter = ["kind", "status", "holds_slot"]
    search_fields = ["call__call_sid", "number_dialed"]
    list_select_related = ["call", "handler"]
    show_full_result_count = False
    readonly_fields = [f.name for f in CallAttempt._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(CallEvent)
class CallEventAdmin(ModelAdmin):
    list_display = ["at", "call", "kind", "message"]
    list_filter = ["kind"]
    search_fields = ["call__call_sid", "message"]
    list_select_related = ["call"]
    show_full_result_count = False
    readonly_fields = ["call", "at", "kind", "message", "data"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(CallerLookup)
class CallerLookupAdmin(ModelAdmin):
    """The carrier lookup's answers, cached per caller number (a campaign's spam rules ``"lookup"``): read-only;
    deleting one makes the caller's next call ask the carrier again (and be billed again, at Twilio)."""

    list_display = ["number", "line_type", "caller_name", "caller_type", "carrier_name", "fetched_at"]
    list_filter = ["line_type"]
    search_fields = ["number", "caller_name"]
    show_full_result_count = False
    readonly_fields = ["number", "fields", "caller_name", "caller_type", "line_type", "carrier_name", "fetched_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Contact)
class ContactAdmin(ModelAdmin):
    list_display = ["phone_number", "name", "assigned_agent"]
    search_fields = ["phone_number", "name"]
    autocomplete_fields = ["assigned_agent"]
    list_select_related = ["assigned_agent"]
    readonly_fields = ["conversation"]

    @display(description="Texts and calls")
    def conversation(self, obj: Contact) -> str:
        """The link to this caller's conversation page (their texts and calls in one timeline), when there is one."""
        from tracking.models import TextMessage

        if obj.pk is None or not obj.phone_number:
            return "-"
        # The contact's account only: the same caller may have called another account too.
        texts = TextMessage.objects.conversation(obj.phone_number).filter(account_id=obj.account_id).count()
        calls = Call.objects.filter(caller_number=obj.phone_number, account_id=obj.account_id).count()
        if not texts and not calls:
            return "No texts or calls from this number yet."
        url = reverse("admin:tracking_textmessage_conversation", args=[obj.phone_number])
        return format_html('<a class="underline" href="{}">The conversation: {} texts, {} calls</a>', url, texts, calls)


class CollaboratorForm(LoginByNameForm):
    """A collaborator's login is named by username (as a member's, ``calltrack.admin.MembershipForm``): the install's
    user list (another account's people) is not shown to an account's operator. A login that already works somewhere
    (a member of an account, a superuser, another party's collaborator) is refused: linking it would move it into this
    account's party and out of its own account."""

    username = forms.CharField(max_length=150, help_text=_("The login of an existing user (it needs staff status to use the admin)."))

    class Meta:
        model = Collaborator
        fields = ["source", "handler"]

    def login_refused(self, user) -> str | None:
        from calltrack.models import Membership

        if user.is_superuser or Membership.objects.filter(user=user).exists() or Collaborator.objects.filter(user=user).exists():
            # Said the same way for each: which logins belong to other accounts is not told.
            return str(_("This login already works elsewhere: create a new login for the collaborator."))
        return None


@admin.register(Collaborator)
class CollaboratorAdmin(ModelAdmin):
    form = CollaboratorForm
    fields = ["username", "source", "handler"]
    list_display = ["user", "source", "handler"]
    search_fields = ["user__username", "source__name", "handler__name"]
    autocomplete_fields = ["source", "handler"]
    list_select_related = ["user", "source", "handler"]
    ordering = ["user__username", "pk"]


@admin.register(ConversionRule)
class ConversionRuleAdmin(ServiceWritesAdminMixin, ModelAdmin):
    """An "attempt" rule changes routing (one handler per call): saved through the campaign-part services, so
    its campaign reloads its configuration."""

    write_services = (
        lambda *, fields: campaign_services.campaign_part_save(part=ConversionRule(), fields=fields),
        campaign_services.campaign_part_save,
        campaign_services.campaign_part_delete,
    )
    service_arg = "part"

    list_display = ["campaign", "handler", "side", "kind", "min_duration", "revenue", "payout", "dedupe_window", "dedupe_max_payable"]
    list_filter = ["kind", "side", "campaign"]
    search_fields = ["campaign__name", "handler__name"]
    autocomplete_fields = ["campaign", "handler"]
    list_select_related = ["campaign", "handler"]


@admin.register(Webhook)
class WebhookAdmin(MoneyHistoryAdminMixin, ServiceWritesAdminMixin, ModelAdmin):
    # The services bump the routing configuration of the webhook's campaign (its events are cached with it).
    write_services = (campaign_services.webhook_create, campaign_services.webhook_update, campaign_services.webhook_delete)
    service_arg = "webhook"
    form = WebhookForm
    readonly_fields = ["money_history"]
    money_history_table = "webhook"

    list_display = ["__str__", "campaign", "enabled", "method", "url"]
    list_filter = ["enabled", "method"]
    search_fields = ["name", "url", "campaign__name"]
    autocomplete_fields = ["campaign"]
    list_select_related = ["campaign"]
    actions = ["send_test_deliveries"]
    actions_detail = ["send_test_delivery"]

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if not change or "secret" in getattr(form, "changed_data", ()):
            # The only time the secret is shown in clear after saving: once, to copy into the receiver.
            self.message_user(request, format_html(
                'The webhook\'s signing secret, shown this once: <code id="ct-new-secret">{}</code> '
                '<button type="button" data-copy-target="#ct-new-secret" class="border border-base-200 rounded-default px-2 ml-2">Copy</button> '
                "Give it to the receiver; afterwards only its last characters are shown.", obj.secret,
            ), messages.WARNING)

    @admin.action(description="Send a test delivery (filled in from the campaign's latest call)", permissions=["change"])
    def send_test_deliveries(self, request, queryset) -> None:
        for webhook in queryset.select_related("campaign"):
            _test_delivery_report(self, request, webhook)

    @action(description="Send a test delivery", url_path="send-test", icon="send", permissions=["change"])
    def send_test_delivery(self, request, object_id):
        webhook = self.get_object(request, object_id)
        if webhook is not None:
            _test_delivery_report(self, request, webhook)
        return redirect(reverse("admin:tracking_webhook_change", args=[object_id]))


def _test_delivery_report(modeladmin, request, webhook: Webhook) -> None:
    try:
        delivery = webhook_services.webhook_test_send(webhook=webhook)
    except webhook_services.NoCallToTestWith as exc:
        modeladmin.message_user(request, f"{webhook}: {exc}", messages.WARNING)
        return
    answer = delivery.last_status_code or delivery.last_error or "no answer"
    level = messages.SUCCESS if delivery.status == "delivered" else messages.ERROR
    link = reverse("admin:tracking_webhookdelivery_change", args=[delivery.pk])
    modeladmin.message_user(request, format_html('{}: test delivery {} ({}). <a href="{}">See the request and the answer</a>.',
                                                 webhook, delivery.get_status_display().lower(), answer, link), level)


class WebhookAttemptInline(ReadOnlyLogInline):
    model = WebhookAttempt
    fields = ["number", "at", "duration_ms", "status_code", "error", "response_excerpt", "outcome"]
    verbose_name_plural = "tries"


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ModelAdmin):
    list_display = ["created_at", "event", "webhook", "call_link", "status", "attempts", "last_status_code"]
    list_filter = ["status", "event"]
    search_fields = ["url", "call__call_sid"]
    list_select_related = ["webhook", "call", "text"]
    show_full_result_count = False
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    inlines = [WebhookAttemptInline]
    actions = ["resend"]

    def has_resend_permission(self, request) -> bool:
        return may(request.user, "delivery.resend", admin=True)

    @admin.action(description="Re-send the selected deliveries (failed or delivered)", permissions=["resend"])
    def resend(self, request, queryset) -> None:
        _resend(self, request, queryset)

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="call")
    def call_link(self, obj: WebhookDelivery):
        if obj.call_id is None:  # a text's event: its conversation
            if obj.text_id is None:
                return "-"
            return format_html('<a href="{}">{}</a>', reverse("admin:tracking_textmessage_conversation", args=[obj.text.contact_number]),
                               obj.text.message_sid)
        return format_html('<a href="{}">{}</a>', reverse("admin:tracking_call_change", args=[obj.call_id]), obj.call.call_sid)


class TaggingHoursForm(forms.ModelForm):
    hours = BusinessHoursField(required=False, help_text=TaggingHours._meta.get_field("hours").help_text)

    class Meta:
        model = TaggingHours
        fields = "__all__"


@admin.register(TaggingHours)
class TaggingHoursAdmin(ServiceWritesAdminMixin, ModelAdmin):
    write_services = (tagging.tagging_hours_create, tagging.tagging_hours_update, tagging.tagging_hours_delete)
    service_arg = "tagging_hours"
    form = TaggingHoursForm
    list_display = ["name", "scope", "match", "tag", "timezone", "enabled"]
    list_filter = ["enabled", "match", "campaign"]
    search_fields = ["name", "tag_key", "tag_value"]
    list_select_related = ["campaign"]
    autocomplete_fields = ["campaign"]
    fieldsets = [
        (None, {"fields": ["name", "campaign", "enabled"]}),
        ("The tag", {"fields": ["match", ("tag_key", "tag_value")]}),
        ("Hours", {"fields": ["timezone", "hours"]}),
    ]

    @admin.display(description="tags calls of")
    def scope(self, obj: TaggingHours) -> str:
        return str(obj.campaign) if obj.campaign_id else "every campaign"

    @admin.display(description="tag")
    def tag(self, obj: TaggingHours) -> str:
        return f"{obj.tag_key} = {obj.tag_value}"


class RoutingTableRowInline(TabularInline):
    model = RoutingTableRow
    extra = 3
    per_page = 50  # tables hold thousands of rows: the inline pages them
    autocomplete_fields = ["handler"]
    fields = ["value", "handler", "number"]
    verbose_name = "row"
    verbose_name_plural = _("rows (value -> handler or number)")


@admin.register(RoutingTable)
class RoutingTableAdmin(ServiceWritesAdminMixin, ModelAdmin):
    """A lookup table: the value of the call looked up, and its rows. Thousands of rows: the CSV commands
    (``routing_table_import`` / ``routing_table_export``) fill and read it; the rows inline pages them."""

    write_services = (lookup_services.routing_table_create, lookup_services.routing_table_update, lookup_services.routing_table_delete)
    service_arg = "routing_table"
    list_display = ["name", "campaign", "tag_key", "when_unavailable", "enabled", "position", "row_count"]
    list_filter = ["enabled", "when_unavailable", "campaign"]
    search_fields = ["name", "campaign__name"]
    list_select_related = ["campaign"]
    autocomplete_fields = ["campaign"]
    inlines = [RoutingTableRowInline]
    fields = ["campaign", "name", "tag_key", "when_unavailable", "enabled", "position"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_rows=Count("rows"))

    @admin.display(description="rows", ordering="_rows")
    def row_count(self, obj: RoutingTable) -> int:
        return obj._rows


# Registers the destinations' and uploads' admin, the alerts' and monitors' admins, and the texts log with its
# conversation page and the campaigns' text routing (issue 29).
from tracking import admin_ad_platforms, admin_alerts, admin_texts  # noqa: E402, F401
