"""A campaign's routing for texts (``tracking.TextRoute``): written by the admin, the API and the demo through these
services. Sending texts needs a carrier and lives in ``calltrack.numbers.services.texts``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from calltrack.model_writes import instance_apply_and_save
from tracking.models import TextDirection, TextMessage, TextRoute
from tracking.services.conversions import AlreadyConverted, ConversionRefused


def text_route_create(*, fields: Mapping[str, Any]) -> TextRoute:
    """Create a campaign's text routing after full validation (one per campaign: the unique link decides)."""
    route = TextRoute()
    for name, value in fields.items():
        setattr(route, name, value)
    route.full_clean()
    route.save()
    return route


@transaction.atomic
def text_route_update(*, text_route: TextRoute, fields: Mapping[str, Any]) -> TextRoute:
    """Change the given fields after validation, saving only those."""
    instance_apply_and_save(instance=text_route, fields=fields)
    return text_route


@transaction.atomic
def text_route_delete(*, text_route: TextRoute) -> None:
    text_route.delete()


def text_convert(*, text: TextMessage, source: str, at: datetime | None = None) -> TextMessage:
    """A postback (or the operator) converts a contact's text, once, with its campaign's text revenue and payout (none:
    0). Under the text's row lock: two postbacks racing convert it once; the second gets ``AlreadyConverted`` (409).
    Refused (422) for our own texts and for test texts."""
    with transaction.atomic():
        text = TextMessage.objects.select_for_update().get(pk=text.pk)
        if text.direction != TextDirection.INBOUND:
            raise ConversionRefused("only a contact's text converts, not one of ours")
        if text.is_test:
            raise ConversionRefused("a test text never converts")
        if text.converted:
            raise AlreadyConverted(f"text #{text.pk} converted already ({text.conversion_reason})")
        route = TextRoute.objects.filter(campaign_id=text.campaign_id).first() if text.campaign_id else None
        text.converted, text.converted_at, text.conversion_reason = True, at or timezone.now(), f"{source} confirmed it"[:300]
        text.revenue = route.revenue if route else Decimal("0")
        text.payout = route.payout if route else Decimal("0")
        text.save(update_fields=["converted", "converted_at", "conversion_reason", "revenue", "payout"])
    return text
