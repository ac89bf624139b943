"""A test call from the admin: what ``manage.py simulate_call --test`` does, played through the real voice webhooks."""

from __future__ import annotations

import io
import re
from datetime import datetime

from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from tracking.models import Call

# A caller number reserved for fiction (NANP 555-01xx), so a test call never looks like a real customer's.
TEST_CALLER = "+12025550100"


class TestCallError(Exception):
    """The test call could not be played; ``str()`` says why."""

    __test__ = False  # not a pytest test class


def test_call_place(
    *, to: str, caller: str = TEST_CALLER, answer: str = "first", from_city: str = "", from_state: str = "", from_zip: str = "",
    stir_verstat: str = "", caller_name: str = "", digits: str = "", clock: datetime | None = None, send_webhooks: bool = False,
) -> tuple[Call, str]:
    """Play one inbound test call to tracking number ``to`` as Twilio would (signed requests to /voice/incoming,
    the menus' gathers with ``digits``, the dials, the status callbacks), so routing runs for real, and return the
    call recorded (flagged ``is_test``) and the simulator's transcript. The caller's place goes as Twilio's
    FromCity/FromState/FromZip, its identity as StirVerstat/CallerName; ``clock`` is the moment routing reads business and tagging hours at (None: now).
    A test call is in no report figure, counts toward no period cap, never converts, and sends the campaign's
    webhooks only with ``send_webhooks``. Not idempotent: each run is a new call."""
    out = io.StringIO()
    started = timezone.now()
    options: dict[str, object] = {"test": True, "send_webhooks": send_webhooks, "digits": digits,
                                  "from_city": from_city, "from_state": from_state, "from_zip": from_zip,
                                  "stir_verstat": stir_verstat, "caller_name": caller_name}
    if clock is not None:
        options["clock"] = clock.isoformat()
    try:
        call_command("simulate_call", to=to, caller=caller, answer=answer, stdout=out, no_color=True, **options)
    except CommandError as exc:
        raise TestCallError(str(exc)) from None
    sid = re.search(r"^Call (CA[0-9a-f]+)$", out.getvalue(), re.MULTILINE)
    call = Call.objects.filter(call_sid=sid.group(1)).first() if sid else None
    if call is None:
        call = Call.objects.filter(called_number=to, is_test=True, started_at__gte=started).order_by("-started_at").first()
    if call is None:
        raise TestCallError("the simulated call left no call record")
    return call, out.getvalue()


test_call_place.__test__ = False  # type: ignore[attr-defined]  # a service, not a pytest test
