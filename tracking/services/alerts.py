"""Alerts: one row per episode of a condition, raised by whoever notices it, sent once to the recipients it concerns.

An episode is opened by :func:`alert_raise` (the condition's ``key`` has no open alert: a new row), seen again while
it lasts (the same call finds the open row: nothing is sent again), and closed by :func:`alert_clear` or
:func:`alerts_sync` when the condition is gone; the next time it happens is a new episode. A partial unique index
(one open alert per key) decides between two raisers at once.

Sending: :func:`alerts_notify` claims each alert not sent yet (a conditional UPDATE of ``notified_at``: run twice, it
sends once) and sends it to every enabled recipient who takes each alert, of its kind, and allowed to see it
(``calltrack.scoping.alert_visible``: a collaborator's address gets only alerts about its own source or handler):
an email through Django's mail backend, and/or a JSON POST signed like the campaigns' webhooks
(``X-Calltrack-Signature``) through ``calltrack.outbound`` (public addresses only). Recipients who chose the daily
digest get :func:`alerts_digest_send`'s one message a day instead.

Who raises what: the scheduled ``calltrack.alerts_check.alerts_check_task`` (fraud monitors, the dashboard's
conditions, spam surges), and the dashboard (the task cluster not running: the task cannot say so itself).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from calltrack import outbound
from calltrack.model_writes import instance_apply_and_save
from calltrack.scoping import Scope, alert_visible
from tracking.models import Alert, AlertDelivery, AlertKind, AlertLevel, AlertRecipient, Call

log = logging.getLogger("calltrack.alerts")

ALERT_EVENT = "alert.opened"
DIGEST_EVENT = "alert.digest"
CHECK_TASK = "calltrack.alerts_check.alerts_check_task"
#: The check runs every 5 minutes: a schedule overdue by this much means no cluster picks it up.
CLUSTER_STALE = timedelta(minutes=15)


@dataclass(frozen=True)
class AlertSpec:
    """A condition as its checker sees it now: ``key`` names it across runs."""

    kind: str
    key: str
    message: str
    level: str = AlertLevel.WARNING
    url: str = ""
    source_id: int | None = None
    handler_id: int | None = None
    monitor_id: int | None = None
    #: The account it belongs to (None: its source's, handler's or monitor's; else the first account, the install's
    #: own conditions such as the task cluster).
    account_id: int | None = None


def alert_account(spec: AlertSpec) -> int:
    """The account an alert of ``spec`` belongs to (created by a task, outside any request: never the first account by
    mere default when it is about another account's party)."""
    if spec.account_id is not None:
        return spec.account_id
    from tracking.models import FraudMonitor, Handler, Source

    for model, pk in ((Source, spec.source_id), (Handler, spec.handler_id), (FraudMonitor, spec.monitor_id)):
        if pk is not None:
            found = model.objects.filter(pk=pk).values_list("account_id", flat=True).first()
            if found is not None:
                return found
    from calltrack.account_fields import default_account_id

    return default_account_id()


def alert_raise(*, spec: AlertSpec, at: datetime | None = None, silent: bool = False) -> Alert | None:
    """Open an episode of ``spec.key``, or see the open one again (its message and level follow the condition; nothing
    is sent again). Returns the new alert, None when one was open. ``silent``: the episode is recorded (a monitor
    that only pauses needs it, to pause once per episode) but neither shown nor sent. Safe under races: the partial
    unique index keeps one open alert per key and account, the loser sees the winner's."""
    at = at or timezone.now()
    account_id = alert_account(spec)
    if Alert.objects.open().filter(account_id=account_id, key=spec.key).update(last_seen_at=at, message=spec.message[:500], level=spec.level):
        return None
    try:
        with transaction.atomic():
            return Alert.objects.create(
                account_id=account_id, kind=spec.kind, key=spec.key[:200], message=spec.message[:500], level=spec.level, url=spec.url[:500],
                source_id=spec.source_id, handler_id=spec.handler_id, monitor_id=spec.monitor_id,
                opened_at=at, last_seen_at=at,
                acknowledged_at=at if silent else None, notified_at=at if silent else None, silent=silent,
            )
    except IntegrityError:
        return None


def alert_clear(*, key: str, at: datetime | None = None, account_id: int | None = None) -> bool:
    """Close the open episode of ``key`` (the condition ended) in ``account_id`` (None: in every account). Returns
    whether one was open."""
    open_alerts = Alert.objects.open().filter(key=key)
    if account_id is not None:
        open_alerts = open_alerts.filter(account_id=account_id)
    return open_alerts.update(cleared_at=at or timezone.now()) > 0


def alerts_sync(*, kinds: Iterable[str], present: list[AlertSpec], at: datetime | None = None,
                account_id: int | None = None) -> list[Alert]:
    """The conditions of ``kinds`` now are ``present``: raise each (new episodes are returned), clear the open
    alerts of those kinds that are not among them (in ``account_id``; None: every account)."""
    at = at or timezone.now()
    opened = [alert for alert in (alert_raise(spec=spec, at=at) for spec in present) if alert is not None]
    stale = Alert.objects.open().filter(kind__in=list(kinds))
    if account_id is not None:
        stale = stale.filter(account_id=account_id)
    stale.exclude(key__in=[s.key for s in present]).update(cleared_at=at)
    return opened


def alert_acknowledge(*, alert: Alert, user: Any, at: datetime | None = None) -> bool:
    """Acknowledge ``alert`` (it leaves the dashboard; the episode stays open until its condition ends). Idempotent:
    returns whether this call acknowledged it."""
    done = Alert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=at or timezone.now(), acknowledged_by=user if getattr(user, "pk", None) else None)
    if done:
        alert.refresh_from_db(fields=["acknowledged_at", "acknowledged_by"])
    return done > 0


