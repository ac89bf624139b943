"""Fraud monitors: a source's or a handler's traffic in a rolling window against its own baseline; a source's pause.

Each monitor measures one share of calls (short calls, repeat callers, calls outside the campaign's hours, the answer
rate, the conversion rate) over its window (the last ``window_minutes``) and over its baseline (the
``baseline_hours`` before the window), and triggers when the window's share moved ``threshold_points`` percentage
points the bad way. A window with fewer than ``min_calls`` calls is not judged (nothing opens or clears); a baseline
with fewer is no baseline: a rise is measured from 0, a drop not at all. Test calls and calls that went to the
fail-safe (a paused source's among them) are left out.

A monitor that triggers opens an alert episode (``tracking.services.alerts``; silent when the monitor does not
alert) and, when it says so, pauses the source once per episode: the source's calls then go where a disabled
campaign's go (``routing.services.calls.incoming_answer``) until :func:`source_resume`.

Everything here runs in the scheduled ``calltrack.alerts_check.alerts_check_task``, never on the voice path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from calltrack import hours as hours_rules
from calltrack.model_writes import instance_apply_and_save
from tracking.models import (
    DROP_KINDS,
    AlertKind,
    AlertLevel,
    Call,
    CallStatus,
    CampaignHandler,
    FraudMonitor,
    MonitorKind,
    Source,
)
from tracking.services.alerts import AlertSpec, alert_clear, alert_raise

# --- A source's pause ----------------------------------------------------------------------------------------------


def source_pause(*, source: Source, reason: str, at: datetime | None = None) -> bool:
    """Pause ``source`` (a conditional UPDATE: a source already paused keeps its first reason). Its calls then go to
    the campaign's fail-safe. Returns whether this call paused it."""
    at = at or timezone.now()
    done = Source.objects.filter(pk=source.pk, paused_at__isnull=True).update(paused_at=at, paused_reason=reason[:300])
    if done:
        source.paused_at, source.paused_reason = at, reason[:300]
    return done > 0


def source_resume(*, source: Source) -> bool:
    """Resume a paused source: its calls are routed again. Idempotent; returns whether it was paused."""
    done = Source.objects.filter(pk=source.pk, paused_at__isnull=False).update(paused_at=None, paused_reason=None)
    source.paused_at = source.paused_reason = None
    return done > 0


# --- Monitors: writes ----------------------------------------------------------------------------------------------


def monitor_create(*, fields: Mapping[str, Any]) -> FraudMonitor:
    """Create a monitor after full validation (a source or a handler, not both; only a source is paused)."""
    return instance_apply_and_save(instance=FraudMonitor(), fields=fields)


def monitor_update(*, monitor: FraudMonitor, fields: Mapping[str, Any]) -> FraudMonitor:
    """Change the given fields after full validation (the last evaluation's columns are the task's)."""
    return instance_apply_and_save(instance=monitor, fields=fields)


def monitor_delete(*, monitor: FraudMonitor) -> None:
    """Delete a monitor; its alerts stay (without it)."""
    monitor.delete()


