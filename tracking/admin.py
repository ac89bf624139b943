"""The operator's main screen for sources, handlers, campaigns and calls."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from calltrack import charts
from calltrack.admin_base import ModelAdmin, ReadOnlyLogInline, ServiceWritesAdminMixin, StackedInline, TabularInline
from calltrack.admin_scoping import CallCollaboratorScope, HiddenFromCollaboratorsMixin
from calltrack.scoping import can_play_recordings
from calltrack.widgets import BusinessHoursField, PrettyJSONWidget
from tracking import selectors
from tracking.models import (
    Call,
    CallAttempt,
    CallEvent,
    Campaign,
    CampaignHandler,
    Collaborator,
    Contact,
    ConversionRule,
    Handler,
    IVROption,
    Source,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
)
from tracking.services import campaigns as campaign_services
from tracking.services import conversions as conversion_services
from tracking.services import parties
from tracking.services import webhooks as webhook_services
from tracking.timeline import call_timeline


@admin.register(Source)
class SourceAdmin(HiddenFromCollaboratorsMixin, ServiceWritesAdminMixin, ModelAdmin):
    write_services = (parties.source_create, parties.source_update, parties.source_delete)
    service_arg = "source"
    list_display = ["name", "source_id", "company", "static_number_cap", "number_count", "created_at"]
    search_fields = ["name", "source_id", "company", "first_name", "last_name"]
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "source_id"]}),
        ("Contact", {"fields": ["first_name", "last_name", "company"]}),
        ("Numbers", {"fields": ["static_number_cap"]}),
        ("Notes", {"fields": ["notes", "created_at", "updated_at"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_numbers=Count("tracking_numbers", distinct=True))

    @admin.display(description="tracking numbers", ordering="_numbers")
    def number_count(self, obj: Source) -> int:
        return obj._numbers


class HandlerForm(forms.ModelForm):
    business_hours = BusinessHoursField(required=False, help_text=Handler._meta.get_field("business_hours").help_text)

    class Meta:
        model = Handler
        fields = "__all__"
        widgets = {"tag_criteria": PrettyJSONWidget()}


@admin.register(Handler)
class HandlerAdmin(HiddenFromCollaboratorsMixin, ServiceWritesAdminMixin, ModelAdmin):
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
    readonly_fields = ["postback_url", "created_at", "updated_at"]

    fieldsets = [
        (None, {"fields": ["name", "buyer_id", "receiving_number", "enabled"]}),
        ("Routing", {"fields": ["priority", "weight", "ring_timeout"]}),
        ("Caps", {"fields": ["concurrency_cap", ("hourly_cap", "daily_cap", "monthly_cap", "total_cap"), "cap_counts"]}),
        ("Business hours", {"fields": ["timezone", "always_open", "business_hours"]}),
        ("Tag criteria", {"fields": ["tag_criteria"]}),
        ("CRM postback", {"fields": ["postback_url"]}),
        (None, {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description="postback URL")
    def postback_url(self, obj: Handler):
        if not obj.pk:
            return "Save the handler to get its postback URL."
        url = conversion_services.postback_url(handler_id=obj.pk)
        return format_html(
            "<code>{}?call_id=[call_id]</code><br>Give this URL to the handler's CRM: a GET or POST with call_id, "
            "call_sid or caller_number converts the call once, if the campaign's conversion rule for this handler is "
            "a postback rule (within its time limit). Keep it secret: it authorises this handler.",
            url,
        )


class CampaignHandlerInline(TabularInline):
    model = CampaignHandler
    extra = 0
    autocomplete_fields = ["handler"]
    fields = ["handler", "priority", "weight", "enabled", "position"]


class IVROptionInline(TabularInline):
    model = IVROption
    extra = 0
    autocomplete_fields = ["handler"]
    fields = ["digit", "label", "action", "tag_key", "tag_value", "handler", "response"]


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


class ConversionRuleInline(TabularInline):
    model = ConversionRule
    formset = ConversionRuleFormSet
    extra = 0
    autocomplete_fields = ["handler"]
    fields = ["handler", "side", "kind", "min_duration", "revenue", "payout", "postback_window", "dedupe_window", "dedupe_scope"]


class WebhookForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple, help_text=Webhook._meta.get_field("events").help_text
    )

    class Meta:
        model = Webhook
        fields = "__all__"


class WebhookInline(StackedInline):
    model = Webhook
    form = WebhookForm
    extra = 0
    fields = ["name", "enabled", "events", "url", "method", "body_template", "secret"]
    show_change_link = True


@admin.register(Campaign)
class CampaignAdmin(HiddenFromCollaboratorsMixin, ServiceWritesAdminMixin, ModelAdmin):
    write_services = (campaign_services.campaign_create, campaign_services.campaign_update, campaign_services.campaign_delete)
    service_arg = "campaign"
    list_display = ["name", "campaign_id", "enabled", "routing_strategy", "handler_count", "record_calls"]
    list_filter = ["enabled", "routing_strategy", "record_calls"]
    search_fields = ["name", "campaign_id"]
    readonly_fields = ["coverage", "created_at", "updated_at"]
    inlines = [CampaignHandlerInline, IVROptionInline, ConversionRuleInline, WebhookInline]
    fieldsets = [
        (None, {"fields": ["name", "campaign_id", "enabled"]}),
        ("Routing", {"fields": ["routing_strategy", "sticky_routing", "record_calls"]}),
        ("Greeting", {"fields": ["greeting_kind", "greeting_text", ("greeting_voice", "greeting_language"), "greeting_url"]}),
        ("IVR menu", {"fields": ["ivr_prompt", ("ivr_timeout", "ivr_repeat", "ivr_default_digit")]}),
        ("When nobody answers", {"fields": ["no_answer_message", "failsafe_number", "company_phone"]}),
        ("Coverage", {"fields": ["coverage"]}),
        (None, {"fields": ["created_at", "updated_at"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_handlers=Count("campaign_handlers", distinct=True))

    def save_formset(self, request, form, formset, change) -> None:
        """Inline rows (handler entries, IVR options, conversion rules, webhooks) are written one by one through
        the campaign services, which validate them and bump the routing configuration version; each changed row
        saves only the fields its form changed. Sets what the admin's change message reads."""
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for row in formset.deleted_forms:
            if row.instance.pk is not None:
                campaign_services.campaign_part_delete(part=row.instance)
                formset.deleted_objects.append(row.instance)
        for row in formset.forms:
            if row in formset.deleted_forms or not row.has_changed():
                continue
            part, names = row.instance, {f.name for f in row.instance._meta.concrete_fields if not f.primary_key}
            adding = part.pk is None
            fields = {name: getattr(part, name) for name in row.changed_data if name in names}
            campaign_services.campaign_part_save(part=part, fields={**fields, "campaign": form.instance})
            if adding:
                formset.new_objects.append(part)
            else:
                formset.changed_objects.append((part, row.changed_data))

    @admin.display(description="handlers", ordering="_handlers")
    def handler_count(self, obj: Campaign) -> int:
        return obj._handlers

    @admin.display(description="coverage")
    def coverage(self, obj: Campaign):
        if not obj.pk:
            return "Save the campaign and add handlers to see when and where it is covered."
        data = selectors.campaign_coverage(campaign=obj)
        svg = charts.week_heatmap(
            data["grid"], row_labels=["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
            title=f"Handlers open per hour ({data['tz']})", of=data["handlers"],
        )
        states = format_html_join("", "<li>{}: {}</li>", ((name, ", ".join(s)) for name, s in data["states"].items()))
        return format_html("{}<p>Caller states taken:</p><ul>{}</ul>", charts.figure(svg), states)


class CallAttemptInline(ReadOnlyLogInline):
    model = CallAttempt
    fields = ["sequence", "kind", "handler", "number_dialed", "status", "started_at", "ended_at", "duration", "holds_slot", "counted"]


class CallEventInline(ReadOnlyLogInline):
    model = CallEvent
    fields = ["at", "kind", "message", "data"]
    verbose_name = "timeline step"
    verbose_name_plural = "timeline"


class WebhookDeliveryInline(ReadOnlyLogInline):
    """The webhooks this call sent, each try's answer; re-send with the action on the calls list or the delivery."""

    model = WebhookDelivery
    fields = ["created_at", "event", "webhook", "status", "attempts", "last_status_code", "last_error", "next_attempt_at", "tries", "open"]
    verbose_name_plural = "webhook deliveries"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("webhook").prefetch_related("attempt_log")

    @admin.display(description="tries")
    def tries(self, obj: WebhookDelivery):
        return format_html_join(
            "", "<div>#{} {} {} ({} ms): {}</div>",
            ((a.number, a.at.strftime("%Y-%m-%d %H:%M:%S"), a.status_code or a.error, a.duration_ms, a.response_excerpt[:80]) for a in obj.attempt_log.all()),
        )

    @admin.display(description="")
    def open(self, obj: WebhookDelivery):
        return format_html('<a href="{}">details / re-send</a>', reverse("admin:tracking_webhookdelivery_change", args=[obj.pk]))


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


@admin.register(Call)
class CallAdmin(CallCollaboratorScope, ModelAdmin):
    list_display = ["started_at", "caller_number", "called_number", "campaign", "source", "handler", "status", "duration", "converted", "revenue", "payout"]
    list_filter = ["status", "converted", "conversion_status", "used_failsafe", "campaign", "source"]
    search_fields = ["call_sid", "caller_number", "called_number", "visitor_id"]
    list_select_related = ["campaign", "source", "handler"]
    date_hierarchy = "started_at"
    show_full_result_count = False
    inlines = [CallAttemptInline, CallEventInline, WebhookDeliveryInline]
    actions = ["resend_failed_webhooks", "convert_by_postback"]
    readonly_fields = [f.name for f in Call._meta.fields] + ["margin", "timeline", "recording_player"]
    fieldsets = [
        (None, {"fields": ["call_sid", "status", "reject_reason", "tracking_number", "campaign", "source", "handler", "session"]}),
        ("Routing timeline", {"fields": ["timeline"]}),
        ("Caller", {"fields": ["caller_number", "called_number", "caller_city", "caller_state", "caller_zip", "caller_country"]}),
        ("Timing", {"fields": ["started_at", "answered_at", "ended_at", "duration", "talk_time"]}),
        ("Attribution", {"fields": ["visitor_id", "landing_page", "referrer", "marketing_data", "tags"]}),
        ("Recording", {"fields": ["recording_player", "recording_status", "recording_duration", "recording_sid"]}),
        ("Routing", {"fields": ["decision", "plan_index", "fallback_step", "used_failsafe", "recording_url", "voicemail_url"]}),
        ("Value", {"fields": ["conversion_status", "converted", "converted_at", "conversion_reason", "revenue", "payout", "payout_reason", "margin"]}),
        ("Conversion sides", {"fields": ["revenue_converted", "payout_converted", "conversion_evaluated_at"]}),
    ]

    @admin.action(description="Re-send the failed webhook deliveries of the selected calls")
    def resend_failed_webhooks(self, request, queryset) -> None:
        _resend(self, request, WebhookDelivery.objects.filter(call__in=queryset, status="failed"))

    @admin.action(description="Convert the selected calls (as the handler's postback would)")
    def convert_by_postback(self, request, queryset) -> None:
        for call in queryset:
            try:
                conversion_services.call_convert(call=call, source="admin")
                self.message_user(request, f"Call #{call.pk} converted.", messages.SUCCESS)
            except conversion_services.ConversionRefused as exc:
                self.message_user(request, f"Call #{call.pk}: {exc}", messages.WARNING)

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="margin")
    def margin(self, obj: Call):
        return obj.margin

    @admin.display(description="timeline")
    def timeline(self, obj: Call):
        return call_timeline(obj)

    @admin.display(description="recording")
    def recording_player(self, obj: Call):
        """The recording's player (template tracking/recording_player.html), streamed through calltrack."""
        return recording_player_html(obj)

    def get_fieldsets(self, request, obj=None):
        # Who may not play recordings does not see the player, nor the recording's carrier URL and SID.
        fieldsets = super().get_fieldsets(request, obj)
        if can_play_recordings(request.user):
            return fieldsets
        hidden = {"recording_player", "recording_url", "recording_sid"}
        return [(title, {**opts, "fields": [f for f in opts["fields"] if f not in hidden]}) for title, opts in fieldsets]

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context=extra_context)
        context = getattr(response, "context_data", None)
        if context is not None and "cl" in context:
            days = selectors.calls_per_day(queryset=context["cl"].queryset, days=30)
            context["calls_chart"] = charts.stacked_bars(
                [d["day"].strftime("%b %d") for d in days],
                [
                    charts.Series("answered", "#2e8b57", [d["answered"] for d in days]),
                    charts.Series("missed", "#e0a030", [d["missed"] for d in days]),
                    charts.Series("rejected", "#c0392b", [d["rejected"] for d in days]),
                ],
                title="Calls per day, last 30 days (current filters)",
            )
        return response


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


