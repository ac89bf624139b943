"""Admin for the number lifecycle and pool life: actions, the port-in form, the pool chart and resize log.

Kept apart from ``numbers/admin.py`` and installed onto its ModelAdmins by
:func:`install`, so the base admin and these additions merge independently.
Every action calls the same services as the commands and the API.
"""

from __future__ import annotations

import io
from collections import defaultdict
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.safestring import mark_safe

from numbers.models import NumberPool, NumberStatus, PoolResize, TrackingNumber
from numbers.services import NumberError
from numbers.services.events import number_event_record
from numbers.services.importing import numbers_export
from numbers.services.lifecycle import BuyTarget, numbers_buy, numbers_move, numbers_quarantine, quarantine_days
from numbers.services.pools import pool_chart_svg
from numbers.services.porting import port_in_create, port_out_start
from tracking.models import Campaign, Source

TEMPLATE = "admin/numbers/lifecycle_form.html"


# --- forms ----------------------------------------------------------------------------------------------------------


class BuyMoreForm(forms.Form):
    count = forms.IntegerField(min_value=1, max_value=100, initial=1,
                               help_text="How many numbers to buy for each distinct area code and destination among the selected numbers.")


class MoveForm(forms.Form):
    pool = forms.ModelChoiceField(NumberPool.objects.all(), required=False, help_text="Move into this pool (numbers become pool numbers)…")
    campaign = forms.ModelChoiceField(Campaign.objects.all(), required=False, help_text="…or make them static numbers of this campaign.")
    source = forms.ModelChoiceField(Source.objects.all(), required=False, help_text="With a campaign: the source credited (its static number cap applies).")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if bool(data.get("pool")) == bool(data.get("campaign")):
            raise ValidationError("Choose a pool, or a campaign; not both.")
        return data


class PortOutForm(forms.Form):
    to_carrier = forms.CharField(max_length=100, help_text="The carrier the numbers go to. Calls keep routing until the port completes.")


class PortInForm(forms.Form):
    numbers = forms.CharField(widget=forms.Textarea(attrs={"rows": 8}),
                              help_text="The numbers to port in, one a line (E.164 or national format).")
    loa_name = forms.CharField(label="LOA name", max_length=200, help_text="Account holder signing the letter of authorization.")
    loa_address = forms.CharField(label="LOA address", widget=forms.Textarea(attrs={"rows": 3}),
                                  help_text="Service address on the losing carrier's account.")
    other_carrier = forms.CharField(max_length=100, required=False, help_text="The carrier the numbers are with now.")
    pool = forms.ModelChoiceField(NumberPool.objects.all(), required=False, help_text="The pool the numbers join on completion…")
    campaign = forms.ModelChoiceField(Campaign.objects.all(), required=False, help_text="…or the campaign they join as static numbers.")
    source = forms.ModelChoiceField(Source.objects.all(), required=False, help_text="With a campaign: the source credited.")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if bool(data.get("pool")) == bool(data.get("campaign")):
            raise ValidationError("Choose a pool, or a campaign; not both.")
        return data


def _intermediate(modeladmin, request: HttpRequest, queryset: QuerySet, form: forms.Form, *, title: str, action: str) -> HttpResponse:
    context = {
        **modeladmin.admin_site.each_context(request), "title": title, "form": form, "action": action,
        "queryset": queryset[:50], "count": queryset.count(), "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
        "opts": modeladmin.model._meta, "action_checkbox_name": ACTION_CHECKBOX_NAME,
    }
    return render(request, TEMPLATE, context)


def _report(modeladmin, request: HttpRequest, exc: NumberError) -> None:
    modeladmin.message_user(request, str(exc), level=messages.ERROR)


# --- actions --------------------------------------------------------------------------------------------------------


