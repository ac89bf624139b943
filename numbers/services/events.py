"""NumberEvent: the record of every change to a tracking number (who, when, from, to, why)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.utils import timezone

from calltrack.numbers.models import NumberEvent, TrackingNumber


def number_event_build(
    *, number: TrackingNumber, from_status: str, to_status: str, reason: str, actor: AbstractBaseUser | None = None,
    actor_label: str = "", changes: dict[str, Any] | None = None, at: datetime | None = None,
) -> NumberEvent:
    """An unsaved event, for callers that write many at once with :func:`number_events_save`."""
    return NumberEvent(
        tracking_number=number, at=at or timezone.now(), actor=actor if actor and actor.pk else None,  # type: ignore[misc]  # AUTH_USER_MODEL: the stubs type it auth.User
        actor_label=actor_label[:100], from_status=from_status, to_status=to_status, reason=reason[:500], changes=changes or {},
    )


def number_events_save(events: Iterable[NumberEvent], *, batch_size: int = 2000) -> None:
    NumberEvent.objects.bulk_create(list(events), batch_size=batch_size)


def number_event_record(**kwargs: Any) -> NumberEvent:
    """Record one event now (same arguments as :func:`number_event_build`)."""
    event = number_event_build(**kwargs)
    event.save()
    return event