# --- Recipients: writes -------------------------------------------------------------------------------------------


def recipient_create(*, fields: Mapping[str, Any]) -> AlertRecipient:
    """Add an address alerts are sent to (an email and/or a webhook URL that may be called: public addresses)."""
    return instance_apply_and_save(instance=AlertRecipient(), fields=fields)


def recipient_update(*, recipient: AlertRecipient, fields: Mapping[str, Any]) -> AlertRecipient:
    """Change the given fields after full validation (the digest's last time is the digest's)."""
    return instance_apply_and_save(instance=recipient, fields=fields)


def recipient_delete(*, recipient: AlertRecipient) -> None:
    recipient.delete()


# --- Sending -----------------------------------------------------------------------------------------------------


def recipient_scope(recipient: AlertRecipient) -> Scope:
    """The scope of a recipient: a collaborator's (its source or handler), else its account's."""
    link = recipient.collaborator
    if link is None:
        return Scope(account_id=recipient.account_id)  # its account's alerts, never another's
    return Scope(source_id=link.source_id, handler_id=link.handler_id, account_id=recipient.account_id)


def recipient_takes(recipient: AlertRecipient, alert: Alert) -> bool:
    """Whether ``alert`` is sent to ``recipient``: of a kind it takes, and about what it may see."""
    if recipient.kinds and alert.kind not in recipient.kinds:
        return False
    return alert_visible(alert, recipient_scope(recipient))


def alert_link(alert: Alert) -> str:
    base = settings.CALLTRACK_PUBLIC_BASE_URL.rstrip("/")
    return f"{base}{alert.url}" if alert.url and base else alert.url


def alert_payload(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.pk, "kind": alert.kind, "level": alert.level, "message": alert.message, "url": alert_link(alert),
        "opened_at": alert.opened_at.isoformat(), "cleared_at": alert.cleared_at.isoformat() if alert.cleared_at else None,
        "source_id": alert.source_id, "handler_id": alert.handler_id,
    }


def _email_body(alerts: list[Alert]) -> str:
    lines = []
    for alert in alerts:
        when = timezone.localtime(alert.opened_at).strftime("%Y-%m-%d %H:%M %Z")
        lines.append(f"- [{alert.get_level_display()}] {alert.message} (since {when})")
        link = alert_link(alert)
        if link:
            lines.append(f"  {link}")
    return "\n".join(lines) + "\n"