@admin.register(Contact)
class ContactAdmin(ModelAdmin):
    list_display = ["phone_number", "name", "assigned_agent"]
    search_fields = ["phone_number", "name"]
    autocomplete_fields = ["assigned_agent"]
    list_select_related = ["assigned_agent"]


@admin.register(Collaborator)
class CollaboratorAdmin(ModelAdmin):
    list_display = ["user", "source", "handler"]
    search_fields = ["user__username", "source__name", "handler__name"]
    autocomplete_fields = ["user", "source", "handler"]
    list_select_related = ["user", "source", "handler"]


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

    list_display = ["campaign", "handler", "side", "kind", "min_duration", "revenue", "payout", "dedupe_window"]
    list_filter = ["kind", "side", "campaign"]
    search_fields = ["campaign__name", "handler__name"]
    autocomplete_fields = ["campaign", "handler"]
    list_select_related = ["campaign", "handler"]


@admin.register(Webhook)
class WebhookAdmin(ServiceWritesAdminMixin, ModelAdmin):
    # The services bump the routing configuration of the webhook's campaign (its events are cached with it).
    write_services = (campaign_services.webhook_create, campaign_services.webhook_update, campaign_services.webhook_delete)
    service_arg = "webhook"
    form = WebhookForm

    list_display = ["__str__", "campaign", "enabled", "method", "url"]
    list_filter = ["enabled", "method"]
    search_fields = ["name", "url", "campaign__name"]
    autocomplete_fields = ["campaign"]
    list_select_related = ["campaign"]


class WebhookAttemptInline(ReadOnlyLogInline):
    model = WebhookAttempt
    fields = ["number", "at", "duration_ms", "status_code", "error", "response_excerpt", "outcome"]
    verbose_name_plural = "tries"


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ModelAdmin):
    list_display = ["created_at", "event", "webhook", "call_link", "status", "attempts", "last_status_code"]
    list_filter = ["status", "event"]
    search_fields = ["url", "call__call_sid"]
    list_select_related = ["webhook", "call"]
    show_full_result_count = False
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    inlines = [WebhookAttemptInline]
    actions = ["resend"]

    @admin.action(description="Re-send the selected deliveries (failed or delivered)")
    def resend(self, request, queryset) -> None:
        _resend(self, request, queryset)

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="call")
    def call_link(self, obj: WebhookDelivery):
        return format_html('<a href="{}">{}</a>', reverse("admin:tracking_call_change", args=[obj.call_id]), obj.call.call_sid)
