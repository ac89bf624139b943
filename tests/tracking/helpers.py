"""Shared test steps for the tracking tests."""

from __future__ import annotations

from django.utils import timezone

from routing.services import Links, Turn
from routing.services.status import call_conversion_decide
from tracking.models import Call


def call_complete(call: Call, *, flush: bool = True) -> Turn:
    """What the voice status callback does once the call ended, in one unit of work: ``call.completed`` announced and
    the conversion decided (``routing.services.status.call_conversion_decide``)."""
    turn = Turn(links=Links("https://calls.example.com")).bind(call)
    turn.notify("call.completed")
    call_conversion_decide(turn, call, at=timezone.now())
    if flush:
        turn.flush()
    return turn
