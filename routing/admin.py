"""Routing's part of the admin, added from the top layer to the admins below it (tracking, numbers), which may
not import routing: the "Test call" button of the campaign and tracking number pages (a dialog whose POST places
the call), and a handler's live counts against its caps (the counters routing reads)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html_join
from unfold.dataclasses import ActionDialog
from unfold.decorators import action
from unfold.forms import BaseDialogForm
from unfold.widgets import UnfoldAdminSelectWidget, UnfoldAdminTextInputWidget, UnfoldBooleanWidget

from calltrack import phone
from calltrack.numbers.admin import TrackingNumberAdmin as BaseTrackingNumberAdmin
from calltrack.numbers.models import NumberStatus, TrackingNumber
from routing.services.config import handler_option
from routing.services.slots import handler_loads
from routing.services.test_call import TEST_CALLER, TestCallError, test_call_place
from tracking.admin import CampaignAdmin as BaseCampaignAdmin
from tracking.admin import HandlerAdmin as BaseHandlerAdmin
from tracking.models import Campaign, Handler


class _ClockInput(UnfoldAdminTextInputWidget):
    input_type = "datetime-local"


class TestCallForm(BaseDialogForm):
    """The "Test call" dialog: who calls, from where, which keys they press, at what time, and whether the
    campaign's webhooks go out. Shown on GET; the call is placed only on a POST (CSRF-checked by the admin)."""

    __test__ = False  # not a pytest test class

    caller = forms.CharField(
        max_length=32, initial=TEST_CALLER, widget=UnfoldAdminTextInputWidget,
        help_text="The caller's number. The default is reserved for fiction (555-0100), so a test never looks like a customer.",
    )
    from_state = forms.CharField(
        label="Caller state", max_length=100, required=False, widget=UnfoldAdminTextInputWidget,
        help_text="Sent as Twilio's FromState (e.g. CO), so geo routing and state tags can be tried.",
    )
    from_zip = forms.CharField(label="Caller ZIP", max_length=20, required=False, widget=UnfoldAdminTextInputWidget,
                               help_text="Sent as Twilio's FromZip.")
    from_city = forms.CharField(label="Caller city", max_length=100, required=False, widget=UnfoldAdminTextInputWidget,
                                help_text="Sent as Twilio's FromCity.")
    stir_verstat = forms.ChoiceField(
        label="Caller ID verification", required=False, widget=UnfoldAdminSelectWidget,
        choices=[("", "Not reported"), ("TN-Validation-Passed-A", "Verified, A (full)"), ("TN-Validation-Passed-B", "Verified, B (partial)"),
                 ("TN-Validation-Passed-C", "Verified, C (gateway)"), ("TN-Validation-Failed-A", "Verification failed"),
                 ("No-TN-Validation", "Not verified")],
        help_text="Sent as Twilio's StirVerstat, so the campaign's spam rules and attestation tags can be tried.",
    )
    caller_name = forms.CharField(label="Caller name", max_length=64, required=False, widget=UnfoldAdminTextInputWidget,
                                  help_text="Sent as Twilio's CallerName (e.g. SPAM LIKELY).")
    digits = forms.RegexField(
        label="Keys pressed", regex=r"^[0-9*#]{0,20}$", max_length=20, required=False, widget=UnfoldAdminTextInputWidget,
        error_messages={"invalid": "Only 0-9, * and #, one per menu (e.g. 21)."},
        help_text="One key per menu the caller hears, in order (e.g. 21: 2 at the main menu, 1 at the sub-menu).",
    )
    clock = forms.DateTimeField(
        label="Time of day", required=False, widget=_ClockInput,
        help_text="The moment routing reads business and tagging hours at, in your time zone. Blank: now.",
    )
    send_webhooks = forms.BooleanField(
        label="Send webhooks", required=False, widget=UnfoldBooleanWidget,
        help_text="A test call sends the campaign's webhooks only when ticked.",
    )

    def clean_caller(self) -> str:
        try:
            return phone.to_e164(self.cleaned_data["caller"])
        except phone.InvalidPhoneNumber as exc:
            raise forms.ValidationError(str(exc)) from None


TEST_CALL_DIALOG = ActionDialog(
    title="Test call", form_class=TestCallForm, form_submit_text="Place the test call",
    description="Plays a call through the real voice webhooks. It is marked as a test: not in the reports, the caps' "
    "counts or conversions.",
)


def _go(request, url: str) -> HttpResponse:
    """To ``url``: a redirect, or for the dialog's htmx POST an ``HX-Redirect`` (htmx would follow a redirect itself)."""
    if request.headers.get("HX-Request"):
        return HttpResponse(status=204, headers={"HX-Redirect": url})
    return redirect(url)


def test_call_response(modeladmin, request, form: TestCallForm, *, to: str, back: str) -> HttpResponse:
    """Place the test call the form describes to ``to`` and open its page (route, timeline), or go ``back`` saying why not."""
    data = form.cleaned_data
    try:
        call, _ = test_call_place(
            to=to, caller=data["caller"], from_city=data["from_city"], from_state=data["from_state"], from_zip=data["from_zip"],
            stir_verstat=data["stir_verstat"], caller_name=data["caller_name"], digits=data["digits"], clock=data["clock"], send_webhooks=data["send_webhooks"],
        )
    except TestCallError as exc:
        modeladmin.message_user(request, f"The test call to {to} could not be played: {exc}", messages.ERROR)
        return _go(request, back)
    modeladmin.message_user(
        request, f"Test call to {phone.format_national(to)} from {phone.format_national(data['caller'])}: {call.get_status_display().lower()}.",
        messages.SUCCESS,
    )
    return _go(request, reverse("admin:tracking_call_change", args=[call.pk]))


test_call_response.__test__ = False  # type: ignore[attr-defined]  # a view helper, not a pytest test


admin.site.unregister(Campaign)
admin.site.unregister(TrackingNumber)
admin.site.unregister(Handler)


@admin.register(Campaign)
class CampaignAdmin(BaseCampaignAdmin):
    actions_detail = ["test_call"]

    @action(description="Test call", url_path="test-call", icon="call", permissions=["change"], dialog=TEST_CALL_DIALOG)
    def test_call(self, request, form, object_id):
        """The test call dialog (GET); its POST plays a call to one of the campaign's tracking numbers and shows its page."""
        back = reverse("admin:tracking_campaign_change", args=[object_id])
        number = (TrackingNumber.objects.filter(campaign_id=object_id, status=NumberStatus.ACTIVE).order_by("kind", "number")
                  .values_list("number", flat=True).first())
        if number is None:
            self.message_user(request, "This campaign has no active tracking number to call: add one first.", messages.WARNING)
            return _go(request, back)
        return test_call_response(self, request, form, to=number, back=back)


@admin.register(TrackingNumber)
class TrackingNumberAdmin(BaseTrackingNumberAdmin):
    actions_detail = ["test_call"]

    @action(description="Test call", url_path="test-call", icon="call", permissions=["change"], dialog=TEST_CALL_DIALOG)
    def test_call(self, request, form, object_id):
        """The test call dialog (GET); its POST plays a call to this number (what simulate_call --test does) and opens its page."""
        number = self.get_object(request, object_id)
        back = reverse("admin:numbers_trackingnumber_change", args=[object_id])
        if number is None:
            return _go(request, back)
        return test_call_response(self, request, form, to=number.number, back=back)


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
