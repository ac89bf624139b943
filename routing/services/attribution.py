"""Who gets the credit for a contact on a tracking number at a moment: one answer for a call and for a text.

``call_start`` and ``text_receive`` both read it, so a text is credited exactly as a call to the same number at the
same moment would be (the campaign, the source, the DNI session inside its attribution window with the visitor's
marketing data, landing page and referrer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from calltrack.numbers.models import NumberSession, TrackingNumber
from calltrack.numbers.selectors import session_for_call
from tracking.models import Campaign, Source


@dataclass(frozen=True)
class Credit:
    campaign: Campaign | None = None
    source: Source | None = None
    session: NumberSession | None = None
    marketing: dict[str, Any] = field(default_factory=dict)
    landing: str = ""
    referrer: str = ""
    visitor: str = ""


def credit_for(tracking_number: TrackingNumber | None, *, at: datetime) -> Credit:
    """The credit for a contact with ``tracking_number`` (loaded with its campaign, source and pool) at ``at``: the
    number's own campaign and source, else its pool's; a pool number's latest visitor within the attribution window
    (``session_for_call``: one query) gives the marketing data. No number: no credit."""
    if tracking_number is None:
        return Credit()
    campaign, source = tracking_number.campaign, tracking_number.source
    marketing = dict(tracking_number.marketing_data or {})
    if not tracking_number.pool_id:
        return Credit(campaign=campaign, source=source, marketing=marketing)
    pool = tracking_number.pool
    if pool is not None:
        campaign = campaign or pool.campaign
        source = source or pool.source
    session = session_for_call(tracking_number=tracking_number, at=at)
    if session is None:
        return Credit(campaign=campaign, source=source, marketing=marketing)
    return Credit(campaign=campaign, source=source, session=session, marketing=dict(session.marketing_data or {}),
                  landing=session.landing_page, referrer=session.referrer, visitor=session.visitor_id)
