"""Admin for receiving and tracking numbers, pools, sessions, porting and the local carrier."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.templatetags.static import static
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from unfold.widgets import UnfoldAdminRadioSelectWidget

from calltrack import phone
from calltrack.admin_base import (
    ModelAdmin,
    ReadOnlyLogInline,
    ServiceWritesAdminMixin,
    TabularInline,
    form_changed_fields,
    inline_rows_save,
)
from calltrack.admin_scoping import NumberSessionCollaboratorScope, TrackingNumberCollaboratorScope
from calltrack.numbers import admin_actions
from calltrack.numbers.dni.pools import pool_tag_name
from calltrack.numbers.models import (
    BlockedCaller,
    LocalCarrierMessage,
    LocalCarrierNumber,
    NumberEvent,
    NumberPool,
    NumberSession,
    NumberStatus,
    PoolParameter,
    PoolResize,
    PoolSample,
    PortRequest,
    ReceivingNumber,
    TrackingNumber,
)
from calltrack.numbers.providers import webhook_urls
from calltrack.numbers.selectors import pool_overflow_hours
from calltrack.numbers.services import records
from calltrack.numbers.services.pools import pool_chart_svg
from calltrack.scoping import may
from calltrack.widgets import JSONObjectFormField, PrettyJSONWidget, TagRulesField


@admin.display(description="number", ordering="number")
def number_display(obj) -> str:
    """A number as the call log writes it: national for North America ("(415) 555-0138"), E.164 elsewhere."""
    return phone.format_national(obj.number) if obj.number.startswith("+1") and len(obj.number) == 12 else obj.number


@admin.register(ReceivingNumber)
class ReceivingNumberAdmin(ServiceWritesAdminMixin, ModelAdmin):
    # The services bump the routing configuration of the campaigns dialling the number.
    write_services = (records.receiving_number_create, records.receiving_number_update, records.receiving_number_delete)
    service_arg = "receiving_number"
    list_display = ["label", number_display, "country", "extension_digits", "ring_timeout", "no_answer_action"]
    list_filter = ["no_answer_action", "country"]
    search_fields = ["label", "number"]
    autocomplete_fields = ["no_answer_forward_to", "no_answer_menu"]
    list_select_related = ["no_answer_forward_to"]
    readonly_fields = ["country", "created_at"]

    fieldsets = [
        (None, {"fields": ["number", "country", "label"]}),
        ("Dial extension", {"fields": ["extension_digits", "digits_delay"]}),
        ("Whisper", {"fields": ["whisper_message", "skip_whisper"]}),
        ("No-answer routing", {"fields": ["ring_timeout", "no_answer_action", "no_answer_forward_to", "no_answer_menu", "no_answer_message"]}),
        (None, {"fields": ["created_at"]}),
    ]


class TrackingNumberForm(forms.ModelForm):
    marketing_data = JSONObjectFormField(
        required=False, help_text=TrackingNumber._meta.get_field("marketing_data").help_text,
        widget=PrettyJSONWidget(attrs={"placeholder": '{"utm_source": "billboard", "utm_medium": "outdoor"}'}),
    )
    filters = TagRulesField(
        required=False, with_action=True, label="Accept/reject rules",
        help_text="Each row is a rule on the call's tags. With any 'accept only' row, a call must match one of them; "
        "a call matching a 'reject' row is rejected.",
    )

    class Meta:
        model = TrackingNumber
        fields = "__all__"

    def clean(self) -> dict[str, Any]:
        """Pool membership and status change through the lifecycle actions, so quarantine and history hold."""
        data = super().clean()
        if self.instance.pk:
            old = TrackingNumber.objects.filter(pk=self.instance.pk).values("pool_id", "status").first() or {}
            new_pool = data.get("pool")
            new_pool_id = new_pool.pk if new_pool else None
            if old.get("pool_id") and new_pool_id != old["pool_id"]:
                raise ValidationError({"pool": "A number leaving a pool is quarantined first: use the 'Release' action."})
            if old.get("status") in (NumberStatus.QUARANTINED, NumberStatus.PORTING_OUT, NumberStatus.PORTING_IN) and new_pool_id:
                raise ValidationError({"pool": f"This number is {old['status'].replace('_', ' ')}; it cannot join a pool."})
        return data


class TrackingNumberAddForm(TrackingNumberForm):
    """The "Add" form: the number is provisioned through the configured carrier (CALLTRACK_CARRIER), or the
    operator says plainly that it is only recorded. A carrier's refusal shows on the form; nothing is saved."""

    provisioning = forms.ChoiceField(
        choices=records.Provisioning.CHOICES, initial=records.Provisioning.BUY, widget=UnfoldAdminRadioSelectWidget,
        label="Provisioning",
        help_text="Buying sets the number's voice and status webhooks at the carrier, so calls reach calltrack at once.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        carrier = settings.CALLTRACK_CARRIER
        self.fields["provisioning"].help_text = f"Carrier: {carrier} (the CALLTRACK_CARRIER setting). " + self.fields["provisioning"].help_text
        self.request_user = None

    def _post_clean(self) -> None:
        super()._post_clean()
        if self.errors:
            return
        try:
            records.tracking_number_provision(
                tracking_number=self.instance, how=self.cleaned_data["provisioning"], actor=self.request_user,
            )
        except ValidationError as exc:
            self._update_errors(exc)


class NumberEventInline(ReadOnlyLogInline):
    model = NumberEvent
    fields = ["at", "actor", "actor_label", "from_status", "to_status", "reason", "changes"]
    verbose_name_plural = "history"


@admin.register(TrackingNumber)
class TrackingNumberAdmin(TrackingNumberCollaboratorScope, ModelAdmin):
    form = TrackingNumberForm
    list_display = [number_display, "label", "kind", "status", "number_type", "area_code", "campaign", "source", "pool", "carrier"]
    list_filter = ["kind", "status", "number_type", "carrier", "pool", "campaign"]
    search_fields = ["number", "label", "area_code", "carrier_id"]
    autocomplete_fields = ["campaign", "source", "pool", "assigned_agent"]
    list_select_related = ["campaign", "source", "pool"]
    # Status changes go through the actions (quarantine, ports), so the rules and the history hold.
    readonly_fields = ["status", "number_type", "area_code", "country", "carrier", "carrier_id", "last_assigned_at", "quarantined_until", "created_at", "updated_at"]
    inlines = [NumberEventInline]
    actions = admin_actions.ACTIONS

    def has_export_permission(self, request) -> bool:
        """The CSV names campaigns, fail-safe numbers and carrier ids: staff who may view numbers, no collaborator."""
        return may(request.user, "trackingnumber.export")

    def get_urls(self):
        view = self.admin_site.admin_view(lambda request: admin_actions.port_in_view(self, request))
        return [path("port-in/", view, name="numbers_trackingnumber_port_in"), *super().get_urls()]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = TrackingNumberAddForm
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None:
            user = request.user

            class _WithActor(form):  # the add form provisions while it validates: it needs the actor for the history
                def __init__(self, *args, **kw):
                    super().__init__(*args, **kw)
                    self.request_user = user

            return _WithActor
        return form

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return [(None, {"fields": ["number", "provisioning", "label", "kind"]}), *fieldsets[1:3]]
        return fieldsets

    def save_model(self, request, obj, form, change) -> None:
        if not change:  # TrackingNumberAddForm provisioned and saved it
            if form.cleaned_data.get("provisioning") == records.Provisioning.RECORD:
                voice_url, _ = webhook_urls()
                self.message_user(request, (
                    f"{obj.number} is recorded without being provisioned: calls reach calltrack only once its voice "
                    f"webhook at the carrier is {voice_url}."), messages.WARNING)
            return
        records.tracking_number_save(
            tracking_number=obj, changed=list(form_changed_fields(obj, form)), actor=request.user, reason="Edited in the admin",
        )
    fieldsets = [
        (None, {"fields": ["number", "label", "kind", "status", ("number_type", "area_code", "country")]}),
        ("Attribution", {"fields": ["campaign", "source", "pool", "marketing_data"]}),
        ("Routing", {"fields": ["failsafe_number", "assigned_agent", "forwarding_number", "whisper_message"]}),
        ("Accept/reject rules", {"fields": ["filters", "filters_after_ivr"]}),
        ("Carrier", {"fields": ["carrier", "carrier_id", "last_assigned_at", "quarantined_until", "created_at", "updated_at"]}),
    ]


class PoolNumberInline(TabularInline):
    """The pool's numbers, read-only. Numbers are added through "Tracking numbers > Add" (the link above the list),
    which buys or connects them at the carrier with their webhooks set; rows typed here were saved as bare records
    (never bought, no campaign, the wrong kind), so the inline adds nothing."""

    model = TrackingNumber
    fk_name = "pool"
    extra = 0
    max_num = 0
    can_delete = False
    fields = ["number", "kind", "status", "number_type", "area_code", "last_assigned_at"]
    readonly_fields = fields
    show_change_link = True
    verbose_name = "pool number"
    verbose_name_plural = "numbers in this pool"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).filter(kind="pool")