@admin.action(description="Buy more numbers like these", permissions=["add"])
def buy_more_like_these(modeladmin, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
    form = BuyMoreForm(request.POST if "apply" in request.POST else None)
    if not form.is_valid():
        return _intermediate(modeladmin, request, queryset, form, title="Buy more numbers like these", action="buy_more_like_these")
    groups: dict[tuple, int] = defaultdict(int)
    for n in queryset.select_related("pool", "campaign", "source"):
        if n.pool_id:
            key = (n.number_type == "toll_free", n.area_code, n.pool, None, None)
        else:
            key = (n.number_type == "toll_free", n.area_code, None, n.campaign, n.source)
        groups[key] += 1
    bought = 0
    for (toll_free, area_code, pool, campaign, source), _ in groups.items():
        where = {"toll_free": True} if toll_free else {"area_code": area_code}
        try:
            bought += len(numbers_buy(count=form.cleaned_data["count"], target=BuyTarget(pool=pool, campaign=campaign, source=source),
                                      actor=request.user, reason="Bought from the admin (like selected numbers)", **where))
        except NumberError as exc:
            _report(modeladmin, request, exc)
    if bought:
        modeladmin.message_user(request, f"Bought {bought} numbers.", level=messages.SUCCESS)
    return None


@admin.action(description="Release (quarantine, then give back to the carrier)", permissions=["change"])
def release_numbers(modeladmin, request: HttpRequest, queryset: QuerySet) -> None:
    try:
        changed = numbers_quarantine(numbers=list(queryset), reason="Released from the admin", actor=request.user)
    except NumberError as exc:
        return _report(modeladmin, request, exc)
    modeladmin.message_user(
        request, f"{len(changed)} numbers quarantined for {quarantine_days()} days; then they are released at the carrier.",
        level=messages.SUCCESS,
    )


@admin.action(description="Move to a pool or campaign", permissions=["change"])
def move_numbers(modeladmin, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
    form = MoveForm(request.POST if "apply" in request.POST else None)
    if not form.is_valid():
        return _intermediate(modeladmin, request, queryset, form, title="Move numbers", action="move_numbers")
    data = form.cleaned_data
    try:
        moved = numbers_move(numbers=list(queryset), pool=data["pool"], campaign=data["campaign"], source=data["source"], actor=request.user)
    except NumberError as exc:
        return _report(modeladmin, request, exc)
    modeladmin.message_user(request, f"Moved {moved} numbers.", level=messages.SUCCESS)
    return None


@admin.action(description="Port out to another carrier", permissions=["change"])
def port_out_numbers(modeladmin, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
    form = PortOutForm(request.POST if "apply" in request.POST else None)
    if not form.is_valid():
        return _intermediate(modeladmin, request, queryset, form, title="Port numbers out", action="port_out_numbers")
    try:
        port = port_out_start(numbers=[n.number for n in queryset], to_carrier=form.cleaned_data["to_carrier"], actor=request.user)
    except NumberError as exc:
        return _report(modeladmin, request, exc)
    modeladmin.message_user(request, f"Port-out #{port.pk}: {len(port.numbers)} numbers porting out.", level=messages.SUCCESS)
    return None


@admin.action(description="Start a port-in (form)", permissions=["add"])
def start_port_in(modeladmin, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
    return HttpResponseRedirect(reverse("admin:numbers_trackingnumber_port_in"))


@admin.action(description="Export selected as CSV")
def export_numbers(modeladmin, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
    out = io.StringIO()
    numbers_export(out=out, numbers=queryset, include_released=True)
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="numbers-{timezone.now():%Y%m%d-%H%M}.csv"'
    return response


ACTIONS = [buy_more_like_these, release_numbers, move_numbers, port_out_numbers, start_port_in, export_numbers]


def port_in_view(modeladmin, request: HttpRequest) -> HttpResponse:
    if not modeladmin.has_add_permission(request):
        return HttpResponse(status=403)
    form = PortInForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            port = port_in_create(
                numbers=[line for line in data["numbers"].splitlines() if line.strip()], loa_name=data["loa_name"],
                loa_address=data["loa_address"], other_carrier=data["other_carrier"], pool=data["pool"],
                campaign=data["campaign"], source=data["source"], actor=request.user,
            )
        except NumberError as exc:
            form.add_error(None, str(exc))
        else:
            modeladmin.message_user(request, f"Port-in #{port.pk} of {len(port.numbers)} numbers: {port.get_status_display().lower()}.",
                                    level=messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:numbers_portrequest_change", args=[port.pk]))
    context = {**modeladmin.admin_site.each_context(request), "title": "Start a port-in", "form": form, "opts": modeladmin.model._meta,
               "action": ""}
    return render(request, TEMPLATE, context)


# --- the tracking number form: rules the model cannot see -----------------------------------------------------------


def _guard_form(base: type[forms.ModelForm]) -> type[forms.ModelForm]:
    class LifecycleTrackingNumberForm(base):
        def clean(self) -> dict[str, Any]:
            data = super().clean()
            instance = self.instance
            if instance.pk:
                old = TrackingNumber.objects.filter(pk=instance.pk).values("pool_id", "status").first() or {}
                new_pool = data.get("pool")
                if old.get("pool_id") and (new_pool.pk if new_pool else None) != old["pool_id"]:
                    raise ValidationError({"pool": "A number leaving a pool is quarantined first: use the 'Release' action."})
                if old.get("status") in (NumberStatus.QUARANTINED, NumberStatus.PORTING_OUT, NumberStatus.PORTING_IN) and new_pool \
                        and new_pool.pk != old.get("pool_id"):
                    raise ValidationError({"pool": f"This number is {old['status'].replace('_', ' ')}; it cannot join a pool."})
            return data

    return LifecycleTrackingNumberForm


# --- pools ----------------------------------------------------------------------------------------------------------


class PoolResizeInline(admin.TabularInline):
    model = PoolResize
    extra = 0
    can_delete = False
    fields = ["at", "from_size", "to_size", "peak_sessions", "reason"]
    readonly_fields = fields
    verbose_name_plural = "resizes (autoscaling log)"
    max_num = 0

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-at")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.display(description="sessions vs size (24 h)")
def usage_chart(self, obj: NumberPool) -> str:
    if not obj.pk:
        return "-"
    return mark_safe(pool_chart_svg(pool=obj, hours=24))  # built from numbers and escaped text only


# --- install ----------------------------------------------------------------------------------------------------------


def install(tracking_admin: type[admin.ModelAdmin], pool_admin: type[admin.ModelAdmin]) -> None:
    """Add the lifecycle actions, port-in view and form guard to TrackingNumberAdmin; the chart and log to NumberPoolAdmin."""
    tracking_admin.actions = [*(tracking_admin.actions or []), *ACTIONS]
    tracking_admin.form = _guard_form(tracking_admin.form)
    # Status changes go through the actions (quarantine, ports), so the rules and the history hold.
    tracking_admin.readonly_fields = [*tracking_admin.readonly_fields, "status"]

    base_urls = tracking_admin.get_urls

    def get_urls(self):
        view = self.admin_site.admin_view(lambda request: port_in_view(self, request))
        return [path("port-in/", view, name="numbers_trackingnumber_port_in"), *base_urls(self)]

    tracking_admin.get_urls = get_urls

    base_save = tracking_admin.save_model

    def save_model(self, request, obj, form, change):
        watched = ["kind", "campaign_id", "source_id", "pool_id", "label", "marketing_data", "failsafe_number", "status"]
        before = TrackingNumber.objects.filter(pk=obj.pk).values(*watched).first() if change else None
        base_save(self, request, obj, form, change)
        if before is None:
            number_event_record(number=obj, from_status="", to_status=obj.status, actor=request.user,
                                reason="Added in the admin", changes={"kind": obj.kind})
            return
        diff = {f.removesuffix("_id"): [before[f], getattr(obj, f)] for f in watched if before[f] != getattr(obj, f)}
        if diff:
            number_event_record(number=obj, from_status=before["status"], to_status=obj.status, actor=request.user,
                                reason="Edited in the admin", changes=diff)

    tracking_admin.save_model = save_model

    for inline in pool_admin.inlines:  # a pool's number list shows status; changes go through the actions
        if inline.model is TrackingNumber and "status" in getattr(inline, "fields", []):
            inline.readonly_fields = [*inline.readonly_fields, "status"]
    pool_admin.usage_chart = usage_chart
    pool_admin.readonly_fields = [*pool_admin.readonly_fields, "usage_chart"]
    pool_admin.fieldsets = [*pool_admin.fieldsets, ("Usage", {"fields": ["usage_chart"]})]
    pool_admin.inlines = [*pool_admin.inlines, PoolResizeInline]

