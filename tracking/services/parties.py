"""Writes to sources and handlers: the admin, the API and the commands all come through here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from calltrack.model_writes import instance_apply_and_save
from tracking.models import Handler, Source
from tracking.services.campaign_config import campaign_config_touch, campaigns_using


def source_create(*, fields: Mapping[str, Any]) -> Source:
    """Create a source after full validation (``source_id`` is derived from the name when blank)."""
    return instance_apply_and_save(instance=Source(), fields=fields)


def source_update(*, source: Source, fields: Mapping[str, Any]) -> Source:
    """Change the given fields after full validation (the static number cap is checked against numbers held)."""
    return instance_apply_and_save(instance=source, fields=fields)


def source_delete(*, source: Source) -> None:
    """Delete a source; its calls and numbers keep existing without credit (SET_NULL)."""
    source.delete()


def handler_create(*, fields: Mapping[str, Any]) -> Handler:
    """Create a handler; business hours and tag criteria are validated and normalized by ``Handler.clean()``."""
    return instance_apply_and_save(instance=Handler(), fields=fields)


@transaction.atomic
def handler_update(*, handler: Handler, fields: Mapping[str, Any]) -> Handler:
    """Change a handler after full validation; campaigns routing to it reload their cached configuration."""
    instance_apply_and_save(instance=handler, fields=fields)
    campaign_config_touch(handler_ids=[handler.pk])
    return handler


@transaction.atomic
def handler_delete(*, handler: Handler) -> None:
    """Delete a handler and its places in campaigns; past calls keep existing without it (SET_NULL)."""
    campaign_ids = campaigns_using(handler_ids=[handler.pk])
    handler.delete()
    campaign_config_touch(campaign_ids=campaign_ids)