class PoolParameterInline(TabularInline):
    model = PoolParameter
    extra = 0
    fields = ["name", "kind", "max_length"]
    verbose_name = "accepted custom parameter"
    verbose_name_plural = "custom parameters accepted from landing pages (arrive on calls as tags)"


class PoolResizeInline(ReadOnlyLogInline):
    model = PoolResize
    fields = ["at", "from_size", "to_size", "peak_sessions", "reason"]
    verbose_name_plural = "resizes (autoscaling log)"

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-at")


@admin.register(NumberPool)
class NumberPoolAdmin(ModelAdmin):
    list_display = ["name", "key", "enabled", "campaign", "source", "number_type", "size", "in_use", "overflow_count", "autoscale"]
    list_filter = ["enabled", "number_type", "overflow_policy", "autoscale"]
    search_fields = ["name", "key", "campaign__name"]
    autocomplete_fields = ["campaign", "source"]
    list_select_related = ["campaign", "source"]
    readonly_fields = [
        "overflow_count", "dropped_parameter_count", "created_at", "size", "in_use", "usage_chart", "overflow_hours", "add_numbers",
        "page_tag",
    ]
    inlines = [PoolParameterInline, PoolNumberInline, PoolResizeInline]
    fieldsets = [
        (None, {"fields": ["name", "key", "enabled", "campaign", "source", "add_numbers"]}),
        ("Matching", {"fields": ["number_type", "match_area_code"]}),
        ("Sessions and attribution", {"fields": ["session_lifetime", "attribution_window"]}),
        ("Overflow", {"fields": ["overflow_policy", "fallback_number", ("size", "in_use", "overflow_count"), "overflow_hours"]}),
        ("Web", {"fields": ["page_tag", "allowed_origins", "dropped_parameter_count"]}),
        ("Autoscaling", {"fields": ["autoscale", ("autoscale_min", "autoscale_max", "autoscale_headroom"), "buy_area_code"]}),
        ("Usage", {"fields": ["usage_chart"]}),
        (None, {"fields": ["created_at"]}),
    ]

    def save_model(self, request, obj, form, change) -> None:
        """Through the pool services; an edit saves only the fields it changed (never the live overflow count)."""
        if change:
            records.pool_update(pool=obj, fields=form_changed_fields(obj, form))
        else:
            records.pool_save_new(pool=obj)

    def save_formset(self, request, form, formset, change) -> None:
        """Declared custom parameters are written through the pool services (validated like the API's)."""
        if formset.model is not PoolParameter:
            return super().save_formset(request, form, formset, change)
        inline_rows_save(
            formset, delete=lambda parameter: records.pool_parameter_delete(parameter=parameter),
            save=lambda parameter, fields: records.pool_parameter_save(parameter=parameter, fields={**fields, "pool": form.instance}),
        )

    @admin.display(description="numbers")
    def add_numbers(self, obj: NumberPool):
        """Where numbers are added: the tracking number form (bought or connected at the carrier), this pool chosen."""
        if not obj.pk:
            return "Save the pool, then add its numbers (bought or connected at the carrier) from here."
        url = reverse("admin:numbers_trackingnumber_add") + "?" + urlencode({"kind": "pool", "pool": obj.pk, "campaign": obj.campaign_id or ""})
        return format_html('<a href="{}" class="text-primary-600 font-medium">Add numbers to this pool</a> '
                           "(bought or connected at the carrier, webhooks set). The pool's numbers are listed below.", url)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            # The page tag's script URL when CALLTRACK_PUBLIC_BASE_URL is not set: this console's own origin (its host
            # checked against ALLOWED_HOSTS, as every request's).
            obj.page_origin = request.build_absolute_uri("/")
        return obj

    @admin.display(description="page tag")
    def page_tag(self, obj: NumberPool) -> str:
        """The script tag to paste on the pool's landing pages, naming this pool as the DNI endpoints find it."""
        if not obj.pk:
            return "Save the pool to see the tag for its landing pages."
        base = (settings.CALLTRACK_PUBLIC_BASE_URL or getattr(obj, "page_origin", "") or "https://YOUR-CALLTRACK-HOST").rstrip("/")
        tag = f'<script async src="{base}{static("calltrack/dni.js")}" data-pool="{pool_tag_name(obj)}"></script>'
        return format_html('<code class="block whitespace-pre-wrap break-all text-xs">{}</code>'
                           '<div class="text-xs mt-1">Add each page\'s origin to the allowed origins below.</div>', tag)

    @admin.display(description="sessions vs size (24 h)")
    def usage_chart(self, obj: NumberPool) -> str:
        if not obj.pk:
            return "-"
        return mark_safe(pool_chart_svg(pool=obj, hours=24))  # built from numbers and escaped text only

    @admin.display(description="Overflows per hour (24 h)")
    def overflow_hours(self, obj: NumberPool) -> str:
        if not obj.pk:
            return "-"
        from django.conf import settings

        now = timezone.now()
        hours = pool_overflow_hours(pool_ids=[obj.pk], since=now - timedelta(hours=24), until=now)
        if not hours:
            return "none in the last 24 hours"
        spike = settings.CALLTRACK_DNI_OVERFLOW_SPIKE
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((timezone.localtime(h.hour).strftime("%Y-%m-%d %H:00"), h.overflows,
              "spike: pool too small, or a script opening sessions" if h.overflows >= spike else "") for h in hours),
        )
        return format_html('<table class="ct-small-table"><tr><th>hour</th><th>overflows</th><th></th></tr>{}</table>', rows)

    def get_queryset(self, request):
        now = timezone.now()
        return (
            super()
            .get_queryset(request)
            .annotate(
                _size=Count("numbers", filter=Q(numbers__status="active"), distinct=True),
                _in_use=Count("sessions", filter=Q(sessions__expires_at__gt=now, sessions__tracking_number__isnull=False), distinct=True),
            )
        )

    @admin.display(description="numbers", ordering="_size")
    def size(self, obj: NumberPool) -> int:
        return obj._size

    @admin.display(description="in use now", ordering="_in_use")
    def in_use(self, obj: NumberPool) -> int:
        return obj._in_use


