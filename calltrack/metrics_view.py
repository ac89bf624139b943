"""``GET /metrics``: the Prometheus figures, for a scraper with the bearer token or a staff member's session.

What the processes counted (``calltrack.metrics``: every process's, added up, in multiprocess mode) and what the
database says at the moment of the scrape (``DatabaseFigures``): calls in progress, callers waiting in call queues,
the task queue's depth and its oldest task's age, how late the oldest due schedule is. Those reads are a few
indexed statements per scrape (every 15-60 s), never per call.

Who may read it: ``Authorization: Bearer <METRICS_TOKEN>`` (a wrong or unexpected token: 401), or a session whose
user the gate (``calltrack.scoping.may``, action ``metrics.view``) allows: active staff, never a collaborator.
Anyone else gets 404, as if there were nothing here; with no METRICS_TOKEN only staff sessions can read it.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Min
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from calltrack import scoping
from tracking.models import Call, CallStatus, Campaign, QueuedCall

log = logging.getLogger("calltrack.metrics")

# Twilio ends a call after 4 hours at most (its default time limit): a call still "ringing" or "in progress" that
# started earlier lost its final status callback, and is not counted as in progress.
LONGEST_CALL = timedelta(hours=4)


class DatabaseFigures(Collector):
    """Gauges read from the database (and the task broker) when scraped. Each figure is read on its own: one that
    cannot be read (the broker unreachable) is left out and logged; the others are still served."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = timezone.now()
        for read in (self._calls, self._task_queue, self._schedules):
            try:
                yield from read(now)
            except Exception:  # noqa: BLE001 - a scrape shows what it can; the failure is logged
                log.exception("metrics: %s could not be read", read.__name__.strip("_"))

    @staticmethod
    def _calls(now: datetime) -> Iterator[GaugeMetricFamily]:
        # On the status index (the live calls are few; a call older than Twilio's time limit is left out).
        live = Call.objects.filter(
            status__in=[CallStatus.RINGING, CallStatus.IN_PROGRESS], started_at__gte=now - LONGEST_CALL,
        ).count()
        yield GaugeMetricFamily("calltrack_calls_in_progress", "Calls ringing or connected now (started in the last 4 hours).", value=live)
        # Per campaign on the (campaign, left_at, enqueued_at) index: the cost follows the campaigns, not the history.
        waiting = QueuedCall.objects.filter(campaign_id__in=Campaign.objects.values("pk"), left_at__isnull=True, enqueued_at__gte=now - LONGEST_CALL).count()
        yield GaugeMetricFamily("calltrack_call_queue_waiting", "Callers waiting in a campaign's call queue now.", value=waiting)

    @staticmethod
    def _task_queue(now: datetime) -> Iterator[GaugeMetricFamily]:
        depth, oldest = task_queue_read()
        yield GaugeMetricFamily("calltrack_task_queue_depth", "Tasks queued for the task cluster (django-q2) and not taken yet.", value=depth)
        age = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
        yield GaugeMetricFamily(
            "calltrack_task_queue_oldest_seconds",
            "Age of the oldest task waiting for the task cluster (0: none waiting): the cluster's lag.", value=age,
        )

    @staticmethod
    def _schedules(now: datetime) -> Iterator[GaugeMetricFamily]:
        from django_q.models import Schedule

        due = Schedule.objects.exclude(repeats=0).filter(next_run__lt=now).aggregate(first=Min("next_run"))["first"]
        yield GaugeMetricFamily(
            "calltrack_task_schedule_overdue_seconds",
            "How late the most overdue scheduled task is (cap folds, rollups, webhook retries; 0: none overdue). "
            "The cluster's scheduler takes due tasks every 30 seconds or so: minutes mean no cluster is running.",
            value=max((now - due).total_seconds(), 0.0) if due is not None else 0.0,
        )


_broker = None


def task_queue_read() -> tuple[int, datetime | None]:
    """The configured django-q2 queue: how many tasks wait, and when the oldest was queued (None: none waits)."""
    global _broker
    from django_q.brokers import get_broker
    from django_q.brokers.orm import ORM
    from django_q.brokers.redis_broker import Redis
    from django_q.conf import Conf
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    if _broker is None:
        _broker = get_broker()  # one connection pool per process, not one per scrape
    broker = _broker
    if isinstance(broker, ORM):
        # The model directly: the broker's own connection getter closes the request's old connections.
        waiting = OrmQ.objects.using(Conf.ORM).filter(key=broker.list_key, lock__lte=timezone.now())
        depth = waiting.count()
        payload = waiting.order_by("id").values_list("payload", flat=True).first() if depth else None
    elif isinstance(broker, Redis):
        depth = int(broker.connection.llen(broker.list_key))
        payload = broker.connection.lindex(broker.list_key, 0) if depth else None  # RPUSH'ed, BLPOP'ed: 0 is the oldest
    else:
        return int(broker.queue_size() or 0), None
    if payload is None:
        return depth, None
    started = SignedPackage.loads(payload).get("started")  # set by async_task when it queued the task
    return depth, started if isinstance(started, datetime) else None


def metrics_registry() -> CollectorRegistry:
    """What a scrape shows: every process's figures from PROMETHEUS_MULTIPROC_DIR (multiprocess mode) or this process's
    own, and the database's."""
    registry = CollectorRegistry(auto_describe=False)
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or settings.PROMETHEUS_MULTIPROC_DIR
    if path:
        MultiProcessCollector(registry, path=path)
    else:
        registry.register(_ProcessFigures())
    registry.register(DatabaseFigures())
    return registry


class _ProcessFigures(Collector):
    """This process's figures (the default registry: calltrack's metrics and the process's own), one process only."""

    def collect(self) -> Iterator:
        yield from REGISTRY.collect()


def metrics_render() -> bytes:
    return generate_latest(metrics_registry())


def _allowed(request: HttpRequest) -> bool:
    """True for the right bearer token or a user the gate allows, False (401) for a wrong token; else 404."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    expected = settings.METRICS_TOKEN
    scheme, _, token = header.partition(" ")
    if expected and scheme.lower() == "bearer":
        return hmac.compare_digest(token.strip().encode(), expected.encode())
    if scoping.may(getattr(request, "user", None), "metrics.view"):
        return True
    raise Http404


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return HttpResponse("bad metrics token\n", status=401, content_type="text/plain", headers={"WWW-Authenticate": "Bearer"})
    return HttpResponse(metrics_render(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
