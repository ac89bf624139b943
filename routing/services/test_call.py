"""A test call from the admin: what ``manage.py simulate_call`` does, played through the real voice webhooks."""

from __future__ import annotations

import io
import re

from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from tracking.models import Call

# A caller number reserved for fiction (NANP 555-01xx), so a test call never looks like a real customer's.
TEST_CALLER = "+12025550100"


class TestCallError(Exception):
    """The test call could not be played; ``str()`` says why."""


def test_call_place(*, to: str, caller: str = TEST_CALLER, answer: str = "first") -> tuple[Call, str]:
    """Play one inbound call to tracking number ``to`` as Twilio would (signed requests to /voice/incoming,
    the dials, the status callbacks), so routing, conversions and the webhooks run for real. Returns the call
    recorded and the simulator's transcript. Not idempotent: each run is a new call."""
    out = io.StringIO()
    started = timezone.now()
    try:
        call_command("simulate_call", to=to, caller=caller, answer=answer, stdout=out, no_color=True)
    except CommandError as exc:
        raise TestCallError(str(exc)) from None
    sid = re.search(r"^Call (CA[0-9a-f]+)$", out.getvalue(), re.MULTILINE)
    call = Call.objects.filter(call_sid=sid.group(1)).first() if sid else None
    if call is None:
        call = Call.objects.filter(called_number=to, started_at__gte=started).order_by("-started_at").first()
    if call is None:
        raise TestCallError("the simulated call left no call record")
    return call, out.getvalue()
