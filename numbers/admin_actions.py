"""Tracking number admin actions and the port-in page: every one calls the same services as the commands and the API."""

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
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from calltrack.admin_base import account_form
from calltrack.numbers.models import NumberPool
from calltrack.numbers.services import NumberError
from calltrack.numbers.services.importing import numbers_export
from calltrack.numbers.services.lifecycle import BuyTarget, numbers_buy, numbers_move, numbers_quarantine, quarantine_days
from calltrack.numbers.services.porting import port_in_create, port_out_start
from tracking.models import Campaign, Source

TEMPLATE = "admin/numbers/lifecycle_form.html"


# --- forms ----------------------------------------------------------------------------------------------------------


class BuyMoreForm(forms.Form):
    count = forms.IntegerField(min_value=1, max_value=100, initial=1,
                               help_text="How many numbers to buy for each distinct area code and destination among the selected numbers.")


class MoveForm(forms.Form):
    pool = forms.ModelChoiceField(NumberPool.objects.all(), required=False, help_text="Move into this pool (numbers become pool numbers)…")
    campaign = forms.ModelChoiceField(Campaign.objects.all(), required=False, help_text="…or make them static numbers of this campaign.")
    source = forms.ModelChoiceField(Source.objects.all(), required=False, help_text=_("With a campaign: the source credited (its static number cap applies)."))

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
    source = forms.ModelChoiceField(Source.objects.all(), required=False, help_text=_("With a campaign: the source credited."))

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
    for (toll_free, area_code, pool, campaign, source), _count in groups.items():
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
    form = account_form(MoveForm(request.POST if "apply" in request.POST else None), request)
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


@admin.action(description="Export selected as CSV", permissions=["export"])
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
    form = account_form(PortInForm(request.POST or None), request)
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