def _send(recipient: AlertRecipient, alerts: list[Alert], *, event: str, subject: str) -> list[str]:
    """One message to ``recipient`` (email and/or webhook) about ``alerts``; what happened, in words."""
    from tracking.services.webhooks import SIGNATURE_HEADER, webhook_signature

    done = []
    if recipient.email:
        try:
            send_mail(subject, _email_body(alerts), settings.DEFAULT_FROM_EMAIL, [recipient.email])
            done.append(f"{recipient.name}: emailed {recipient.email}")
        except Exception as exc:  # noqa: BLE001 - one failing address must not stop the others
            log.warning("alert email to %s failed: %s", recipient.email, exc)
            done.append(f"{recipient.name}: email to {recipient.email} failed ({exc})"[:300])
    if recipient.webhook_url:
        body = json.dumps({"event": event, "alerts": [alert_payload(a) for a in alerts]}).encode()
        headers = {
            "Content-Type": "application/json", "User-Agent": "calltrack-alerts/1", "X-Calltrack-Event": event,
            SIGNATURE_HEADER: webhook_signature(secret=recipient.webhook_secret, payload=body),
        }
        try:
            answer = outbound.request("POST", recipient.webhook_url, body=body, headers=headers,
                                      timeout=settings.CALLTRACK_WEBHOOK_TIMEOUT)
            done.append(f"{recipient.name}: webhook answered {answer.status}")
        except (outbound.OutboundRefused, OSError, ValueError) as exc:
            log.warning("alert webhook to %s failed: %s", recipient.webhook_url, exc)
            done.append(f"{recipient.name}: webhook failed ({exc})"[:300])
    return done


def alerts_notify(*, alert_ids: Iterable[int] | None = None, at: datetime | None = None) -> int:
    """Send each alert not sent yet (or those of ``alert_ids``) to the recipients who take each alert. Each alert is
    claimed first (``notified_at`` set where it was empty): run twice, or by two workers, it is sent once.
    Returns how many alerts were sent."""
    at = at or timezone.now()
    pending = Alert.objects.filter(notified_at__isnull=True)
    if alert_ids is not None:
        pending = pending.filter(pk__in=list(alert_ids))
    recipients = list(AlertRecipient.objects.filter(enabled=True, delivery=AlertDelivery.EACH).select_related("collaborator"))
    sent = 0
    for alert in pending.order_by("id"):
        if not Alert.objects.filter(pk=alert.pk, notified_at__isnull=True).update(notified_at=at):
            continue  # another run took it
        results = []
        for recipient in recipients:
            if recipient_takes(recipient, alert):
                results += _send(recipient, [alert], event=ALERT_EVENT, subject=f"[calltrack] {alert.message}"[:200])
        Alert.objects.filter(pk=alert.pk).update(notify_log="\n".join(results) or "no recipient takes this alert")
        sent += 1
    return sent


def alerts_digest_send(*, at: datetime | None = None) -> int:
    """The daily digest: each digest recipient whose last digest is a day old (or never sent) gets one message
    listing the alerts opened since (those it takes); none when there were none. Claimed per recipient (a
    conditional UPDATE of ``last_digest_at``): run twice, it sends once. Returns how many messages were sent."""
    at = at or timezone.now()
    sent = 0
    due = Q(last_digest_at__isnull=True) | Q(last_digest_at__lte=at - timedelta(hours=23))
    for recipient in AlertRecipient.objects.filter(due, enabled=True, delivery=AlertDelivery.DIGEST).select_related("collaborator"):
        since = recipient.last_digest_at or at - timedelta(days=1)
        claimed = AlertRecipient.objects.filter(pk=recipient.pk, last_digest_at=recipient.last_digest_at).update(last_digest_at=at)
        if not claimed:
            continue
        # Silent episodes (a monitor that only pauses) are never shown: not in a digest either.
        alerts = [a for a in Alert.objects.filter(opened_at__gt=since, opened_at__lte=at, silent=False).order_by("opened_at")
                  if recipient_takes(recipient, a)]
        if alerts:
            _send(recipient, alerts, event=DIGEST_EVENT,
                  subject=f"[calltrack] {len(alerts)} alert{'s' * (len(alerts) != 1)} since {timezone.localtime(since):%Y-%m-%d %H:%M}")
            sent += 1
    return sent


# --- Conditions --------------------------------------------------------------------------------------------------

