"""django-q2 tasks of tracking. Each takes ids, is safe to run twice, and calls a service."""

from __future__ import annotations

from calltrack.audit import audit_context
from tracking.services.conversions import call_conversions_expire
from tracking.services.webhooks import webhook_deliveries_requeue, webhook_delivery_attempt


def webhook_deliver(delivery_id: int) -> str:
    """Make the next try of a webhook delivery (queued after commit; retries come back through a Schedule)."""
    delivery = webhook_delivery_attempt(delivery_id=delivery_id)
    if delivery is None:
        return f"delivery {delivery_id}: gone, not due, or claimed by another worker"
    return f"delivery {delivery_id}: {delivery.status} after {delivery.attempts} tries"


def webhook_deliveries_requeue_task() -> str:
    """Scheduled every minute: queue again the deliveries whose task was lost (a cluster killed hard, a worker died)."""
    return f"{webhook_deliveries_requeue()} deliveries queued again"


def conversions_expire() -> int:
    """Close conversions still waiting for a postback past their time limit (schedule it hourly)."""
    with audit_context(origin="task", actor="conversions_expire"):
        return call_conversions_expire()



def report_rollups_refresh_task() -> int:
    """Scheduled: recompute the report rollups of the days whose calls changed (tracking.services.reports)."""
    from tracking.services.reports import report_rollups_refresh

    return report_rollups_refresh()



def alerts_digest_task() -> int:
    """Scheduled daily: the alerts digest to the recipients who chose it."""
    from tracking.services.alerts import alerts_digest_send

    return alerts_digest_send()


def conversion_upload_deliver(upload_id: int) -> str:
    """Try one conversion upload (queued after commit); retries and delays come back through the every-minute sweep."""
    from tracking.services.ad_uploads import conversion_upload_attempt

    upload = conversion_upload_attempt(upload_id=upload_id)
    if upload is None:
        return f"upload {upload_id}: gone or being sent by another worker"
    return f"upload {upload_id}: {upload.status} after {upload.attempts} tries"


def conversion_uploads_due_task() -> int:
    """Scheduled every minute: the conversion uploads whose delay or retry time has come."""
    from tracking.services.ad_uploads import conversion_uploads_due

    with audit_context(origin="task", actor="conversion_uploads_due"):
        return conversion_uploads_due()
