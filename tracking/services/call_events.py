"""A call's timeline, and where its lifecycle events reach the outgoing webhooks.

``call_event_record`` writes a step of the timeline the admin shows. ``call_lifecycle_notify`` records a
lifecycle event (``call.recorded``, ``call.converted`` from a postback ...) and queues the webhooks listening to
it after the surrounding transaction commits (``call_webhooks_after_commit``). Voice routing does the same
through its unit of work (``routing.services.turn``), which writes its steps with its other writes.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from django.db import transaction

from calltrack import fastdb
from tracking.models import Call, CallEvent

logger = logging.getLogger(__name__)


def call_event_record(*, call: Call, kind: str, message: str, data: dict[str, Any] | None = None) -> CallEvent:
    """Append a step to the call's timeline now (one INSERT). Not idempotent: call once per step. Voice routing
    gathers its steps in its unit of work instead (``routing.services.turn.Turn.step``) and writes them with its
    other writes."""
    return fastdb.insert(call_event_new(call=call, kind=kind, message=message, data=data))


def call_event_new(*, call: Call, kind: str, message: str, data: dict[str, Any] | None = None) -> CallEvent:
    """A step of the call's timeline, not saved yet."""
    return fastdb.new(CallEvent, call=call, kind=kind, message=message[:500], data=data or {})


def call_lifecycle_notify(*, call: Call, event: str, message: str = "", data: dict[str, Any] | None = None) -> None:
    """Record a lifecycle event of ``call`` (one of WebhookEvent's values) now, and queue the deliveries of the
    campaign's webhooks listening to it once the surrounding transaction commits (``call_webhooks_after_commit``).
    Not idempotent: call once per event."""
    from tracking.services.ad_uploads import conversion_uploads_after_commit

    call_event_record(call=call, kind=event, message=message or event.replace(".", " "), data=data)
    call_webhooks_after_commit(call=call, event=event)
    conversion_uploads_after_commit(call=call, event=event)


def call_webhooks_after_commit(*, call: Call, event: str, webhook_events: Collection[str] | None = None) -> None:
    """Queue the deliveries of the campaign's webhooks listening to ``event`` once the surrounding transaction
    commits (for a test call only when its operator ticked "send webhooks": ``Call.test_sends_webhooks``).

    Never sends HTTP itself: deliveries run in django-q2 workers, so a slow or dead receiver cannot delay the
    request; a failure to queue is logged, never raised. ``webhook_events``: the events the campaign's enabled
    webhooks listen to, when the caller knows them (voice routing caches them with the campaign's configuration):
    an event no webhook listens to then needs no after-commit work at all."""
    if call.campaign_id is None or (webhook_events is not None and event not in webhook_events) or not call.test_sends_webhooks:
        return
    call_id, campaign_id = call.pk, call.campaign_id
    transaction.on_commit(lambda: _after_commit(call_id=call_id, campaign_id=campaign_id, event=event), robust=True)


def _after_commit(*, call_id: int, event: str, campaign_id: int) -> None:
    from tracking.services.webhooks import webhook_deliveries_queue

    # The campaign's webhooks are looked up first (webhook_deliveries_queue loads the call when one listens).
    webhook_deliveries_queue(call=Call(pk=call_id, campaign_id=campaign_id), event=event)
