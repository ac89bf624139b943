"""Writes to tagging hours. Every change reloads the routing configuration of the campaigns it tags."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from calltrack.model_writes import instance_apply_and_save
from tracking.models import Campaign
from tracking.models.tagging import TaggingHours
from tracking.services.campaign_config import campaign_config_touch


def _touch(*campaign_ids: int | None) -> None:
    """Bump the campaigns a schedule tags: its campaign, or every campaign for an account-wide one."""
    if any(c is None for c in campaign_ids):
        campaign_config_touch(campaign_ids=Campaign.objects.values_list("pk", flat=True))
    else:
        campaign_config_touch(campaign_ids=[c for c in campaign_ids if c])


@transaction.atomic
def tagging_hours_create(*, fields: Mapping[str, Any]) -> TaggingHours:
    """Create a schedule after full validation (hours, time zone, tag); its campaigns reload their configuration."""
    schedule = TaggingHours()
    for name, value in fields.items():
        setattr(schedule, name, value)
    schedule.full_clean()
    schedule.save()
    _touch(schedule.campaign_id)
    return schedule


@transaction.atomic
def tagging_hours_update(*, tagging_hours: TaggingHours, fields: Mapping[str, Any]) -> TaggingHours:
    """Change the given fields after full validation and save only those; the campaigns tagged before and after
    the change reload their configuration."""
    before = TaggingHours.objects.filter(pk=tagging_hours.pk).values_list("campaign_id", flat=True).first()
    instance_apply_and_save(instance=tagging_hours, fields=fields)  # with what clean() normalized (the hours)
    _touch(before, tagging_hours.campaign_id)
    return tagging_hours


@transaction.atomic
def tagging_hours_delete(*, tagging_hours: TaggingHours) -> None:
    """Delete a schedule; the calls it tagged keep their tags."""
    campaign_id = tagging_hours.campaign_id
    tagging_hours.delete()
    _touch(campaign_id)
