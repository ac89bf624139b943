"""Routing's part of the admin, added from the top layer to the admins below it (tracking, numbers), which may
not import routing: the "Test call" button of the campaign and tracking number pages, and a handler's live counts
against its caps (the counters routing reads)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html_join
from unfold.decorators import action

from calltrack import phone
from calltrack.numbers.admin import TrackingNumberAdmin as BaseTrackingNumberAdmin
from calltrack.numbers.models import NumberStatus, TrackingNumber
from routing.services.config import handler_option
from routing.services.slots import handler_loads
from routing.services.test_call import TEST_CALLER, TestCallError, test_call_place
from tracking.admin import CampaignAdmin as BaseCampaignAdmin
from tracking.admin import HandlerAdmin as BaseHandlerAdmin
from tracking.models import Campaign, Handler


def test_call_response(modeladmin, request, *, to: str, back: str):
    """Place a test call to ``to`` and open its page (route, timeline, webhooks), or go ``back`` saying why not."""
    try:
        call, _ = test_call_place(to=to)
    except TestCallError as exc:
        modeladmin.message_user(request, f"The test call to {to} could not be played: {exc}", messages.ERROR)
        return redirect(back)
    modeladmin.message_user(
        request, f"Test call to {phone.format_national(to)} from {phone.format_national(TEST_CALLER)}: {call.get_status_display().lower()}.",
        messages.SUCCESS,
    )
    return redirect(reverse("admin:tracking_call_change", args=[call.pk]))


admin.site.unregister(Campaign)
admin.site.unregister(TrackingNumber)
admin.site.unregister(Handler)


@admin.register(Campaign)
class CampaignAdmin(BaseCampaignAdmin):
    actions_detail = ["test_call"]

    @action(description="Test call", url_path="test-call", icon="call", permissions=["change"])
    def test_call(self, request, object_id):
        """Plays a call to one of the campaign's tracking numbers through the real webhooks; shows its page."""
        back = reverse("admin:tracking_campaign_change", args=[object_id])
        number = (TrackingNumber.objects.filter(campaign_id=object_id, status=NumberStatus.ACTIVE).order_by("kind", "number")
                  .values_list("number", flat=True).first())
        if number is None:
            self.message_user(request, "This campaign has no active tracking number to call: add one first.", messages.WARNING)
            return redirect(back)
        return test_call_response(self, request, to=number, back=back)


@admin.register(TrackingNumber)
class TrackingNumberAdmin(BaseTrackingNumberAdmin):
    actions_detail = ["test_call"]

    @action(description="Test call", url_path="test-call", icon="call", permissions=["change"])
    def test_call(self, request, object_id):
        """Plays a call to this number through the real webhooks (what simulate_call does) and opens its page."""
        number = self.get_object(request, object_id)
        back = reverse("admin:numbers_trackingnumber_change", args=[object_id])
        if number is None:
            return redirect(back)
        return test_call_response(self, request, to=number.number, back=back)


@admin.register(Handler)
class HandlerAdmin(BaseHandlerAdmin):
    readonly_fields = [*BaseHandlerAdmin.readonly_fields, "cap_usage"]
    fieldsets = [
        (title, {**opts, "fields": [*opts["fields"], "cap_usage"]}) if title == "Caps" else (title, opts)
        for title, opts in BaseHandlerAdmin.fieldsets
    ]

    @admin.display(description="live counts")
    def cap_usage(self, obj: Handler):
        """Each cap against the handler's count right now (the counters routing reads)."""
        if not obj.pk:
            return "-"
        load = handler_loads(options=[handler_option(obj.pk)], at=timezone.now(), all_in_progress=True).get(obj.pk)
        if load is None:
            return "-"
        rows = [
            ("in progress", obj.concurrency_cap, load.in_progress), ("this hour", obj.hourly_cap, load.hour),
            ("today", obj.daily_cap, load.day), ("this month", obj.monthly_cap, load.month), ("in total", obj.total_cap, load.total),
        ]
        return format_html_join(
            " · ", "{}: <strong>{}</strong>{}",
            ((label, count, f" / {cap}" if cap is not None else "") for label, cap, count in rows),
        )
