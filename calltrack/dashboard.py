"""The admin's landing page: the operator's dashboard (django-unfold's ``DASHBOARD_CALLBACK``).

Every figure comes from ``calltrack.reports`` (the selector the API's reports read too), for the requester's
scope (``calltrack.scoping``). This module only reads the range picker's query parameters and shapes the
selector's results for ``templates/admin/index.html``: headline cards, the Chart.js data that django-unfold
ships and renders, the breakdown table (one dimension at a time, sortable), and the alerts.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import phonenumbers
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.dateparse import parse_date

from calltrack import phone, reports, spam_figures, text_figures
from calltrack.db_router import replica_reads
from calltrack.formats import money
from calltrack.scoping import (
    SIDE_FIELDS,
    Scope,
    may,
    report_dimensions,
    report_hidden,
    scope_for,
    visible_alerts,
    visible_sources,
)

#: Outcome colours of the stacked chart (answered green, missed amber, blocked red, live grey).
OUTCOME_COLORS = {"answered": "#16a34a", "missed": "#f59e0b", "blocked": "#dc2626", "live": "#9ca3af"}
#: Breakdown table columns: key -> (heading, kind).
COLUMNS: dict[str, tuple[str, str]] = {
    "calls": ("Calls", "count"),
    "answered": ("Answered", "count"),
    "answer_rate": ("Answer rate", "rate"),
    "converted": ("Converted", "count"),
    "conversion_rate": ("Conv. rate", "rate"),
    "revenue": ("Revenue", "money"),
    "payout": ("Payout", "money"),
    "margin": ("Margin", "money"),
    "average_talk_time": ("Avg talk", "seconds"),
}


def may_see_dashboard(user: Any) -> bool:
    """Collaborators (their own figures) and staff who may view calls; never a billing user (the usage only)."""
    scope = scope_for(user)
    if scope.usage_only:
        return False
    return scope.is_collaborator or (user.is_active and user.is_staff and user.has_perm("tracking.view_call"))


def fmt(value: Any, kind: str, currency: str | None = None) -> str:
    """A figure as the dashboard shows it (money in ``currency``, an ISO 4217 code; None: the install's)."""
    if value is None:
        return "–"
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "money":
        return money(value, currency)
    if kind == "seconds":
        seconds = round(value)
        return f"{seconds // 60}:{seconds % 60:02d}"
    return f"{value:,}"


def period_from_query(query: Any, *, tz=None) -> tuple[reports.Period, str]:
    """The range picker's period (``?range=7d`` or ``?range=custom&from=YYYY-MM-DD&to=YYYY-MM-DD``), and an
    error message when the parameters could not be used (the default range is shown then)."""
    key = query.get("range") or reports.DEFAULT_RANGE
    first, last = _date(query.get("from")), _date(query.get("to"))
    try:
        return reports.period_for(key, tz=tz, first_day=first, last_day=last), ""
    except reports.ReportError as exc:
        return reports.period_for(reports.DEFAULT_RANGE, tz=tz), str(exc)


def _date(text: str | None) -> date | None:
    if not text or len(text) > 10 or "\x00" in text:
        return None
    try:
        return parse_date(text)
    except ValueError:
        return None


def call_log_url(period: reports.Period, extra: dict[str, str] | None = None) -> str:
    return reverse("admin:tracking_call_changelist") + "?" + urlencode({**(extra or {}), **reports.call_log_params(period)})


def dashboard_context(request: Any) -> dict[str, Any]:
    """Everything ``templates/admin/index.html`` shows, for ``request.user``'s scope."""
    scope: Scope = scope_for(request.user)
    # The account's days (its time zone) and money (its currency), each the install's when the account has none.
    tz, currency = reports.operator_settings(request.user)
    period, error = period_from_query(request.GET, tz=tz)
    hidden = report_hidden(scope)
    dimensions = [d for d in reports.DIMENSIONS if d in report_dimensions(scope)]
    by = request.GET.get("by") if request.GET.get("by") in dimensions else dimensions[0]
    # The figures from the replica when there is one (DATABASE_REPLICA_URL); the alert episodes below stay on the
    # primary (the cluster check may open one, an acknowledgement shows at once).
    with replica_reads():
        summary = reports.report_summary(scope=scope, period=period)
        buckets = reports.report_timeseries(scope=scope, period=period)
        rows = reports.report_breakdown(scope=scope, period=period, by=by)
        flags = reports.report_alerts(scope=scope, period=period)
        ad_uploads = reports.report_ad_uploads(scope=scope, period=period)
        spam = spam_panel(scope, period)
        texts = texts_panel(scope, period, currency=currency)
    columns = {k: v for k, v in COLUMNS.items() if k not in hidden}
    sort = request.GET.get("sort", "-calls")
    sort_key = sort.lstrip("-")
    if sort_key in columns or sort_key == "label":
        reverse_sort = sort.startswith("-")
        rows.sort(key=lambda r: _sort_value(r, sort_key), reverse=reverse_sort)
    base = {"range": period.key, "by": by}
    if period.key == "custom":
        base.update({"from": period.first_day.isoformat(), "to": period.last_day.isoformat()})
    return {
        "dashboard": True,
        "dashboard_error": error,
        "period": period,
        "previous_period": summary.previous_period,
        "scope_kind": scope.kind,
        "ranges": [
            {"key": key, "label": label, "active": key == period.key, "url": "?" + urlencode({"range": key, "by": by})}
            for key, label in reports.RANGES.items() if key != "custom"
        ],
        "custom_from": period.first_day.isoformat(),
        "custom_to": period.last_day.isoformat(),
        "by": by,
        "figures": _figures(summary, hidden, period, scope.kind, currency),
        "currency": currency,
        "chart_data": json.dumps(_chart(buckets)),
        "chart_options": json.dumps(_chart_options()),
        "chart_title": "Calls by hour" if period.hourly else "Calls by day",
        "breakdown_tabs": [
            {"key": d, "label": reports.DIMENSIONS[d], "active": d == by, "url": "?" + urlencode({**base, "by": d})} for d in dimensions
        ],
        "breakdown_columns": [
            {"key": k, "label": label, "url": "?" + urlencode({**base, "sort": ("" if sort == f"-{k}" else "-") + k}),
             "sorted": sort_key == k, "desc": sort.startswith("-")}
            for k, (label, _) in columns.items()
        ],
        "breakdown_label_url": "?" + urlencode({**base, "sort": "label" if sort != "label" else "-label"}),
        "breakdown_rows": [
            {
                "label": row.label,
                "url": call_log_url(period, row.log_filter),
                "cells": [fmt(_value(row.totals, k), kind, currency) for k, (_, kind) in columns.items()],
            }
            for row in rows
        ],
        **_stored_alerts(request, scope, flags),
        # "Sent to ad platforms", per destination (staff only: empty for a collaborator).
        "ad_uploads": [
            {**vars(f), "url": reverse("admin:tracking_conversionupload_changelist") + f"?destination__id__exact={f.destination_id}"}
            for f in ad_uploads
        ],
        "call_log_url": call_log_url(period),
        "spam": spam,
        "texts": texts,
    }


def texts_panel(scope: Scope, period: reports.Period, *, currency: str | None = None) -> dict[str, Any] | None:
    """The texts panel (``calltrack.text_figures``): received, sent, contacts, conversions and money, a chart of the
    texts over the period, and the received texts by source and by campaign; each linked into the texts log. None
    when the period has no text (a campaign that does not use texts sees no empty panel)."""
    figures = text_figures.text_figures(scope=scope, period=period)
    if not (figures.received or figures.sent or figures.waiting or figures.failed):
        return None
    log = reverse("admin:tracking_textmessage_changelist")
    utc = ZoneInfo("UTC")
    days = {"created_at__gte": period.start.astimezone(utc).isoformat(), "created_at__lt": period.end.astimezone(utc).isoformat()}

    def url(extra: dict[str, str] | None = None) -> str:
        return f"{log}?{urlencode({**days, **(extra or {})})}"

    def rows(items: list[text_figures.TextRow], by: str) -> list[dict[str, Any]]:
        return [{"label": r.label, "received": fmt(r.received, "count"), "converted": fmt(r.converted, "count"),
                 "revenue": fmt(r.revenue, "money", currency) if r.revenue is not None else None,
                 "payout": fmt(r.payout, "money", currency) if r.payout is not None else None,
                 "url": url({f"{by}__id__exact": str(r.key)} if r.key is not None else {f"{by}__isnull": "True"})} for r in items]

    chart = {"labels": [label for label, _, _ in figures.series], "datasets": [
        {"type": "bar", "label": "Received", "data": [n for _, n, _ in figures.series], "backgroundColor": "#0ea5e9", "borderRadius": 2},
        {"type": "bar", "label": "Sent", "data": [n for _, _, n in figures.series], "backgroundColor": "#a78bfa", "borderRadius": 2},
    ]}
    return {
        "figures": [
            {"key": "texts-received", "label": "Texts received", "value": fmt(figures.received, "count"), "url": url({"direction__exact": "inbound"})},
            {"key": "texts-sent", "label": "Texts sent", "value": fmt(figures.sent, "count"), "url": url({"delivery": "sent"})},
            *([{"key": "texts-waiting", "label": "Forwards waiting", "value": fmt(figures.waiting, "count"), "url": url({"delivery": "waiting"})}]
              if figures.waiting else []),
            *([{"key": "texts-failed", "label": "Texts not sent", "value": fmt(figures.failed, "count"), "url": url({"delivery": "failed"})}]
              if figures.failed else []),
            {"key": "texts-contacts", "label": "Contacts who texted", "value": fmt(figures.contacts, "count"), "url": url()},
            {"key": "texts-converted", "label": "Texts converted", "value": fmt(figures.converted, "count"), "url": url({"converted__exact": "1"})},
            *([{"key": "texts-revenue", "label": "Text revenue", "value": fmt(figures.revenue, "money", currency), "url": ""}] if figures.revenue is not None else []),
            *([{"key": "texts-payout", "label": "Text payout", "value": fmt(figures.payout, "money", currency), "url": ""}] if figures.payout is not None else []),
        ],
        "chart_data": json.dumps(chart),
        "chart_options": json.dumps({**_chart_options(), "plugins": {"legend": {"display": True, "position": "top", "align": "end"}}}),
        "by_source": rows(figures.by_source, "source"),
        "by_campaign": rows(figures.by_campaign, "campaign"),
        "money": figures.revenue is not None or figures.payout is not None,
        "log_url": url(),
    }


def spam_panel(scope: Scope, period: reports.Period) -> dict[str, Any] | None:
    """The spam panel (``calltrack.spam_figures``), each figure linked to the call log filtered to its calls; None
    when no call of the period was scored (no campaign scores calls, or none rang). Collaborators get the counts and
    the callers, filtered by the tag they see; staff also what was done and why (the log's spam filter)."""
    figures = spam_figures.spam_figures(scope=scope, period=period)
    if not figures.scored:
        return None
    spam_calls = {"tag": "spam:yes"}
    share = figures.spam / figures.scored
    return {
        "scored": fmt(figures.scored, "count"),
        "spam": fmt(figures.spam, "count"),
        "share": fmt(share, "rate"),
        "url": call_log_url(period, spam_calls),
        "detail": figures.detail,
        "actions": [
            {"key": key, "label": label, "calls": fmt(n, "count"), "url": call_log_url(period, {"spam": key}),
             "sub": label.startswith("…")}
            for key, label, n in figures.actions
        ],
        "reasons": [
            {"code": code, "label": label, "calls": fmt(n, "count"), "url": call_log_url(period, {"spam": f"reason:{code}"})}
            for code, label, n in figures.reasons
        ],
        "callers": [
            {"number": number, "shown": _number_shown(number), "calls": fmt(n, "count"),
             "url": call_log_url(period, {**spam_calls, "q": number})}
            for number, n in figures.callers
        ],
    }


def _number_shown(number: str) -> str:
    """A caller's number as people read it ((415) 555-0100), or as received when it is none (anonymous)."""
    try:
        return phone.format_national(number) if number.startswith("+") else number
    except phonenumbers.NumberParseException:
        return number


def _stored_alerts(request: Any, scope: Scope, flags: list[reports.Alert]) -> dict[str, Any]:
    """The alerts kept as episodes (``tracking.Alert``) not yet acknowledged, with an ack button for who may; the
    period's flags that no open episode already shows; the paused sources. All through the gate."""
    from tracking.models import Alert, Source
    from tracking.services.alerts import alerts_notify, cluster_check, report_alert_key

    if not scope.is_collaborator:
        # The cluster cannot say it is down: the dashboard notices its overdue check, and sends that alert itself.
        down = cluster_check()
        if down is not None:
            alerts_notify(alert_ids=[down.pk])
    stored: list[dict[str, Any]] = []
    open_keys: set[str] = set()
    if may(request.user, "alert.view"):
        alerts = visible_alerts(Alert.objects.filter(silent=False), scope)
        open_keys = set(alerts.open().values_list("key", flat=True))
        may_ack = may(request.user, "alert.acknowledge", admin=True)
        stored = [
            {"id": a.pk, "kind": a.kind, "level": a.level, "message": a.message, "url": a.url, "open": a.cleared_at is None,
             "opened_at": a.opened_at,
             "ack_url": reverse("admin:tracking_alert_acknowledge", args=(a.pk,)) if may_ack else ""}
            for a in alerts.unacknowledged().order_by("-opened_at", "-id")[:20]
        ]
    paused = [
        {"name": s.name, "since": s.paused_at, "reason": s.paused_reason or "",
         "url": _admin_url("admin:tracking_source_change", s.pk) if not scope.is_collaborator else ""}
        for s in visible_sources(Source.objects.filter(paused_at__isnull=False), scope).order_by("paused_at")
    ]
    return {
        "stored_alerts": stored,
        "alerts": [_alert(a) for a in flags if report_alert_key(a, scope.account_id) not in open_keys],
        "paused_sources": paused,
        "request_path": request.get_full_path(),
    }


def _admin_url(name: str, pk: int) -> str:
    try:
        return reverse(name, args=(pk,))
    except NoReverseMatch:
        return ""


def _sort_value(row: reports.BreakdownRow, key: str) -> Any:
    if key == "label":
        return row.label.lower()
    value = _value(row.totals, key)
    return -1 if value is None else value


def _value(totals: reports.Totals, key: str) -> Any:
    return getattr(totals, key)


def _figures(
    summary: reports.Summary, hidden: frozenset[str], period: reports.Period, scope_kind: str | None, currency: str | None = None,
) -> list[dict[str, Any]]:
    out = []
    for key, (label, kind) in reports.FIGURES.items():
        if key in hidden:
            continue
        now, before = getattr(summary.current, key), getattr(summary.previous, key)
        change = summary.change(key)
        if change is None:
            # Nothing before (or a hidden figure): say so rather than show an infinite rise.
            trend, change_text = "flat", ("new" if now else "no change") if before is not None and not before else ""
        else:
            trend = "up" if change > 0 else ("down" if change < 0 else "flat")
            change_text = (f"{change * 100:+.0f}%" if kind != "rate" else f"{(now - before) * 100:+.1f} pts") if change else "no change"
        # A source's payout is its income: a rise is good news for it, bad news for the operator paying it.
        rise_is_bad = key in reports.RISE_IS_BAD and not (key == "payout" and scope_kind == "source")
        good = trend == "flat" or ((trend == "up") != rise_is_bad)
        link = None
        if key in ("calls", "answered", "missed", "blocked", "converted", "failsafe"):
            filters = _FIGURE_FILTERS.get(key)
            if key == "converted":  # a collaborator's own side (calltrack.scoping.SIDE_FIELDS)
                filters = {f"{SIDE_FIELDS.get(scope_kind or '', {}).get('converted', 'converted')}__exact": "1"}
            link = call_log_url(period, filters)
        out.append({
            "key": key, "label": label, "value": fmt(now, kind, currency), "previous": fmt(before, kind, currency),
            "change": change_text, "trend": trend, "good": good, "url": link,
        })
    return out


#: The call log's lookups that select a headline figure's calls.
_FIGURE_FILTERS = {
    "answered": {"answered_at__isnull": "False"},
    "blocked": {"status__exact": "rejected"},
    "converted": {"converted__exact": "1"},
    "failsafe": {"used_failsafe__exact": "1"},
    "missed": {"answered_at__isnull": "True", "status__in": "completed,busy,no_answer,failed,canceled"},
}


def _chart(buckets: list[reports.Bucket], *, now: datetime | None = None) -> dict[str, Any]:
    """The chart's data. Hours (or days) still to come have no value, not 0: the bars and the line stop at now.
    The conversions' line is monotone (Chart.js' monotone cubic): it never swings above or below its points."""
    now = now or timezone.now()
    past = [b.start <= now for b in buckets]
    datasets: list[dict[str, Any]] = [
        {"type": "bar", "label": name.capitalize(), "data": [getattr(b, name) if p else None for b, p in zip(buckets, past)],
         "backgroundColor": color, "stack": "calls", "borderRadius": 2, "order": 2}
        for name, color in OUTCOME_COLORS.items()
    ]
    datasets.append({
        "type": "line", "label": "Converted", "data": [b.converted if p else None for b, p in zip(buckets, past)],
        "borderColor": "#7c3aed", "backgroundColor": "#7c3aed", "borderWidth": 2, "pointRadius": 2,
        "cubicInterpolationMode": "monotone", "spanGaps": False, "order": 1,
    })
    return {"labels": [b.label for b in buckets], "datasets": datasets}


def _chart_options() -> dict[str, Any]:
    return {
        "maintainAspectRatio": False,
        "animation": False,
        "plugins": {"legend": {"display": True, "position": "top", "align": "end",
                               "labels": {"boxWidth": 10, "boxHeight": 10, "color": "#6b7280"}}},
        "scales": {
            "x": {"stacked": True, "grid": {"display": False}, "ticks": {"color": "#6b7280", "maxRotation": 0, "autoSkip": True}},
            "y": {"stacked": True, "beginAtZero": True, "ticks": {"color": "#6b7280", "precision": 0}},
        },
    }


def _alert(alert: reports.Alert) -> dict[str, Any]:
    url = ""
    if alert.url_name:
        try:
            url = reverse(alert.url_name, args=alert.url_args)
        except NoReverseMatch:  # that model has no admin page
            url = ""
        if url and alert.url_query:
            url += "?" + urlencode(alert.url_query)
    return {"kind": alert.kind, "level": alert.level, "message": alert.message, "url": url}


def dashboard_callback(request: Any, context: dict[str, Any]) -> dict[str, Any]:
    """django-unfold calls this for the admin index: add the dashboard for those who may see it."""
    if may_see_dashboard(request.user):
        context.update(dashboard_context(request))
    return context
