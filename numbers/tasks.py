"""django-q2 tasks for numbers. Each takes no objects, is safe to run twice, and returns a short summary.

Scheduled by ``manage.py calltrack_schedules`` (see SCHEDULES).
"""

from __future__ import annotations

from calltrack.numbers.services.lifecycle import numbers_fallback_refresh, numbers_release_quarantined
from calltrack.numbers.services.pools import pool_samples_record, pools_autoscale
from calltrack.numbers.services.porting import port_requests_sync
from calltrack.numbers.services.recordings import recordings_expire, voicemails_expire
from calltrack.numbers.services.texts import (
    text_email_forward_send,
    text_forward_email_send,
    text_forward_send,
    text_forwards_requeue,
)


def pool_samples_record_task() -> str:
    samples = pool_samples_record()
    return f"{len(samples)} pool samples"


def pools_autoscale_task() -> str:
    resizes = pools_autoscale()
    return "; ".join(f"{r.pool}: {r.from_size} -> {r.to_size}" for r in resizes) or "no pool resized"


def numbers_release_quarantined_task() -> str:
    report = numbers_release_quarantined(actor_label="numbers_release_quarantined task")
    return f"{len(report.released)} released, {len(report.failed)} failed"


def numbers_fallback_refresh_task(number_ids: list[int], campaign_id: int | None = None, account_id: int | None = None) -> str:
    """Give the carrier the numbers' new voice fallback URLs after a fail-safe changed (queued on commit)."""
    failed = numbers_fallback_refresh(number_ids=number_ids, campaign_id=campaign_id, account_id=account_id)
    return f"{len(failed)} numbers refused" if failed else "fallback URLs updated"


def recordings_expire_task() -> str:
    """Delete recordings and voicemails older than CALLTRACK_RECORDING_RETENTION_DAYS at the carrier and here (scheduled daily)."""
    return f"{recordings_expire()} recordings and {voicemails_expire()} voicemails deleted"


def text_forward_task(forward_id: int, attempt: int = 1) -> str:
    """Send a text's forward to its handler's number (queued after commit by the messaging webhook; a carrier failure
    comes back as a Schedule with ``attempt + 1``)."""
    forward = text_forward_send(forward_id=forward_id, attempt=attempt)
    if forward is None:
        return f"forward {forward_id}: gone, sent already, or another worker's"
    return f"forward {forward_id}: {forward.status} (try {attempt})"


def text_forwards_requeue_task() -> str:
    """Scheduled every minute: queue again the forwards whose task was lost (a cluster killed hard, a worker died)."""
    return f"{text_forwards_requeue()} forwards queued again"


def text_email_forward_task(forward_id: int, attempt: int = 1) -> str:
    """Email a text to its campaign's address (queued after commit; a failure comes back as a Schedule; a lost one is
    queued again by the requeue schedule). ``attempt`` names the try in the task's name; the record counts them."""
    forward = text_email_forward_send(forward_id=forward_id)
    if forward is None:
        return f"text email {forward_id}: gone, sent already, or another worker's"
    return f"text email {forward_id}: {forward.status} (try {forward.attempts})"


def text_email_task(text_id: int, address: str, attempt: int = 1) -> str:
    """The email task as queued before email forwards had their own record (kept for the tasks and Schedules still
    waiting at the upgrade): sent once through its record, as ``text_email_forward_task``."""
    forward = text_forward_email_send(text_id=text_id, address=address)
    if forward is None:
        return f"text {text_id}: gone, sent already, or another worker's"
    return f"text {text_id}: email {forward.status} (try {forward.attempts})"


def port_requests_sync_task() -> str:
    counts = port_requests_sync()
    return ", ".join(f"{v} {k}" for k, v in counts.items())


# (name, function path, schedule type, minutes): the schedules calltrack_schedules keeps in django_q.
SCHEDULES: list[tuple[str, str, str, int | None]] = [
    ("calltrack: sample pools", "calltrack.numbers.tasks.pool_samples_record_task", "I", 1),
    ("calltrack: autoscale pools", "calltrack.numbers.tasks.pools_autoscale_task", "I", 15),
    ("calltrack: release quarantined numbers", "calltrack.numbers.tasks.numbers_release_quarantined_task", "H", None),
    ("calltrack: follow port requests", "calltrack.numbers.tasks.port_requests_sync_task", "I", 30),
    ("calltrack: requeue lost text forwards", "calltrack.numbers.tasks.text_forwards_requeue_task", "I", 1),
    ("calltrack: delete expired call recordings", "calltrack.numbers.tasks.recordings_expire_task", "D", None),
]
