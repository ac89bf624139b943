"""Prometheus figures counted where things happen (prometheus-client): the voice webhooks, the fail-safe, pool
overflows, outgoing webhook deliveries.

Each figure is a counter or a histogram in process memory, changed by one call at the boundary that knows the event
(a histogram ``observe`` per voice request: a few microseconds, no SQL statement). What the database knows better
(calls in progress, callers waiting in queues, the task queue and its oldest task, undelivered webhooks) is read when
``/metrics`` is scraped, by ``calltrack.metrics_view``, never per request.

Several processes (gunicorn workers, django-q2 workers): with ``PROMETHEUS_MULTIPROC_DIR`` set in the environment
before the process starts, prometheus-client keeps each process's values in files of that directory and a scrape
adds them up (``calltrack.metrics_view.metrics_render``). The directory must be emptied before the processes start
(``gunicorn.conf.py`` does it for gunicorn; README "Operations"). Names and labels are fixed here; a label's values
come from short fixed lists (view names, outcomes, causes), never from a request.
"""

from __future__ import annotations

import os

from prometheus_client import Counter, Histogram

# Multiprocess mode: each process creates its files there as its first figure is made (below); a directory that is
# not there yet (a fresh tmpfs path, a first run) is made rather than failing every import of this module.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

# Seconds: a voice webhook answers in a few milliseconds; Twilio gives up at 15 s.
_WEBHOOK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0)
# Seconds from a delivery's creation to its success: immediate, a slow receiver, then the retries' back-off (30 s,
# 1, 2, 4 ... minutes, at most an hour apart).
_DELIVERY_BUCKETS = (0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)

WEBHOOK_SECONDS = Histogram(
    "calltrack_voice_webhook_seconds",
    "Time to answer a Twilio voice webhook, by endpoint (the view's name: incoming, dial_status, status ...).",
    ["endpoint"],
    buckets=_WEBHOOK_BUCKETS,
)
DECISIONS = Counter(
    "calltrack_decisions",
    "Routing decisions committed by the voice webhooks, by outcome (routed, queued, menu, challenge, rejected, "
    "voicemail, unanswered, failsafe).",
    ["outcome"],
)
FAILSAFE_ANSWERS = Counter(
    "calltrack_failsafe_answers",
    "Calls answered with the fail-safe dial, by cause: error (routing failed), quarantined, campaign_disabled, "
    "source_paused, fallback_url (Twilio could not get an answer from /voice/incoming).",
    ["cause"],
)
POOL_OVERFLOWS = Counter(
    "calltrack_pool_overflows",
    "Web visitors who found every number of their pool in use, by the pool's overflow policy.",
    ["policy"],
)
WEBHOOK_DELIVERIES = Counter(
    "calltrack_webhook_deliveries",
    "Tries of outgoing webhooks, by what they led to: delivered, retrying (will be tried again), failed (given up).",
    ["outcome"],
)
WEBHOOK_DELIVERY_LAG = Histogram(
    "calltrack_webhook_delivery_lag_seconds",
    "Seconds from a webhook delivery's creation (the call's event) to the receiver's success answer.",
    buckets=_DELIVERY_BUCKETS,
)

DECISION_OUTCOMES = ("routed", "queued", "menu", "challenge", "rejected", "voicemail", "unanswered", "failsafe")
FAILSAFE_CAUSES = ("error", "quarantined", "campaign_disabled", "source_paused", "fallback_url")
# calltrack.numbers.models.OverflowPolicy's values (this shared module imports no app; tests/calltrack/test_metrics.py
# checks they agree).
OVERFLOW_POLICIES = ("reuse_oldest", "fallback")


def decided(outcome: str) -> None:
    """Count one committed decision (``outcome``: one of DECISION_OUTCOMES)."""
    _DECIDED[outcome].inc()


def failsafe_answered(cause: str) -> None:
    """Count one fail-safe answer (``cause``: one of FAILSAFE_CAUSES)."""
    _FAILSAFE[cause].inc()


def pool_overflowed(policy: str) -> None:
    POOL_OVERFLOWS.labels(policy=policy or "none").inc()


def webhook_delivery_tried(*, outcome: str, lag_seconds: float | None) -> None:
    """One try of an outgoing webhook: its outcome, and on success the seconds since the delivery was created."""
    WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()
    if lag_seconds is not None:
        WEBHOOK_DELIVERY_LAG.observe(max(lag_seconds, 0.0))


# Every series exists from the start at 0, so an alert on its increase sees the first event; the children are made
# once here (a ``labels()`` look-up costs more than the increment).
_DECIDED = {outcome: DECISIONS.labels(outcome=outcome) for outcome in DECISION_OUTCOMES}
_FAILSAFE = {cause: FAILSAFE_ANSWERS.labels(cause=cause) for cause in FAILSAFE_CAUSES}
for _outcome in ("delivered", "retrying", "failed"):
    WEBHOOK_DELIVERIES.labels(outcome=_outcome)
for _policy in OVERFLOW_POLICIES:
    POOL_OVERFLOWS.labels(policy=_policy)
