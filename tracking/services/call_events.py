"""A call's timeline, and the one place that announces its lifecycle events.

``call_event_record`` writes a step of the timeline the admin shows.
``call_lifecycle_notify`` is called by routing at each lifecycle point
(``call.started``, ``call.routed``, ``call.answered``, ``call.completed``,
``call.converted``); it records the step and is where conversions and
outgoing webhooks hook in, always after the surrounding transaction commits.
"""

from __future__ import annotations

from typing import Any

from tracking.models import Call, CallEvent


def call_event_record(*, call: Call, kind: str, message: str, data: dict[str, Any] | None = None) -> CallEvent:
    """Append a step to the call's timeline. Not idempotent: call once per step."""
    return CallEvent.objects.create(call=call, kind=kind, message=message[:500], data=data or {})


def call_lifecycle_notify(*, call: Call, event: str, message: str = "", data: dict[str, Any] | None = None) -> None:
    """Record a lifecycle event of ``call`` (one of WebhookEvent's values)."""
    call_event_record(call=call, kind=event, message=message or event.replace(".", " "), data=data)
