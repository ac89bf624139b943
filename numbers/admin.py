"""Admin for receiving and tracking numbers, pools, sessions, porting and the local carrier."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Count, Q
from django.utils import timezone

from calltrack.widgets import PrettyJSONWidget
from numbers.models import (
    BlockedCaller,
    LocalCarrierNumber,
    NumberEvent,
    NumberPool,
    NumberSession,
    PoolResize,
    PoolSample,
    PortRequest,
    ReceivingNumber,
    TrackingNumber,
)
from tracking.admin import RoutingConfigAdminMixin


@admin.register(ReceivingNumber)
class ReceivingNumberAdmin(RoutingConfigAdminMixin, admin.ModelAdmin):
    list_display = ["label", "number", "country", "extension_digits", "ring_timeout", "no_answer_action"]
    list_filter = ["no_answer_action", "country"]
    search_fields = ["label", "number"]
    autocomplete_fields = ["no_answer_forward_to"]
    list_select_related = ["no_answer_forward_to"]
    readonly_fields = ["country", "created_at"]

    def config_scope(self, obj: ReceivingNumber) -> dict[str, list[int]]:
        return {"receiving_number_ids": [obj.pk]}

    fieldsets = [
        (None, {"fields": ["number", "country", "label"]}),
        ("Dial extension", {"fields": ["extension_digits", "digits_delay"]}),
        ("Whisper", {"fields": ["whisper_message", "skip_whisper"]}),
        ("No-answer routing", {"fields": ["ring_timeout", "no_answer_action", "no_answer_forward_to", "no_answer_message"]}),
        (None, {"fields": ["created_at"]}),
    ]


class TrackingNumberForm(forms.ModelForm):
    class Meta:
        model = TrackingNumber
        fields = "__all__"
        widgets = {"marketing_data": PrettyJSONWidget(), "filters": PrettyJSONWidget()}


class NumberEventInline(admin.TabularInline):
    model = NumberEvent
    extra = 0
    can_delete = False
    fields = ["at", "actor", "actor_label", "from_status", "to_status", "reason", "changes"]
    readonly_fields = fields
    verbose_name_plural = "history"

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(TrackingNumber)
class TrackingNumberAdmin(admin.ModelAdmin):
    form = TrackingNumberForm
    list_display = ["number", "label", "kind", "status", "number_type", "area_code", "campaign", "source", "pool", "carrier"]
    list_filter = ["kind", "status", "number_type", "carrier", "pool", "campaign"]
    search_fields = ["number", "label", "area_code", "carrier_id"]
    autocomplete_fields = ["campaign", "source", "pool", "assigned_agent"]
    list_select_related = ["campaign", "source", "pool"]
    readonly_fields = ["number_type", "area_code", "country", "carrier", "carrier_id", "last_assigned_at", "quarantined_until", "created_at", "updated_at"]
    inlines = [NumberEventInline]
    fieldsets = [
        (None, {"fields": ["number", "label", "kind", "status", ("number_type", "area_code", "country")]}),
        ("Attribution", {"fields": ["campaign", "source", "pool", "marketing_data"]}),
        ("Routing", {"fields": ["failsafe_number", "assigned_agent", "forwarding_number", "whisper_message", "filters"]}),
        ("Carrier", {"fields": ["carrier", "carrier_id", "last_assigned_at", "quarantined_until", "created_at", "updated_at"]}),
    ]


class PoolNumberInline(admin.TabularInline):
    model = TrackingNumber
    fk_name = "pool"
    extra = 0
    fields = ["number", "status", "number_type", "area_code", "last_assigned_at"]
    readonly_fields = ["number_type", "area_code", "last_assigned_at"]
    show_change_link = True
    verbose_name = "pool number"
    verbose_name_plural = "numbers in this pool"

    def get_queryset(self, request):
        return super().get_queryset(request).filter(kind="pool")


@admin.register(NumberPool)
class NumberPoolAdmin(admin.ModelAdmin):
    list_display = ["name", "key", "enabled", "campaign", "source", "number_type", "size", "in_use", "overflow_count", "autoscale"]
    list_filter = ["enabled", "number_type", "overflow_policy", "autoscale"]
    search_fields = ["name", "key", "campaign__name"]
    autocomplete_fields = ["campaign", "source"]
    list_select_related = ["campaign", "source"]
    readonly_fields = ["overflow_count", "created_at"]
    inlines = [PoolNumberInline]
    fieldsets = [
        (None, {"fields": ["name", "key", "enabled", "campaign", "source"]}),
        ("Matching", {"fields": ["number_type", "match_area_code"]}),
        ("Sessions and attribution", {"fields": ["session_lifetime", "attribution_window"]}),
        ("Overflow", {"fields": ["overflow_policy", "fallback_number", "overflow_count"]}),
        ("Web", {"fields": ["allowed_origins"]}),
        ("Autoscaling", {"fields": ["autoscale", ("autoscale_min", "autoscale_max", "autoscale_headroom"), "buy_area_code"]}),
        (None, {"fields": ["created_at"]}),
    ]

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
class NumberSessionAdmin(admin.ModelAdmin):
    list_display = ["started_at", "pool", "tracking_number", "visitor_id", "expires_at", "is_overflow", "landing_page"]
    list_filter = ["is_overflow", "pool"]
    search_fields = ["visitor_id", "tracking_number__number", "landing_page"]
    list_select_related = ["pool", "tracking_number"]
    show_full_result_count = False
    readonly_fields = [f.name for f in NumberSession._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(PortRequest)
class PortRequestAdmin(admin.ModelAdmin):
    list_display = ["created_at", "direction", "status", "number_count", "other_carrier", "carrier", "completed_at"]
    list_filter = ["direction", "status", "carrier"]
    search_fields = ["loa_name", "other_carrier", "carrier_request_id"]
    autocomplete_fields = ["campaign", "source", "pool"]
    readonly_fields = ["carrier_request_id", "created_by", "created_at", "submitted_at", "completed_at"]

    @admin.display(description="numbers")
    def number_count(self, obj: PortRequest) -> int:
        return len(obj.numbers or [])


@admin.register(BlockedCaller)
class BlockedCallerAdmin(admin.ModelAdmin):
    list_display = ["number", "campaign", "reason", "created_at"]
    list_filter = ["campaign"]
    search_fields = ["number", "reason"]
    autocomplete_fields = ["campaign"]
    list_select_related = ["campaign"]


@admin.register(NumberEvent)
class NumberEventAdmin(admin.ModelAdmin):
    list_display = ["at", "tracking_number", "from_status", "to_status", "actor", "actor_label", "reason"]
    list_filter = ["to_status"]
    search_fields = ["tracking_number__number", "reason"]
    list_select_related = ["tracking_number", "actor"]
    show_full_result_count = False
    readonly_fields = [f.name for f in NumberEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(PoolResize)
class PoolResizeAdmin(admin.ModelAdmin):
    list_display = ["at", "pool", "from_size", "to_size", "peak_sessions", "reason"]
    list_filter = ["pool"]
    list_select_related = ["pool"]
    readonly_fields = [f.name for f in PoolResize._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(PoolSample)
class PoolSampleAdmin(admin.ModelAdmin):
    list_display = ["at", "pool", "live_sessions", "size", "overflow_count"]
    list_filter = ["pool"]
    list_select_related = ["pool"]
    show_full_result_count = False
    readonly_fields = [f.name for f in PoolSample._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(LocalCarrierNumber)
class LocalCarrierNumberAdmin(admin.ModelAdmin):
    list_display = ["number", "state", "number_type", "area_code", "updated_at"]
    list_filter = ["state", "number_type"]
    search_fields = ["number", "area_code"]
    show_full_result_count = False
    readonly_fields = ["updated_at"]


# Number lifecycle (issue 5) and pool life (issue 4): actions, the port-in form, pool chart and resize log.
from numbers import admin_lifecycle  # noqa: E402

admin_lifecycle.install(TrackingNumberAdmin, NumberPoolAdmin)
