"""Changing a conversion after the fact: revoking it (the sale fell through) or restating what it was worth.

Both run under the call's row lock, write the outcome fields the way the conversion services do (the money history
triggers record who changed what), add a step to the call's timeline, and, after the commit, send the ad platforms an
adjustment for what was uploaded (``tracking.services.ad_uploads.conversion_uploads_adjust``: a retraction or a
restatement, for the platforms that take one).
"""

from __future__ import annotations

import functools
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from calltrack import fastdb
from tracking.models import Adjustment, Call, ConversionStatus
from tracking.services.ad_uploads import conversion_uploads_adjust
from tracking.services.call_events import call_event_record
from tracking.services.conversions import OUTCOME_FIELDS, ConversionRefused

REVOKED_EVENT = "call.conversion_revoked"
RESTATED_EVENT = "call.conversion_restated"


def _adjust_after_commit(call_id: int, adjustment: str) -> None:
    transaction.on_commit(functools.partial(conversion_uploads_adjust, call_id=call_id, adjustment=adjustment), robust=True)


def call_conversion_revoke(*, call: Call, source: str, reason: str = "", at: datetime | None = None) -> Call:
    """Undo the call's conversion on both sides: not converted, no revenue, no payout, with the reason.

    Under the call's row lock; a call that did not convert raises ``ConversionRefused`` (nothing changes), so revoking
    twice changes it once. The uploads already sent get a retraction after the commit; those not sent yet are dropped.
    """
    at = at or timezone.now()
    why = f"revoked ({source})" + (f": {reason}" if reason else "")
    with transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call.pk)
        if not call.converted:
            raise ConversionRefused(f"call #{call.pk} has no conversion to revoke")
        call.revenue_converted = call.payout_converted = call.converted = False
        call.revenue = call.payout = Decimal("0")
        call.conversion_reason = call.payout_reason = why[:300]
        call.converted_at = None
        call.conversion_status = ConversionStatus.NOT_CONVERTED
        call.conversion_evaluated_at = call.conversion_evaluated_at or at
        fastdb.update(call, OUTCOME_FIELDS)
        call_event_record(call=call, kind=REVOKED_EVENT, message=f"conversion {why}", data={"source": source, "reason": reason})
        _adjust_after_commit(call.pk, Adjustment.RETRACTION)
    return call


def call_conversion_restate(*, call: Call, source: str, revenue: Decimal | None = None, payout: Decimal | None = None) -> Call:
    """Change what a converted call is worth (``revenue`` and/or ``payout``; None leaves a side as it is).

    Under the call's row lock; a call that did not convert raises ``ConversionRefused``. The uploads already sent get a
    restatement with the new value after the commit (only when a value changed).
    """
    with transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call.pk)
        if not call.converted:
            raise ConversionRefused(f"call #{call.pk} did not convert: there is no value to restate")
        before = (call.revenue, call.payout)
        if revenue is not None and call.revenue_converted:
            call.revenue = revenue
        if payout is not None and call.payout_converted:
            call.payout = payout
        if (call.revenue, call.payout) == before:
            return call
        fastdb.update(call, ["revenue", "payout"])
        call_event_record(
            call=call, kind=RESTATED_EVENT, message=f"conversion restated ({source}): revenue {call.revenue}, payout {call.payout}",
            data={"source": source, "revenue": str(call.revenue), "payout": str(call.payout)},
        )
        _adjust_after_commit(call.pk, Adjustment.RESTATEMENT)
    return call
