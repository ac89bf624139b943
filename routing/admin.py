"""Routing's piece of the admin: the "Test call" button of the campaign and tracking number pages."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse

from calltrack import phone
from routing.services.test_call import TEST_CALLER, TestCallError, test_call_place


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
