"""A call's timeline, and the one place that announces its lifecycle events.

``call_event_record`` writes a step of the timeline the admin shows.
``call_lifecycle_notify`` is called by routing at each lifecycle point
(``call.started``, ``call.routed``, ``call.answered``, ``call.completed``,
``call.converted``); it records the step and is where conversions and
outgoing webhooks hook in, always after the surrounding transaction commits.
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
    """Append a step to the call's timeline. Not idempotent: call once per step."""
    return fastdb.insert(CallEvent(call=call, kind=kind, message=message[:500], data=data or {}))


def call_lifecycle_notify(
    *, call: Call, event: str, message: str = "", data: dict[str, Any] | None = None, webhook_events: Collection[str] | None = None
) -> None:
    """Record a lifecycle event of ``call`` (one of WebhookEvent's values), then, once the surrounding
    transaction commits: on ``call.completed`` apply the conversion rules (which may emit ``call.converted``),
    and queue the deliveries of the campaign's webhooks listening to ``event``.

    Never sends HTTP itself: deliveries run in django-q2 workers, so a slow or dead receiver cannot delay
    the voice request. The after-commit work is robust: an error there is logged, never raised into the
    voice webhook. Not idempotent: call once per event.

    ``webhook_events``: the events the campaign's enabled webhooks listen to, when the caller knows them (voice
    routing caches them with the campaign's configuration): an event no webhook listens to then needs no
    after-commit work at all (``call.completed`` always has some: the conversion rules).
    """
    call_event_record(call=call, kind=event, message=message or event.replace(".", " "), data=data)
    if event != "call.completed" and (call.campaign_id is None or (webhook_events is not None and event not in webhook_events)):
        return
    call_id, campaign_id = call.pk, call.campaign_id
    hooks = webhook_events is None or event in webhook_events
    transaction.on_commit(lambda: _after_commit(call_id=call_id, campaign_id=campaign_id, event=event, hooks=hooks), robust=True)


def _after_commit(*, call_id: int, event: str, campaign_id: int | None = None, hooks: bool = True) -> None:
    from tracking.services.conversions import call_conversion_evaluate
    from tracking.services.webhooks import webhook_deliveries_queue

    if event != "call.completed":
        # Only the campaign's webhooks matter: they are looked up first, the call is loaded when one listens.
        if campaign_id is not None:
            webhook_deliveries_queue(call=Call(pk=call_id, campaign_id=campaign_id), event=event)
        return
    call = Call.objects.filter(pk=call_id).first()
    if call is None:
        return
    if event == "call.completed":
        # First, so the call.completed webhooks carry the outcome, revenue and payout.
        try:
            call = call_conversion_evaluate(call=call)
        except Exception:
            logger.exception("conversion rules failed for call %s", call_id)
    if hooks:
        webhook_deliveries_queue(call=call, event=event)
