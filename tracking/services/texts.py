"""A campaign's routing for texts (``tracking.TextRoute``): written by the admin, the API and the demo through these
services. Sending texts needs a carrier and lives in ``calltrack.numbers.services.texts``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from calltrack.model_writes import instance_apply_and_save
from tracking.models import TextRoute


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
