"""Every django-q2 schedule calltrack needs, in one list (kept in the database by ``manage.py calltrack_schedules``)."""

from __future__ import annotations

from calltrack.numbers.tasks import SCHEDULES as NUMBER_SCHEDULES

# (name, function path, schedule type, minutes)
SCHEDULES: list[tuple[str, str, str, int | None]] = [
    *NUMBER_SCHEDULES,
    ("calltrack: close expired postback waits", "tracking.tasks.conversions_expire", "H", None),
    ("calltrack: release stale handler slots", "routing.tasks.attempt_slots_release_stale_task", "I", 5),
    ("calltrack: fold handler cap counters", "routing.tasks.cap_counters_fold_task", "I", 1),
    ("calltrack: conversion uploads due", "tracking.tasks.conversion_uploads_due_task", "I", 1),
    ("calltrack: requeue lost webhook deliveries", "tracking.tasks.webhook_deliveries_requeue_task", "I", 1),
    ("calltrack: report rollups", "tracking.tasks.report_rollups_refresh_task", "I", 5),
    ("calltrack: alerts and fraud monitors", "calltrack.alerts_check.alerts_check_task", "I", 5),
    ("calltrack: daily alerts digest", "tracking.tasks.alerts_digest_task", "D", None),
    ("calltrack: delete ended rate-limit counters", "calltrack.tasks.rate_counters_purge_task", "I", 10),
]