# --- Measuring ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    """One monitor's figures for one subject: the calls counted and those with the trait, in the window and in the
    baseline; ``triggered`` None when not judged (too few calls)."""

    calls: int
    hits: int
    baseline_calls: int
    baseline_hits: int
    value: float | None
    baseline: float | None
    triggered: bool | None

    def words(self, monitor: FraudMonitor) -> str:
        if self.value is None:
            return f"{self.calls} calls in the last {monitor.window_minutes} min (fewer than {monitor.min_calls}): not judged"
        base = f"{self.baseline * 100:.0f}%" if self.baseline is not None else "no baseline"
        return (f"{_TRAIT[monitor.kind]} {self.value * 100:.0f}% of {self.calls} calls in the last {monitor.window_minutes} min, "
                f"baseline {base} ({self.baseline_calls} calls)")


_TRAIT: dict[str, str] = {
    MonitorKind.ANSWER_RATE_DROP: "answered",
    MonitorKind.SHORT_CALLS: "short",
    MonitorKind.REPEAT_CALLERS: "repeat callers",
    MonitorKind.OFF_HOURS: "outside hours",
    MonitorKind.CONVERSION_RATE_DROP: "converted",
}

_COLUMNS = ("started_at", "status", "answered_at", "talk_time", "caller_number", "campaign_id", "payout_converted",
            "revenue_converted")


class _Hours:
    """Whether any enabled handler of a campaign is open at a time (the campaign's hours), read once per run."""

    def __init__(self, campaign_ids: set[int]) -> None:
        self.by_campaign: dict[int, list[tuple[dict[str, list[str]], str, bool]]] = {}
        rows = CampaignHandler.objects.filter(campaign_id__in=campaign_ids, enabled=True, handler__enabled=True).values_list(
            "campaign_id", "handler__business_hours", "handler__timezone", "handler__always_open")
        for campaign_id, hours, tz, always in rows:
            self.by_campaign.setdefault(campaign_id, []).append((hours or {}, tz, always))

    def known(self, campaign_id: int | None) -> bool:
        return campaign_id is not None and campaign_id in self.by_campaign

    def open_at(self, campaign_id: int, at: datetime) -> bool:
        return any(hours_rules.is_open(h, tz, at, always_open=always) for h, tz, always in self.by_campaign[campaign_id])


def monitor_measure(monitor: FraudMonitor, *, source_id: int | None = None, handler_id: int | None = None,
                    at: datetime | None = None) -> Measure:
    """Measure ``monitor`` for one subject (a source, or a handler) at ``at``: one read of the subject's calls over
    the baseline and the window (their few columns), the shares worked out here."""
    at = at or timezone.now()
    window_start = at - timedelta(minutes=monitor.window_minutes)
    baseline_start = window_start - timedelta(hours=monitor.baseline_hours)
    calls = Call.objects.filter(is_test=False, used_failsafe=False, started_at__gte=baseline_start, started_at__lt=at)
    if source_id is None and handler_id is None:
        raise ValueError("measure a source or a handler")
    calls = calls.filter(source_id=source_id) if source_id is not None else calls.filter(handler_id=handler_id or 0)
    rows = list(calls.order_by("started_at", "id").values_list(*_COLUMNS))
    final = CallStatus.final()
    kind = monitor.kind
    hours = _Hours({r[5] for r in rows if r[5] is not None}) if kind == MonitorKind.OFF_HOURS else None
    last_call: dict[str, datetime] = {}
    repeat_gap = timedelta(minutes=monitor.window_minutes)
    counts = {True: [0, 0], False: [0, 0]}  # in the window? -> [calls, hits]
    for started, status, answered, talk, caller, campaign_id, payout_conv, revenue_conv in rows:
        counted = hit = False
        if kind == MonitorKind.ANSWER_RATE_DROP:
            counted, hit = status in final, answered is not None
        elif kind == MonitorKind.SHORT_CALLS:
            counted = status in final and answered is not None
            hit = talk < monitor.short_seconds
        elif kind == MonitorKind.CONVERSION_RATE_DROP:
            counted = status in final and answered is not None
            hit = bool(payout_conv if source_id is not None else revenue_conv)
        elif kind == MonitorKind.REPEAT_CALLERS:
            counted = True
            real = caller.startswith("+")
            hit = real and caller in last_call and started - last_call[caller] <= repeat_gap
            if real:
                last_call[caller] = started
        elif kind == MonitorKind.OFF_HOURS and hours is not None and hours.known(campaign_id):
            counted, hit = True, not hours.open_at(campaign_id, started)
        if counted:
            bucket = counts[started >= window_start]
            bucket[0] += 1
            bucket[1] += hit
    (n, hits), (bn, bhits) = counts[True], counts[False]
    value = hits / n if n >= monitor.min_calls else None
    baseline = bhits / bn if bn >= monitor.min_calls else None
    triggered: bool | None = None
    points = monitor.threshold_points / 100
    if value is not None:
        if kind in DROP_KINDS:
            triggered = None if baseline is None else (baseline - value) >= points - 1e-9
        else:
            triggered = (value - (baseline or 0.0)) >= points - 1e-9
    return Measure(n, hits, bn, bhits, value, baseline, triggered)


def _subjects(monitor: FraudMonitor, at: datetime) -> list[tuple[str, Any]]:
    """(kind, party) pairs the monitor watches: its source, its handler, or every source of its account with calls in
    the window."""
    if monitor.source_id is not None:
        return [("source", monitor.source)]
    if monitor.handler_id is not None:
        return [("handler", monitor.handler)]
    # Every source of the monitor's own account (another account's sources are not its business).
    since = at - timedelta(minutes=monitor.window_minutes)
    account_id = int(monitor.account_id or 0)  # never null (account_field); typed so by the stubs
    ids = set(Call.objects.filter(account_id=account_id, started_at__gte=since, started_at__lt=at, source__isnull=False)
              .values_list("source_id", flat=True).distinct())
    return [("source", s) for s in Source.objects.filter(pk__in=ids, account_id=account_id).order_by("pk")]


def monitor_key(monitor: FraudMonitor, kind: str, party_id: int) -> str:
    return f"fraud_monitor:{monitor.pk}:{kind}:{party_id}"


def monitor_check(*, monitor: FraudMonitor, at: datetime | None = None) -> list[str]:
    """Evaluate one monitor for each subject it watches: open (or see again) its episode when it triggers, pausing the
    source once per episode when the monitor says so; clear it when the window is judged fine. Returns what it
    found, in words (also kept on the monitor as its last result)."""
    at = at or timezone.now()
    notes = []
    for kind, party in _subjects(monitor, at):
        measure = monitor_measure(monitor, source_id=party.pk if kind == "source" else None,
                                  handler_id=party.pk if kind == "handler" else None, at=at)
        words = measure.words(monitor)
        key = monitor_key(monitor, kind, party.pk)
        if measure.triggered:
            url = reverse(f"admin:tracking_{kind}_change", args=(party.pk,))
            paused = monitor.pause_source and kind == "source"
            message = f"{monitor.name}: {party.name}: {words}" + ("; the source is paused" if paused else "")
            with transaction.atomic():
                alert = alert_raise(spec=AlertSpec(
                    kind=AlertKind.FRAUD_MONITOR, key=key, message=message, url=url,
                    level=AlertLevel.DANGER if paused else AlertLevel.WARNING, monitor_id=monitor.pk, account_id=monitor.account_id,
                    source_id=party.pk if kind == "source" else None, handler_id=party.pk if kind == "handler" else None,
                ), at=at, silent=not monitor.alert)
                if alert is not None and paused:
                    source_pause(source=party, reason=f"{monitor.name}: {words}", at=at)
            notes.append(f"{party.name}: TRIGGERED: {words}")
        else:
            if measure.triggered is False:
                alert_clear(key=key, at=at, account_id=monitor.account_id)
            notes.append(f"{party.name}: {words}")
    result = "; ".join(notes) or "no calls in the window"
    FraudMonitor.objects.filter(pk=monitor.pk).update(last_checked_at=at, last_result=result[:300])
    return notes


def fraud_monitors_check(*, at: datetime | None = None) -> int:
    """Evaluate every enabled monitor (the scheduled check). Safe to run twice: an open episode is only seen again.
    Returns how many monitors were evaluated."""
    at = at or timezone.now()
    monitors = list(FraudMonitor.objects.filter(enabled=True).select_related("source", "handler"))
    for monitor in monitors:
        monitor_check(monitor=monitor, at=at)
    return len(monitors)
