"""The scheduled alerts check: wiring on top of every layer, like the dashboard whose flags it keeps as alerts.

It reads the dashboard's conditions through ``calltrack.reports`` (pools, numbers, handlers, webhooks) and calls the
services of ``tracking`` (fraud monitors, spam surges, the alerts themselves), so it sits with the wiring
(tests/calltrack/test_layers.py), not in ``tracking.tasks``.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from calltrack import reports
from calltrack.audit import audit_context
from calltrack.models import Account
from calltrack.numbers.models import NumberPool
from calltrack.scoping import Scope
from tracking.models import Alert
from tracking.services.alerts import (
    CLUSTER_KEY,
    REPORT_KINDS,
    AlertSpec,
    alert_clear,
    alerts_notify,
    alerts_sync,
    report_alert_key,
    report_url,
    spam_surge_check,
)
from tracking.services.monitors import fraud_monitors_check


def report_conditions_sync(*, at: datetime | None = None) -> list[Alert]:
    """Keep each account's dashboard flags of today (the account's day) as alerts of that account: a flag is an open
    episode while the account's dashboard shows it, cleared when it does not (each count over that account's rows
    only). A pool's flag is about the pool's source, a cap's about its handler."""
    at = at or timezone.now()
    specs: list[AlertSpec] = []
    for account_id, zone in Account.objects.values_list("pk", "time_zone"):
        scope = Scope(account_id=account_id)
        tz = reports.operator_tz(scope) if zone else None
        flags = reports.report_alerts(scope=scope, period=reports.period_for("today", tz=tz, now=at))
        pool_sources = dict(NumberPool.objects.filter(
            pk__in=[f.url_args[0] for f in flags if f.kind == "pool_overflow" and f.url_args]).values_list("pk", "source_id"))
        specs += [
            AlertSpec(
                kind=f.kind, key=report_alert_key(f, account_id), message=f.message, level=f.level, url=report_url(f),
                source_id=pool_sources.get(f.url_args[0]) if f.kind == "pool_overflow" and f.url_args else None,
                handler_id=f.url_args[0] if f.kind == "handler_cap" and f.url_args else None, account_id=account_id,
            )
            for f in flags if f.kind in REPORT_KINDS
        ]
    return alerts_sync(kinds=REPORT_KINDS, present=specs, at=at)


def alerts_check_task() -> str:
    """Scheduled every 5 minutes: the fraud monitors, the dashboard's conditions and spam surges become alerts (one per
    episode), the task cluster is running again (this ran), and the new alerts are sent. Safe to run twice."""
    with audit_context(origin="task", actor="alerts_check"):
        alert_clear(key=CLUSTER_KEY)
        monitors = fraud_monitors_check()
        report_conditions_sync()
        spam_surge_check()
        sent = alerts_notify()
    return f"{monitors} monitors evaluated, {sent} alerts sent"
