"""The admin's usage page and its CSV (issue 30: usage for rebilling), and the admin's home for a billing user.

Both answer to the gate's action ``usage.view`` (``calltrack.scoping.may``): every member of the account, billing
users included; no collaborator. A member sees the account it acts in; a superuser sees every account in one table
(an agency rebills each client). The figures are ``calltrack.usage``'s, which the API reads too.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from calltrack import usage
from calltrack.csv_export import csv_streaming_response
from calltrack.db_router import replica_reads
from calltrack.scoping import may, scope_for

TEMPLATE = "admin/usage.html"


def viewer_accounts(user: Any) -> tuple[list[int] | None, ZoneInfo]:
    """The accounts ``user`` sees the usage of (None: every account, for a superuser) and the zone its month picker
    reads "this month" in (the account it acts in)."""
    account_id = scope_for(user).account_id
    return (None if user.is_superuser else [account_id] if account_id is not None else []), usage.zone_of(account_id)


def _month(request: HttpRequest, tz: ZoneInfo) -> tuple[usage.Month, str]:
    text = request.GET.get("month")
    if not text:
        return usage.current_month(tz), ""
    try:
        return usage.Month.parse(text), ""
    except usage.UsageError as exc:
        return usage.current_month(tz), str(exc)


def _check(request: HttpRequest) -> None:
    if not may(request.user, "usage.view"):
        raise PermissionDenied("You may not see the usage.")


def usage_page(request: HttpRequest) -> HttpResponse:
    """GET /admin/calltrack/account/usage/?month=YYYY-MM: the month's figures of the account acted in (a superuser:
    of every account), and a picker of the last twelve months."""
    _check(request)
    ids, tz = viewer_accounts(request.user)
    month, error = _month(request, tz)
    with replica_reads():  # figures, like the dashboard's: from the replica when there is one
        rows = usage.accounts_usage(month, account_ids=ids)
    months = usage.recent_months(tz)
    if month not in months:  # a month asked for by its URL: shown in the picker as the one chosen
        months = sorted([*months, month], reverse=True)
    context = {
        **admin.site.each_context(request),
        "title": "Usage",
        "usage_error": error,
        "month": month,
        "months": [{"value": str(m), "label": m.label, "selected": m == month} for m in months],
        "figures": list(usage.FIGURES.values()),
        "rows": [{"usage": u, "cells": list(u.figures().values())} for u in rows],
        "every_account": ids is None,
        "csv_url": reverse("admin:calltrack_account_usage_export") + "?" + urlencode({"month": str(month)}),
    }
    return render(request, TEMPLATE, context)


def usage_export(request: HttpRequest) -> HttpResponseBase:
    """GET /admin/calltrack/account/usage/export.csv?month=YYYY-MM: the page's table as CSV (cells formula-safe)."""
    _check(request)
    ids, tz = viewer_accounts(request.user)
    month, error = _month(request, tz)
    if error:
        return HttpResponseBadRequest(error, content_type="text/plain; charset=utf-8")
    with replica_reads():
        rows = usage.accounts_usage(month, account_ids=ids)
    return csv_streaming_response(filename=f"usage-{month}.csv", header=usage.CSV_HEADER, rows=usage.csv_rows(rows))


def admin_index(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
    """The admin's home: the dashboard, except for a billing user, who sees the usage only (sent to its page)."""
    if scope_for(request.user).usage_only:
        return HttpResponseRedirect(reverse("admin:calltrack_account_usage"))
    return admin.site.index(request, extra_context)