#: The dashboard's flags (``calltrack.reports.report_alerts``) kept as alerts.
REPORT_KINDS = (AlertKind.POOL_OVERFLOW, AlertKind.HANDLER_CAP, AlertKind.WEBHOOK_FAILING, AlertKind.NUMBER_STATUS,
                AlertKind.PORT_PENDING, AlertKind.AD_UPLOADS_FAILING)


def report_alert_key(alert: Any, account_id: int | None = None) -> str:
    """The key of a dashboard flag (a ``calltrack.reports.Alert``) of ``account_id``'s dashboard: its kind and what it
    points at (a row's id names it in one account already; a count over the account's rows, without one, says the
    account). The dashboard shows a flag once: as a stored alert when one is open under this key."""
    key = alert.kind + ":" + ",".join(str(a) for a in alert.url_args)
    if alert.url_query:
        key += ":" + urlencode(sorted(alert.url_query.items()))
    if not alert.url_args and account_id is not None:
        key += f":account={account_id}"
    return key


def report_url(alert: Any) -> str:
    if not alert.url_name:
        return ""
    try:
        url = reverse(alert.url_name, args=alert.url_args)
    except NoReverseMatch:
        return ""
    return url + ("?" + urlencode(alert.url_query) if alert.url_query else "")


SPAM_SURGE_KEY = "spam_surge"


def spam_surge_check(*, at: datetime | None = None) -> Alert | None:
    """A spam surge, in each account: the account's calls scored as spam (tag spam=yes) in the last hour are at least
    CALLTRACK_SPAM_SURGE_MIN and CALLTRACK_SPAM_SURGE_FACTOR times the hourly average of the week before. Cleared when
    they are not. Returns the first alert this call opened (None: none)."""
    from calltrack.models import Account

    at = at or timezone.now()
    opened = []
    for account_id in Account.objects.order_by("pk").values_list("pk", flat=True):
        spam = Call.objects.filter(account_id=account_id, tags__spam="yes", is_test=False)
        last_hour = spam.filter(started_at__gte=at - timedelta(hours=1), started_at__lt=at).count()
        if last_hour < settings.CALLTRACK_SPAM_SURGE_MIN:
            alert_clear(key=SPAM_SURGE_KEY, at=at, account_id=account_id)
            continue
        week = spam.filter(started_at__gte=at - timedelta(days=7, hours=1), started_at__lt=at - timedelta(hours=1)).count()
        usual = week / (7 * 24)
        if last_hour >= settings.CALLTRACK_SPAM_SURGE_FACTOR * usual:
            url = ""
            try:
                url = reverse("admin:tracking_call_changelist")
            except NoReverseMatch:
                pass
            alert = alert_raise(spec=AlertSpec(
                kind=AlertKind.SPAM_SURGE, key=SPAM_SURGE_KEY, level=AlertLevel.DANGER, url=url, account_id=account_id,
                message=f"Spam surge: {last_hour} calls scored as spam in the last hour (usually {usual:.1f} an hour)",
            ), at=at)
            if alert is not None:
                opened.append(alert)
        else:
            alert_clear(key=SPAM_SURGE_KEY, at=at, account_id=account_id)
    return opened[0] if opened else None


CLUSTER_KEY = "cluster_down"


def cluster_check(*, at: datetime | None = None) -> Alert | None:
    """The task cluster not running: the alerts check's schedule (installed by ``manage.py calltrack_schedules``) is
    overdue by CLUSTER_STALE. Asked by the dashboard (the task cannot report its own absence); cleared by the task
    when it runs. Without the schedule installed nothing is said (a development setup without a cluster).
    Returns the alert when this call opened it (the caller sends it: the cluster that would is down)."""
    from django_q.models import Schedule

    at = at or timezone.now()
    next_run = Schedule.objects.filter(func=CHECK_TASK).order_by("next_run").values_list("next_run", flat=True).first()
    if next_run is None or next_run >= at - CLUSTER_STALE:
        return None
    return alert_raise(spec=AlertSpec(
        kind=AlertKind.CLUSTER_DOWN, key=CLUSTER_KEY, level=AlertLevel.DANGER,
        message=f"The task cluster is not running: scheduled checks are overdue since {timezone.localtime(next_run):%Y-%m-%d %H:%M} "
                "(start it with manage.py qcluster)",
    ), at=at)