@admin.register(NumberSession)
class NumberSessionAdmin(NumberSessionCollaboratorScope, ModelAdmin):
    list_display = ["started_at", "pool", "tracking_number", "visitor_id", "expires_at", "is_overflow", "landing_page"]
    list_filter = ["is_overflow", "pool"]
    search_fields = ["visitor_id", "tracking_number__number", "landing_page"]
    list_select_related = ["pool", "tracking_number"]
    show_full_result_count = False
    readonly_fields = [f.name for f in NumberSession._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(PortRequest)
class PortRequestAdmin(ModelAdmin):
    list_display = ["created_at", "direction", "status", "number_count", "other_carrier", "carrier", "completed_at"]
    list_filter = ["direction", "status", "carrier"]
    search_fields = ["loa_name", "other_carrier", "carrier_request_id"]
    autocomplete_fields = ["campaign", "source", "pool"]
    readonly_fields = ["carrier_request_id", "created_by", "created_at", "submitted_at", "completed_at"]

    @admin.display(description="numbers")
    def number_count(self, obj: PortRequest) -> int:
        return len(obj.numbers or [])


@admin.register(BlockedCaller)
class BlockedCallerAdmin(ModelAdmin):
    list_display = ["number", "campaign", "reason", "created_at"]
    list_filter = ["campaign"]
    search_fields = ["number", "reason"]
    autocomplete_fields = ["campaign"]
    list_select_related = ["campaign"]


@admin.register(NumberEvent)
class NumberEventAdmin(ModelAdmin):
    list_display = ["at", "tracking_number", "from_status", "to_status", "actor", "actor_label", "reason"]
    list_filter = ["to_status"]
    search_fields = ["tracking_number__number", "reason"]
    list_select_related = ["tracking_number", "actor"]
    show_full_result_count = False
    readonly_fields = [f.name for f in NumberEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(PoolResize)
class PoolResizeAdmin(ModelAdmin):
    list_display = ["at", "pool", "from_size", "to_size", "peak_sessions", "reason"]
    list_filter = ["pool"]
    list_select_related = ["pool"]
    readonly_fields = [f.name for f in PoolResize._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(PoolSample)
class PoolSampleAdmin(ModelAdmin):
    list_display = ["at", "pool", "live_sessions", "size", "overflow_count"]
    list_filter = ["pool"]
    list_select_related = ["pool"]
    show_full_result_count = False
    readonly_fields = [f.name for f in PoolSample._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(LocalCarrierMessage)
class LocalCarrierMessageAdmin(ModelAdmin):
    """The texts the local carrier was asked to send (nothing left the machine): read-only."""

    list_display = ["created_at", "from_number", "to_number", "body", "sid"]
    search_fields = ["to_number", "from_number", "sid"]
    show_full_result_count = False
    readonly_fields = [f.name for f in LocalCarrierMessage._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(LocalCarrierNumber)
class LocalCarrierNumberAdmin(ModelAdmin):
    list_display = ["number", "state", "number_type", "area_code", "updated_at"]
    list_filter = ["state", "number_type"]
    search_fields = ["number", "area_code"]
    show_full_result_count = False
    readonly_fields = ["updated_at"]
